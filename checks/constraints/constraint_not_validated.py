"""A constraint added `NOT VALID` and never validated.

## What it does
Finds foreign-key and check constraints with `pg_constraint.convalidated = false`. A constraint cloned
onto partitions is reported once, on the table where it was declared (a foreign key's clones carry
`conparentid`; a check constraint's copies on partitions carry the parent's name).
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
A `NOT VALID` constraint checks new rows only; existing rows may break it, and the planner cannot use an
unvalidated check constraint (for partition pruning or `constraint_exclusion`). It is usually the first
half of a safe migration whose second half never ran.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total_cents >= 0) NOT VALID;
-- VALIDATE CONSTRAINT never followed
```

## What to do instead
Validate it (after fixing any rows that break it).

## How the fix is applied safely
`ALTER TABLE … VALIDATE CONSTRAINT` takes only `SHARE UPDATE EXCLUSIVE` on the table (and `ROW SHARE` on a
referenced table), so reads and writes go on while existing rows are checked.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-VALIDATE-CONSTRAINT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import validate_constraint
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident

_KINDS = {"f": "foreign key", "c": "check constraint"}


@check(id="CN002", name="constraint-not-validated", area="constraints", severity="warning", fix=True)
def constraint_not_validated(ctx: CheckContext) -> Iterator[Finding]:
    tables = {r.oid: r for r in ctx.user_relations()}
    unvalidated_checks = {(c.table_oid, c.name) for c in ctx.snapshot.constraints
                          if c.type == "c" and not c.validated}
    for con in ctx.snapshot.constraints:
        if con.validated or con.parent_oid is not None or con.table_oid not in tables:
            continue
        parent = tables[con.table_oid].parent_oid
        if con.type == "c" and (parent, con.name) in unvalidated_checks:
            continue  # the partition's copy of its parent's check constraint
        table = tables[con.table_oid]
        kind = _KINDS.get(con.type, "constraint")
        yield ctx.finding(
            f"{table.qualified_name}.{quote_ident(con.name)}",
            f"{kind} {quote_ident(con.name)} on {table.qualified_name} is NOT VALID: rows that existed "
            f"before it was added were never checked ({con.definition})",
            evidence={"constraint": con.name, "type": kind, "definition": con.definition,
                      "table_size_bytes": table.size_bytes},
            changes=(validate_constraint(table, con.name),),
        )
