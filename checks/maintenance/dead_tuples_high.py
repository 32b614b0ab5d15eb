"""A large share of a table's tuples are dead: vacuum is not keeping up with it.

## What it does
For each user table and materialized view with at least `min_rows` tuples (`n_live_tup + n_dead_tup`),
reports it when `n_dead_tup / (n_live_tup + n_dead_tup)` reaches `max_ratio`, with the time of its last
(auto)vacuum. On a role with only `pg_monitor` the check runs in full (`pg_stat_all_tables` is readable
by every role).

## Why it matters
Dead tuples take the space of live ones until vacuum removes them: scans read them, indexes point at
them, and the heap grows instead of reusing space. With autovacuum's default scale factor of 0.2, a
table well past 20 % dead has been missed by autovacuum: it is disabled for the table, cancelled by lock
conflicts, throttled by its cost limit, or held back by an old transaction or replication slot (dead
tuples a running transaction may still see cannot be removed).

## Example
`public.jobs` has 40 000 live and 160 000 dead tuples (80 % dead), last autovacuumed two days ago.

## What to do instead
Run `VACUUM (VERBOSE)` on the table and read its output: "dead but not yet removable" points at the xmin
horizon (`pg_stat_activity.backend_xmin`, `pg_replication_slots`, `pg_prepared_xacts`); otherwise lower
the table's `autovacuum_vacuum_scale_factor` or raise its cost limit. Never `VACUUM FULL` on a live
system: it holds `ACCESS EXCLUSIVE` while it rewrites the table.

## How the fix is applied safely
No fix is generated: `VACUUM` cannot run inside a migration's transaction and is an operational task.

## Options
- `max_ratio` (default 0.2): the dead share from which a table is reported.
- `min_rows` (default 10000): smaller tables are left alone.

## References
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import maintained_tables
from dbtune.model import Finding


@check(id="MT009", name="dead-tuples-high", area="maintenance", severity="warning",
       options={"max_ratio": 0.2, "min_rows": 10000})
def dead_tuples_high(ctx: CheckContext) -> Iterator[Finding]:
    for rel, tm in maintained_tables(ctx):
        live, dead = tm.n_live_tup or 0, tm.n_dead_tup or 0
        if live + dead < ctx.options["min_rows"] or dead == 0:
            continue
        ratio = dead / (live + dead)
        if ratio >= ctx.options["max_ratio"]:
            last = tm.last_vacuumed
            yield ctx.finding(
                rel.qualified_name,
                f"{rel.qualified_name}: {dead:,} of {live + dead:,} tuples are dead ({ratio:.0%}); last vacuumed "
                + (last.isoformat(timespec="seconds") if last else f"never since {ctx.snapshot.stats_basis}"),
                evidence={"n_dead_tup": dead, "n_live_tup": live, "dead_ratio": round(ratio, 4),
                          "last_vacuumed": last.isoformat(timespec="seconds") if last else None})
