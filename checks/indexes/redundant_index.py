"""A non-unique btree index whose key is a leading prefix of another index's key.

## What it does
Finds valid, non-unique btree indexes that back no constraint and whose key columns (with their operator
classes, collations and sort options) are the leading columns of another valid btree index on the same
table with the same predicate, for example `(a)` beside `(a, b)`. An index with the same key and fewer
INCLUDE columns than another is no prefix of it: `index-overlaps-include-index` (IX013) reports it.
Unique indexes are never reported: their uniqueness is a rule, not a speed-up, and a prefix of a unique
index is the one to drop. Nor is an index the team's checklist names (`name` of an `[[expect.index]]`
entry): dropping it would bring back its `expected-index-missing` finding.

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

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import covered_by, shadowed_indexes
from dbtune.migrate.changes import drop_index
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="IX003", name="redundant-index", area="indexes", severity="warning", fix=True)
def redundant_index(ctx: CheckContext) -> Iterator[Finding]:
    for table, short, covering in shadowed_indexes(ctx, covered_by):
        best = min(covering, key=lambda ix: (ix.n_key_columns, not ix.is_unique, ix.oid))
        yield ctx.finding(
            short.qualified_name,
            f"index {short.qualified_name} ({', '.join(short.key_columns)}) is a prefix of "
            f"{best.qualified_name} ({', '.join(best.key_columns)}), which serves the same lookups; "
            f"{size_pretty(short.size_bytes)}",
            evidence={"covered_by": best.qualified_name, "size_bytes": short.size_bytes,
                      "idx_scan": short.idx_scan, "covering_is_unique": best.is_unique},
            changes=(drop_index(short, table),),
        )
