"""An update-heavy table whose updates are rarely HOT.

## What it does
Compares each user table's HOT updates with its updates since the statistics were last reset
(`pg_stat_all_tables.n_tup_hot_upd / n_tup_upd`). A table with at least `min_updates` updates
(default 10,000) and a HOT share under `min_hot_ratio` (default 0.5) is reported, with its index count
and `fillfactor`. A role with only `pg_monitor` reads these counters.

## Why it matters
A heap-only tuple (HOT) update writes no index entry: it needs room on the same page and no indexed
column changed. When updates are not HOT, each one writes every index and leaves dead index entries for
vacuum, and the table and its indexes bloat faster.

## Example
`public.accounts`: 1.2 million updates, 8 % HOT; 6 indexes, fillfactor 100.

## What to do instead
Find which indexed columns the updates change (an index on `updated_at` defeats HOT for every update)
and drop or narrow those indexes; leave room on the pages with a lower fillfactor
(`ALTER TABLE … SET (fillfactor = 90)`, which applies to pages written from then on).

## How the fix is applied safely
No fix is generated: the cause decides the fix.

## Options
- `min_updates` (default 10000): updates below which a table is not judged.
- `min_hot_ratio` (default 0.5): the HOT share below which a table is reported.

## References
- https://www.postgresql.org/docs/current/storage-hot.html
- https://www.postgresql.org/docs/current/sql-createtable.html#RELOPTION-FILLFACTOR
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import state_needed
from dbtune.model import Finding


@check(id="IX016", name="hot-update-ratio-low", area="indexes", severity="info",
       options={"min_updates": 10000, "min_hot_ratio": 0.5},
       option_ranges={"min_updates": (1, None), "min_hot_ratio": (0.0, 1.0)})
def hot_update_ratio_low(ctx: CheckContext) -> Iterator[Finding]:
    if not state_needed(ctx, "updates"):
        return
    updates = ctx.snapshot.index_health.updates
    for rel in sorted(ctx.user_relations(), key=lambda r: (r.schema, r.name)):
        n_upd, n_hot = updates.get(rel.oid, (0, 0))
        if n_upd < ctx.options["min_updates"] or n_hot / n_upd >= ctx.options["min_hot_ratio"]:
            continue
        tm = ctx.snapshot.maintenance.tables.get(rel.oid)
        fillfactor = (tm.reloptions.get("fillfactor") if tm else None) or "100"
        count = sum(1 for ix in ctx.snapshot.indexes_on(rel.oid) if ix.is_valid)
        yield ctx.finding(
            rel.qualified_name,
            f"{rel.qualified_name}: {n_hot:,} of {n_upd:,} updates ({n_hot / n_upd:.0%}) were HOT; the others "
            f"wrote all {count} of its indexes (an updated column is indexed, or pages had no room: "
            f"fillfactor {fillfactor})",
            evidence={"n_tup_upd": n_upd, "n_tup_hot_upd": n_hot, "hot_ratio": round(n_hot / n_upd, 4),
                      "indexes": count, "fillfactor": int(fillfactor)})
