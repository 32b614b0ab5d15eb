"""A nested loop whose inner side runs many times, once per row of its outer side.

## What it does
Finds `Nested Loop` joins whose inner side ran (with EXPLAIN ANALYZE: `Actual Loops` of the inner child)
or is planned to run (without: the outer child's estimated rows) at least `min_loops` times. The finding
is a warning when the inner side reads no index (a sequential scan, a materialized or function result,
rescanned every time), and information when it is an index lookup per outer row, which is often the right
plan but worth a look at that count.

Works on plans with and without ANALYZE; without it the count is the planner's estimate, so a generic
plan is judged by average selectivities.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
A nested loop costs the outer rows times the cost of one inner execution. When the planner expected a few
outer rows and got thousands (see `row-estimate-off`), or when the inner side is a scan rather than an
index lookup, the join does quadratic work where a hash or merge join would read each side once.

## Example
```
Nested Loop  (actual rows=50000 loops=1)
  ->  Seq Scan on public.orders o  (actual rows=50000 loops=1)
  ->  Index Scan using customers_pkey on public.customers c  (actual rows=1 loops=50000)
        Index Cond: (c.id = o.customer_id)
```

## What to do instead
Fix the outer side's estimate first (ANALYZE, extended statistics): with the right numbers the planner
switches to a hash or merge join by itself. Give an inner scan an index on the join column. Check that no
`enable_hashjoin`/`enable_mergejoin = off` is left in the session or on the role. Reduce the outer rows
(filter before joining, `LIMIT` earlier).

## How the fix is applied safely
No fix is generated: the cause is usually an estimate or a missing index, which other checks address
(`row-estimate-off`, `seq-scan-with-selective-filter`).

## Options
- `min_loops` (default 1000): the fewest inner executions that are reported.
- `severity` under `[checks.nested-loop-many-loops]` sets one severity for both kinds of inner side.

## References
- https://www.postgresql.org/docs/current/planner-optimizer.html
- https://www.postgresql.org/docs/current/using-explain.html#USING-EXPLAIN-ANALYZE
- https://www.postgresql.org/docs/current/runtime-config-query.html#RUNTIME-CONFIG-QUERY-ENABLE
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding, Severity
from dbtune.plans import PlanContext


@check(id="PL006", name="nested-loop-many-loops", area="plans", severity="info", options={"min_loops": 1000})
def nested_loop_many_loops(ctx: PlanContext) -> Iterator[Finding]:
    for node in ctx.nodes():
        inner, outer = node.inner, node.outer
        if node.node_type != "Nested Loop" or inner is None or outer is None:
            continue
        if ctx.analyzed:
            if not inner.analyzed:
                continue
            loops, estimated = inner.loops, False
        else:
            loops, estimated = outer.plan_rows, True
        if loops < ctx.options["min_loops"]:
            continue
        indexed = any(n.uses_index for n in inner.walk())
        severity = ctx.severity
        if not indexed and ctx.severity == ctx.meta.severity:
            severity = Severity.WARNING  # a rescanned inner side is worse than an index lookup per row
        how = "an index lookup" if indexed else "a scan with no index"
        when = (f"is planned to run ~{loops:,.0f} times" if estimated else
                f"ran {loops:,.0f} times ({inner.total_actual_ms or 0:,.1f} ms in all)")
        yield ctx.finding(
            node, f"{node.label}: its inner side, {inner.label} ({how}), {when}, once per row of {outer.label}; "
                  "check the outer side's row estimate, or index the join column for a scan",
            severity=severity,
            evidence={"inner_loops": round(loops), "estimated": estimated, "inner_node": inner.label,
                      "outer_node": outer.label, "inner_uses_index": indexed,
                      "inner_total_ms": inner.total_actual_ms, "join_filter": node.join_filter})
