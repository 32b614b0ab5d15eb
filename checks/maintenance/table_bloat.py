"""A table's heap takes much more space than its rows need (the statistical bloat estimate).

## What it does
Estimates each user table's and materialized view's bloat from the planner's statistics, with no
extension and without reading the table: the pages `reltuples` rows of the average width in `pg_stats`
(`avg_width`, `null_frac`, tuple header and alignment) would fill at the table's `fillfactor`, against
its `relpages` (heap and TOAST), after ioguix's well-known table bloat query. Tables smaller than
`min_size_bytes` (default 10 MB) are left alone. A table is reported when the estimated bloat reaches
`max_ratio` of its size, as an error from `error_ratio`. Where the `pgstattuple` extension is installed,
the heaps the estimate suspects (1 MB or more, 20 % or more estimated) are measured with
`pgstattuple_approx()` in the same snapshot, and its figures (free space plus dead tuples, heap only) are
judged instead; it needs `pg_stat_scan_tables` (which `pg_monitor` includes), else a skip names it. Its
cost is a read of the pages the visibility map does not mark all-visible, on those heaps only. Where
`pg_stats` lacks a column (never analyzed, or a column of type `name`) the estimate does not apply and
the table is skipped. On a role with only `pg_monitor`, `pg_stats` shows only the columns the role may
`SELECT`: the other tables are skipped and the skip names the privilege.

## Why it matters
Space held by dead tuples that vacuum freed but the table never returned is read by every sequential
scan, takes shared buffers, and is copied by every backup. Some free space is healthy (updates reuse it),
so only a large share on a table of some size is worth acting on.

## Example
`public.events`: 2 GB on disk, its 1.1 million rows of 180 bytes need 240 MB: 88 % bloat, after a purge of
old rows.

## What to do instead
Find why it bloated (a long transaction held vacuum back, autovacuum too slow for the table) and fix that
first, then rebuild the table online with `pg_repack` or `pg_squeeze`. Never `VACUUM FULL` on a live
system: it holds `ACCESS EXCLUSIVE` while it rewrites the table.

## How the fix is applied safely
No fix is generated: an online rebuild needs an extension and a person watching it.

## Options
- `min_size_bytes` (default 10485760, 10 MB): smaller tables are left alone.
- `max_ratio` (default 0.3): the estimated bloat share from which a table is reported.
- `error_ratio` (default 0.6): the share from which it is an error.

## References
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY
- https://www.postgresql.org/docs/current/view-pg-stats.html
- https://github.com/ioguix/pgsql-bloat-estimation
- https://www.postgresql.org/docs/current/pgstattuple.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding, Severity
from dbtune.units import size_pretty


@check(id="MT001", name="table-bloat", area="maintenance", severity="warning",
       options={"min_size_bytes": 10 * 1024**2, "max_ratio": 0.3, "error_ratio": 0.6})
def table_bloat(ctx: CheckContext) -> Iterator[Finding]:
    maintenance = ctx.snapshot.maintenance
    if "bloat" not in maintenance.readable:
        ctx.skip("the bloat estimate could not be read (see the audit's skips)", "pg_monitor")
        return
    not_applicable = []
    for rel in sorted(ctx.user_relations(), key=lambda r: (r.schema, r.name)):
        est = maintenance.bloat.get(rel.oid)
        if est is None or est.real_size_bytes < ctx.options["min_size_bytes"]:
            continue
        if est.not_applicable:
            not_applicable.append(rel.qualified_name)
            continue
        if est.exact_table_len and est.exact_reclaimable_bytes is not None:
            size, bloat, method = est.exact_table_len, est.exact_reclaimable_bytes, "pgstattuple_approx"
            what = f"{size_pretty(bloat)} of its heap's {size_pretty(size)}"
            why = "is free space or dead tuples (pgstattuple_approx)"
        else:
            size, bloat, method = est.real_size_bytes, est.bloat_bytes, "statistical estimate"
            what = f"an estimated {size_pretty(bloat)} of its {size_pretty(size)}"
            why = f"is beyond what its rows need at fillfactor {est.fillfactor}"
        ratio = bloat / size
        if ratio >= ctx.options["max_ratio"]:
            yield ctx.finding(
                rel.qualified_name, f"{rel.qualified_name}: {what} ({ratio:.0%}) {why}",
                evidence={"real_size_bytes": size, "bloat_bytes": bloat, "bloat_ratio": round(ratio, 4),
                          "fillfactor": est.fillfactor, "method": method,
                          "estimated_bloat_bytes": est.bloat_bytes},
                severity=Severity.ERROR if ratio >= ctx.options["error_ratio"] else None)
    if not_applicable:
        ctx.skip(f"{len(not_applicable)} table(s) without full pg_stats (never analyzed, or columns this role "
                 f"may not SELECT), such as {not_applicable[0]}", "SELECT on the tables (pg_stats)")
