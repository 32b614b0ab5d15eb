"""PgBouncer's ``[pgbouncer]`` settings that dbtune models, read the same way from ``pgbouncer.ini``, the
edoburu image's variables and the admin console's ``SHOW CONFIG`` (https://www.pgbouncer.org/config.html).
Times in PgBouncer's config are seconds (fractions allowed); dbtune keeps milliseconds."""

from __future__ import annotations

from dbtune.appconfig.model import Origin
from dbtune.appconfig.values import duration_ms, integer, where
from dbtune.errors import UsageError

POOL_MODES = ("session", "transaction", "statement")
# setting → (Pooler field, kind)
SETTINGS: dict[str, tuple[str, str]] = {
    "pool_mode": ("pool_mode", "mode"),
    "max_client_conn": ("max_client_conn", "count"),
    "default_pool_size": ("default_pool_size", "count"),
    "min_pool_size": ("min_pool_size", "count"),
    "reserve_pool_size": ("reserve_pool_size", "count"),
    "reserve_pool_timeout": ("reserve_pool_timeout_ms", "seconds"),
    "server_idle_timeout": ("server_idle_timeout_ms", "seconds"),
    "client_idle_timeout": ("client_idle_timeout_ms", "seconds"),
    "max_prepared_statements": ("max_prepared_statements", "count"),
    "listen_addr": ("listen_addr", "text"),
    "listen_port": ("listen_port", "count"),
}


def apply_setting(name: str, value: str, origin: Origin, values: dict[str, object], origins: dict[str, Origin],
                  *, strict: bool = True) -> None:
    """Store one ``[pgbouncer]`` setting in ``values`` (Pooler field → value) with its origin. Settings
    dbtune does not model are ignored. Raises :class:`UsageError` naming ``origin`` for a value PgBouncer
    would refuse (``pool_mode = sessions``, ``default_pool_size = many``); with ``strict=False`` an empty
    value is left out (an unset container variable)."""
    if name not in SETTINGS:
        return
    field, kind = SETTINGS[name]
    value = value.strip()
    if not value and not strict:
        return
    if kind == "mode":
        if value.lower() not in POOL_MODES:
            raise UsageError(f"{where(origin)}: expected one of {', '.join(POOL_MODES)}, got {value[:40]!r}")
        parsed: object = value.lower()
    elif kind == "count":
        parsed = integer(value, origin)
    elif kind == "seconds":
        parsed = duration_ms(value, origin, unit_ms=1000)
    else:
        parsed = value
    values[field] = parsed
    origins[field] = origin
