"""A column added to an existing table with a volatile default, which rewrites the table under `ACCESS EXCLUSIVE`.

## What it does
Finds `ALTER TABLE … ADD COLUMN` on a table the same file did not create when the new column's default
must be computed row by row: a `DEFAULT` that calls a volatile function (`random()`, `clock_timestamp()`,
`timeofday()`, `gen_random_uuid()`, `uuid_generate_v1()`/`v1mc()`/`v4()`, `uuidv4()`, `uuidv7()`,
`nextval()`), a `serial`/`bigserial`/`smallserial` type, or `GENERATED … AS
IDENTITY`. In Alembic revisions, `op.add_column` with such a `server_default=sa.text(…)` is judged the
same way. Stable defaults such as `now()` or `CURRENT_TIMESTAMP`, and constants, are not reported: since
PostgreSQL 11 they are stored once in the catalog, with no rewrite. A function of your own is not
reported either (the rule cannot see its volatility, which is `VOLATILE` unless declared otherwise).

squawk's `adding-field-with-default` reports volatile defaults too; when both report a statement,
dbtune's finding carries squawk's.

## Why it matters
A volatile default has to be evaluated for every existing row, so PostgreSQL rewrites the whole table
and rebuilds its indexes under an `ACCESS EXCLUSIVE` lock: no query runs on the table until it is done,
and the rewrite needs the table's size again in free disk.

## Example
```sql
ALTER TABLE orders ADD COLUMN public_id uuid DEFAULT gen_random_uuid();
```

## What to do instead
Add the column without a default (or with a constant one), set the volatile default for new rows
separately, and backfill the existing rows in batches:

```sql
ALTER TABLE orders ADD COLUMN public_id uuid;
ALTER TABLE orders ALTER COLUMN public_id SET DEFAULT gen_random_uuid();
-- then, in batches of a few thousand rows, outside the migration transaction:
UPDATE orders SET public_id = gen_random_uuid() WHERE id BETWEEN 1 AND 5000 AND public_id IS NULL;
```

## How the fix is applied safely
No fix is generated: the backfill has to be batched and run outside the schema change's transaction,
which depends on the table and the application.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-COLUMN
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
- https://www.postgresql.org/docs/current/xfunc-volatility.html
- https://squawkhq.com/docs/adding-field-with-default
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from dbtune.checks import check
from dbtune.migrate.ddl import AT, describe, function_names
from dbtune.migrate.lint import LintContext
from dbtune.model import Finding

VOLATILE = frozenset({"random", "clock_timestamp", "timeofday", "gen_random_uuid", "uuid_generate_v1",
                      "uuid_generate_v1mc", "uuid_generate_v4", "uuidv4", "uuidv7", "nextval"})
SERIAL = frozenset({"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"})


def _why(column: ast.ColumnDef) -> str | None:
    type_name = column.typeName.names[-1].sval.lower() if column.typeName else ""
    if type_name in SERIAL:
        return f"its type {type_name} is a nextval() default, which is volatile"
    for con in column.constraints or ():
        if con.contype == enums.ConstrType.CONSTR_IDENTITY:
            return "GENERATED AS IDENTITY fills it from a sequence"
        if con.contype == enums.ConstrType.CONSTR_DEFAULT and con.raw_expr is not None:
            volatile = sorted(set(function_names(con.raw_expr)) & VOLATILE)
            if volatile:
                return f"its default calls {volatile[0]}(), which is volatile"
    return None


@check(id="MG011", name="column-added-with-volatile-default", area="migrations", severity="warning")
def column_added_with_volatile_default(ctx: LintContext) -> Iterator[Finding]:
    for stmt, name, cmds in ctx.altered_existing_tables(AT.AT_AddColumn):
        table = describe(name)
        for cmd in cmds:
            why = _why(cmd.def_)
            if why is None:
                continue
            yield ctx.finding(
                stmt, f"ADD COLUMN {cmd.def_.colname} rewrites existing table {table} and its indexes under "
                      f"ACCESS EXCLUSIVE, because {why}; add the column without that default, then SET DEFAULT "
                      f"and backfill in batches",
                evidence={"table": table, "column": cmd.def_.colname, "lock": "ACCESS EXCLUSIVE"})
