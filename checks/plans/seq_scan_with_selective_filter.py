"""A sequential scan that reads a large table to keep a small share of its rows.

## What it does
Finds `Seq Scan` nodes with a `Filter` that keeps at most `max_kept_fraction` of the rows they read, on a
table of at least `min_table_rows` rows.

With EXPLAIN ANALYZE the numbers are the actual ones: rows read = rows returned + `Rows Removed by
Filter`, per scan (loop). Without ANALYZE (the audit, `dbtune explain` without `--analyze`) they are the
planner's: the table's `reltuples` against the node's estimated rows (`Plan Rows`, scaled by the parallel
divisor for a `Parallel Seq Scan`), so a generic plan is judged by the planner's average selectivity.

A `Filter` on other nodes, and join filters, are judged by `rows-removed-by-filter`.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
A sequential scan reads every page of the table, however few rows the query wants: its cost grows with
the table, not with the result. When the filter keeps a handful of rows out of many, an index on the
filtered columns reads only those, and the query stays fast as the table grows. Sequential scans of large
tables also push useful pages out of shared buffers.

## Example
```
Seq Scan on public.orders  (rows=1000) (actual rows=980 loops=1)
  Filter: (orders.status = 'pending'::text)
  Rows Removed by Filter: 499020
```

## What to do instead
Index the columns of the filter (equality columns first, then a range column), e.g.
`CREATE INDEX CONCURRENTLY ON orders (status)`. If the
filter applies a function or cast to the column, index the expression, or rewrite the condition so the
bare column is compared. When the table is small or the query really wants most rows, a sequential scan
is the right plan and this check does not fire.

## How the fix is applied safely
No fix is generated from a plan alone: which index serves the workload best depends on every query on
the table. Declare it as an `[[expect.index]]` and `dbtune migrate generate` builds it concurrently.

## Options
- `min_table_rows` (default 10000): rows read per scan (or the table's `reltuples` without ANALYZE) below
  which the scan is not reported.
- `max_kept_fraction` (default 0.05): the largest share of the rows read that the filter keeps, for the
  scan to be reported.

## References
- https://www.postgresql.org/docs/current/using-explain.html
- https://www.postgresql.org/docs/current/indexes-intro.html
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import PlanContext, PlanNode


def _parallel_divisor(above: tuple[PlanNode, ...]) -> float:
    """How many processes share a parallel scan's rows (the planner's divisor, leader included)."""
    gather = next((n for n in reversed(above) if n.workers_planned is not None), None)
    workers = gather.workers_planned if gather and gather.workers_planned else 0
    return workers + max(0.0, 1.0 - 0.3 * workers) if workers else 1.0


@check(id="PL001", name="seq-scan-with-selective-filter", area="plans", severity="warning",
       options={"min_table_rows": 10000, "max_kept_fraction": 0.05})
def seq_scan_with_selective_filter(ctx: PlanContext) -> Iterator[Finding]:
    for node, above in ctx.plan.nodes_with_ancestors():
        if node.node_type != "Seq Scan" or not node.filter:
            continue
        if ctx.analyzed:
            if not node.analyzed or node.never_executed:
                continue
            kept = node.total_actual_rows or 0.0
            removed = (node.rows_removed_by_filter or 0.0) * node.loops
            read = kept + removed
            per_scan = read if node.parallel_aware else read / node.loops
        else:
            table = ctx.reltuples(node)
            if table is None:
                continue
            kept = min(table, node.plan_rows * (_parallel_divisor(above) if node.parallel_aware else 1.0))
            removed = table - kept
            read = per_scan = table
        if per_scan < ctx.options["min_table_rows"] or read <= 0:
            continue
        fraction = kept / read
        if fraction > ctx.options["max_kept_fraction"]:
            continue
        scans = node.loops if ctx.analyzed and not node.parallel_aware else 1
        if ctx.analyzed:
            what = (f"read {read:,.0f} rows and kept {kept:,.0f} ({fraction:.2%})" if scans == 1 else
                    f"ran {scans:,.0f} times, reading {per_scan:,.0f} rows each time and keeping {fraction:.2%}")
        else:
            what = f"is planned to read all ~{read:,.0f} rows and keep an estimated {kept:,.0f} ({fraction:.2%})"
        yield ctx.finding(
            node, f"{node.label} {what} with Filter: {node.filter}; an index on the filtered columns would read "
                  "only the rows wanted",
            evidence={"relation": node.relation, "filter": node.filter, "rows_read_per_scan": round(per_scan),
                      "rows_kept": round(kept), "rows_removed": round(removed), "kept_fraction": round(fraction, 5),
                      "loops": scans, "estimated": not ctx.analyzed})
