"""Queries of this database write many temporary files (sorts and hashes spilling past `work_mem`).

## What it does
Reads `pg_stat_database.temp_files` and `temp_bytes` of the current database, divides them by the days
the statistics cover (since `stats_reset`, or the server's start), and reports when the bytes per day
reach `max_bytes_per_day`. With statistics younger than `min_stats_age_hours` it records a skip instead
(a short window makes a poor daily rate). On a role with only `pg_monitor` the check runs in full.

## Why it matters
A sort, hash or materialization that does not fit in `work_mem` (times `hash_mem_multiplier` for hashes)
writes its data to temporary files and reads it back: the query is slower by the I/O, and a burst of
them can fill the disk holding `base/pgsql_tmp`. Steady gigabytes a day point to a few queries whose
`work_mem` is too small, or to queries that sort more rows than they need.

## Example
120 GB of temporary files in 3 days: 40 GB a day.

## What to do instead
Set `log_temp_files = 0` (or a size) to log the statements that spill, find them in
`pg_stat_statements` (`temp_blks_written`), and raise `work_mem` for the role or the query that needs it
(`SET LOCAL work_mem`), or give them an index that returns rows in order.

## How the fix is applied safely
No fix is generated: `work_mem` is per sort or hash node, per backend, so a server-wide increase
multiplies; it belongs on the queries found.

## Options
- `max_bytes_per_day` (default 10737418240, 10 GB): the daily volume from which it is reported.
- `min_stats_age_hours` (default 1): the statistics window needed to judge.

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM
- https://www.postgresql.org/docs/current/runtime-config-logging.html#GUC-LOG-TEMP-FILES
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import stats_window_hours, young_statistics
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident
from dbtune.units import size_pretty


@check(id="MT013", name="temp-files-heavy", area="maintenance", severity="warning",
       options={"max_bytes_per_day": 10 * 1024**3, "min_stats_age_hours": 1.0})
def temp_files_heavy(ctx: CheckContext) -> Iterator[Finding]:
    database = ctx.snapshot.maintenance.database
    if database is None or database.temp_bytes is None:
        ctx.skip("pg_stat_database has no row for this database", "pg_monitor")
        return
    if young_statistics(ctx):
        return
    days = max(stats_window_hours(ctx.snapshot) / 24, 1 / 24 / 3600)
    per_day = database.temp_bytes / days
    if database.temp_bytes > 0 and per_day >= ctx.options["max_bytes_per_day"]:
        name = quote_ident(ctx.snapshot.server.database)
        yield ctx.finding(
            name,
            f"database {name} wrote {database.temp_files:,} temporary files, {size_pretty(database.temp_bytes)}, "
            f"in {days:.2f} days since {ctx.snapshot.stats_basis}: {size_pretty(round(per_day))} a day; "
            f"log_temp_files is {ctx.snapshot.setting('log_temp_files')}",
            evidence={"temp_files": database.temp_files, "temp_bytes": database.temp_bytes,
                      "window_days": round(days, 3), "temp_bytes_per_day": round(per_day)})
