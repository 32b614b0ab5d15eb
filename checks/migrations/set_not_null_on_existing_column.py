"""`ALTER COLUMN … SET NOT NULL` on an existing table, which scans the whole table under `ACCESS EXCLUSIVE`.

## What it does
Finds `ALTER TABLE … ALTER COLUMN … SET NOT NULL` (and `op.alter_column(…, nullable=False)` in Alembic
revisions) on a table the same file did not create, unless the file first established the proof
PostgreSQL accepts instead of a scan: a `CHECK (column IS NOT NULL)` constraint on that table that is
valid — added without `NOT VALID`, or validated by an earlier `VALIDATE CONSTRAINT`.

squawk's `adding-not-nullable-field` reports the same statements; when both do, dbtune's finding
carries squawk's.

## Why it matters
To set `NOT NULL` PostgreSQL reads every row to prove there is no NULL, and holds an `ACCESS EXCLUSIVE`
lock on the table while it does: no query runs on the table until the scan ends.

## Example
```sql
ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;
```

## What to do instead
Prove it with a check constraint validated under a weak lock, then set `NOT NULL` (PostgreSQL 12 and
later skip the scan when a valid check constraint proves it), then drop the check:

```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_not_null
    CHECK (customer_id IS NOT NULL) NOT VALID;
-- in a later transaction:
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_not_null;  -- SHARE UPDATE EXCLUSIVE
ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL;            -- no scan
ALTER TABLE orders DROP CONSTRAINT orders_customer_id_not_null;
```
On PostgreSQL 18, `ADD CONSTRAINT … NOT NULL customer_id NOT VALID` and `VALIDATE CONSTRAINT` do the
same in two steps.

## How the fix is applied safely
The fix shown is the four steps above. The `ADD … NOT VALID` takes `ACCESS EXCLUSIVE` only for a moment
(set `lock_timeout`, see `lock-timeout-missing`); the validation, which reads the table, must run in a
separate transaction so that the `ADD`'s lock is not held during it. If a NULL exists, the validation
fails and nothing else changes.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://squawkhq.com/docs/adding-not-nullable-field
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from dbtune.checks import check
from dbtune.migrate.ddl import AT, added_constraints, commands, describe, pretty, render
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import Statement, TableName, same_table, table_name
from dbtune.model import Change, ChangeKind, Finding, Lock
from dbtune.sqlnames import quote_ident


def _not_null_check(con: ast.Constraint) -> str | None:
    """The column a ``CHECK (column IS NOT NULL)`` constraint proves non-null."""
    expr = con.raw_expr
    if (isinstance(expr, ast.NullTest) and expr.nulltesttype == enums.NullTestType.IS_NOT_NULL
            and isinstance(expr.arg, ast.ColumnRef) and isinstance(expr.arg.fields[-1], ast.String)):
        return expr.arg.fields[-1].sval
    return None


def _proven(ctx: LintContext, stmt: Statement, table: TableName) -> set[str]:
    """Columns of ``table`` that earlier statements proved non-null with a valid check constraint."""
    pending: dict[str, str] = {}   # constraint name -> column, added NOT VALID
    proven: set[str] = set()
    for s in ctx.before(stmt):
        if not isinstance(s.node, ast.AlterTableStmt) or not same_table(table_name(s.node.relation), table):
            continue
        for con in added_constraints(s.node, enums.ConstrType.CONSTR_CHECK):
            column = _not_null_check(con)
            if column is None:
                continue
            if con.skip_validation:
                pending[con.conname or ""] = column
            else:
                proven.add(column)
        for cmd in commands(s.node, AT.AT_ValidateConstraint):
            if cmd.name in pending:
                proven.add(pending[cmd.name])
    return proven


def _fix(relation: str, relname: str, column: str) -> list[Change]:
    name = quote_ident(f"{relname}_{column}_not_null"[:63])
    col = quote_ident(column)
    return [
        Change(up=pretty(f"ALTER TABLE {relation} ADD CONSTRAINT {name} CHECK ({col} IS NOT NULL) NOT VALID"),
               lock=Lock.ACCESS_EXCLUSIVE, kind=ChangeKind.ADD_CONSTRAINT, table=relation),
        Change(up=pretty(f"ALTER TABLE {relation} VALIDATE CONSTRAINT {name}"), lock=Lock.SHARE_UPDATE_EXCLUSIVE,
               kind=ChangeKind.VALIDATE_CONSTRAINT, table=relation),
        Change(up=pretty(f"ALTER TABLE {relation} ALTER COLUMN {col} SET NOT NULL"), lock=Lock.ACCESS_EXCLUSIVE,
               kind=ChangeKind.OTHER, table=relation),
        Change(up=pretty(f"ALTER TABLE {relation} DROP CONSTRAINT {name}"), lock=Lock.ACCESS_EXCLUSIVE,
               kind=ChangeKind.OTHER, table=relation),
    ]


@check(id="MG008", name="set-not-null-on-existing-column", area="migrations", severity="warning", fix=True)
def set_not_null_on_existing_column(ctx: LintContext) -> Iterator[Finding]:
    for stmt, name, cmds in ctx.altered_existing_tables(AT.AT_SetNotNull):
        node = stmt.node
        proven = _proven(ctx, stmt, name)
        for cmd in cmds:
            if cmd.name in proven:
                continue
            table = describe(name)
            yield ctx.finding(
                stmt, f"SET NOT NULL on {table}.{cmd.name} scans the whole table under ACCESS EXCLUSIVE, "
                      f"blocking reads and writes; first add CHECK ({cmd.name} IS NOT NULL) NOT VALID and "
                      f"VALIDATE it in a separate transaction, then SET NOT NULL skips the scan",
                evidence={"table": table, "column": cmd.name, "lock": "ACCESS EXCLUSIVE"},
                changes=_fix(render(node.relation), node.relation.relname, cmd.name))  # type: ignore[union-attr]
