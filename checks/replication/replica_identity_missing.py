"""A published table without a usable replica identity.

## What it does
Reads what the publications publish (`pg_publication_tables`, which expands `FOR ALL TABLES` and
`FOR TABLES IN SCHEMA`) and each table's replica identity (`pg_class.relreplident`). Reports a table
that a publication publishing `UPDATE` or `DELETE` includes when its identity is `DEFAULT` and it has
no primary key, `NOTHING`, or `USING INDEX` whose index is gone or invalid. Tables published for
`INSERT` only, and tables with `REPLICA IDENTITY FULL`, are not reported. Both views are readable by
every role, so it runs unchanged on a role with only `pg_monitor`.

## Why it matters
Logical replication identifies the old row of an `UPDATE` or `DELETE` by the replica identity. Without
one, PostgreSQL refuses the statement on the publisher (`cannot update table … because it does not
have a replica identity and publishes updates`): the application's writes fail, not only replication.

## Example
```sql
CREATE TABLE events (at timestamptz, payload jsonb);   -- no primary key
CREATE PUBLICATION app_pub FOR ALL TABLES;
```

## What to do instead
Add a primary key (`ADD PRIMARY KEY USING INDEX` on an index built `CONCURRENTLY`), or set
`REPLICA IDENTITY USING INDEX` on a unique index over `NOT NULL` columns; `REPLICA IDENTITY FULL` works
but makes the subscriber scan for each changed row.

## How the fix is applied safely
No fix is generated: which key identifies a row is a design decision.

## Options
None.

## References
- https://www.postgresql.org/docs/current/logical-replication-publication.html
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-REPLICA-IDENTITY
- https://www.postgresql.org/docs/current/view-pg-publication-tables.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.replication import PublishedTable
from dbtune.checks import CheckContext, check
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


def _missing(t: PublishedTable) -> str | None:
    """Why ``t`` has no usable replica identity, or None."""
    if t.replident == "n":
        return "REPLICA IDENTITY NOTHING"
    if t.replident == "d" and not t.has_primary_key:
        return "REPLICA IDENTITY DEFAULT and no primary key"
    if t.replident == "i" and not t.has_identity_index:
        return "REPLICA IDENTITY USING INDEX whose index is gone or invalid"
    return None


@check(id="RP001", name="replica-identity-missing", area="replication", severity="error")
def replica_identity_missing(ctx: CheckContext) -> Iterator[Finding]:
    replication = ctx.snapshot.replication
    if replication is None or replication.published_tables is None:
        ctx.skip("pg_publication_tables could not be read", "pg_monitor")
        return
    tables = {r.oid: r for r in ctx.user_relations()}
    for t in replication.published_tables:
        why = _missing(t)
        if why is None or not t.publishes_update_delete or t.relid not in tables:
            continue
        table = tables[t.relid]
        if table.kind == "p":
            continue  # a partitioned table holds no rows; its partitions are listed and judged themselves
        yield ctx.finding(
            table.qualified_name,
            f"{table.qualified_name} is published ({', '.join(quote_ident(p) for p in t.publications)}) "
            f"with {why}: "
            f"UPDATE and DELETE on it fail",
            evidence={"publications": list(t.publications), "relreplident": t.replident,
                      "has_primary_key": t.has_primary_key, "reltuples": table.reltuples},
        )
