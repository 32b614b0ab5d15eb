"""A table's planner statistics are stale: far more rows changed since its last analyze than autovacuum allows.

## What it does
For each user table and materialized view analyzed at least once (`last_analyze` or `last_autoanalyze`)
with at least `min_rows` rows (`reltuples`), compares `n_mod_since_analyze` with autovacuum's own analyze
trigger, `autovacuum_analyze_threshold + autovacuum_analyze_scale_factor × reltuples` (the table's storage
parameters where set, else the server's settings), and reports the table when the changes exceed
`factor` times the trigger. Tables never analyzed are `table-never-vacuumed-or-analyzed`'s (MT005). On a
role with only `pg_monitor` the check runs in full.

## Why it matters
The planner's row estimates come from `pg_statistic` as of the last ANALYZE. After a bulk load, a purge
or steady growth past the trigger that autovacuum did not catch up with, estimates are off by the
changed share of the table: nested loops over millions of rows, or sequential scans where an index
would serve. Autovacuum should have analyzed the table at 1× the trigger; several times over means it is
disabled for the table, starved of workers, or the table changes faster than it is analyzed.

## Example
`public.orders` has `reltuples` 100 000 and `n_mod_since_analyze` 80 000: the trigger is
50 + 0.1 × 100 000 = 10 050, exceeded 8 times.

## What to do instead
Run `ANALYZE` on the table; for a table that grows steadily, lower its
`autovacuum_analyze_scale_factor` (for example to 0.02) so autovacuum analyzes it sooner; after a bulk
load, run `ANALYZE` in the load job.

## How the fix is applied safely
No fix is generated: `ANALYZE` reads a sample of the table under `SHARE UPDATE EXCLUSIVE` (writes go on)
and belongs to the job that changed the data, not to a schema migration.

## Options
- `factor` (default 2.0): how many times autovacuum's trigger the changes must exceed.
- `min_rows` (default 1000): smaller tables are left alone.

## References
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-STATISTICS
- https://www.postgresql.org/docs/current/runtime-config-autovacuum.html#GUC-AUTOVACUUM-ANALYZE-THRESHOLD
- https://www.postgresql.org/docs/current/sql-analyze.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import analyze_trigger, maintained_tables
from dbtune.model import Finding


@check(id="MT006", name="stale-statistics", area="maintenance", severity="warning",
       options={"factor": 2.0, "min_rows": 1000})
def stale_statistics(ctx: CheckContext) -> Iterator[Finding]:
    for rel, tm in maintained_tables(ctx):
        if tm.last_analyzed is None or rel.reltuples < ctx.options["min_rows"]:
            continue
        changed = tm.n_mod_since_analyze or 0
        trigger = analyze_trigger(ctx.snapshot, rel, tm)
        if changed > ctx.options["factor"] * trigger:
            yield ctx.finding(
                rel.qualified_name,
                f"{rel.qualified_name}: {changed:,} rows changed since its last analyze "
                f"({tm.last_analyzed.isoformat(timespec='seconds')}), {changed / trigger:.1f} times autovacuum's "
                f"analyze trigger of {trigger:,.0f} rows for its {rel.reltuples:,.0f} rows",
                evidence={"n_mod_since_analyze": changed, "analyze_trigger_rows": round(trigger),
                          "reltuples": rel.reltuples,
                          "last_analyzed": tm.last_analyzed.isoformat(timespec="seconds")})
