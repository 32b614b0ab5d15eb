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
from dbtune.checks.index_health import indexed_tables, state_needed
from dbtune.model import Finding, Severity
from dbtune.units import size_pretty


@check(id="IX009", name="index-bloat", area="indexes", severity="warning",
       options={"min_size_bytes": 10 * 1024**2, "max_ratio": 0.3, "error_ratio": 0.6},
       option_ranges={"min_size_bytes": (0, None), "max_ratio": (0.0, 1.0), "error_ratio": (0.0, 1.0)})
def index_bloat(ctx: CheckContext) -> Iterator[Finding]:
    if not state_needed(ctx, "bloat"):
        return
    estimates = ctx.snapshot.index_health.bloat
    not_applicable = []
    for rel, ix in indexed_tables(ctx):
        est = estimates.get(ix.oid)
        if est is None or est.real_size_bytes < ctx.options["min_size_bytes"]:
            continue
        if est.not_applicable:
            not_applicable.append(ix.qualified_name)
            continue
        if est.exact_size_bytes and est.exact_reclaimable_bytes is not None:
            size, bloat, method = est.exact_size_bytes, est.exact_reclaimable_bytes, "pgstatindex"
            what = f"{size_pretty(bloat)} of its {size_pretty(size)} (pgstatindex)"
        else:
            size, bloat, method = est.real_size_bytes, est.bloat_bytes, "statistical estimate"
            what = f"an estimated {size_pretty(bloat)} of its {size_pretty(size)}"
        ratio = bloat / size
        if ratio < ctx.options["max_ratio"]:
            continue
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {rel.qualified_name}: {what} ({ratio:.0%}) is beyond what its "
            f"entries need at fillfactor {est.fillfactor}; REINDEX INDEX CONCURRENTLY rebuilds it online",
            evidence={"real_size_bytes": size, "bloat_bytes": bloat, "bloat_ratio": round(ratio, 4),
                      "fillfactor": est.fillfactor, "method": method, "estimated_bloat_bytes": est.bloat_bytes},
            severity=Severity.ERROR if ratio >= ctx.options["error_ratio"] else None)
    if not_applicable:
        ctx.skip(f"{len(not_applicable)} index(es) without full pg_stats (never analyzed, or columns this role "
                 f"may not SELECT), such as {not_applicable[0]}", "SELECT on the tables (pg_stats)")
