"""A foreign key whose columns differ in type or collation from the columns they reference.

## What it does
Compares each foreign key column with the column it references (`pg_constraint.conkey` against
`confkey`): the type with its modifier (`format_type`, so `integer` against `bigint` and
`character varying(40)` against `text` differ) and the collation. Every foreign key with at least one
such pair is one finding, the pairs in the evidence. A foreign key on a partition that was cloned from
its partitioned parent is reported once, on the parent. Reads only `pg_attribute` and `pg_constraint`,
so it runs unchanged on a role with only `pg_monitor`.

## Why it matters
PostgreSQL accepts the key when the types are comparable, but every check of it and every join along it
compares across types: an `integer` column that references `bigint` overflows the day the parent's
keys pass 2^31 (inserts fail), a `varchar(40)` that references `text` rejects valid parent keys, and a
collation difference makes the join unable to use an index in the referenced column's collation.

## Example
```sql
CREATE TABLE customers (id bigint PRIMARY KEY);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id integer REFERENCES customers (id));
```

## What to do instead
Give the referencing column the referenced column's type and collation
(`ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint`), planned as a migration.

## How the fix is applied safely
No fix is generated: changing a column's type rewrites the table under `ACCESS EXCLUSIVE`, which has
to be planned (a new column filled in batches, or a maintenance window).

## Options
None.

## References
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK
- https://www.postgresql.org/docs/current/catalog-pg-constraint.html
- https://www.postgresql.org/docs/current/collation.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.foreign_keys import declared_foreign_keys
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="CN005", name="foreign-key-type-mismatch", area="constraints", severity="warning")
def foreign_key_type_mismatch(ctx: CheckContext) -> Iterator[Finding]:
    for con, table, ref in declared_foreign_keys(ctx):
        cols = {c.attnum: c for c in table.columns}
        ref_cols = {c.attnum: c for c in ref.columns}
        pairs = []
        for attnum, ref_attnum in zip(con.columns, con.ref_columns, strict=False):
            col, ref_col = cols.get(attnum), ref_cols.get(ref_attnum)
            if col is None or ref_col is None:
                continue
            if col.type != ref_col.type or col.collation != ref_col.collation:
                pairs.append({"column": col.name, "type": col.type, "collation": col.collation,
                              "referenced_column": ref_col.name, "referenced_type": ref_col.type,
                              "referenced_collation": ref_col.collation})
        if not pairs:
            continue
        described = "; ".join(
            f"{quote_ident(p['column'])} {p['type']}"
            + (f" COLLATE {p['collation']}" if p["collation"] != p["referenced_collation"] else "")
            + f" references {quote_ident(p['referenced_column'])} {p['referenced_type']}"
            + (f" COLLATE {p['referenced_collation']}" if p["collation"] != p["referenced_collation"] else "")
            for p in pairs)
        yield ctx.finding(
            f"{table.qualified_name}.{quote_ident(con.name)}",
            f"foreign key {quote_ident(con.name)} on {table.qualified_name} → {ref.qualified_name}: {described}",
            evidence={"constraint": con.name, "referenced_table": ref.qualified_name, "mismatches": pairs},
        )
