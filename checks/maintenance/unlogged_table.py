"""A table is UNLOGGED: it is emptied after a crash and never reaches a standby.

## What it does
Reports each user table whose `pg_class.relpersistence` is `u` (created `UNLOGGED` or altered `SET
UNLOGGED`), with its size. On a role with only `pg_monitor` the check runs in full.

## Why it matters
An unlogged table writes no WAL: after a crash or an immediate shutdown PostgreSQL truncates it, streaming
and logical replicas have it empty, and point-in-time recovery and `pg_basebackup` copies do not hold its
rows. That is right for a cache or a staging table that can be rebuilt, and data loss for anything else;
it is often left from a bulk load that meant to `SET LOGGED` afterwards.

## Example
```sql
CREATE UNLOGGED TABLE sessions (id uuid PRIMARY KEY, data jsonb);
```

## What to do instead
Keep it unlogged only if its rows can be rebuilt, and say so (exclude the table from this check with the
config's `exclude_schemas`, or ignore the check). Otherwise `ALTER TABLE … SET LOGGED` in a maintenance
window.

## How the fix is applied safely
No fix is generated: `ALTER TABLE … SET LOGGED` rewrites the table and writes all of it to WAL under an
`ACCESS EXCLUSIVE` lock, which blocks reads and writes for the whole rewrite.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-createtable.html#SQL-CREATETABLE-UNLOGGED
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-LOGGED-UNLOGGED
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import maintained_tables
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="MT011", name="unlogged-table", area="maintenance", severity="warning")
def unlogged_table(ctx: CheckContext) -> Iterator[Finding]:
    for rel, tm in maintained_tables(ctx):
        if tm.persistence == "u":
            yield ctx.finding(
                rel.qualified_name,
                f"{rel.qualified_name} is UNLOGGED ({size_pretty(rel.size_bytes)}): it is emptied after a crash "
                f"and replicas and base backups do not have its rows",
                evidence={"relpersistence": "u", "size_bytes": rel.size_bytes})
