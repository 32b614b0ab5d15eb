"""A full btree index whose leading column is mostly NULL.

## What it does
Finds valid, non-unique btree indexes without a predicate (`WHERE`) whose leading key column is, by the
planner's statistics (`pg_stats.null_frac`, so the table must have been analyzed), NULL in at least
`min_null_frac` of the rows (default 0.5), and that take at least `min_size_bytes` (default 1 MB, so small
indexes never report). Unique indexes and indexes backing a constraint are left alone. On a role with only
`pg_monitor`, `pg_stats` shows only the columns the role may `SELECT`; the others are not judged.

## Why it matters
A btree stores an entry for every NULL. A lookup like `WHERE col = $1` never matches NULL, so those
entries only cost space, writes and vacuum work; a partial index holds the rows queries look for.

## Example
```sql
CREATE INDEX orders_cancelled_at_idx ON orders (cancelled_at);  -- 97 % of orders are never cancelled
```

## What to do instead
```sql
CREATE INDEX CONCURRENTLY orders_cancelled_at_nn_idx ON orders (cancelled_at) WHERE cancelled_at IS NOT NULL;
DROP INDEX CONCURRENTLY orders_cancelled_at_idx;
```
unless a query searches `WHERE cancelled_at IS NULL` (then the full index serves it).

## How the fix is applied safely
No fix is generated: whether some query needs the NULL entries is for a person to decide; the two
statements above run outside a transaction block under `SHARE UPDATE EXCLUSIVE`.

## Options
- `min_null_frac` (default 0.5): the share of NULL rows from which an index is reported.
- `min_size_bytes` (default 1048576, 1 MB): smaller indexes are left alone.

## References
- https://www.postgresql.org/docs/current/indexes-partial.html
- https://www.postgresql.org/docs/current/view-pg-stats.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import analyzed_full_indexes
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident
from dbtune.units import size_pretty


@check(id="IX010", name="index-on-mostly-null-column", area="indexes", severity="info",
       options={"min_null_frac": 0.5, "min_size_bytes": 1024**2},
       option_ranges={"min_null_frac": (0.0, 1.0), "min_size_bytes": (0, None)})
def index_on_mostly_null_column(ctx: CheckContext) -> Iterator[Finding]:
    for rel, ix, col, st in analyzed_full_indexes(ctx, ctx.options["min_size_bytes"]):
        if st.null_frac < ctx.options["min_null_frac"]:
            continue
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {rel.qualified_name}: its leading column {quote_ident(col.name)} is NULL "
            f"in {st.null_frac:.0%} of the rows, and the index stores every one of them; "
            f"{size_pretty(ix.size_bytes)}; a partial index WHERE {quote_ident(col.name)} IS NOT NULL holds the rest",
            evidence={"column": col.name, "null_frac": round(st.null_frac, 4), "size_bytes": ix.size_bytes,
                      "idx_scan": ix.idx_scan})
