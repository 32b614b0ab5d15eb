"""An index whose blocks are often read from outside shared buffers.

## What it does
For each index of a user table, compares the index blocks found in shared buffers with those read from
the operating system (`pg_statio_all_indexes.idx_blks_hit` and `idx_blks_read`, since the statistics were
last reset). Only an index with at least `min_block_reads` block accesses (hits plus reads, default
10,000) is judged, so a rarely used index never reports. It is reported below `min_hit_ratio` (default
0.95), as an error below `error_hit_ratio` (default 0.9); the bands are pgMustard's and PgHero's. A role
with only `pg_monitor` reads these counters.

## Why it matters
An index is worth its upkeep when its pages are in memory: an index read from disk at every lookup makes
index scans slow and random. A low ratio means the index (or the working set it belongs to) does not fit
`shared_buffers`, or the index is bloated or scanned in full.

## Example
`public.events_payload_idx`: 96,000 of 140,000 block accesses (69 %) were hits.

## What to do instead
Look at which queries scan the index and how much of it (`pg_stat_statements`, EXPLAIN (BUFFERS)); shrink
it (a partial index, a narrower key, `REINDEX CONCURRENTLY` if bloated) or give `shared_buffers` more of
the machine's memory. A read counted here may still come from the OS page cache.

## How the fix is applied safely
No fix is generated: the cause decides the fix.

## Options
- `min_block_reads` (default 10000): block accesses (hits plus reads) below which an index is not judged.
- `min_hit_ratio` (default 0.95): the hit ratio below which an index is reported.
- `error_hit_ratio` (default 0.9): the ratio below which it is an error.

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STATIO-ALL-INDEXES-VIEW
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-SHARED-BUFFERS
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import indexed_tables, state_needed
from dbtune.model import Finding, Severity


@check(id="IX014", name="index-cache-hit-ratio-low", area="indexes", severity="warning",
       options={"min_block_reads": 10000, "min_hit_ratio": 0.95, "error_hit_ratio": 0.9},
       option_ranges={"min_block_reads": (1, None), "min_hit_ratio": (0.0, 1.0), "error_hit_ratio": (0.0, 1.0)})
def index_cache_hit_ratio_low(ctx: CheckContext) -> Iterator[Finding]:
    if not state_needed(ctx, "io"):
        return
    io = ctx.snapshot.index_health.io
    for rel, ix in indexed_tables(ctx, methods=None):
        blocks = io.get(ix.oid)
        total = blocks.blks_hit + blocks.blks_read if blocks else 0
        if blocks is None or total < ctx.options["min_block_reads"]:
            continue
        ratio = blocks.blks_hit / total
        if ratio >= ctx.options["min_hit_ratio"]:
            continue
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {rel.qualified_name}: {blocks.blks_hit:,} of {total:,} block "
            f"accesses ({ratio:.1%}) were shared-buffer hits; {blocks.blks_read:,} blocks were read from "
            f"outside shared_buffers",
            evidence={"idx_blks_hit": blocks.blks_hit, "idx_blks_read": blocks.blks_read,
                      "hit_ratio": round(ratio, 4)},
            severity=Severity.ERROR if ratio < ctx.options["error_hit_ratio"] else None)
