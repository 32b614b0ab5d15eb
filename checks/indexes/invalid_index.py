"""An index marked invalid (`pg_index.indisvalid = false`).

## What it does
Finds indexes that PostgreSQL does not use for queries because their build did not finish: usually a
`CREATE INDEX CONCURRENTLY` or `REINDEX CONCURRENTLY` that failed (a duplicate key for a unique index, a
cancelled statement, a deadlock). Indexes being built right now (seen in
`pg_stat_progress_create_index`) are not reported. A partitioned index is invalid while some partition
lacks its index; that is reported on the partitioned index.
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
An invalid index serves no query, yet a `indisready` one is still maintained by every insert and update.
A unique index that is invalid enforces nothing, so the rule it was meant to carry is not in force.

## Example
```sql
CREATE UNIQUE INDEX CONCURRENTLY t_email_key ON t (email);
-- ERROR:  could not create unique index "t_email_key"  (the index stays, INVALID)
```

## What to do instead
Remove the cause (for a unique index, the duplicate rows), then drop and rebuild the index.

## How the fix is applied safely
`DROP INDEX CONCURRENTLY IF EXISTS`, then `CREATE INDEX CONCURRENTLY` with the same definition (without
`IF NOT EXISTS`, which would keep the invalid index if the drop were skipped), each outside a transaction
block and under `SHARE UPDATE EXCLUSIVE`. For a unique index the audit counts the duplicate keys
(evidence `duplicate_keys`, and `duplicate_keys_query` to list them); while there are any, `dbtune migrate
generate` leaves the rebuild out, since it would fail and stop the migration, and generates the rest.
For a partitioned index, the missing partition index is built concurrently and attached instead.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
- https://www.postgresql.org/docs/current/catalog-pg-index.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import rebuild_index
from dbtune.model import Finding


@check(id="IX004", name="invalid-index", area="indexes", severity="error", fix=True)
def invalid_index(ctx: CheckContext) -> Iterator[Finding]:
    tables = {r.oid: r for r in ctx.user_relations()}
    for ix in ctx.snapshot.indexes:
        if ix.is_valid or ix.table_oid not in tables or ix.oid in ctx.snapshot.index_builds:
            continue
        table = tables[ix.table_oid]
        evidence = {"table": table.qualified_name, "size_bytes": ix.size_bytes, "indisready": ix.is_ready,
                    "unique": ix.is_unique, "definition": ix.definition}
        if ix.is_partitioned:
            missing = [r.qualified_name for r in tables.values() if r.parent_oid == table.oid
                       and not any(c.parent_index_oid == ix.oid for c in ctx.snapshot.indexes_on(r.oid))]
            evidence["partitions_without_index"] = missing
            yield ctx.finding(ix.qualified_name,
                              f"partitioned index {ix.qualified_name} is invalid: "
                              f"{len(missing)} partition(s) have no attached index",
                              evidence=evidence)
            continue
        if ix.parent_index_oid is not None:
            continue
        why = " (a unique build fails again until the duplicate keys are removed)" if ix.is_unique else ""
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {table.qualified_name} is INVALID and serves no query; "
            f"drop and rebuild it{why}",
            evidence=evidence,
            changes=rebuild_index(ix, table),
        )
