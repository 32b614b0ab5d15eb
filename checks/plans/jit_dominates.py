"""JIT compilation takes a large share of a query's execution time.

## What it does
Reports plans whose JIT time (`JIT: Timing: … Total`, generation, inlining, optimization and emission) is
at least `min_jit_ms` and at least `min_fraction` of the `Execution Time`.

Needs EXPLAIN ANALYZE: `dbtune explain --analyze` (without ANALYZE, EXPLAIN shows whether JIT would be
used but not its cost). The audit plans queries without running them, so this check is recorded as
skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
PostgreSQL compiles expressions and tuple deforming to machine code when a plan's estimated cost exceeds
`jit_above_cost` (default 100000), and optimizes and inlines above `jit_optimize_above_cost` and
`jit_inline_above_cost`. The cost estimate is a poor proxy for run time: a query estimated as expensive
(often because of a misestimate) that runs in milliseconds then spends most of its time compiling, on
every execution, since compiled code is not cached between queries.

## Example
```
Execution Time: 48.121 ms
JIT:
  Functions: 27
  Timing: Generation 3.1 ms, Inlining 12.4 ms, Optimization 20.2 ms, Emission 9.8 ms, Total 45.5 ms
```

## What to do instead
Raise `jit_above_cost` (and the optimize and inline thresholds) so only long-running queries compile,
e.g. `ALTER ROLE app SET jit_above_cost = 1000000`; on OLTP workloads `jit = off` is common. If the query's
cost estimate is far above its real cost, fix the estimate (see `row-estimate-off`).

## How the fix is applied safely
No fix is generated: JIT thresholds apply to every query of the role or server. A setting on the role
(`ALTER ROLE … SET`) takes effect for new sessions and is undone with `ALTER ROLE … RESET`.

## Options
- `min_fraction` (default 0.5): the smallest share of the execution time spent in JIT that is reported.
- `min_jit_ms` (default 10.0): the smallest JIT time (ms) that is reported.

## References
- https://www.postgresql.org/docs/current/jit-decision.html
- https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-JIT-ABOVE-COST
- https://www.postgresql.org/docs/current/using-explain.html#USING-EXPLAIN-ANALYZE
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import NEEDS_ANALYZE, PlanContext


@check(id="PL010", name="jit-dominates", area="plans", severity="warning",
       options={"min_fraction": 0.5, "min_jit_ms": 10.0})
def jit_dominates(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    jit, execution = ctx.plan.jit, ctx.plan.execution_ms
    if jit is None or jit.total_ms is None or not execution:
        return
    fraction = jit.total_ms / execution
    if jit.total_ms < ctx.options["min_jit_ms"] or fraction < ctx.options["min_fraction"]:
        return
    above = ctx.settings.get("jit_above_cost")
    yield ctx.finding(
        "JIT", f"JIT compilation took {jit.total_ms:,.1f} ms of the {execution:,.1f} ms execution ({fraction:.0%}) "
               f"for {jit.functions} functions: the plan's cost {ctx.plan.total_cost:,.0f} is above jit_above_cost "
               f"({above}) but the query runs too briefly to gain from it; raise jit_above_cost or turn jit off "
               "for this workload",
        evidence={"jit_total_ms": jit.total_ms, "execution_ms": execution, "jit_fraction": round(fraction, 3),
                  "functions": jit.functions, "generation_ms": jit.generation_ms, "inlining_ms": jit.inlining_ms,
                  "optimization_ms": jit.optimization_ms, "emission_ms": jit.emission_ms,
                  "total_cost": ctx.plan.total_cost, "jit_above_cost": above})
