"""An index whose key another index repeats with more INCLUDE columns.

## What it does
Finds valid, non-unique btree indexes that back no constraint and whose key columns (with their operator
classes, collations, sort options and predicate) are exactly the key of another valid btree index on the
same table that carries more `INCLUDE` columns, for example `(a)` beside `(a) INCLUDE (b)`. The two are
reported as overlapping, with both definitions in the message. Unique indexes and indexes the team's
checklist names (`name` of an `[[expect.index]]` entry) are left alone, as for `redundant-index`. A
longer key (`(a)` beside `(a, b)`) is `redundant-index`'s. Reads only the catalog, so it works the same
on a role with only `pg_monitor`.

## Why it matters
The covering index finds the same rows by the same key and can also answer from its INCLUDE columns
without visiting the heap, so the plain one only costs writes, vacuum work and memory. The covering index's
leaf pages are wider, which makes a scan of it somewhat longer; that is rarely measurable.

## Example
```sql
CREATE INDEX orders_customer_idx ON orders (customer_id);
CREATE INDEX orders_customer_cov_idx ON orders (customer_id) INCLUDE (status, total);
```

## What to do instead
Drop the index without INCLUDE columns.

## How the fix is applied safely
`DROP INDEX CONCURRENTLY IF EXISTS` outside a transaction block, only with `dbtune migrate generate
--include-drops`. The down step recreates the index concurrently from its definition.

## Options
None.

## References
- https://www.postgresql.org/docs/current/indexes-index-only-scans.html
- https://www.postgresql.org/docs/current/sql-createindex.html
- https://www.postgresql.org/docs/current/sql-dropindex.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import overlapped_by, shadowed_indexes
from dbtune.migrate.changes import drop_index
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="IX013", name="index-overlaps-include-index", area="indexes", severity="warning", fix=True)
def index_overlaps_include_index(ctx: CheckContext) -> Iterator[Finding]:
    for table, plain, covering in shadowed_indexes(ctx, overlapped_by):
        best = min(covering, key=lambda ix: (len(ix.include_columns), not ix.is_unique, ix.oid))
        yield ctx.finding(
            plain.qualified_name,
            f"index {plain.qualified_name} overlaps {best.qualified_name}: they have the same key, and the "
            f"second also carries INCLUDE ({', '.join(best.include_columns)}), so it serves every lookup the "
            f"first does ({plain.definition}; {best.definition}); {size_pretty(plain.size_bytes)}",
            evidence={"overlapped_by": best.qualified_name, "definition": plain.definition,
                      "overlapping_definition": best.definition, "size_bytes": plain.size_bytes,
                      "idx_scan": plain.idx_scan},
            changes=(drop_index(plain, table),),
        )
