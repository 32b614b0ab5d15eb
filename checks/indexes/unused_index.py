"""An index that no query has used since statistics were reset.

## What it does
Finds valid indexes with no scans (`pg_stat_all_indexes.idx_scan = 0`, summed over partitions for a
partitioned index) when the statistics are at least `min_stats_age_days` old. Unique, primary-key and
constraint-backing indexes are never reported (they enforce rules), nor indexes that support a foreign key.
The finding states the age of the statistics it judged by. When the statistics are younger, the check
says it was skipped.
On a role with only `pg_monitor` it runs in full: the cumulative statistics views it reads are readable by
every role.

## Why it matters
An unused index costs every insert and indexed update, vacuum time, memory and backup size, for nothing.

## Example
```sql
CREATE INDEX orders_note_idx ON orders (note);  -- never used by any query
```

## What to do instead
Check the other servers too (statistics are per server: a replica may use the index), then drop it.

## How the fix is applied safely
`DROP INDEX CONCURRENTLY IF EXISTS` outside a transaction block, only with `dbtune migrate generate --include-drops`;
the down step rebuilds it concurrently from its definition.

## Options
- `min_stats_age_days` (default 7): how old the statistics must be before an unscanned index is reported.
- `min_size_bytes` (default 0): smaller indexes are not reported.

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-INDEXES-VIEW
- https://www.postgresql.org/docs/current/sql-dropindex.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.matching import covers_leading
from dbtune.migrate.changes import drop_index
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="IX005", name="unused-index", area="indexes", severity="warning", fix=True,
       options={"min_stats_age_days": 7, "min_size_bytes": 0})
def unused_index(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    since = snap.stats_since
    age_days = (snap.server.now - since).total_seconds() / 86400
    basis = snap.stats_basis
    if age_days < ctx.options["min_stats_age_days"]:
        ctx.skip(f"statistics are {age_days:.1f} days old (since {basis}); "
                 f"min_stats_age_days is {ctx.options['min_stats_age_days']}")
        return
    tables = {r.oid: r for r in ctx.user_relations()}
    scans_of_children: dict[int, int] = {}
    for ix in snap.indexes:
        if ix.parent_index_oid is not None:
            scans_of_children[ix.parent_index_oid] = scans_of_children.get(ix.parent_index_oid, 0) + (
                ix.idx_scan or 0)
    # Foreign-key column lists by referencing table, so each index is matched against its own table's
    # foreign keys only (not against every foreign key of the database).
    fk_columns: dict[int, set[tuple[int, ...]]] = {}
    for c in snap.constraints:
        if c.type == "f":
            fk_columns.setdefault(c.table_oid, set()).add(c.columns)
    for ix in snap.indexes:
        if (ix.table_oid not in tables or not ix.is_valid or ix.is_unique or ix.is_primary
                or ix.backs_constraint or ix.parent_index_oid is not None):
            continue
        scans = (ix.idx_scan or 0) + scans_of_children.get(ix.oid, 0)
        if scans > 0 or ix.size_bytes < ctx.options["min_size_bytes"]:
            continue
        if any(covers_leading(ix, cols) for cols in fk_columns.get(ix.table_oid, ())):
            continue
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {tables[ix.table_oid].qualified_name} has had no scans in "
            f"{age_days:.0f} days of statistics (since {basis}); {size_pretty(ix.size_bytes)}",
            evidence={"idx_scan": scans, "size_bytes": ix.size_bytes, "stats_age_days": round(age_days, 1),
                      "stats_since": since.isoformat()},
            changes=(drop_index(ix, tables[ix.table_oid]),),
        )
