"""Two or more foreign keys that are the same foreign key.

## What it does
Groups each table's foreign keys by referenced table and by their pairs of referencing and referenced
columns (so `(a, b) REFERENCES t (x, y)` and `(b, a) REFERENCES t (y, x)` are the same key); in every
group of two or more, the oldest key (lowest oid) is kept and each later one is a finding that names
it, with both definitions (their `ON DELETE`/`ON UPDATE` actions, `MATCH` type and deferrability may
differ). Keys cloned onto partitions are left out (they follow their parent's). Reads only
`pg_constraint`, so it runs in full on a role with only `pg_monitor`.

## Why it matters
Each foreign key has its own triggers: every insert or key update on the table, and every delete or key
update on the referenced table, checks the relationship once per copy, and each copy's `ON DELETE`
action runs. When the copies' actions differ, which one wins is an accident of trigger order
(alphabetical by trigger name). Duplicates are usually a migration run twice under different names, or
an ORM and a hand-written migration both declaring the key.

## Example
```sql
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers;
```

## What to do instead
Keep one, with the actions the application means, and drop the others:
`ALTER TABLE orders DROP CONSTRAINT orders_customer_fk`.

## How the fix is applied safely
No fix is generated: the copies may differ in their actions or deferrability, which the finding shows,
and which to keep is a person's decision. Dropping a foreign key takes `SHARE ROW EXCLUSIVE` on both
tables, briefly and without a scan; run it with a `lock_timeout` so it does not queue behind a long
transaction.

## Options
None.

## References
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK
- https://www.postgresql.org/docs/current/catalog-pg-constraint.html
- https://www.postgresql.org/docs/current/sql-altertable.html (DROP CONSTRAINT)
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.model import Constraint, Relation
from dbtune.checks import CheckContext, check
from dbtune.checks.foreign_keys import declared_foreign_keys
from dbtune.escape import one_line
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="CN009", name="duplicate-foreign-key", area="constraints", severity="warning")
def duplicate_foreign_key(ctx: CheckContext) -> Iterator[Finding]:
    groups: dict[tuple[object, ...], list[tuple[Constraint, Relation]]] = {}
    for con, table, _ in declared_foreign_keys(ctx):
        pairs = tuple(sorted(zip(con.columns, con.ref_columns, strict=False)))
        groups.setdefault((con.table_oid, con.ref_table_oid, pairs), []).append((con, table))
    for twins in groups.values():
        if len(twins) < 2:
            continue
        (keep, _), *copies = sorted(twins, key=lambda pair: pair[0].oid)
        for con, table in copies:
            yield ctx.finding(
                f"{table.qualified_name}.{quote_ident(con.name)}",
                f"foreign key {quote_ident(con.name)} on {table.qualified_name} ({one_line(con.definition)}) "
                f"duplicates {quote_ident(keep.name)} ({one_line(keep.definition)})",
                evidence={"constraint": con.name, "duplicate_of": keep.name, "definition": con.definition,
                          "kept_definition": keep.definition},
            )
