"""Environment variables as pools, poolers and replicas: what a ``.env`` file or a docker-compose
service's ``environment:`` declares.

Names read:
- the application's pool: ``DATABASE_URL`` (or ``DB_URL``, ``POSTGRES_URL``, ``JDBC_DATABASE_URL``,
  ``SPRING_DATASOURCE_URL``), the guide's ``DATABASE_POOL_SIZE``, ``DATABASE_POOL_MAX``,
  ``DATABASE_IDLE_TIMEOUT`` and ``DATABASE_CONNECTION_TIMEOUT`` (milliseconds, as node-postgres'
  ``idleTimeoutMillis``/``connectionTimeoutMillis``), libpq's ``PGHOST``/``PGPORT``/``PGDATABASE``/
  ``PGUSER``/``PGOPTIONS``, and Spring's ``SPRING_DATASOURCE_HIKARI_*`` (:mod:`dbtune.appconfig.hikari`);
  a prefix names another pool (``ANALYTICS_DATABASE_URL`` → pool ``analytics``);
- replicas: ``DATABASE_READ_REPLICA_URL`` with ``READ_REPLICA_WEIGHT`` (a share of reads, 0–1);
- PgBouncer: a service whose image is a PgBouncer image, or whose variables are the edoburu/pgbouncer
  image's (``DB_HOST``, ``DB_PORT``, ``DB_USER``, ``DB_NAME``, ``DATABASE_URL``, ``POOL_MODE``,
  ``MAX_CLIENT_CONN``, ``DEFAULT_POOL_SIZE``, ``MIN_POOL_SIZE``, ``RESERVE_POOL_SIZE``,
  ``RESERVE_POOL_TIMEOUT``, ``SERVER_IDLE_TIMEOUT``, ``MAX_PREPARED_STATEMENTS``, ``LISTEN_ADDR``,
  ``LISTEN_PORT``: https://github.com/edoburu/docker-pgbouncer).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dbtune.appconfig import hikari
from dbtune.appconfig.model import Origin, Pool, Pooler, Replica
from dbtune.appconfig.pgbouncer_settings import apply_setting
from dbtune.appconfig.urls import parse_url
from dbtune.appconfig.values import PoolBuilder, duration_ms, integer, where
from dbtune.errors import UsageError


@dataclass(frozen=True)
class Variable:
    """One environment variable as read: name, value and the line it is on."""

    name: str
    value: str
    origin: Origin


URL_NAMES = ("DATABASE_URL", "DB_URL", "POSTGRES_URL", "POSTGRESQL_URL", "JDBC_DATABASE_URL")
_PREFIXED = re.compile(r"^(?:(?P<prefix>[A-Z0-9]+)_)?DATABASE_(?P<what>URL|POOL_SIZE|POOL_MAX|POOL_MIN|"
                       r"IDLE_TIMEOUT|CONNECTION_TIMEOUT)$")
_REPLICA_URL = re.compile(r"^(?:(?P<prefix>[A-Z0-9_]+)_)?(?:READ_)?REPLICA_URL$")
_REPLICA_WEIGHT = re.compile(r"^(?:(?P<prefix>[A-Z0-9_]+)_)?(?:READ_)?REPLICA_WEIGHT$")
# The edoburu/pgbouncer image's own variables (its entrypoint writes them into pgbouncer.ini).
EDOBURU = frozenset({"DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "POOL_MODE", "MAX_CLIENT_CONN",
                     "DEFAULT_POOL_SIZE", "MIN_POOL_SIZE", "RESERVE_POOL_SIZE", "RESERVE_POOL_TIMEOUT",
                     "SERVER_IDLE_TIMEOUT", "MAX_PREPARED_STATEMENTS", "LISTEN_ADDR", "LISTEN_PORT", "AUTH_TYPE",
                     "MAX_DB_CONNECTIONS", "ADMIN_USERS"})
_POOLER_MARKERS = frozenset({"POOL_MODE", "MAX_CLIENT_CONN", "DEFAULT_POOL_SIZE"})


def is_pgbouncer(variables: Sequence[Variable], image: str | None = None) -> bool:
    """Whether these are a PgBouncer container's variables: its image says so, or it sets PgBouncer's
    own ``POOL_MODE``/``MAX_CLIENT_CONN``/``DEFAULT_POOL_SIZE``."""
    if image is not None and "pgbouncer" in image.lower():
        return True
    return any(v.name in _POOLER_MARKERS for v in variables)


def read_environment(variables: Sequence[Variable], *, name: str, origin: Origin, image: str | None = None,
                     instances: tuple[int, Origin] | None = None) -> tuple[list[Pool], list[Pooler], list[Replica]]:
    """The pools (one per ``[PREFIX_]DATABASE_*`` group), the PgBouncer, and the replicas these variables
    declare. ``name`` names the main pool (or the PgBouncer); ``instances`` is how many copies of the
    service run (compose ``deploy.replicas``) and where that was read.

    Raises :class:`UsageError` naming the file, line and variable of a value that is not what it should be
    (a URL with an unknown scheme, a size that is not an integer).
    """
    if is_pgbouncer(variables, image):
        return [], [_pooler(variables, name=name, origin=origin)], []
    builders: dict[str, PoolBuilder] = {}

    def pool(prefix: str | None) -> PoolBuilder:
        key = prefix.lower() if prefix else name
        return builders.setdefault(key, PoolBuilder(key, origin))

    replicas: list[Replica] = []
    weights: dict[str, tuple[float, Origin]] = {}
    libpq: dict[str, Variable] = {}
    for var in variables:
        o = var.origin
        if var.value == "":
            continue
        m = _PREFIXED.match(var.name)
        replica = _REPLICA_URL.match(var.name)
        weight = _REPLICA_WEIGHT.match(var.name)
        if replica:
            target, _ = parse_url(var.value, where(o))
            replicas.append(Replica(target=target, origin=o))
        elif weight:
            try:
                share: float = float(var.value)
            except ValueError:
                raise UsageError(f"{where(o)}: expected a share of reads such as 0.3, got {var.value[:40]!r}") from None
            if not 0 <= share <= 1:
                raise UsageError(f"{where(o)}: a share of reads is between 0 and 1, got {share}")
            weights[(weight.group("prefix") or "").upper()] = (share, o)
        elif m and not (m.group("prefix") or "").endswith("REPLICA"):
            b = pool(m.group("prefix"))
            what = m.group("what")
            if what == "URL":
                _url(b, var)
            elif what == "POOL_SIZE" or what == "POOL_MIN":
                b.set("size", integer(var.value, o), o)
            elif what == "POOL_MAX":
                b.set("max", integer(var.value, o, minimum=1), o)
            elif what == "IDLE_TIMEOUT":
                b.set("idle_timeout_ms", duration_ms(var.value, o), o)
            else:
                b.set("connection_timeout_ms", duration_ms(var.value, o), o)
        elif var.name in URL_NAMES:
            _url(pool(None), var)
        elif var.name in ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGOPTIONS"):
            libpq[var.name] = var
        elif hikari.is_hikari_key(var.name):
            hikari.apply(pool(None), var.name, var.value, o)
    if libpq:
        _libpq_variables(pool(None), libpq)
    weight_of = weights.get("") or weights.get("DATABASE") or (next(iter(weights.values())) if len(weights) == 1
                                                                 else None)
    if weight_of is not None:
        replicas = [Replica(target=r.target, origin=r.origin, weight=weight_of[0]) for r in replicas]
    pools = []
    for b in builders.values():
        if not b.declared:
            continue
        if instances is not None:
            b.set("instances", instances[0], instances[1])
        pools.append(b.build())
    return pools, [], replicas


def _url(b: PoolBuilder, var: Variable) -> None:
    target, hints = parse_url(var.value, where(var.origin))
    b.target(target, var.origin)
    o = var.origin
    b.set("size", hints.size, o)
    b.set("max", hints.max, o)
    b.set("connection_timeout_ms", hints.connection_timeout_ms, o)
    b.set("idle_timeout_ms", hints.idle_timeout_ms, o)
    if hints.pgbouncer:
        b.via("pgbouncer", "pgbouncer=true in the URL", o)


def _libpq_variables(b: PoolBuilder, libpq: dict[str, Variable]) -> None:
    """libpq's environment variables (https://www.postgresql.org/docs/current/libpq-envars.html) where no
    URL gave the target."""
    from dbtune.appconfig.model import SessionFeature, Target
    from dbtune.appconfig.urls import session_settings

    if "target" not in b.values and {"PGHOST", "PGDATABASE", "PGUSER"} & set(libpq):
        port = libpq.get("PGPORT")
        target = Target(url=" ".join(f"{v.name}={v.value}" for v in libpq.values() if v.name != "PGOPTIONS"),
                        driver="libpq", host=libpq["PGHOST"].value if "PGHOST" in libpq else None,
                        port=integer(port.value, port.origin, minimum=1) if port else None,
                        database=libpq["PGDATABASE"].value if "PGDATABASE" in libpq else None,
                        user=libpq["PGUSER"].value if "PGUSER" in libpq else None)
        first = next(iter(libpq.values())).origin
        b.target(target, first)
    if "PGOPTIONS" in libpq:
        opt = libpq["PGOPTIONS"]
        for name, setting in session_settings(opt.value).items():
            b.features.append(SessionFeature("options", f"-c {name}={setting}", opt.origin))


def _pooler(variables: Sequence[Variable], *, name: str, origin: Origin) -> Pooler:
    values: dict[str, object] = {}
    origins: dict[str, Origin] = {}
    server: dict[str, str] = {}
    for var in variables:
        if var.value == "":
            continue
        if var.name == "DATABASE_URL":
            target, _ = parse_url(var.value, where(var.origin))
            server.update({k: str(v) for k, v in (("host", target.host), ("port", target.port),
                                                  ("dbname", target.database), ("user", target.user)) if v})
        elif var.name in ("DB_HOST", "DB_PORT", "DB_USER", "DB_NAME"):
            server[{"DB_HOST": "host", "DB_PORT": "port", "DB_USER": "user", "DB_NAME": "dbname"}[var.name]] = var.value
        elif var.name != "DB_PASSWORD":
            apply_setting(var.name.lower(), var.value, var.origin, values, origins, strict=False)
    databases = {server.get("dbname", "*"): server} if server else {}
    return Pooler(name=name, origin=origin, databases=databases, origins=origins, **values)  # type: ignore[arg-type]
