"""A large btree index on a column stored in its own order, where a BRIN index would do.

## What it does
Finds valid, non-unique btree indexes with a single key column of a date or time type (`timestamp`,
`timestamptz`, `date`), no predicate and no INCLUDE columns, of at least `min_size_bytes`
(default 1 GB), whose column's physical order follows its values: `pg_stats.correlation` at or beyond
`min_correlation` (default 0.9) in absolute value, as in append-only tables keyed by time. Needs the table
analyzed. Integer columns are left out even when ordered: they are mostly keys, looked up by equality
(a foreign key's checks, joins), which BRIN serves badly. On a role with only `pg_monitor`, `pg_stats`
shows only the columns the role may `SELECT`; the others are not judged.

## Why it matters
A BRIN index stores the range of values of each block range (128 pages by default): on a well-correlated
column it is a few hundred kilobytes where the btree takes gigabytes, costs almost nothing on insert, and
still narrows range scans (`WHERE created_at >= now() - interval '1 day'`) to the right blocks.

## Example
`public.events_created_at_idx`: 6 GB btree on `created_at`, correlation 0.998.

## What to do instead
For range queries: `CREATE INDEX CONCURRENTLY events_created_at_brin ON events USING brin (created_at);`,
compare the plans, then drop the btree. Keep the btree where queries look up single values or need its
order for `ORDER BY … LIMIT`.

## How the fix is applied safely
No fix is generated: only the queries tell whether BRIN serves them; both statements above run outside a
transaction block.

## Options
- `min_size_bytes` (default 1073741824, 1 GB): smaller btree indexes are left alone.
- `min_correlation` (default 0.9): the absolute correlation from which a column counts as ordered.

## References
- https://www.postgresql.org/docs/current/brin-intro.html
- https://www.postgresql.org/docs/current/view-pg-stats.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import analyzed_full_indexes
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident
from dbtune.units import size_pretty

ORDERED_TYPES = frozenset({"timestamp without time zone", "timestamp with time zone", "date"})


@check(id="IX017", name="brin-candidate", area="indexes", severity="info",
       options={"min_size_bytes": 1024**3, "min_correlation": 0.9},
       option_ranges={"min_size_bytes": (0, None), "min_correlation": (0.0, 1.0)})
def brin_candidate(ctx: CheckContext) -> Iterator[Finding]:
    for rel, ix, col, st in analyzed_full_indexes(ctx, ctx.options["min_size_bytes"]):
        if (ix.n_key_columns != 1 or ix.include_columns or col.type not in ORDERED_TYPES or st.correlation is None
                or abs(st.correlation) < ctx.options["min_correlation"]):
            continue
        yield ctx.finding(
            ix.qualified_name,
            f"btree index {ix.qualified_name} on {rel.qualified_name} ({quote_ident(col.name)}, {col.type}) "
            f"takes {size_pretty(ix.size_bytes)}, and the column's rows are stored in its order (correlation "
            f"{st.correlation:.3f}): a BRIN index would serve its range scans in a fraction of the space",
            evidence={"column": col.name, "correlation": round(st.correlation, 4), "size_bytes": ix.size_bytes,
                      "idx_scan": ix.idx_scan})
