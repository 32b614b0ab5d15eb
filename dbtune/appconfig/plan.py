"""The pools and PgBouncer the pool checks judge: the config's ``[[pool]]``/``[pgbouncer]`` merged with what
the application's own configuration declares (:class:`~dbtune.appconfig.model.AppConfig`), and where each
value came from.

Precedence, value by value: a value written in ``dbtune.toml`` wins; then a live PgBouncer's ``SHOW
CONFIG``; then the application's files (a later file over an earlier one); then the defaults. A
``[[pool]]`` and an application pool are the same pool when they have the same name (the main
``DATABASE_URL``'s pool is ``app``, a compose service's pool is the service's name). An application pool
without a ``max`` (no ``DATABASE_POOL_MAX``, ``connection_limit``, ``maximumPoolSize`` …) is not counted,
and is listed as such: dbtune does not guess a driver's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from dbtune.appconfig.model import AppConfig, Pool, Pooler
from dbtune.catalog.model import Snapshot
from dbtune.config.model import Config, PgBouncerConfig, PoolConfig
from dbtune.errors import UsageError

# PoolConfig field → app Pool attribute
_POOL_FIELDS = {"role": "role", "size": "size", "max": "max", "idle_timeout": "idle_timeout_ms",
                "connection_timeout": "connection_timeout_ms", "instances": "instances", "via": "via"}
# PgBouncerConfig field → Pooler attribute
_BOUNCER_FIELDS = {"pool_mode": "pool_mode", "max_client_conn": "max_client_conn",
                   "default_pool_size": "default_pool_size", "min_pool_size": "min_pool_size",
                   "reserve_pool_size": "reserve_pool_size", "reserve_pool_timeout": "reserve_pool_timeout_ms"}
DEFAULT = "default"


@dataclass(frozen=True)
class PlannedValue:
    """One value of the plan: ``owner`` (a pool's name or ``pgbouncer``), the config ``setting``, its
    ``value`` and ``source`` (``dbtune.toml``, ``file:line (KEY)``, ``SHOW CONFIG …``, ``default``)."""

    owner: str
    setting: str
    value: Any
    source: str


@dataclass(frozen=True)
class PoolPlan:
    """The pools (per instance) and PgBouncer the checks judge, every value with its source; ``unsized``
    names the application pools left out for want of a ``max``."""

    pools: tuple[PoolConfig, ...] = ()
    pgbouncer: PgBouncerConfig | None = None
    values: tuple[PlannedValue, ...] = ()
    unsized: tuple[str, ...] = ()
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    def source_of(self, owner: str, setting: str) -> str | None:
        return self.sources.get(owner, {}).get(setting)

    def server_connections(self) -> dict[str, int]:
        """Connections each owner can open on the server: a direct pool ``max`` × ``instances``, and
        ``pgbouncer`` (``default_pool_size`` + ``reserve_pool_size``) × ``pools`` × ``instances`` when pools
        go through a PgBouncer the plan describes."""
        out = {p.name: p.max * p.instances for p in self.pools if p.via == "direct"}
        bouncer = self.pgbouncer
        if bouncer is not None and any(p.via == "pgbouncer" for p in self.pools):
            per_pool = bouncer.default_pool_size + bouncer.reserve_pool_size
            out["pgbouncer"] = per_pool * bouncer.pools * bouncer.instances
        return out

    def client_connections(self) -> int:
        """Client connections the pools that go through PgBouncer open to it (``max`` × ``instances``)."""
        return sum(p.max * p.instances for p in self.pools if p.via == "pgbouncer")

    def budget_on(self, snapshot: Snapshot) -> ConnectionBudget:
        """This plan against the snapshot's server: its ``max_connections`` less the reserved slots
        (``superuser_reserved_connections``, and ``reserved_connections`` on PostgreSQL 16+)."""

        def number(name: str) -> int:
            value = snapshot.setting(name)
            return int(value) if value is not None else 0

        return self.budget(number("max_connections"),
                           number("superuser_reserved_connections") + number("reserved_connections"))

    def budget(self, max_connections: int, reserved: int) -> ConnectionBudget:
        """This plan against a server's ``max_connections`` and its ``reserved`` slots."""
        bouncer = self.pgbouncer
        clients = self.client_connections()
        return ConnectionBudget(
            max_connections=max_connections, reserved=reserved, by_owner=self.server_connections(),
            client_connections=clients if clients and bouncer is not None else None,
            max_client_conn=bouncer.max_client_conn * bouncer.instances if clients and bouncer is not None else None)


@dataclass(frozen=True)
class ConnectionBudget:
    """The server connections the pools can open (``by_owner``: a direct pool's name or ``pgbouncer`` →
    connections) against what the server accepts, ``max_connections`` − ``reserved``; and, with pools
    through PgBouncer, the client connections they open against its ``max_client_conn`` × instances.
    https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-MAX-CONNECTIONS"""

    max_connections: int
    reserved: int
    by_owner: dict[str, int]
    client_connections: int | None = None
    max_client_conn: int | None = None

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved

    @property
    def demand(self) -> int:
        return sum(self.by_owner.values())

    def summary(self) -> str:
        """One line: ``api 100 + pgbouncer 55 = 155 of 97 server connections (max_connections 100 − 3 reserved), 57 %;
        250 client connections to PgBouncer of 1000 (max_client_conn × instances), 25 %``."""
        parts = " + ".join(f"{owner} {n}" for owner, n in self.by_owner.items())
        total = f"{parts} = {self.demand}" if len(self.by_owner) > 1 else parts
        share = f"{self.demand / self.available:.0%}" if self.available > 0 else "no slot left"
        line = (f"{total} of {self.available} server connections (max_connections "
                f"{self.max_connections} − {self.reserved} reserved), {share}")
        if self.client_connections is not None and self.max_client_conn:
            line += (f"; {self.client_connections} client connections to PgBouncer of {self.max_client_conn} "
                     f"(max_client_conn × instances), {self.client_connections / self.max_client_conn:.0%}")
        return line

    def to_json(self) -> dict[str, Any]:
        return {"max_connections": self.max_connections, "reserved_connections": self.reserved,
                "budget": self.available, "demand": self.demand, "by_owner": dict(self.by_owner),
                "client_connections": self.client_connections, "max_client_conn": self.max_client_conn}


def pool_plan(config: Config, app: AppConfig | None, *, config_label: str = "dbtune.toml") -> PoolPlan:
    """Merge ``config``'s pools and PgBouncer with ``app``'s (see the module's precedence).

    Raises :class:`UsageError` naming the sources when the merged values contradict each other (a ``size``
    above the ``max``)."""
    app = app or AppConfig()
    sources: dict[str, dict[str, str]] = {}
    toml_pools = {p.name: p for p in config.pool}
    app_pools = {p.name: p for p in app.pools}
    pools: list[PoolConfig] = []
    unsized: list[str] = []
    for name in dict.fromkeys([*toml_pools, *app_pools]):
        built = _pool(name, toml_pools.get(name), app_pools.get(name), config, config_label)
        if built is None:
            unsized.append(name)
            continue
        pool, where = built
        pools.append(pool)
        sources[name] = where
    bouncer = _bouncer(config, app.poolers, config_label)
    if bouncer is not None:
        sources["pgbouncer"] = bouncer[1]
    values = [PlannedValue(owner, setting, _value(owner, setting, pools, bouncer), source)
              for owner, settings in sources.items() for setting, source in settings.items()]
    return PoolPlan(pools=tuple(pools), pgbouncer=bouncer[0] if bouncer else None, values=tuple(values),
                    unsized=tuple(unsized), sources=sources)


def _value(owner: str, setting: str, pools: list[PoolConfig], bouncer: tuple[PgBouncerConfig, Any] | None) -> Any:
    if owner == "pgbouncer" and bouncer is not None:
        return getattr(bouncer[0], setting)
    return next(getattr(p, setting) for p in pools if p.name == owner)


def _pool(name: str, toml: PoolConfig | None, app: Pool | None, config: Config,
          label: str) -> tuple[PoolConfig, dict[str, str]] | None:
    if app is None:
        assert toml is not None
        return toml, {k: label for k in _POOL_FIELDS if k in toml.model_fields_set}
    data: dict[str, Any] = {"name": name}
    where: dict[str, str] = {}
    for setting, attr in _POOL_FIELDS.items():
        value = getattr(app, attr)
        if value is not None and (attr in app.origins or attr == "via" and app.via != "direct"):
            data[setting] = value
            origin = app.origins.get(attr, app.origin)
            where[setting] = str(origin) + (f": {app.via_reason}" if attr == "via" and app.via_reason else "")
    if toml is not None:
        for setting in toml.model_fields_set - {"name"}:
            data[setting] = getattr(toml, setting)
            where[setting] = label
    if "max" not in data:
        if "size" not in data:
            return None
        data["max"], where["max"] = max(1, data["size"]), where["size"]
    data.setdefault("size", 0)
    if "instances" not in data and config.profile is not None:
        data["instances"], where["instances"] = config.profile.servers, f"{label} (profile.servers)"
    try:
        return PoolConfig(**data), where
    except ValidationError as exc:
        message = exc.errors()[0].get("msg", "invalid")
        raise UsageError(f"pool {name!r} ({', '.join(sorted(set(where.values())))}): "
                         f"{str(message).removeprefix('Value error, ')}") from None


def _bouncer(config: Config, poolers: tuple[Pooler, ...], label: str) -> tuple[PgBouncerConfig, dict[str, str]] | None:
    if config.pgbouncer is None and not poolers:
        return None
    data: dict[str, Any] = {}
    where: dict[str, str] = {}
    # Lowest precedence first: files in order (a later one wins), then live, then dbtune.toml.
    ordered = [b for b in poolers if not b.live] + [b for b in poolers if b.live]
    for b in ordered:
        for setting, attr in _BOUNCER_FIELDS.items():
            value = getattr(b, attr)
            if value is not None:
                data[setting] = value
                where[setting] = str(b.origins.get(attr, b.origin))
        count = len(b.pools) if b.live else len(b.databases)
        if count:
            data["pools"] = count
            where["pools"] = f"{b.origin} ({'SHOW POOLS' if b.live else 'databases served'})"
    if config.pgbouncer is not None:
        for setting in config.pgbouncer.model_fields_set:
            data[setting] = getattr(config.pgbouncer, setting)
            where[setting] = label
    try:
        return PgBouncerConfig(**data), where
    except ValidationError as exc:  # a value no PgBouncer accepts: default_pool_size = 0, a negative size …
        error = exc.errors()[0]
        setting = str(error["loc"][0]) if error.get("loc") else "a setting"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        raise UsageError(f"PgBouncer {setting} = {data.get(setting)!r} ({where.get(setting, label)}): "
                         f"{message.lower()}") from None
