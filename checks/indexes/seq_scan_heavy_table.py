"""A large table read mostly by sequential scans.

## What it does
Reports tables with at least `min_live_tuples` live tuples that were sequentially scanned at least
`min_seq_scans` times, with sequential scans making up at least `min_seq_scan_ratio` of all scans, from
`pg_stat_all_tables` since the statistics were reset. Partitions are added up into their partitioned
table, where an index would be created.

The message says since when the counters run: `stats_reset` of the database
(`pg_stat_database.stats_reset`), or the server's start when they were never reset. They are cumulative,
so after an index is built they still hold the sequential scans made before it: a warning whose window
starts before the fix is no sign that the fix failed. Reset them (`SELECT pg_stat_reset()`, as a
superuser or with the privilege granted) and audit again once the workload has run.

The sequential scans must also have read, together, at least `min_seq_scans` times the table's live
tuples (that many whole-table passes, however many partitions each pass visited): scans made while the
table was small or empty (the DDL that creates, constrains or attaches a table scans it) and scans that
stop early do not count as reads of a large table.
On a role with only `pg_monitor` it runs in full: the cumulative statistics views it reads are readable by
every role.

## Why it matters
Each sequential scan of a large table reads every page. When the workload does it often, a query is
usually missing an index, and the scans evict useful pages from shared buffers.

## Example
A table of 500,000 orders with 2,000 sequential scans and 3 index scans since the last reset.

## What to do instead
Find the queries that scan the table (`dbtune explain --from-pg-stat-statements`) and index the columns
they filter on, declared as an `[[expect.index]]` so `dbtune migrate generate` builds it.

## How the fix is applied safely
No fix is generated from statistics alone: which index helps depends on the queries.

## Options
- `min_live_tuples` (default 10000)
- `min_seq_scans` (default 50)
- `min_seq_scan_ratio` (default 0.5)

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-STATS-FUNCTIONS
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding


@check(id="IX007", name="seq-scan-heavy-table", area="indexes", severity="warning",
       options={"min_live_tuples": 10000, "min_seq_scans": 50, "min_seq_scan_ratio": 0.5})
def seq_scan_heavy_table(ctx: CheckContext) -> Iterator[Finding]:
    relations = {r.oid: r for r in ctx.user_relations()}
    totals: dict[int, list[int]] = {}

    def top(oid: int) -> int:
        seen = set()
        while relations.get(oid) and relations[oid].parent_oid in relations and oid not in seen:
            seen.add(oid)
            oid = relations[oid].parent_oid  # type: ignore[assignment]
        return oid

    for rel in relations.values():
        if rel.stats is None or rel.kind == "m":
            continue
        acc = totals.setdefault(top(rel.oid), [0, 0, 0, 0, 0])
        acc[0] += rel.stats.seq_scan
        acc[1] += rel.stats.idx_scan
        acc[2] += rel.stats.seq_tup_read
        if rel.kind != "p":  # a partitioned table's reltuples (after ANALYZE) already sums its partitions
            acc[3] += max(rel.stats.n_live_tup, int(max(rel.reltuples, 0)))
            acc[4] += rel.size_bytes
    since = ctx.snapshot.stats_since
    window = f"since {since.isoformat(sep=' ', timespec='seconds')} ({ctx.snapshot.stats_basis})"
    for oid, (seq, idx, tup_read, live, size) in sorted(totals.items()):
        rel = relations[oid]
        if live < ctx.options["min_live_tuples"] or seq < ctx.options["min_seq_scans"]:
            continue
        if tup_read < ctx.options["min_seq_scans"] * live:
            continue  # the scans read little: the table was small or empty then, or they stopped early
        ratio = seq / (seq + idx)
        if ratio < ctx.options["min_seq_scan_ratio"]:
            continue
        yield ctx.finding(
            rel.qualified_name,
            f"{rel.qualified_name} ({live:,} live tuples) had {seq:,} sequential scans and {idx:,} index "
            f"scans {window}; {ratio:.0%} of its scans read the whole table",
            evidence={"seq_scan": seq, "idx_scan": idx, "seq_tup_read": tup_read, "n_live_tup": live,
                      "seq_scan_ratio": round(ratio, 3), "avg_tuples_per_seq_scan": tup_read // max(seq, 1),
                      "full_table_passes": round(tup_read / live, 1),
                      "size_bytes": size, "stats_since": since.isoformat(), "stats_basis": ctx.snapshot.stats_basis},
        )
