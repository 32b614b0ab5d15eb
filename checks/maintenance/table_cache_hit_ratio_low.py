"""A table's heap blocks are mostly read from outside shared buffers.

## What it does
For each user table and materialized view with at least `min_blocks_read` heap blocks read from outside
shared buffers since the statistics were reset (`pg_statio_all_tables.heap_blks_read`), reports it when
`heap_blks_hit / (heap_blks_hit + heap_blks_read)` is below `min_ratio`. On a role with only
`pg_monitor` the check runs in full (`pg_statio_all_tables` is readable by every role).

## Why it matters
A block not found in shared buffers is read from the operating system's cache or from disk; on a
table that the workload keeps reading, a low hit ratio means its working set does not fit in
`shared_buffers`, or that queries scan the whole table (sequential scans, bloat) where an index would
read a few pages. Tables read once (a nightly export) have low ratios without harm, hence the minimum
of blocks read.

## Example
`public.events`: 2.1 million blocks read and 3.4 million hit since the reset (62 %).

## What to do instead
Look at the queries on the table (`pg_stat_statements` with `shared_blks_read`): add the index that
serves them, remove the bloat, or size `shared_buffers` (and the machine's memory) to the working set.

## How the fix is applied safely
No fix is generated: the remedy depends on the queries.

## Options
- `min_ratio` (default 0.95): the hit ratio below which a table is reported.
- `min_blocks_read` (default 10000): heap blocks (8 kB pages) read, below which a table is left alone.

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STATIO-ALL-TABLES-VIEW
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-SHARED-BUFFERS
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import maintained_tables
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="MT010", name="table-cache-hit-ratio-low", area="maintenance", severity="warning",
       options={"min_ratio": 0.95, "min_blocks_read": 10000})
def table_cache_hit_ratio_low(ctx: CheckContext) -> Iterator[Finding]:
    block_size = int(ctx.snapshot.setting("block_size") or 8192)
    for rel, tm in maintained_tables(ctx):
        read, hit = tm.heap_blks_read or 0, tm.heap_blks_hit or 0
        if read < ctx.options["min_blocks_read"]:
            continue
        ratio = hit / (hit + read)
        if ratio < ctx.options["min_ratio"]:
            yield ctx.finding(
                rel.qualified_name,
                f"{rel.qualified_name}: {ratio:.1%} of its heap block reads were found in shared buffers "
                f"({read:,} blocks, {size_pretty(read * block_size)}, read from outside; {hit:,} hit) since "
                f"{ctx.snapshot.stats_basis}",
                evidence={"heap_blks_read": read, "heap_blks_hit": hit, "hit_ratio": round(ratio, 4)})
