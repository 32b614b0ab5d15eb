"""A parallel plan that launched fewer workers than it planned.

## What it does
Finds `Gather` and `Gather Merge` nodes whose `Workers Launched` is lower than `Workers Planned`, by at
least `min_missing_workers`.

Needs EXPLAIN ANALYZE: `dbtune explain --analyze`. The audit plans queries without running them, so this
check is recorded as skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
The planner chose a parallel plan for its speed-up, and costed it with the planned workers. Workers come
from a server-wide pool (`max_parallel_workers`, itself within `max_worker_processes`); when the pool is
exhausted by other queries, the query starts with fewer workers or none and runs that much slower, often
slower than the serial plan the planner rejected. It shows up as latency that varies with load.

## Example
```
Gather  (actual rows=3 loops=1)
  Workers Planned: 2
  Workers Launched: 0
```

## What to do instead
Size the pool for the concurrency: raise `max_parallel_workers` (and `max_worker_processes`, which needs a
restart) if the server has idle cores; or lower `max_parallel_workers_per_gather` so that more queries get
the workers they plan for; or keep short OLTP queries serial (raise `parallel_setup_cost` or
`min_parallel_table_scan_size`). Check that no session or role setting lowers `max_parallel_workers`.

## How the fix is applied safely
No fix is generated: the worker pool is a server-wide budget to size against the cores and the workload.
`max_parallel_workers` can be changed with a reload; `max_worker_processes` needs a restart.

## Options
- `min_missing_workers` (default 1): how many planned workers must be missing to report.

## References
- https://www.postgresql.org/docs/current/how-parallel-query-works.html
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-MAX-PARALLEL-WORKERS
- https://www.postgresql.org/docs/current/when-can-parallel-query-be-used.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import NEEDS_ANALYZE, PlanContext


@check(id="PL009", name="parallel-workers-not-launched", area="plans", severity="warning",
       options={"min_missing_workers": 1})
def parallel_workers_not_launched(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    pool = {k: ctx.settings.get(k) for k in ("max_parallel_workers", "max_worker_processes",
                                             "max_parallel_workers_per_gather")}
    for node in ctx.nodes():
        planned, launched = node.workers_planned, node.workers_launched
        if planned is None or launched is None or node.never_executed:
            continue
        if planned - launched < ctx.options["min_missing_workers"]:
            continue
        yield ctx.finding(
            node, f"{node.label} planned {planned} parallel workers but launched {launched}: the worker pool "
                  f"(max_parallel_workers {pool['max_parallel_workers']}, max_worker_processes "
                  f"{pool['max_worker_processes']}) had no free workers, so the query ran with "
                  f"{'the leader alone' if launched == 0 else f'{launched} of them'}",
            evidence={"workers_planned": planned, "workers_launched": launched, **pool})
