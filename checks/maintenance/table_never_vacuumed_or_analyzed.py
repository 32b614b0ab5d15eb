"""A table with enough rows and changes has never been vacuumed, or never analyzed, in the statistics window.

## What it does
For each user table and materialized view with at least `min_rows` rows (`n_live_tup`), reports it when
neither `last_vacuum` nor `last_autovacuum` is set although `n_dead_tup + n_ins_since_vacuum` reached
`min_changes`, or when neither `last_analyze` nor `last_autoanalyze` is set although
`n_mod_since_analyze` reached `min_changes`. These times are lost at a statistics reset and after a
crash, so the check judges only when the statistics cover at least `min_stats_age_hours` (from
`pg_stat_database.stats_reset`, or the server's start) and records a skip otherwise. On a role with
only `pg_monitor` it runs in full (`pg_stat_all_tables` is readable by every role).

## Why it matters
A table autovacuum never reached is one it cannot reach: autovacuum is off for it or for the server, its
workers are all busy on bigger tables, or its thresholds were raised. Without ANALYZE the planner has no
column statistics and falls back to default selectivities, which gives bad join orders; without
VACUUM, dead tuples are never reclaimed, the visibility map is never set (no index-only scans) and
freezing waits for an emergency anti-wraparound vacuum.

## Example
`public.audit_log` holds 2 million rows, received 2 million inserts since the statistics were reset a
week ago, and has no `last_autovacuum` and no `last_autoanalyze`.

## What to do instead
Run `VACUUM (ANALYZE, VERBOSE)` on the table now, then find why autovacuum skipped it
(`autovacuum_enabled` storage parameter, `autovacuum = off`, too few `autovacuum_max_workers`).

## How the fix is applied safely
No fix is generated: `VACUUM` cannot run inside a migration's transaction, and on a large table it
should be run and watched by a person (`pg_stat_progress_vacuum`).

## Options
- `min_rows` (default 10000): smaller tables are left alone.
- `min_changes` (default 10000): rows inserted, updated or deleted since the last (auto)vacuum or analyze.
- `min_stats_age_hours` (default 24): the statistics window needed to judge.

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW
- https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import maintained_tables, young_statistics
from dbtune.model import Finding


@check(id="MT005", name="table-never-vacuumed-or-analyzed", area="maintenance", severity="warning",
       options={"min_rows": 10000, "min_changes": 10000, "min_stats_age_hours": 24.0})
def table_never_vacuumed_or_analyzed(ctx: CheckContext) -> Iterator[Finding]:
    if young_statistics(ctx):
        return
    since = ctx.snapshot.stats_since.isoformat(timespec="seconds")
    for rel, tm in maintained_tables(ctx):
        if tm.n_live_tup is None or tm.n_live_tup < ctx.options["min_rows"]:
            continue
        never = []
        vacuum_changes = (tm.n_dead_tup or 0) + (tm.n_ins_since_vacuum or 0)
        if tm.last_vacuumed is None and vacuum_changes >= ctx.options["min_changes"]:
            never.append("vacuumed")
        if tm.last_analyzed is None and (tm.n_mod_since_analyze or 0) >= ctx.options["min_changes"]:
            never.append("analyzed")
        if never:
            yield ctx.finding(
                rel.qualified_name,
                f"{rel.qualified_name} ({tm.n_live_tup:,} rows) was never {' or '.join(never)} since {since} "
                f"({ctx.snapshot.stats_basis}): {vacuum_changes:,} rows inserted or dead since its last vacuum, "
                f"{tm.n_mod_since_analyze or 0:,} changed since its last analyze",
                evidence={"never": never, "n_live_tup": tm.n_live_tup, "n_dead_tup": tm.n_dead_tup,
                          "n_ins_since_vacuum": tm.n_ins_since_vacuum,
                          "n_mod_since_analyze": tm.n_mod_since_analyze, "stats_since": since})
