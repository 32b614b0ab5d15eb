"""A sort that did not fit in `work_mem` and spilled to temporary files.

## What it does
Finds `Sort` nodes whose `Sort Space Type` is `Disk` (`Sort Method: external merge` or `external sort`),
in the leader or in any parallel worker, and `Incremental Sort` nodes whose sort groups used disk, with at
least `min_space_kb` kB written.

Needs EXPLAIN ANALYZE: `dbtune explain --analyze`. The audit plans queries without running them, so this
check is recorded as skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
A sort that exceeds `work_mem` writes runs to temporary files and merges them back: disk I/O where memory
would have done, often several times slower, and temporary files that compete with everything else on the
volume. Under concurrency every sorting query does this at once.

## Example
```
Sort  (actual rows=100000 loops=1)
  Sort Key: orders.created_at
  Sort Method: external merge  Disk: 4912kB
```

## What to do instead
Avoid the sort: an index whose order matches the `ORDER BY` (with `LIMIT`, the planner then reads only the
first rows). Or sort less: select fewer or narrower columns, filter earlier. Or give this query more
memory: `SET LOCAL work_mem = '64MB'` in its transaction, or on the role that runs it
(`ALTER ROLE reporting SET work_mem = '64MB'`); raise the server-wide `work_mem` only with the number of
concurrent sorts in mind, since each sort and hash of each query may use that much.

## How the fix is applied safely
No fix is generated: `work_mem` is a per-operation budget whose safe value depends on concurrency, and an
index matching the ORDER BY is declared as an `[[expect.index]]`. `SET LOCAL` affects one transaction only.

## Options
- `min_space_kb` (default 0): the smallest spill, in kB of temporary files, that is reported.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM
- https://www.postgresql.org/docs/current/using-explain.html#USING-EXPLAIN-ANALYZE
- https://www.postgresql.org/docs/current/indexes-ordering.html
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dbtune.checks import check
from dbtune.model import Finding
from dbtune.plans import NEEDS_ANALYZE, PlanContext, PlanNode
from dbtune.units import kb_pretty


def _incremental_disk_kb(node: PlanNode) -> int | None:
    """The most disk an Incremental Sort's groups used (kB), or None when they stayed in memory."""
    used = [g["Sort Space Disk"].get("Peak Sort Space Used", 0)
            for key in ("Full-sort Groups", "Pre-sorted Groups")
            if isinstance(g := node.raw.get(key), dict) and isinstance(g.get("Sort Space Disk"), dict)]
    return int(max(used)) if used else None


@check(id="PL003", name="sort-spills-to-disk", area="plans", severity="warning", options={"min_space_kb": 0})
def sort_spills_to_disk(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    work_mem = ctx.settings.get("work_mem")
    for node in ctx.nodes():
        evidence: dict[str, Any]
        if node.node_type == "Sort":
            spilled = [w for w in node.workers if w.sort_space_type == "Disk"]
            if node.sort_space_type != "Disk" and not spilled:
                continue
            kb = ((node.sort_space_kb or 0) if node.sort_space_type == "Disk" else 0) + sum(
                w.sort_space_kb or 0 for w in spilled)
            method = node.sort_method or next((w.sort_method for w in spilled if w.sort_method), "external")
            evidence = {"sort_method": method, "sort_space_kb": kb, "workers_spilled": len(spilled)}
        elif node.node_type == "Incremental Sort":
            disk = _incremental_disk_kb(node)
            if disk is None:
                continue
            kb, method = disk, "incremental sort groups on disk"
            evidence = {"sort_method": method, "sort_space_kb": kb, "workers_spilled": 0}
        else:
            continue
        if kb < ctx.options["min_space_kb"]:
            continue
        keys = ", ".join(node.sort_key) or "?"
        yield ctx.finding(
            node, f"{node.label} spilled to disk ({method}, {kb_pretty(kb)} of temporary files) sorting "
                  f"{node.total_actual_rows or 0:,.0f} rows by {keys}: it did not fit in work_mem ({work_mem}); "
                  "an index in this order avoids the sort, or raise work_mem for this query",
            evidence={**evidence, "sort_key": list(node.sort_key), "rows": node.total_actual_rows,
                      "work_mem": work_mem})
