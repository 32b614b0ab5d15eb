"""A btree index takes much more space than its entries need (the statistical bloat estimate).

## What it does
Estimates each valid btree index's bloat from the planner's statistics, with no extension and without
reading the index: the leaf pages `reltuples` entries of the average key width in `pg_stats` (`avg_width`
and `null_frac` of each key and INCLUDE column, or the index's own statistics for an expression) would
fill at the index's `fillfactor` (90 unless set), against its `relpages`, after ioguix's well-known btree
bloat query (the one PgHero and pg-index-health use). Indexes smaller than `min_size_bytes` (default
10 MB) are left alone, so small indexes never report. An index is reported when its bloat reaches
`max_ratio` of its size, as an error from `error_ratio`. Where the `pgstattuple` extension is installed,
the five indexes with the largest estimates (1 MB or more, 20 % or more) are measured with
`pgstatindex()` in the same snapshot, and its figures are judged instead (empty and deleted pages, and
leaf space below the fillfactor's density); the finding's `method` says which was used. `pgstatindex()`
reads the whole index and needs `pg_stat_scan_tables` (which `pg_monitor` includes), else a skip names
it. Where `pg_stats` lacks a column (never analyzed, or a column of type `name`) the estimate does not
apply and the index is skipped. On a role with only `pg_monitor`, `pg_stats` shows only the columns the
role may `SELECT`: indexes of the other tables are skipped, and the skip names the privilege.

## Why it matters
A bloated index is read page by page by every range scan and takes shared buffers for pages that are
mostly empty; after a mass delete or many updates of a key, btree pages are not merged back.

## Example
`public.events_created_at_idx`: 1.2 GB, its 4 million entries of 16 bytes need 130 MB: 89 % bloat.

## What to do instead
`REINDEX INDEX CONCURRENTLY public.events_created_at_idx;` (PostgreSQL 12+) builds it again beside the
old one and swaps them, under `SHARE UPDATE EXCLUSIVE`; writes go on. If the index bloats again quickly,
look at what updates or deletes its key.

## How the fix is applied safely
No fix is generated: the rebuild needs room for a second copy of the index and is best run when a person
watches it; the statement above is the one to run.

## Options
- `min_size_bytes` (default 10485760, 10 MB): smaller indexes are left alone.
- `max_ratio` (default 0.3): the bloat share from which an index is reported.
- `error_ratio` (default 0.6): the share from which it is an error.

## References
- https://www.postgresql.org/docs/current/routine-reindex.html
- https://www.postgresql.org/docs/current/sql-reindex.html
- https://www.postgresql.org/docs/current/view-pg-stats.html
- https://www.postgresql.org/docs/current/pgstattuple.html
- https://github.com/ioguix/pgsql-bloat-estimation
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.bloat import bloated
from dbtune.checks.index_health import indexed_tables, state_needed
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="IX009", name="index-bloat", area="indexes", severity="warning",
       options={"min_size_bytes": 10 * 1024**2, "max_ratio": 0.3, "error_ratio": 0.6},
       option_ranges={"min_size_bytes": (0, None), "max_ratio": (0.0, 1.0), "error_ratio": (0.0, 1.0)})
def index_bloat(ctx: CheckContext) -> Iterator[Finding]:
    if not state_needed(ctx, "bloat"):
        return
    for b in bloated(ctx, ((pair, pair[1].qualified_name, pair[1].oid) for pair in indexed_tables(ctx)),
                     ctx.snapshot.index_health.bloat, exact_size=lambda est: est.exact_size_bytes,
                     exact_method="pgstatindex", plural="index(es)"):
        rel, ix = b.subject
        what = (f"{size_pretty(b.bloat_bytes)} of its {size_pretty(b.size_bytes)} (pgstatindex)" if b.exact
                else f"an estimated {size_pretty(b.bloat_bytes)} of its {size_pretty(b.size_bytes)}")
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {rel.qualified_name}: {what} ({b.ratio:.0%}) is beyond what its "
            f"entries need at fillfactor {b.estimate.fillfactor}; REINDEX INDEX CONCURRENTLY rebuilds it online",
            evidence=b.evidence(), severity=b.severity)
