"""A plan node that throws away most of the rows it fetched, by a filter, a join filter or an index recheck.

## What it does
Adds up, for each node, the rows removed by its `Filter`, its `Join Filter` and its index recheck
(`Rows Removed by Filter`, `Rows Removed by Join Filter`, `Rows Removed by Index Recheck`, over all
loops), and reports the node when they are at least `min_rows_removed` and at least
`min_removed_fraction` of all the rows it looked at (removed + returned).

A `Seq Scan`'s `Filter` is left to `seq-scan-with-selective-filter`, and the recheck of a lossy bitmap
heap scan to `lossy-bitmap-heap-scan`, so one problem gives one finding.

Needs EXPLAIN ANALYZE: `dbtune explain --analyze`. The audit plans queries without running them, so this
check is recorded as skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
Every discarded row was fetched first: read from the heap, made visible, evaluated. An index scan that
filters away 99 % of what its index condition found reads a hundred heap tuples per row returned; a join
filter that rejects most pairs means the join compared every pair first. The work grows with the rows
fetched, not with the result.

## Example
```
Index Scan using orders_created_at_idx on public.orders  (actual rows=12 loops=1)
  Index Cond: (orders.created_at > (now() - '30 days'::interval))
  Filter: (orders.retailer_id = 42)
  Rows Removed by Filter: 48210
```

## What to do instead
Make the index serve the filter: put the filtered column in the index, equality columns first
(`CREATE INDEX CONCURRENTLY ON orders (retailer_id, created_at)`), or a partial index for a constant
condition. For a join filter, turn the condition into a join condition the join method can use (an
equality between the two sides), or index it.

## How the fix is applied safely
No fix is generated from a plan alone: the right index depends on all the queries on the table. Declare
the index as an `[[expect.index]]` and `dbtune migrate generate` builds it with `CREATE INDEX CONCURRENTLY`.

## Options
- `min_removed_fraction` (default 0.9): the smallest share of fetched rows removed that is reported.
- `min_rows_removed` (default 1000): the fewest rows removed (over all loops) that is reported.

## References
- https://www.postgresql.org/docs/current/using-explain.html#USING-EXPLAIN-ANALYZE
- https://www.postgresql.org/docs/current/indexes-multicolumn.html
- https://www.postgresql.org/docs/current/indexes-partial.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import NEEDS_ANALYZE, PlanContext


@check(id="PL005", name="rows-removed-by-filter", area="plans", severity="warning",
       options={"min_removed_fraction": 0.9, "min_rows_removed": 1000})
def rows_removed_by_filter(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    for node in ctx.nodes():
        if not node.analyzed or node.never_executed:
            continue
        parts: list[tuple[str, str | None, float]] = []
        if node.node_type != "Seq Scan":
            parts.append(("Filter", node.filter, node.rows_removed_by_filter or 0.0))
        parts.append(("Join Filter", node.join_filter, node.rows_removed_by_join_filter or 0.0))
        if not node.lossy_heap_blocks:
            parts.append(("Index Recheck", node.recheck_cond or node.index_cond,
                          node.rows_removed_by_index_recheck or 0.0))
        parts = [(kind, cond, removed * node.loops) for kind, cond, removed in parts if removed > 0]
        removed = sum(r for _, _, r in parts)
        if removed < ctx.options["min_rows_removed"]:
            continue
        kept = node.total_actual_rows or 0.0
        fraction = removed / (removed + kept)
        if fraction < ctx.options["min_removed_fraction"]:
            continue
        kind, cond, _ = max(parts, key=lambda p: p[2])
        by = " and ".join(f"{k} ({r:,.0f})" for k, _, r in parts) if len(parts) > 1 else kind
        yield ctx.finding(
            node, f"{node.label} removed {removed:,.0f} of the {removed + kept:,.0f} rows it fetched "
                  f"({fraction:.1%}) by {by}: {cond}; an index that serves this condition would fetch only "
                  "the rows kept",
            evidence={"rows_removed": round(removed), "rows_kept": round(kept), "removed_fraction": round(fraction, 4),
                      "removed_by": {k: round(r) for k, _, r in parts}, "condition": cond,
                      "relation": node.relation, "loops": node.loops})
