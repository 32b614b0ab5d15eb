"""A hash join's hash table or a hash aggregate that did not fit in memory and was split into batches.

## What it does
Finds `Hash` nodes (the inner side of a `Hash Join`) with `Hash Batches` of `min_batches` or more, and
`HashAggregate` nodes with `HashAgg Batches` of `min_batches` or more (PostgreSQL 13+ spills hash
aggregates to disk; `Disk Usage` gives the kB written). `Original Hash Batches` lower than `Hash Batches`
means the planner expected it to fit and the executor had to split it further at run time.

Needs EXPLAIN ANALYZE: `dbtune explain --analyze`. The audit plans queries without running them, so this
check is recorded as skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
A hash table may use `work_mem` × `hash_mem_multiplier`. Beyond that, the executor splits the input into
batches and writes all but the first to temporary files, reading them back batch by batch: the join or
aggregation does disk I/O and can be many times slower. Batches the planner did not foresee also mean its
row or width estimate was wrong.

## Example
```
Hash Join  (actual rows=200000 loops=1)
  Hash Cond: (o.customer_id = c.id)
  ->  Hash  (actual rows=200000 loops=1)
        Buckets: 65536  Batches: 8  Memory Usage: 3585kB
```

## What to do instead
Hash less: select only the columns the query needs from the hashed side (the hash table holds whole
rows), filter it earlier, or let the smaller relation be hashed (fresh statistics help the planner pick
it). Or give the query more memory: `SET LOCAL work_mem`, or `hash_mem_multiplier` (default 2.0) for hash
operations alone. Raise server-wide values only with concurrency in mind.

## How the fix is applied safely
No fix is generated: the memory budget depends on how many hash operations run at once. `SET LOCAL`
affects one transaction only.

## Options
- `min_batches` (default 2): the number of batches from which a hash is reported.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-HASH-MEM-MULTIPLIER
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM
- https://www.postgresql.org/docs/current/using-explain.html#USING-EXPLAIN-ANALYZE
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import NEEDS_ANALYZE, PlanContext
from dbtune.units import kb_pretty


@check(id="PL004", name="hash-spills-to-disk", area="plans", severity="warning", options={"min_batches": 2})
def hash_spills_to_disk(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    memory = f"work_mem {ctx.settings.get('work_mem')} x hash_mem_multiplier {ctx.settings.get('hash_mem_multiplier')}"
    for node in ctx.nodes():
        if node.node_type == "Hash" and (node.hash_batches or 0) >= ctx.options["min_batches"]:
            source = node.children[0].label if node.children else "its input"
            planned = node.original_hash_batches
            unforeseen = f" (the planner expected {planned})" if planned and planned < (node.hash_batches or 0) else ""
            yield ctx.finding(
                node, f"{node.label} of {source} was split into {node.hash_batches} batches{unforeseen}: the hash "
                      f"table of {node.total_actual_rows or 0:,.0f} rows did not fit in {memory}, so all but one "
                      "batch went through temporary files; hash fewer or narrower rows, or give the query more "
                      "memory",
                evidence={"hash_batches": node.hash_batches, "original_hash_batches": planned,
                          "hash_buckets": node.hash_buckets, "peak_memory_kb": node.peak_memory_kb,
                          "rows": node.total_actual_rows, "hashed": source,
                          "work_mem": ctx.settings.get("work_mem"),
                          "hash_mem_multiplier": ctx.settings.get("hash_mem_multiplier")})
        elif node.hashagg_batches is not None and node.hashagg_batches >= ctx.options["min_batches"]:
            yield ctx.finding(
                node, f"{node.label} spilled to disk in {node.hashagg_batches} batches "
                      f"({kb_pretty(node.disk_usage_kb or 0)} of temporary files): its groups did not fit in {memory}; "
                      "group fewer or narrower rows, or give the query more memory",
                evidence={"hashagg_batches": node.hashagg_batches, "disk_usage_kb": node.disk_usage_kb,
                          "peak_memory_kb": node.peak_memory_kb, "rows": node.total_actual_rows,
                          "work_mem": ctx.settings.get("work_mem"),
                          "hash_mem_multiplier": ctx.settings.get("hash_mem_multiplier")})
