"""An index built without `CONCURRENTLY` on a table that already exists, blocking writes while it builds.

## What it does
Finds `CREATE INDEX` (and `CREATE UNIQUE INDEX`) without `CONCURRENTLY` on a table that the same
migration file did not create, and `op.create_index(…)` without `postgresql_concurrently=True` in
Alembic revisions. Building an index on a table created earlier in the same file is fine: nobody else
uses it yet; so is `CREATE INDEX … ON ONLY` a partitioned table, which builds nothing (it is the first
step of the recipe below).

squawk's `require-concurrent-index-creation` reports the same statements; when both do, dbtune's
finding carries squawk's.

## Why it matters
A plain `CREATE INDEX` holds a `SHARE` lock on the table for the whole build: reads go on, but every
`INSERT`, `UPDATE` and `DELETE` waits until the index is complete, which on a large table is minutes to
hours of blocked writes (and of requests queued behind them).

## Example
```sql
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
```

## What to do instead
Build it with `CONCURRENTLY`, outside a transaction block. It takes a `SHARE UPDATE EXCLUSIVE` lock,
which lets reads and writes go on; the build scans the table twice and waits for running transactions,
so it takes longer.

```sql
CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);
```

In Alembic: `op.create_index(…, postgresql_concurrently=True)` inside
`with op.get_context().autocommit_block():`.

On a partitioned table `CONCURRENTLY` is refused: create the index `ON ONLY` the parent (invalid until
attached), build it concurrently on each partition, then `ALTER INDEX … ATTACH PARTITION` each one.

## How the fix is applied safely
The fix shown is the same statement with `CONCURRENTLY`. It must run outside a transaction block
(`concurrent-index-in-transaction` reports it otherwise). If the build fails (a deadlock, a duplicate
key for a unique index, a cancelled statement), PostgreSQL leaves an INVALID index behind: drop it with
`DROP INDEX CONCURRENTLY` and build again (dbtune's `invalid-index` check finds such leftovers). For
the same reason `IF NOT EXISTS` is not added: after a failed build it would skip the invalid index.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE
- https://squawkhq.com/docs/require-concurrent-index-creation
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast

from dbtune.checks import check
from dbtune.migrate.ddl import describe, pretty, render, with_changes
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import table_name
from dbtune.model import Change, ChangeKind, Finding, Lock


@check(id="MG002", name="index-created-without-concurrently", area="migrations", severity="warning", fix=True)
def index_created_without_concurrently(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        node = stmt.node
        if not isinstance(node, ast.IndexStmt) or node.concurrent or ctx.is_new_table(stmt, node.relation):
            continue
        if node.relation is not None and not node.relation.inh:
            continue  # ON ONLY a partitioned table: no build, the first step of the partitioned recipe
        table = describe(table_name(node.relation))
        fix_sql = pretty(render(with_changes(node, concurrent=True)))
        how = ("pass postgresql_concurrently=True and run it inside `with op.get_context().autocommit_block():`"
               if stmt.is_alembic else "use CREATE INDEX CONCURRENTLY, outside a transaction block")
        yield ctx.finding(
            stmt, f"CREATE {'UNIQUE ' if node.unique else ''}INDEX {node.idxname or ''} on existing table "
                  f"{table} holds a SHARE lock, blocking writes, for the whole build; {how}".replace("  ", " "),
            evidence={"table": table, "lock": "SHARE"},
            changes=[Change(up=fix_sql, transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE,
                            kind=ChangeKind.CREATE_INDEX, table=table, index=node.idxname)])
