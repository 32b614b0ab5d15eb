"""`ALTER COLUMN … TYPE` on an existing table, which usually rewrites the table under `ACCESS EXCLUSIVE`.

## What it does
Finds `ALTER TABLE … ALTER COLUMN … [SET DATA] TYPE …` (and `op.alter_column(…, type_=…)` in Alembic
revisions) on a table the same file did not create. The old type is not in the migration, so the rule
cannot tell a rewrite from a binary-coercible change; the message says which changes are free.

squawk's `changing-column-type` reports the same statements; when both do, dbtune's finding carries
squawk's.

## Why it matters
Unless the old and new types are binary-coercible, PostgreSQL rewrites the whole table and rebuilds
every index on it while holding `ACCESS EXCLUSIVE`: no query runs on the table until it is done, and the
rewrite needs as much free disk again as the table and its indexes. Code that still reads the old type
may also break.

## Example
```sql
ALTER TABLE events ALTER COLUMN id TYPE bigint;
```

## What to do instead
Changes that are free (no rewrite, no index rebuild): `varchar(n)` → `text` or to a longer
`varchar`, `varchar`/`text` → unconstrained `varchar`, `numeric(p, s)` → `numeric` with a larger `p`
and the same `s`, and (when the session time zone is UTC) `timestamp` ↔ `timestamptz`. For anything
else, add a new column, backfill it in batches, switch the application over, then drop the old column;
or use a tool that rewrites the table online (pg_repack, logical replication).

## How the fix is applied safely
No fix is generated: the safe path (a new column, a backfill, a switch in the application) takes
several deployments.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DATA-TYPE
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://squawkhq.com/docs/changing-column-type
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.migrate.ddl import AT, describe, render
from dbtune.migrate.lint import LintContext
from dbtune.model import Finding


@check(id="MG010", name="column-type-changed", area="migrations", severity="warning")
def column_type_changed(ctx: LintContext) -> Iterator[Finding]:
    for stmt, name, cmds in ctx.altered_existing_tables(AT.AT_AlterColumnType):
        table = describe(name)
        for cmd in cmds:
            new_type = render(cmd.def_.typeName) if not stmt.is_alembic else "a new type"
            yield ctx.finding(
                stmt, f"changing {table}.{cmd.name} to {new_type} rewrites the table and rebuilds its indexes "
                      f"under ACCESS EXCLUSIVE unless the old type is binary-coercible to it (e.g. varchar(n) "
                      f"→ text); otherwise add a new column and backfill it",
                evidence={"table": table, "column": cmd.name, "lock": "ACCESS EXCLUSIVE"})
