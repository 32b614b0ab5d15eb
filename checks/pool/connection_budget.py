"""The application's connection pools can open more connections than the server allows.

## What it does
Adds up the connections the application's pools can open (the config's `[[pool]]` entries and the pools
read from the application's own configuration, `--app-config` / `app_config`: `.env`, docker-compose,
`pgbouncer.ini`, HikariCP properties, a live PgBouncer) (`max` × `instances`), directly or
through PgBouncer (`default_pool_size` + `reserve_pool_size` per pool, times its instances), and compares
the total with `max_connections` minus `superuser_reserved_connections` (and `reserved_connections` on
PostgreSQL 16+). Over the budget is an error; above `max_share` of it a warning. It also reports
application traffic through PgBouncer beyond its `max_client_conn`, and login roles whose
`rolconnlimit` is below what their pools open. A pool without a connection timeout is
`pool-timeout-unbounded`'s (PO002).
On a role with only `pg_monitor` it runs in full: `pg_settings` and `pg_roles` are readable by every role,
and `pg_read_all_stats` (in `pg_monitor`) shows every session of `pg_stat_activity`.

## Why it matters
When the pools together can ask for more connections than the server has slots, the instance that asks
last gets `FATAL: sorry, too many clients already` at peak load, which is exactly when it matters; and
each PostgreSQL backend costs memory, so more is not faster.

## Example
```toml
[[pool]]
name = "api"
size = 30
max = 50
instances = 5          # 250 connections against max_connections = 100
```

## What to do instead
Lower the per-instance `max`, put PgBouncer in transaction mode in front of the server, or raise
`max_connections` with the memory to match. A common sizing is (cores × 2) + spindles connections in
total.

## How the fix is applied safely
No SQL fix is generated: the change belongs in the application's pool settings or PgBouncer's config.

## Options
- `max_share` (default 0.8): the share of the budget above which the finding is a warning.

## References
- https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-MAX-CONNECTIONS
- https://www.pgbouncer.org/config.html
- https://github.com/brettwooldridge/HikariCP/wiki/About-Pool-Sizing
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding, Severity
from dbtune.sqlnames import quote_ident


@check(id="PO001", name="connection-budget", area="pool", severity="error", options={"max_share": 0.8})
def connection_budget(ctx: CheckContext) -> Iterator[Finding]:
    plan = ctx.pool_plan()
    pools = plan.pools
    for name in plan.unsized:
        ctx.skip(f"pool {name!r} from the application's config states no maximum size; it is not counted")
    if not pools:
        ctx.skip("no [[pool]] entries in the config and no sized pools in the application's config")
        return
    snap = ctx.snapshot
    db = quote_ident(snap.server.database)
    through_bouncer = {p.name: p.max * p.instances for p in pools if p.via == "pgbouncer"}
    if through_bouncer and plan.pgbouncer is None:
        ctx.skip("pools go through PgBouncer but neither the config's [pgbouncer] section nor the "
                 "application's config describes it")
    budget = plan.budget_on(snap)
    demand, available = budget.demand, budget.available
    max_connections, reserved = budget.max_connections, budget.reserved
    sources = {name: plan.sources[name] for name in (*budget.by_owner, *through_bouncer) if name in plan.sources}
    evidence = {"max_connections": max_connections, "reserved_connections": reserved, "budget": available,
                "demand": demand, "by_pool": budget.by_owner, "sources": sources}
    if demand > available:
        yield ctx.finding(db, f"the pools can open {demand} connections but the server accepts {available} "
                              f"(max_connections {max_connections} − {reserved} reserved)", evidence=evidence)
    elif demand > ctx.options["max_share"] * available:
        yield ctx.finding(db, f"the pools can open {demand} of the server's {available} connections "
                              f"({demand / available:.0%}), leaving little for maintenance and failover",
                          evidence=evidence, severity=Severity.WARNING)
    if budget.client_connections is not None and budget.max_client_conn is not None \
            and budget.client_connections > budget.max_client_conn:
        yield ctx.finding(db, f"the pools open {budget.client_connections} client connections to PgBouncer but "
                              f"it accepts {budget.max_client_conn} (max_client_conn × instances)",
                          evidence={"client_connections": budget.client_connections,
                                    "max_client_conn": budget.max_client_conn, "sources": sources})
    limits = {r.name: r for r in snap.roles}
    per_role: dict[str, int] = {}
    for p in pools:
        if p.role and p.via == "direct":
            per_role[p.role] = per_role.get(p.role, 0) + p.max * p.instances
    for role, wanted in per_role.items():
        limit = limits[role].conn_limit if role in limits else -1
        if 0 <= limit < wanted:
            yield ctx.finding(quote_ident(role), f"role {role!r} may open {limit} connections but its pools "
                                                 f"open {wanted}", evidence={"rolconnlimit": limit})
