"""Statements that read the most shared blocks from outside the buffer cache (pg_stat_statements).

## What it does
Reads `pg_stat_statements` for the audited database (top-level statements, summed over roles, dbtune's own
left out) and reports the statements with the most `shared_blks_read` (8 kB pages PostgreSQL had to get
from the kernel or the disk), at least `min_shared_blks_read` of them (default 131072, 1 GB), the most
first, at most `top`. With `track_io_timing` on, the time spent reading is in the evidence
(`shared_blk_read_time`, named `blk_read_time` before PostgreSQL 17). Needs the extension created in the
database (ST001 reports when it is not; this check is then skipped). A role with only `pg_monitor` reads
every role's statements; without `pg_read_all_stats` other roles' statements are left out. The tests
lower `min_shared_blks_read` to the few pages a fresh database reads.

## Why it matters
These statements are what keeps the cache cold and the disks busy: a missing index turns a lookup into a
scan of the whole table, read again on every call once the table outgrows `shared_buffers`.

## Example
`SELECT … FROM events WHERE account_id = $1` reading 40 GB in a day from a table with no index on
`account_id`.

## What to do instead
Plan them (`dbtune explain --from-pg-stat-statements`): an index (`dbtune advise`), a narrower query, or
more `shared_buffers` when the working set nearly fits.

## How the fix is applied safely
No fix is generated here: the fix is an index (from `dbtune advise`) or a change in the application.

## Options
- `min_shared_blks_read` (default 131072): the fewest 8 kB pages read from outside shared buffers.
- `top` (default 10, from 1 to 50): at most this many statements are reported.

## References
- https://www.postgresql.org/docs/current/pgstatstatements.html
- https://www.postgresql.org/docs/current/runtime-config-statistics.html#GUC-TRACK-IO-TIMING
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import heaviest, statement_object
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="QS002", name="query-high-shared-block-reads", area="workload", severity="warning",
       options={"min_shared_blks_read": 131072, "top": 10}, option_ranges={"top": (1, 50)})
def query_high_shared_block_reads(ctx: CheckContext) -> Iterator[Finding]:
    for s in heaviest(ctx, lambda s: s.shared_blks_read, ctx.options["min_shared_blks_read"]):
        hit_ratio = s.shared_blks_hit / (s.shared_blks_hit + s.shared_blks_read)
        yield ctx.finding(
            statement_object(s),
            f"read {s.shared_blks_read} shared blocks ({size_pretty(s.shared_blks_read * 8192)}) from outside "
            f"the buffer cache in {s.calls} calls, {hit_ratio:.0%} of its blocks found in the cache "
            f"(pg_stat_statements queryid {s.queryid})",
            evidence={"queryid": s.queryid, "calls": s.calls, "shared_blks_read": s.shared_blks_read,
                      "shared_blks_hit": s.shared_blks_hit,
                      "shared_blk_read_time_ms": round(s.shared_blk_read_time_ms, 3)})
