"""Foreign key whose referencing columns have no index.

## What it does
Finds foreign keys whose columns on the referencing (child) table are not the leading columns of any
valid, non-partial btree index on that table.
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
Every `DELETE` on the referenced table, and every update of its key, makes PostgreSQL look up matching
rows in the child table. Without an index that lookup is a sequential scan of the whole child table, run
once per deleted parent row while locks are held. Joins from parent to child suffer the same way.

## Example
```sql
CREATE TABLE orders (id bigint PRIMARY KEY, retailer_id bigint REFERENCES retailers (id));
-- no index on orders (retailer_id)
```

## What to do instead
Index the referencing columns, in the order the foreign key lists them.

## How the fix is applied safely
`CREATE INDEX CONCURRENTLY IF NOT EXISTS` takes a `SHARE UPDATE EXCLUSIVE` lock, so reads and writes go on
while it builds; it must run outside a transaction block. On a partitioned table the index is created
`ON ONLY` the parent, built concurrently on each partition, then attached.

## Options
None. The finding's evidence gives the child table's size and the parent's update and delete counts, to
rank the findings.

## References
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.matching import covers_leading
from dbtune.migrate.changes import create_index, index_name
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="IX001", name="foreign-key-without-index", area="indexes", severity="warning", fix=True)
def foreign_key_without_index(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    tables = {r.oid: r for r in ctx.user_relations()}
    for con in snap.constraints:
        # A foreign key cloned onto a partition (conparentid set) is reported once, on the parent.
        if con.type != "f" or con.parent_oid is not None or con.table_oid not in tables:
            continue
        if any(covers_leading(ix, con.columns) for ix in snap.indexes_on(con.table_oid)):
            continue
        table = tables[con.table_oid]
        ref = snap.relations.get(con.ref_table_oid or 0)
        cols = [table.column(a).name for a in con.columns if table.column(a)]  # type: ignore[union-attr]
        quoted = [quote_ident(c) for c in cols]
        ref_name = ref.qualified_name if ref else str(con.ref_table_oid)
        evidence = {
            "constraint": con.name,
            "columns": cols,
            "referenced_table": ref_name,
            "table_size_bytes": table.size_bytes,
            "table_reltuples": max(table.reltuples, 0),
        }
        if ref and ref.stats:
            evidence["referenced_updates"] = ref.stats.n_tup_upd
            evidence["referenced_deletes"] = ref.stats.n_tup_del
        yield ctx.finding(
            table.qualified_name,
            f"foreign key {quote_ident(con.name)} ({', '.join(quoted)}) → {ref_name} has no index on "
            f"{table.qualified_name} ({', '.join(quoted)}); deletes and key updates on {ref_name} scan it",
            evidence=evidence,
            changes=create_index(snap, table, index_name(table.name, quoted), quoted),
        )
