"""A non-unique btree index whose key is a leading prefix of another index's key.

## What it does
Finds valid, non-unique btree indexes that back no constraint and whose key columns (with their operator
classes, collations and sort options) are the leading columns of another valid btree index on the same
table with the same predicate, for example `(a)` beside `(a, b)`. An index with the same key and fewer
INCLUDE columns than another is redundant too. Unique indexes are never reported: their uniqueness is a
rule, not a speed-up, and a prefix of a unique index is the one to drop. Nor is an index the team's
checklist names (`name` of an `[[expect.index]]` entry): dropping it would bring back its
`expected-index-missing` finding.

## Why it matters
The longer index serves every lookup and ordering the shorter one serves, so the shorter one only costs
writes, vacuum work and memory. The longer index may be somewhat larger to scan, which is rarely
measurable.

## Example
```sql
CREATE INDEX orders_retailer_idx ON orders (retailer_id);
CREATE INDEX orders_retailer_created_idx ON orders (retailer_id, created_at DESC);
```

## What to do instead
Drop the shorter index after checking that no query depends on its smaller size.

## How the fix is applied safely
`DROP INDEX CONCURRENTLY IF EXISTS` outside a transaction block, only with `dbtune migrate generate --include-drops`.
The down step recreates the index concurrently from its definition.

## Options
None.

## References
- https://www.postgresql.org/docs/current/indexes-multicolumn.html
- https://www.postgresql.org/docs/current/sql-dropindex.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.model import Index
from dbtune.checks import CheckContext, check
from dbtune.checks.expectations import team_index_names
from dbtune.migrate.changes import drop_index
from dbtune.model import Finding
from dbtune.units import size_pretty


def _key(ix: Index, n: int) -> tuple[object, ...]:
    return (ix.columns[:n], ix.opclass_oids[:n], ix.collation_oids[:n], ix.options[:n])


def covered_by(short: Index, long: Index) -> bool:
    """Whether ``long`` serves everything ``short`` does (same table, method, predicate)."""
    if long.oid == short.oid or not long.is_valid or long.method != "btree":
        return False
    if long.table_oid != short.table_oid or long.predicate != short.predicate:
        return False
    n = short.n_key_columns
    if _key(short, n) != _key(long, n):
        return False
    if long.n_key_columns > n:
        return not short.include_columns or set(short.include_columns) <= set(long.columns[n:])
    # Same key: redundant only when the other carries strictly more INCLUDE columns.
    return set(short.include_columns) < set(long.include_columns)


@check(id="IX003", name="redundant-index", area="indexes", severity="warning", fix=True)
def redundant_index(ctx: CheckContext) -> Iterator[Finding]:
    tables = {r.oid: r for r in ctx.user_relations()}
    team = team_index_names(ctx)
    for short in ctx.snapshot.indexes:
        if (short.table_oid not in tables or short.method != "btree" or short.is_unique
                or short.backs_constraint or not short.is_valid or short.parent_index_oid is not None
                or (short.table_oid, short.name) in team):
            continue
        covering = [ix for ix in ctx.snapshot.indexes_on(short.table_oid)
                    if ix.parent_index_oid is None and covered_by(short, ix)]
        if not covering:
            continue
        best = min(covering, key=lambda ix: (ix.n_key_columns, not ix.is_unique, ix.oid))
        yield ctx.finding(
            short.qualified_name,
            f"index {short.qualified_name} ({', '.join(short.key_columns)}) is a prefix of "
            f"{best.qualified_name} ({', '.join(best.key_columns)}), which serves the same lookups; "
            f"{size_pretty(short.size_bytes)}",
            evidence={"covered_by": best.qualified_name, "size_bytes": short.size_bytes,
                      "idx_scan": short.idx_scan, "covering_is_unique": best.is_unique},
            changes=(drop_index(short, tables[short.table_oid]),),
        )
