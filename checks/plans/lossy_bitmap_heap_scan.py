"""A bitmap heap scan whose bitmap became lossy, so whole pages had to be rechecked.

## What it does
Finds `Bitmap Heap Scan` nodes with at least `min_lossy_blocks` lossy heap blocks (`Heap Blocks: exact=…
lossy=N`), with the rows their recheck removed as evidence.

Needs EXPLAIN ANALYZE: `dbtune explain --analyze`. The audit plans queries without running them, so this
check is recorded as skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
A bitmap index scan collects the matching tuple ids in a bitmap of at most `work_mem`. When the bitmap
outgrows it, PostgreSQL keeps only the page numbers of some pages ("lossy"), and the heap scan must read
every tuple of those pages and recheck the condition on each (`Rows Removed by Index Recheck`): more
CPU, and for wide pages far more tuples examined than matched.

## Example
```
Bitmap Heap Scan on public.events  (actual rows=120000 loops=1)
  Recheck Cond: (events.kind = 3)
  Rows Removed by Index Recheck: 880000
  Heap Blocks: exact=1203 lossy=9120
```

## What to do instead
Give the query enough `work_mem` for an exact bitmap (`SET LOCAL work_mem` in its transaction, or on its
role); the bitmap needs roughly a few bytes per matching tuple. Or make the condition more selective, or
use an index whose order lets a plain index scan return the rows (a multicolumn or covering index), so no
large bitmap is built.

## How the fix is applied safely
No fix is generated: `work_mem` is a per-operation budget whose safe value depends on concurrency.
`SET LOCAL` affects one transaction only.

## Options
- `min_lossy_blocks` (default 1): the fewest lossy heap blocks that are reported.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM
- https://www.postgresql.org/docs/current/using-explain.html#USING-EXPLAIN-ANALYZE
- https://www.postgresql.org/docs/current/indexes-bitmap-scans.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import NEEDS_ANALYZE, PlanContext


@check(id="PL007", name="lossy-bitmap-heap-scan", area="plans", severity="warning", options={"min_lossy_blocks": 1})
def lossy_bitmap_heap_scan(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    work_mem = ctx.settings.get("work_mem")
    for node in ctx.nodes():
        lossy = node.lossy_heap_blocks or 0
        if node.node_type != "Bitmap Heap Scan" or lossy < ctx.options["min_lossy_blocks"]:
            continue
        exact = node.exact_heap_blocks or 0
        rechecked = (node.rows_removed_by_index_recheck or 0.0) * node.loops
        yield ctx.finding(
            node, f"{node.label}: the bitmap outgrew work_mem ({work_mem}) and became lossy for {lossy:,} of "
                  f"{lossy + exact:,} heap blocks, whose every tuple was rechecked ({rechecked:,.0f} rows removed "
                  "by the recheck); give the query more work_mem or a more selective index",
            evidence={"lossy_heap_blocks": lossy, "exact_heap_blocks": exact,
                      "lossy_fraction": round(lossy / (lossy + exact), 4),
                      "rows_removed_by_index_recheck": round(rechecked), "recheck_cond": node.recheck_cond,
                      "work_mem": work_mem, "relation": node.relation})
