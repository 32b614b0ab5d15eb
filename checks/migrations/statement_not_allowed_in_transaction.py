"""A statement that PostgreSQL refuses to run inside a transaction block, placed inside one.

## What it does
Finds, inside a transaction block (between `BEGIN` and `COMMIT` in a SQL file, in Alembic's migration
transaction outside `autocommit_block()`, or in one `op.execute` string with other statements):
`VACUUM`, `CREATE DATABASE`, `DROP DATABASE`, `CREATE TABLESPACE`, `DROP TABLESPACE`, `ALTER SYSTEM`,
`REINDEX SYSTEM`/`REINDEX DATABASE`, `ALTER TABLE … DETACH PARTITION … CONCURRENTLY`, `CREATE
SUBSCRIPTION` and `DROP SUBSCRIPTION`. Concurrent index statements have their own rule,
`concurrent-index-in-transaction`.

squawk has no rule for these.

## Why it matters
PostgreSQL stops with `ERROR: VACUUM cannot run inside a transaction block` (or the same for the other
commands) and the migration fails.

## Example
```sql
BEGIN;
ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;  -- ERROR
COMMIT;
```

## What to do instead
Run the statement on its own, outside any transaction block: after the `COMMIT`, in its own migration
file, or in Alembic inside `with op.get_context().autocommit_block():`. Maintenance commands such as
`VACUUM` usually do not belong in a schema migration at all.

## How the fix is applied safely
No fix is generated.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-vacuum.html
- https://www.postgresql.org/docs/current/sql-createdatabase.html
- https://www.postgresql.org/docs/current/sql-altersystem.html
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DETACH-PARTITION
- https://www.postgresql.org/docs/current/sql-reindex.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from dbtune.checks import check
from dbtune.migrate.ddl import AT, commands
from dbtune.migrate.lint import LintContext
from dbtune.model import Finding

_ALWAYS = {
    ast.CreatedbStmt: "CREATE DATABASE", ast.DropdbStmt: "DROP DATABASE",
    ast.CreateTableSpaceStmt: "CREATE TABLESPACE", ast.DropTableSpaceStmt: "DROP TABLESPACE",
    ast.AlterSystemStmt: "ALTER SYSTEM", ast.CreateSubscriptionStmt: "CREATE SUBSCRIPTION",
    ast.DropSubscriptionStmt: "DROP SUBSCRIPTION",
}


def _refused(node: ast.Node) -> str | None:
    for kind, what in _ALWAYS.items():
        if isinstance(node, kind):
            return what
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    if isinstance(node, ast.ReindexStmt) and node.kind in (enums.ReindexObjectType.REINDEX_OBJECT_SYSTEM,
                                                          enums.ReindexObjectType.REINDEX_OBJECT_DATABASE):
        return "REINDEX " + node.kind.name.removeprefix("REINDEX_OBJECT_")
    for cmd in commands(node, AT.AT_DetachPartition):
        if getattr(cmd.def_, "concurrent", False):
            return "ALTER TABLE … DETACH PARTITION … CONCURRENTLY"
    return None


@check(id="MG013", name="statement-not-allowed-in-transaction", area="migrations", severity="error")
def statement_not_allowed_in_transaction(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        if not stmt.in_transaction:
            continue
        what = _refused(stmt.node)  # type: ignore[arg-type]
        if what is None:
            continue
        where = ("run it inside `with op.get_context().autocommit_block():` in its own op.execute() call"
                 if stmt.is_alembic else "run it outside BEGIN … COMMIT")
        yield ctx.finding(stmt, f"{what} cannot run inside a transaction block, and this one runs in "
                                f"{stmt.transaction}: PostgreSQL will refuse it; {where}")
