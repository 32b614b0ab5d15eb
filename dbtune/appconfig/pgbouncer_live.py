"""A running PgBouncer read through its admin console: ``SHOW CONFIG`` (its settings), ``SHOW DATABASES``
and ``SHOW POOLS`` (https://www.pgbouncer.org/usage.html#admin-console), as a live
:class:`~dbtune.appconfig.model.Pooler`.

The console speaks only the simple query protocol and has no transactions: the connection is in
autocommit and sends its statements without parameters. A PgBouncer that cannot be reached is not an
error: :func:`read_live` returns ``None`` with the reason, and the audit goes on without it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo

from dbtune.appconfig.model import Origin, Pooler
from dbtune.appconfig.pgbouncer_settings import SETTINGS, apply_setting
from dbtune.db.connect import mask
from dbtune.errors import DbtuneError

ADMIN_DATABASE = "pgbouncer"


def is_admin_dsn(text: str) -> bool:
    """Whether ``text`` is a connection string naming PgBouncer's admin console database ``pgbouncer``."""
    try:
        params = conninfo.conninfo_to_dict(text)
    except psycopg.ProgrammingError:
        return False
    return params.get("dbname") == ADMIN_DATABASE


def shown_dsn(dsn: str) -> str:
    """The admin DSN as shown in reports: password and other secrets masked."""
    return mask(dsn)


def _rows(conn: psycopg.Connection[Any], command: str) -> list[dict[str, Any]]:
    cur = conn.execute(command)  # type: ignore[arg-type]
    names = [c.name for c in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def read_live(dsn: str, *, connect_timeout_s: int = 5) -> tuple[Pooler | None, str | None]:
    """The PgBouncer behind ``dsn`` (its admin console) as a live pooler, or ``(None, reason)`` when it
    cannot be reached or refuses the console (the reason is password-free). ``pools`` holds ``SHOW POOLS``
    rows for the application's databases (not the console's own)."""
    shown = shown_dsn(dsn)
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s,
                             prepare_threshold=None) as conn:
            config = _rows(conn, "SHOW CONFIG")
            databases = _rows(conn, "SHOW DATABASES")
            pools = _rows(conn, "SHOW POOLS")
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        password = conninfo.conninfo_to_dict(dsn).get("password")
        reason = mask(reason.replace(str(password), "***") if password else reason)
        return None, f"PgBouncer's admin console at {shown} could not be read: {reason}"
    values: dict[str, object] = {}
    origins: dict[str, Origin] = {}
    for row in config:
        key = str(row.get("key", ""))
        if key in SETTINGS:
            try:
                apply_setting(key, str(row.get("value", "")), Origin(shown, None, f"SHOW CONFIG {key}"), values,
                              origins, strict=False)
            except DbtuneError:
                continue
    served = {str(d["name"]): {k: str(v) for k, v in d.items() if v is not None and k != "name"}
              for d in databases if d.get("name") != ADMIN_DATABASE}
    app_pools = tuple(p for p in pools if p.get("database") != ADMIN_DATABASE)
    return Pooler(name="pgbouncer (live)", origin=Origin(shown, None, "admin console"), databases=served,
                  live=True, pools=app_pools, origins=origins, **values), None  # type: ignore[arg-type]
