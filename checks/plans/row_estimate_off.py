"""The planner's row estimate of a plan node is off by a large factor.

## What it does
Compares each node's estimated rows (`Plan Rows`) with the rows it actually returned per loop (`Actual
Rows`), and reports the nodes where the two differ by `min_factor` or more in either direction and the
larger of the two, over all loops, is at least `min_rows`. Only the node where a misestimate starts is
reported: a node whose child is already off by that factor inherits the error and is passed over.

Nodes that may legitimately stop early are not judged: anything below a `Limit`, below a `Merge Join`,
on the inner side of a semi- or anti-join, or in a subplan. Nodes that never ran are not judged either.

Needs EXPLAIN ANALYZE: `dbtune explain --analyze`. The audit plans queries without running them, so this
check is recorded as skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
The planner chooses join methods, join order, memory use and parallelism from its row estimates. An
estimate off by 10x or more is the most common cause of a bad plan: a nested loop run a million times
because one row was expected, a hash table that spills because a hundred rows were expected, an index
scan where a sequential scan would have been cheaper.

## Example
Two correlated columns (`city` determines `zip`) estimated as if independent:
```
Seq Scan on public.addresses  (rows=1) (actual rows=1000 loops=1)
  Filter: ((city = 'Lyon') AND (zip = '69001'))
```

## What to do instead
Refresh the statistics (`ANALYZE public.addresses`); if autovacuum's analyze falls behind, lower the
table's `autovacuum_analyze_scale_factor`. For skewed columns raise the column's statistics target
(`ALTER TABLE … ALTER COLUMN … SET STATISTICS 1000`). For correlated columns create extended statistics:
`CREATE STATISTICS addresses_city_zip (dependencies, mcv) ON city, zip FROM addresses`, then `ANALYZE`.
For a misestimated join or function, rewrite the condition or mark the function's `ROWS`.

## How the fix is applied safely
No fix is generated: which statistics fix the estimate depends on the condition. `ANALYZE` and `CREATE
STATISTICS` take a `SHARE UPDATE EXCLUSIVE` lock, so reads and writes go on while they run.

## Options
- `min_factor` (default 10.0): the smallest ratio between estimated and actual rows (either way round)
  that is reported.
- `min_rows` (default 100): the larger of estimated and actual rows (over all loops) must be at least
  this, so that 1 row expected and 9 found is not reported.

## References
- https://www.postgresql.org/docs/current/using-explain.html#USING-EXPLAIN-ANALYZE
- https://www.postgresql.org/docs/current/planner-stats.html
- https://www.postgresql.org/docs/current/sql-createstatistics.html
- https://www.postgresql.org/docs/current/row-estimation-examples.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import NEEDS_ANALYZE, PlanContext, PlanNode

_STOPPING_JOINS = {"Semi", "Anti", "Right Semi", "Right Anti"}


def _factor(node: PlanNode) -> float:
    actual = max(node.actual_rows or 0.0, 1.0)
    planned = max(node.plan_rows, 1.0)
    return max(actual / planned, planned / actual)


def _may_stop_early(node: PlanNode, above: tuple[PlanNode, ...]) -> bool:
    path = (*above, node)
    for parent, child in zip(path, path[1:], strict=False):
        if parent.node_type in ("Limit", "Merge Join"):
            return True
        if child.parent_relationship in ("SubPlan", "InitPlan"):
            return True
        if parent.join_type in _STOPPING_JOINS and child is parent.inner:
            return True
    return False


@check(id="PL002", name="row-estimate-off", area="plans", severity="warning",
       options={"min_factor": 10.0, "min_rows": 100})
def row_estimate_off(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    limit = ctx.options["min_factor"]
    for node, above in ctx.plan.nodes_with_ancestors():
        if not node.analyzed or node.never_executed or _may_stop_early(node, above):
            continue
        factor = _factor(node)
        actual = node.actual_rows or 0.0
        if factor < limit or max(actual, node.plan_rows) * node.loops < ctx.options["min_rows"]:
            continue
        if any(c.analyzed and not c.never_executed and _factor(c) >= limit for c in node.children):
            continue  # the misestimate starts below
        more = actual > node.plan_rows
        per_loop = " per loop" if node.loops != 1 else ""
        advice = (f"refresh or extend the statistics of {node.relation} (ANALYZE, a higher statistics target, "
                  "CREATE STATISTICS for correlated columns)" if node.relation else
                  "the plan above it rests on that estimate; check the statistics of the tables below it")
        yield ctx.finding(
            node, f"{node.label} was estimated at {node.plan_rows:,.0f} rows{per_loop} but returned {actual:,.0f} "
                  f"({factor:,.0f}x {'more' if more else 'fewer'}); {advice}",
            evidence={"plan_rows": node.plan_rows, "actual_rows": actual, "actual_loops": node.loops,
                      "factor": round(factor, 1), "direction": "under" if more else "over",
                      "relation": node.relation, "condition": node.filter or node.index_cond or node.hash_cond
                      or node.join_filter})
