"""An application pool waits forever for a free connection, or never releases an idle one.

## What it does
Reports pools whose connection timeout is missing or unbounded. For every pool the config's `[[pool]]`
entries and the application's configuration (`--app-config`) describe, reports a connection (acquire)
timeout that is missing or `0`, and an idle timeout stated as `0`. In the drivers' own terms `0` means "no
limit": HikariCP `connectionTimeout=0` (HikariCP itself turns 0 into its maximum), node-postgres
`connectionTimeoutMillis: 0` (its default), Prisma `pool_timeout=0`, SQLAlchemy `pool_timeout`; the
guide's `DATABASE_CONNECTION_TIMEOUT` / `DATABASE_IDLE_TIMEOUT`. An idle timeout that is not stated is not
judged (the driver's default applies).
On a role with only `pg_monitor` it runs in full: `pg_settings` and `pg_roles` are readable by every role,
and `pg_read_all_stats` (in `pg_monitor`) shows every session of `pg_stat_activity`.

## Why it matters
When the pool is exhausted (a slow query, a lock queue, a restart), a request without an acquire
timeout waits with it instead of failing fast; the application's threads or event loop pile up behind
the database and the outage spreads. An idle timeout of 0 keeps every connection the pool ever opened,
so after a burst the server keeps backends (and their memory) that nobody uses.

## Example
```dotenv
DATABASE_POOL_MAX=50
DATABASE_CONNECTION_TIMEOUT=0
```

## What to do instead
Set the acquire timeout a little above the slowest request the application accepts (the guide uses
`DATABASE_CONNECTION_TIMEOUT=5000`, 5 s) and an idle timeout such as 30 s (`DATABASE_IDLE_TIMEOUT=30000`).

## How the fix is applied safely
No SQL fix is generated: the change belongs in the application's pool settings.

## Options
None.

## References
- https://github.com/brettwooldridge/HikariCP#frequently-used
- https://node-postgres.com/apis/pool
- https://www.prisma.io/docs/orm/prisma-client/setup-and-configuration/databases-connections/connection-pool
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-SESSION-TIMEOUT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding, Severity


@check(id="PO002", name="pool-timeout-unbounded", area="pool", severity="warning")
def pool_timeout_unbounded(ctx: CheckContext) -> Iterator[Finding]:
    plan = ctx.pool_plan()
    for p in plan.pools:
        sources = plan.sources.get(p.name, {})
        evidence = {"pool": p.name, "connection_timeout_ms": p.connection_timeout,
                    "idle_timeout_ms": p.idle_timeout, "sources": sources}
        if p.connection_timeout in (None, 0):
            stated = (f"is 0 ({sources['connection_timeout']}), which means no limit"
                      if "connection_timeout" in sources else "is not set")
            yield ctx.finding(f"pool {p.name}", f"pool {p.name!r}'s connection timeout {stated}: when the pool "
                                                f"is exhausted, requests wait forever", evidence=evidence)
        if p.idle_timeout == 0 and "idle_timeout" in sources:
            yield ctx.finding(f"pool {p.name}", f"pool {p.name!r}'s idle timeout is 0 "
                                                f"({sources['idle_timeout']}): idle connections are never "
                                                f"released", evidence=evidence, severity=Severity.INFO)
