"""The typed model of what an application declares about its connections: pools, poolers, replicas, and
where each value was read (file and line).

No password is ever stored here: a target keeps host, port, database and user, and ``url`` is the URL as
shown, with any password replaced by ``***``. Durations are milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Via = Literal["direct", "pgbouncer"]
PoolMode = Literal["session", "transaction", "statement"]


@dataclass(frozen=True)
class Origin:
    """Where a value was read: ``file`` (as given), ``line`` (1-based, ``None`` for a live source) and the
    ``key`` that held it (``DATABASE_POOL_MAX``, ``pgbouncer.pool_mode``, ``SHOW CONFIG``)."""

    file: str
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where} ({self.key})" if self.key else where


@dataclass(frozen=True)
class Target:
    """The server a URL points at, without its password. ``url`` is the URL as written with the password
    masked (``postgresql://app:***@pgbouncer:6432/whatsapp``); ``driver`` names the dialect the URL was
    read as (``libpq``, ``sqlalchemy+psycopg``, ``sqlalchemy+asyncpg``, ``prisma``, ``jdbc``);
    ``parameters`` are its query arguments or keywords other than the password (``sslmode``,
    ``connection_limit`` …); ``session_settings`` the GUCs it sets per session (``options=-c
    lock_timeout=30s`` → ``{"lock_timeout": "30s"}``)."""

    url: str
    driver: str
    host: str | None = None
    port: int | None = None
    database: str | None = None
    user: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    session_settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SessionFeature:
    """A session-level feature the config shows (``SET lock_timeout`` in a connect hook, ``options=-c …``
    in a URL, HikariCP's ``connectionInitSql``): behind a transaction pooler it applies to one server
    connection only, not to the client's session (https://www.pgbouncer.org/features.html)."""

    kind: str  # "set", "options"
    text: str
    origin: Origin


@dataclass(frozen=True)
class Pool:
    """One application connection pool, per application instance.

    ``size``: connections kept open (minimum/idle); ``max``: most connections one instance opens;
    ``idle_timeout_ms``/``connection_timeout_ms`` in milliseconds; ``instances``: application instances
    running this pool (compose ``deploy.replicas``); ``via``: ``direct`` or ``pgbouncer``, with
    ``via_reason`` saying how that was known. ``origins`` maps each field set to where it was read.
    """

    name: str
    origin: Origin
    driver: str | None = None
    target: Target | None = None
    role: str | None = None
    size: int | None = None
    max: int | None = None
    idle_timeout_ms: int | None = None
    connection_timeout_ms: int | None = None
    instances: int | None = None
    via: Via = "direct"
    via_reason: str | None = None
    session_features: tuple[SessionFeature, ...] = ()
    origins: Mapping[str, Origin] = field(default_factory=dict)


@dataclass(frozen=True)
class Pooler:
    """A PgBouncer (https://www.pgbouncer.org/config.html). Sizes are connections, timeouts milliseconds;
    ``None`` where the source does not say (PgBouncer's default then applies). ``databases`` and ``users``
    are the ``[databases]``/``[users]`` sections (name → parsed settings, passwords left out)."""

    name: str
    origin: Origin
    pool_mode: PoolMode | None = None
    max_client_conn: int | None = None
    default_pool_size: int | None = None
    min_pool_size: int | None = None
    reserve_pool_size: int | None = None
    reserve_pool_timeout_ms: int | None = None
    server_idle_timeout_ms: int | None = None
    client_idle_timeout_ms: int | None = None
    max_prepared_statements: int | None = None
    listen_addr: str | None = None
    listen_port: int | None = None
    databases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    users: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    live: bool = False
    pools: tuple[Mapping[str, Any], ...] = ()
    origins: Mapping[str, Origin] = field(default_factory=dict)


@dataclass(frozen=True)
class Replica:
    """A read replica the application routes to: its target and the share of reads (0–1) it gets."""

    target: Target
    origin: Origin
    weight: float | None = None


SourceStatus = Literal["read", "skipped"]


@dataclass(frozen=True)
class Source:
    """One application config source: ``path`` (or a masked admin-console DSN for a live PgBouncer), the
    ``format`` it was read as, ``status`` and, when skipped, why."""

    path: str
    format: str
    status: SourceStatus = "read"
    reason: str | None = None


@dataclass(frozen=True)
class AppConfig:
    """Everything read from the application's configuration, in the order of the sources."""

    sources: tuple[Source, ...] = ()
    pools: tuple[Pool, ...] = ()
    poolers: tuple[Pooler, ...] = ()
    replicas: tuple[Replica, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.sources

    def to_json(self) -> dict[str, Any]:
        """The JSON form in the audit report (``app_config``): sources, pools, poolers and replicas with the
        origin of every value; no password (URLs are masked)."""

        def origins(o: Mapping[str, Origin]) -> dict[str, str]:
            return {k: str(v) for k, v in o.items()}

        def target(t: Target | None) -> dict[str, Any] | None:
            return None if t is None else {"url": t.url, "driver": t.driver, "host": t.host, "port": t.port,
                                           "database": t.database, "user": t.user,
                                           "session_settings": dict(t.session_settings)}

        return {
            "sources": [{"path": s.path, "format": s.format, "status": s.status, "reason": s.reason}
                        for s in self.sources],
            "pools": [{"name": p.name, "driver": p.driver, "target": target(p.target), "role": p.role,
                       "size": p.size, "max": p.max, "idle_timeout_ms": p.idle_timeout_ms,
                       "connection_timeout_ms": p.connection_timeout_ms, "instances": p.instances, "via": p.via,
                       "via_reason": p.via_reason,
                       "session_features": [{"kind": f.kind, "text": f.text, "origin": str(f.origin)}
                                            for f in p.session_features],
                       "origins": origins(p.origins)} for p in self.pools],
            "poolers": [{"name": b.name, "live": b.live, "pool_mode": b.pool_mode,
                         "max_client_conn": b.max_client_conn, "default_pool_size": b.default_pool_size,
                         "min_pool_size": b.min_pool_size, "reserve_pool_size": b.reserve_pool_size,
                         "reserve_pool_timeout_ms": b.reserve_pool_timeout_ms,
                         "server_idle_timeout_ms": b.server_idle_timeout_ms,
                         "client_idle_timeout_ms": b.client_idle_timeout_ms,
                         "max_prepared_statements": b.max_prepared_statements, "listen_addr": b.listen_addr,
                         "listen_port": b.listen_port, "databases": {k: dict(v) for k, v in b.databases.items()},
                         "users": {k: dict(v) for k, v in b.users.items()},
                         "pools": [{k: (v if isinstance(v, int | float | str | None) else str(v))
                                    for k, v in row.items()} for row in b.pools],
                         "origins": origins(b.origins)} for b in self.poolers],
            "replicas": [{"target": target(r.target), "weight": r.weight, "origin": str(r.origin)}
                         for r in self.replicas],
        }
