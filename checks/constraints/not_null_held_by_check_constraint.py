"""A column kept non-NULL by a validated `CHECK (col IS NOT NULL)` instead of `NOT NULL`.

## What it does
Finds validated check constraints whose whole expression is `col IS NOT NULL` on one column
(`pg_get_constraintdef` reads `CHECK (col IS NOT NULL)`) while the column itself allows NULL
(`pg_attribute.attnotnull` false). A partition's copy of its parent's constraint is reported once, on
the parent. `NOT VALID` constraints are left to `constraint-not-validated` (CN002). Reads only the
catalog, so it runs unchanged on a role with only `pg_monitor`.

## Why it matters
It is the first half of the safe way to add `NOT NULL` to a large table (add the check `NOT VALID`,
validate it) whose last step never ran. The planner does not treat a check constraint as `NOT NULL`
everywhere it would use the column property (for example to prove `NOT IN` subqueries can be
anti-joins, or in `pg_attribute`-based tools and ORMs), and the check costs an evaluation per row written.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_not_null CHECK (customer_id IS NOT NULL) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_not_null;
-- ALTER COLUMN customer_id SET NOT NULL never followed
```

## What to do instead
`ALTER TABLE orders ALTER COLUMN customer_id SET NOT NULL`, then drop the check constraint.

## How the fix is applied safely
On PostgreSQL 12 and later `SET NOT NULL` skips the table scan when a validated check constraint
proves the column has no NULL, so its `ACCESS EXCLUSIVE` lock is held only for the catalog update; run
it with a `lock_timeout`. The fix is shown with the finding; `dbtune migrate` does not carry it yet. Drop
the check constraint afterwards by hand (`ALTER TABLE … DROP CONSTRAINT`).

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-NOT-NULL
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import set_not_null
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


def _definitions(column: str) -> tuple[str, str]:
    """``pg_get_constraintdef`` of ``CHECK (column IS NOT NULL)``, pretty-printed and not."""
    return f"CHECK ({quote_ident(column)} IS NOT NULL)", f"CHECK (({quote_ident(column)} IS NOT NULL))"


@check(id="CN007", name="not-null-held-by-check-constraint", area="constraints", severity="info", fix=True)
def not_null_held_by_check_constraint(ctx: CheckContext) -> Iterator[Finding]:
    tables = {r.oid: r for r in ctx.user_relations()}
    checks = {(c.table_oid, c.name) for c in ctx.snapshot.constraints if c.type == "c"}
    for con in ctx.snapshot.constraints:
        if con.type != "c" or not con.validated or len(con.columns) != 1 or con.table_oid not in tables:
            continue
        table = tables[con.table_oid]
        if table.is_partition and (table.parent_oid, con.name) in checks:
            continue  # the partition's copy of its parent's constraint
        column = next((c for c in table.columns if c.attnum == con.columns[0]), None)
        if column is None or column.not_null or con.definition not in _definitions(column.name):
            continue
        yield ctx.finding(
            f"{table.qualified_name}.{quote_ident(column.name)}",
            f"column {quote_ident(column.name)} of {table.qualified_name} allows NULL but check constraint "
            f"{quote_ident(con.name)} proves it has none: SET NOT NULL needs no scan",
            evidence={"constraint": con.name, "definition": con.definition, "table_size_bytes": table.size_bytes},
            changes=(set_not_null(table, column.name),),
        )
