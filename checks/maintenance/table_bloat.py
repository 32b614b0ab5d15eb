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
from dbtune.checks.bloat import bloated
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="MT001", name="table-bloat", area="maintenance", severity="warning",
       options={"min_size_bytes": 10 * 1024**2, "max_ratio": 0.3, "error_ratio": 0.6})
def table_bloat(ctx: CheckContext) -> Iterator[Finding]:
    maintenance = ctx.snapshot.maintenance
    if "bloat" not in maintenance.readable:
        ctx.skip("the bloat estimate could not be read (see the audit's skips)", "pg_monitor")
        return
    relations = sorted(ctx.user_relations(), key=lambda r: (r.schema, r.name))
    for b in bloated(ctx, ((rel, rel.qualified_name, rel.oid) for rel in relations), maintenance.bloat,
                     exact_size=lambda est: est.exact_table_len, exact_method="pgstattuple_approx",
                     plural="table(s)"):
        if b.exact:
            what = f"{size_pretty(b.bloat_bytes)} of its heap's {size_pretty(b.size_bytes)}"
            why = "is free space or dead tuples (pgstattuple_approx)"
        else:
            what = f"an estimated {size_pretty(b.bloat_bytes)} of its {size_pretty(b.size_bytes)}"
            why = f"is beyond what its rows need at fillfactor {b.estimate.fillfactor}"
        yield ctx.finding(b.subject.qualified_name, f"{b.subject.qualified_name}: {what} ({b.ratio:.0%}) {why}",
                          evidence=b.evidence(), severity=b.severity)
