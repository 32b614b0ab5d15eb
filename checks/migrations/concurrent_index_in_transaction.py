"""A concurrent index build, drop or rebuild inside a transaction block, which PostgreSQL refuses.

## What it does
Finds `CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY` and `REINDEX … CONCURRENTLY` statements
that run inside a transaction block: between `BEGIN` and `COMMIT` in a SQL file, in an Alembic
revision outside `with op.get_context().autocommit_block():` (Alembic runs a migration in one
transaction), or in one `op.execute("…; …")` string together with other statements (a query string of
several statements runs as one implicit transaction block). `op.create_index(…,
postgresql_concurrently=True)` and `op.drop_index(…, postgresql_concurrently=True)` are judged the same
way.

A SQL file without `BEGIN` is taken to run under `psql -f`, in autocommit, each statement on its own.

squawk's `ban-concurrent-index-creation-in-transaction` reports the concurrent builds among these (in
SQL files with an explicit `BEGIN`); when both report a statement, dbtune's finding carries squawk's.

## Why it matters
A concurrent build commits several transactions of its own and waits for other transactions between
them, so it cannot be part of a larger transaction: PostgreSQL stops with `ERROR: CREATE INDEX
CONCURRENTLY cannot run inside a transaction block`, and the whole migration fails (and, if it already
changed something outside a transaction, is left half done).

## Example
```sql
BEGIN;
CREATE INDEX CONCURRENTLY orders_customer_id_idx ON orders (customer_id);  -- ERROR
COMMIT;
```

```python
def upgrade():
    op.create_index("orders_customer_id_idx", "orders", ["customer_id"],
                    postgresql_concurrently=True)  # ERROR: inside Alembic's transaction
```

## What to do instead
Run the statement on its own, outside any transaction block: remove the `BEGIN`/`COMMIT` around it (or
put it in its own migration file), and in Alembic wrap it in
`with op.get_context().autocommit_block():`. Give each concurrent statement its own `op.execute` call.

```python
def upgrade():
    with op.get_context().autocommit_block():
        op.create_index("orders_customer_id_idx", "orders", ["customer_id"],
                        postgresql_concurrently=True)
```

## How the fix is applied safely
No fix is generated: where the statement belongs depends on the rest of the migration. `dbtune migrate`
itself always runs concurrent index statements as non-transactional steps. A concurrent build that
fails leaves an INVALID index behind (see `invalid-index`); drop it with `DROP INDEX CONCURRENTLY` before
retrying.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
- https://www.postgresql.org/docs/current/sql-dropindex.html
- https://www.postgresql.org/docs/current/sql-reindex.html#SQL-REINDEX-CONCURRENTLY
- https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-MULTI-STATEMENT
- https://alembic.sqlalchemy.org/en/latest/api/runtime.html#alembic.runtime.migration.MigrationContext.autocommit_block
- https://squawkhq.com/docs/ban-concurrent-index-creation-in-transaction
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast

from dbtune.checks import check
from dbtune.migrate.ddl import is_concurrent
from dbtune.migrate.lint import LintContext
from dbtune.model import Finding


def _what(node: ast.Node) -> str:
    if isinstance(node, ast.IndexStmt):
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt):
        return "DROP INDEX CONCURRENTLY"
    return "REINDEX CONCURRENTLY"


@check(id="MG001", name="concurrent-index-in-transaction", area="migrations", severity="error")
def concurrent_index_in_transaction(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        if not (is_concurrent(stmt.node) and stmt.in_transaction):
            continue
        what = _what(stmt.node)  # type: ignore[arg-type]
        if stmt.transaction_id == 0 and stmt.is_alembic:
            fix = "give it its own op.execute() call"
        elif stmt.is_alembic:
            fix = "run it inside `with op.get_context().autocommit_block():`"
        else:
            fix = "run it outside BEGIN … COMMIT"
        yield ctx.finding(stmt, f"{what} cannot run inside a transaction block, and this one runs in "
                                f"{stmt.transaction}: PostgreSQL will refuse it; {fix}")
