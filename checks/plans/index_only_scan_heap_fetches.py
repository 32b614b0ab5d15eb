"""An index-only scan that still visits the heap for many of its rows.

## What it does
Finds `Index Only Scan` nodes whose `Heap Fetches` are at least `min_heap_fetches` and at least
`min_fetch_fraction` of the rows the scan returned (over all loops).

Needs EXPLAIN ANALYZE: `dbtune explain --analyze`. The audit plans queries without running them, so this
check is recorded as skipped there.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
An index-only scan reads the heap only for tuples on pages the visibility map does not mark all-visible.
On a table that autovacuum has not vacuumed since its last changes (or never: a freshly loaded table, an
insert-only table before PostgreSQL 13), every row costs a heap visit, and the "index-only" scan does the
work of a plain index scan, or more.

## Example
```
Index Only Scan using orders_retailer_id_created_at_idx on public.orders  (actual rows=5000 loops=1)
  Index Cond: (orders.retailer_id = 42)
  Heap Fetches: 5000
```

## What to do instead
`VACUUM` the table so the visibility map is set, and make autovacuum keep it so: lower the table's
`autovacuum_vacuum_scale_factor` and, for insert-heavy tables (PostgreSQL 13+),
`autovacuum_vacuum_insert_scale_factor`. A table that changes constantly will always have some heap
fetches; the check reports only a large share.

## How the fix is applied safely
The fix is `VACUUM` of the scanned table. It takes a `SHARE UPDATE EXCLUSIVE` lock, so reads and writes go
on while it runs, and it cannot run inside a transaction block. It reads the whole table (less the pages
already all-visible) and writes the visibility map; on a large table, run it at a quiet time or let
autovacuum do it after lowering the thresholds.

## Options
- `min_heap_fetches` (default 100): the fewest heap fetches that are reported.
- `min_fetch_fraction` (default 0.1): the smallest share of returned rows that needed a heap fetch.

## References
- https://www.postgresql.org/docs/current/indexes-index-only-scans.html
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-VISIBILITY-MAP
- https://www.postgresql.org/docs/current/sql-vacuum.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.model import Change, ChangeKind, Finding, Lock
from dbtune.plans import NEEDS_ANALYZE, PlanContext


@check(id="PL008", name="index-only-scan-heap-fetches", area="plans", severity="warning", fix=True,
       options={"min_heap_fetches": 100, "min_fetch_fraction": 0.1})
def index_only_scan_heap_fetches(ctx: PlanContext) -> Iterator[Finding]:
    if not ctx.analyzed:
        ctx.skip(NEEDS_ANALYZE)
        return
    for node in ctx.nodes():
        if node.node_type != "Index Only Scan" or node.heap_fetches is None or node.never_executed:
            continue
        fetches = node.heap_fetches
        rows = node.total_actual_rows or 0.0
        fraction = fetches / max(rows, 1.0)
        if fetches < ctx.options["min_heap_fetches"] or fraction < ctx.options["min_fetch_fraction"]:
            continue
        changes = [Change(up=f"VACUUM {node.relation};", transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE,
                          kind=ChangeKind.OTHER, table=node.relation)] if node.relation else []
        yield ctx.finding(
            node, f"{node.label} fetched {fetches:,.0f} heap tuples for {rows:,.0f} rows returned "
                  f"({min(fraction, 1.0):.0%}): the visibility map of {node.relation} is not up to date, so the "
                  "index-only scan reads the table anyway; VACUUM it and let autovacuum keep up",
            evidence={"heap_fetches": round(fetches), "rows": round(rows), "fetch_fraction": round(fraction, 4),
                      "relation": node.relation, "index": node.index},
            changes=changes)
