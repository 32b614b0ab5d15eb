"""`REINDEX` without `CONCURRENTLY`, which blocks writes to the table (and reads that use the index).

## What it does
Finds `REINDEX INDEX`, `REINDEX TABLE`, `REINDEX SCHEMA` and `REINDEX DATABASE` without the
`CONCURRENTLY` option (PostgreSQL 12 and later), except on a table the same file created. `REINDEX
SYSTEM` cannot run concurrently and is left alone.

squawk's `require-concurrent-reindex` reports the same statements; when both do, dbtune's finding
carries squawk's.

## Why it matters
A plain `REINDEX` locks the table against writes (`SHARE`) and each index being rebuilt with `ACCESS
EXCLUSIVE`, so every query that would use that index waits too, for as long as the rebuild takes.

## Example
```sql
REINDEX INDEX orders_customer_id_idx;
```

## What to do instead
```sql
REINDEX INDEX CONCURRENTLY orders_customer_id_idx;
```
It builds a new index next to the old one under `SHARE UPDATE EXCLUSIVE`, then swaps them; it runs
outside a transaction block.

## How the fix is applied safely
The fix shown is the statement with `CONCURRENTLY`. If it fails, it leaves an INVALID index named
`…_ccnew` (or `…_ccold`) behind: drop it with `DROP INDEX CONCURRENTLY` and retry.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-reindex.html#SQL-REINDEX-CONCURRENTLY
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://squawkhq.com/docs/require-concurrent-reindex
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from dbtune.checks import check
from dbtune.migrate.ddl import describe, is_concurrent, pretty, render, with_changes
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import table_name
from dbtune.model import Change, ChangeKind, Finding, Lock

_KINDS = {enums.ReindexObjectType.REINDEX_OBJECT_INDEX: "INDEX", enums.ReindexObjectType.REINDEX_OBJECT_TABLE: "TABLE",
          enums.ReindexObjectType.REINDEX_OBJECT_SCHEMA: "SCHEMA",
          enums.ReindexObjectType.REINDEX_OBJECT_DATABASE: "DATABASE"}


@check(id="MG015", name="index-rebuilt-without-concurrently", area="migrations", severity="warning", fix=True)
def index_rebuilt_without_concurrently(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        node = stmt.node
        if not isinstance(node, ast.ReindexStmt) or node.kind not in _KINDS or is_concurrent(node):
            continue
        if node.relation is not None and node.kind == enums.ReindexObjectType.REINDEX_OBJECT_TABLE \
                and ctx.is_new_table(stmt, node.relation):
            continue
        target = describe(table_name(node.relation)) if node.relation is not None else (node.name or "")
        fixed = with_changes(node, params=(*(node.params or ()), ast.DefElem(defname="concurrently")))
        yield ctx.finding(
            stmt, f"REINDEX {_KINDS[node.kind]} {target} blocks writes to the table, and queries that use the "
                  f"index, until the rebuild ends; use REINDEX … CONCURRENTLY outside a transaction block",
            evidence={"target": target, "lock": "SHARE"},
            changes=[Change(up=pretty(render(fixed)), transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE,
                            kind=ChangeKind.REBUILD_INDEX)])
