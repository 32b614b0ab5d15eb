"""A multi-column foreign key with a nullable column, under `MATCH SIMPLE`.

## What it does
Reports each foreign key of two or more columns that is not `MATCH FULL` and has at least one column
that allows NULL, naming the nullable ones. Keys cloned onto partitions are reported once, where they
were declared. Reads only `pg_constraint` and `pg_attribute`, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
Under `MATCH SIMPLE`, PostgreSQL's default, a row is not checked at all when any one of the key's
columns is NULL: `(tenant_id, customer_id) = (7, NULL)` passes, and so does `(999, NULL)` for a tenant
that does not exist. Rows that look as if they reference something reference nothing, and nothing
warns. A single-column key is left alone: NULL there plainly means "no reference".

## Example
```sql
CREATE TABLE orders (id int PRIMARY KEY, tenant_id int, customer_id int,
                     FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id));
INSERT INTO orders VALUES (1, 999, NULL);   -- accepted: tenant 999 does not exist
```

## What to do instead
Make the columns `NOT NULL` when the reference is mandatory; when it is optional as a whole, declare the
key `MATCH FULL` (all columns NULL or none) or add `CHECK ((tenant_id IS NULL) = (customer_id IS NULL))`.

## How the fix is applied safely
No fix is generated: which rule the data follows is a decision about the data. A replacing foreign key
or check constraint is added `NOT VALID` and validated in a second step (`VALIDATE CONSTRAINT` takes
only `SHARE UPDATE EXCLUSIVE`), see `constraint-not-validated`; `SET NOT NULL` scans under `ACCESS
EXCLUSIVE` unless a validated `CHECK (col IS NOT NULL)` proves it first.

## Options
None.

## References
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK
- https://www.postgresql.org/docs/current/sql-createtable.html (`MATCH FULL`, `MATCH SIMPLE`)
- https://www.postgresql.org/docs/current/sql-altertable.html (`ADD CONSTRAINT … NOT VALID`)
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.foreign_keys import declared_foreign_keys
from dbtune.escape import one_line
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident

# pg_get_constraintdef writes the match type after the referenced columns' closing parenthesis.
_MATCH_FULL = re.compile(r"\) MATCH FULL\b")


@check(id="CN010", name="foreign-key-partially-null", area="constraints", severity="warning")
def foreign_key_partially_null(ctx: CheckContext) -> Iterator[Finding]:
    for con, table, _ in declared_foreign_keys(ctx):
        if len(con.columns) < 2 or _MATCH_FULL.search(con.definition):
            continue
        nullable = [c.name for a in con.columns if (c := table.column(a)) is not None and not c.not_null]
        if not nullable:
            continue
        yield ctx.finding(
            f"{table.qualified_name}.{quote_ident(con.name)}",
            f"foreign key {quote_ident(con.name)} on {table.qualified_name} ({one_line(con.definition)}) is MATCH "
            f"SIMPLE with nullable {', '.join(quote_ident(n) for n in nullable)}: a row with any of its "
            f"columns NULL is not checked at all",
            evidence={"constraint": con.name, "nullable_columns": nullable, "definition": con.definition},
        )
