"""An index dropped without `CONCURRENTLY`, which locks its table against reads and writes.

## What it does
Finds `DROP INDEX` without `CONCURRENTLY`, and `op.drop_index(…)` without
`postgresql_concurrently=True` in Alembic revisions. An index the same file created on a table the same
file created is left alone, and so is a partitioned index that the files being linted create `ON ONLY` a
table or attach partitions to: PostgreSQL refuses `DROP INDEX CONCURRENTLY` on a partitioned index, so a
plain `DROP INDEX` under `lock_timeout` is the only way to drop it. A statement under a
`-- squawk-ignore require-concurrent-index-deletion` comment is left alone too (dbtune writes one above
the drop of a partitioned index in the down files it generates).

squawk's `require-concurrent-index-deletion` reports the same statements; when both do, dbtune's
finding carries squawk's.

## Why it matters
A plain `DROP INDEX` takes an `ACCESS EXCLUSIVE` lock on the index's table. The drop itself is quick,
but the lock has to wait for every running query on the table, and while it waits every new query on
the table, reads included, queues behind it: one long report query turns the drop into an outage.

## Example
```sql
DROP INDEX orders_status_idx;
```

## What to do instead
```sql
DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;
```
It waits for conflicting transactions without blocking new ones, runs outside a transaction block, and
drops one index per statement, without `CASCADE`, and not on a partitioned index (drop that one plainly,
with a short `lock_timeout`: it locks the table and its partitions briefly). In Alembic: `op.drop_index(…,
postgresql_concurrently=True)` inside `with op.get_context().autocommit_block():`.

## How the fix is applied safely
The fix shown is one `DROP INDEX CONCURRENTLY` per index named, with `IF EXISTS` kept as written. It
must run outside a transaction block. An index that backs a constraint (primary key, unique, exclusion)
cannot be dropped this way: drop the constraint with `ALTER TABLE … DROP CONSTRAINT` instead.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-dropindex.html
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://squawkhq.com/docs/require-concurrent-index-deletion
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from dbtune.checks import check
from dbtune.migrate.ddl import describe, object_names, pretty, render, with_changes
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import Statement, TableName, same_table
from dbtune.model import Change, ChangeKind, Finding, Lock


def _indexes_on_new_tables(ctx: LintContext, stmt: Statement) -> list[TableName]:
    """Indexes created earlier in the file on tables created earlier in the file."""
    return [(s.node.relation.schemaname, s.node.idxname) for s in ctx.before(stmt)
            if isinstance(s.node, ast.IndexStmt) and s.node.idxname and ctx.is_new_table(s, s.node.relation)]


@check(id="MG003", name="index-dropped-without-concurrently", area="migrations", severity="warning", fix=True)
def index_dropped_without_concurrently(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        node = stmt.node
        if not (isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_INDEX
                and not node.concurrent):
            continue
        new = _indexes_on_new_tables(ctx, stmt)
        names = [n for n in object_names(node)
                 if not any(same_table(n, x) for x in new) and not ctx.is_partitioned_index(n)]
        if not names:
            continue
        fixes = [Change(up=pretty(render(with_changes(node, objects=(obj,), concurrent=True,
                                                      behavior=enums.DropBehavior.DROP_RESTRICT))),
                        transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE, kind=ChangeKind.DROP_INDEX,
                        index=describe(name))
                 for obj, name in zip(node.objects, object_names(node), strict=True) if name in names]
        how = ("pass postgresql_concurrently=True and run it inside `with op.get_context().autocommit_block():`"
               if stmt.is_alembic else "use DROP INDEX CONCURRENTLY, outside a transaction block")
        yield ctx.finding(
            stmt, f"DROP INDEX {', '.join(describe(n) for n in names)} takes an ACCESS EXCLUSIVE lock on the "
                  f"index's table, queueing every query on it behind any running one; {how}",
            evidence={"indexes": [describe(n) for n in names], "lock": "ACCESS EXCLUSIVE"}, changes=fixes)
