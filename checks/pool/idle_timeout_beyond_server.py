"""A pool keeps idle connections longer than the server (or PgBouncer) lets them live.

## What it does
Reports idle timeouts longer than the next hop's. Compares the idle timeouts on the way from the
application to the server. A pool's idle timeout (or a PgBouncer's `server_idle_timeout`) that is
unbounded or longer than the server's `idle_session_timeout` (when that is set, PostgreSQL 14+, for the
pool's role as `ALTER ROLE … SET` would make it): the server closes the connection first. Behind
PgBouncer, a pool whose idle timeout is unbounded or longer than PgBouncer's `client_idle_timeout`:
PgBouncer closes the client connection first. Where only one side is stated, PgBouncer's defaults apply
(`server_idle_timeout` 600 s, `client_idle_timeout` 0: never).
On a role with only `pg_monitor` it runs in full: `pg_settings` and `pg_roles` are readable by every role,
and `pg_read_all_stats` (in `pg_monitor`) shows every session of `pg_stat_activity`.

## Why it matters
The side that closes first leaves the other holding a dead connection: the next query on it fails with
`terminating connection due to idle-session timeout` or `server closed the connection unexpectedly`,
and a pool that does not test connections on borrow hands that error to a request.

## Example
`idle_session_timeout = '10s'` on the server, `DATABASE_IDLE_TIMEOUT=30000` in the application.

## What to do instead
Keep each pool's idle timeout below the timeout of the hop after it: the application's below
PgBouncer's `client_idle_timeout` and the server's `idle_session_timeout`, PgBouncer's
`server_idle_timeout` below `idle_session_timeout`; or leave `idle_session_timeout` at 0 for roles that
connect through pools and use it for interactive roles only.

## How the fix is applied safely
No SQL fix is generated: which side to change is the team's choice.

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-SESSION-TIMEOUT
- https://www.pgbouncer.org/config.html#server_idle_timeout
- https://www.pgbouncer.org/config.html#client_idle_timeout
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.pooling import pooler_value
from dbtune.config.model import parse_duration_ms
from dbtune.model import Finding

SERVER_IDLE_TIMEOUT_DEFAULT_MS = 600_000  # PgBouncer's server_idle_timeout default, 600 s


def _longer(value_ms: int | None, limit_ms: int) -> bool:
    """Whether a timeout (0 or ``None``: never) outlasts ``limit_ms`` (> 0)."""
    return not value_ms or value_ms > limit_ms


@check(id="PO003", name="idle-timeout-beyond-server", area="pool", severity="warning", min_version_num=130000)
def idle_timeout_beyond_server(ctx: CheckContext) -> Iterator[Finding]:
    plan = ctx.pool_plan()
    snap = ctx.snapshot
    bouncer = plan.pgbouncer
    client_idle = pooler_value(ctx, "client_idle_timeout_ms")
    server_idle = pooler_value(ctx, "server_idle_timeout_ms")
    for p in plan.pools:
        sources = plan.sources.get(p.name, {})
        if "idle_timeout" not in sources:
            continue
        pool_idle = p.idle_timeout
        if p.via == "pgbouncer" and bouncer is not None:
            if client_idle.value and _longer(pool_idle, client_idle.value):
                yield ctx.finding(f"pool {p.name}", f"pool {p.name!r} keeps idle connections "
                                  f"{_ms(pool_idle)} but PgBouncer's client_idle_timeout closes them after "
                                  f"{_ms(client_idle.value)}",
                                  evidence={"pool_idle_timeout_ms": pool_idle, "client_idle_timeout_ms":
                                            client_idle.value, "sources": {**sources, "client_idle_timeout":
                                                                           client_idle.source}})
            continue
        limit, where = _idle_session_timeout(ctx, p.role)
        if limit and _longer(pool_idle, limit):
            yield ctx.finding(f"pool {p.name}", f"pool {p.name!r} keeps idle connections {_ms(pool_idle)} but "
                              f"the server's idle_session_timeout ({where}) ends them after {_ms(limit)}",
                              evidence={"pool_idle_timeout_ms": pool_idle, "idle_session_timeout_ms": limit,
                                        "idle_session_timeout_source": where, "sources": sources})
    if bouncer is not None:
        limit, where = _idle_session_timeout(ctx, None)
        value = server_idle.value if server_idle.value is not None else SERVER_IDLE_TIMEOUT_DEFAULT_MS
        if limit and _longer(value, limit):
            shown = server_idle.source or "PgBouncer's default"
            yield ctx.finding(snap.server.database, f"PgBouncer keeps idle server connections {_ms(value)} "
                              f"(server_idle_timeout, {shown}) but the server's idle_session_timeout ({where}) "
                              f"ends them after {_ms(limit)}",
                              evidence={"server_idle_timeout_ms": value, "idle_session_timeout_ms": limit,
                                        "server_idle_timeout_source": shown,
                                        "idle_session_timeout_source": where})


def _idle_session_timeout(ctx: CheckContext, role: str | None) -> tuple[int, str]:
    value, where = ctx.snapshot.effective("idle_session_timeout", role)
    if value is None:
        return 0, where
    try:
        return parse_duration_ms(value.strip().strip("'")), where
    except ValueError:
        return 0, where


def _ms(value: int | None) -> str:
    if not value:
        return "forever"
    return f"{value / 1000:g} s" if value % 1000 == 0 or value >= 10_000 else f"{value} ms"
