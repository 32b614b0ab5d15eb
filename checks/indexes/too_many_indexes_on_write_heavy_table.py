"""A write-heavy table carrying many indexes.

## What it does
Counts the valid indexes of each user table (a partitioned table's on each partition) and its rows
written since the statistics were last reset (`pg_stat_all_tables.n_tup_ins + n_tup_upd + n_tup_del`).
A table with more than `max_indexes` indexes (default 10) and at least `min_writes` rows written
(default 100,000) is reported. A role with only `pg_monitor` reads these counters.

## Why it matters
Every insert and delete, and every update that is not HOT, writes each index: ten indexes turn one row
written into eleven page changes, with their WAL, and vacuum scans every index. On a write-heavy table the
indexes that few queries need are paid for on every write.

## Example
`public.events`: 14 indexes, 2.3 million rows written since the statistics were reset.

## What to do instead
Drop the indexes no query needs (see `unused-index`, `redundant-index`), merge those that share a leading
column, and keep the indexed columns out of frequent updates.

## How the fix is applied safely
No fix is generated: which indexes can go is for a person to decide.

## Options
- `max_indexes` (default 10): the number of indexes above which a table is reported.
- `min_writes` (default 100000): rows written below which a table is not judged.

## References
- https://www.postgresql.org/docs/current/indexes-intro.html
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding


@check(id="IX015", name="too-many-indexes-on-write-heavy-table", area="indexes", severity="info",
       options={"max_indexes": 10, "min_writes": 100000},
       option_ranges={"max_indexes": (1, None), "min_writes": (0, None)})
def too_many_indexes_on_write_heavy_table(ctx: CheckContext) -> Iterator[Finding]:
    for rel in sorted(ctx.user_relations(), key=lambda r: (r.schema, r.name)):
        if rel.stats is None or rel.is_partitioned:
            continue
        count = sum(1 for ix in ctx.snapshot.indexes_on(rel.oid) if ix.is_valid)
        writes = rel.stats.n_tup_ins + rel.stats.n_tup_upd + rel.stats.n_tup_del
        if count <= ctx.options["max_indexes"] or writes < ctx.options["min_writes"]:
            continue
        yield ctx.finding(
            rel.qualified_name,
            f"{rel.qualified_name} has {count} indexes and {writes:,} rows written since the statistics were "
            f"reset: every insert, delete and non-HOT update writes all {count}",
            evidence={"indexes": count, "n_tup_ins": rel.stats.n_tup_ins, "n_tup_upd": rel.stats.n_tup_upd,
                      "n_tup_del": rel.stats.n_tup_del})
