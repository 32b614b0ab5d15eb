"""Write cost: what one more index on a table costs the writes to it, in planner cost units that compare
with the benefit the selection weighs (``Σ weight × cost saved``).

The model, for an index on table ``T``::

    W(T) = e × ((m_a / t_a) / (r / t_r) × R  +  Σ_s w_s × rows_s)

* ``m_a = n_mod_since_analyze`` over ``t_a``, the seconds since ``T`` was last analyzed (by ANALYZE or
  autovacuum), from ``pg_stat_user_tables``
  (https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW): the
  table's recent rate of rows modified. Not the cumulative ``n_tup_ins``: a table loaded in bulk (a
  restore, a COPY) and then analyzed would otherwise count its load as the workload's writes, and no index
  would ever pay on a freshly restored staging copy;
* ``r = seq_scan + idx_scan`` over ``t_r``, the seconds since the statistics were last reset (the server's
  start when they never were): the table's rate of reads, so the ratio of the two rates is the rows
  modified per read of ``T``;
* ``R``: the workload's weight of statements that read ``T`` (a SELECT of weight 100 reads it 100
  times), so the first term is the rows modified while the workload runs once, the period its benefit is
  counted over;
* ``Σ_s w_s × rows_s``: the workload's own INSERT, UPDATE, DELETE and MERGE statements on ``T``, each
  its weight times the rows its plan estimates it modifies (what the statistics do not show yet; a
  partition's rows count for its root partitioned table);
* ``e = random_page_cost + cpu_index_tuple_cost``: each index entry written costs one random page (the
  leaf it goes into) and one index tuple processed, in the planner's own units
  (https://www.postgresql.org/docs/current/runtime-config-query.html#RUNTIME-CONFIG-QUERY-CONSTANTS).

With fewer than :data:`MIN_SCANS` reads since the statistics were reset, the rate per read says nothing about the
application (a table just loaded and indexed: its load and its primary key's build are not the
application's writes and reads), so ``m`` then counts nothing; the workload's own writes still do.

A table that is written (by the workload, or ``m = n_tup_ins + n_tup_upd − n_tup_hot_upd + n_tup_del > 0``
since the statistics were reset) and that no statement of the workload reads is
*write-only*: an index there only slows its writes, so it gets none (:meth:`WriteCosts.write_only`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import psycopg

from dbtune.advisor.model import AdvisorQuery, Candidate
from dbtune.catalog.model import Snapshot
from dbtune.db.connect import MarkedCursor
from dbtune.plans.model import PlanNode
from dbtune.sqlnames import qualified

TABLE_WRITES = """
-- Rows modified (inserted, updated other than HOT, deleted) and times read (sequential and index scans)
-- per table since the statistics were reset, the rows modified since each table was last analyzed and
-- the seconds since then, and the seconds since the statistics were reset (the server's start when they
-- never were); a partition's counts add up at its root partitioned table.
SELECT coalesce(rn.nspname, s.schemaname) AS schema, coalesce(rc.relname, s.relname) AS name,
       sum(s.n_tup_ins + s.n_tup_upd - s.n_tup_hot_upd + s.n_tup_del)::bigint AS modified,
       sum(s.seq_scan + coalesce(s.idx_scan, 0))::bigint AS scans,
       sum(s.n_tup_del)::bigint AS deleted, sum(s.n_tup_upd)::bigint AS updated,
       sum(s.n_mod_since_analyze)::bigint AS recent,
       max(extract(epoch FROM pg_catalog.now() - coalesce(greatest(s.last_analyze, s.last_autoanalyze), d.since)))
         ::float8 AS recent_seconds,
       max(extract(epoch FROM pg_catalog.now() - d.since))::float8 AS scan_seconds
FROM pg_catalog.pg_stat_user_tables s
CROSS JOIN (SELECT coalesce(stats_reset, pg_catalog.pg_postmaster_start_time()) AS since
            FROM pg_catalog.pg_stat_database WHERE datname = pg_catalog.current_database()) d
JOIN pg_catalog.pg_class c ON c.oid = s.relid
LEFT JOIN pg_catalog.pg_class rc ON c.relispartition AND rc.oid = pg_catalog.pg_partition_root(c.oid)
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
GROUP BY 1, 2
"""

# Reads of a table since the statistics were reset below which its write rate per read is not trusted.
MIN_SCANS = 1000
DEFAULT_RANDOM_PAGE_COST = 4.0
DEFAULT_CPU_INDEX_TUPLE_COST = 0.005


@dataclass(frozen=True)
class TableWrites:
    """The write figures of one table (qualified, quoted): ``modified`` (``m``), ``scans`` (``r``),
    ``deleted`` and ``updated`` (``n_tup_del``, ``n_tup_upd``), ``recent`` and ``recent_seconds``
    (``m_a``, ``t_a``), ``scan_seconds`` (``t_r``), ``read_weight`` (``R``), ``workload_rows``
    (``Σ w_s × rows_s``) and ``workload_writes`` (the weight of the workload's statements writing it)."""

    table: str
    modified: int = 0
    scans: int = 0
    deleted: int = 0
    updated: int = 0
    read_weight: float = 0.0
    workload_rows: float = 0.0
    workload_writes: float = 0.0
    recent: int = 0
    recent_seconds: float = 0.0
    scan_seconds: float = 0.0

    def rows_per_read(self) -> float:
        """Rows modified per read of the table: ``(m_a / t_a) / (r / t_r)``, each period at least a second;
        0 below :data:`MIN_SCANS` reads or when nothing was modified since its last ANALYZE."""
        if self.scans < MIN_SCANS or not self.recent:
            return 0.0
        return (self.recent / max(self.recent_seconds, 1.0)) / (self.scans / max(self.scan_seconds, 1.0))

    def rows_per_run(self) -> float:
        """Index entries written while the workload runs once: ``rows_per_read × R + Σ w_s × rows_s``."""
        return self.rows_per_read() * self.read_weight + self.workload_rows


@dataclass(frozen=True)
class WriteCosts:
    """Write costs of every table, callable on a candidate: ``costs(candidate)`` is ``W`` of its table
    (planner cost units; 0 for a table nothing writes). ``entry_cost`` is ``e``."""

    entry_cost: float
    tables: Mapping[str, TableWrites] = field(default_factory=dict)

    def __call__(self, candidate: Candidate) -> float:
        return self.table_cost(candidate.qualified_table)

    def table_cost(self, table: str) -> float:
        """``W`` for an index on ``table`` (qualified, quoted)."""
        found = self.tables.get(table)
        return self.entry_cost * found.rows_per_run() if found is not None else 0.0

    def write_only(self, table: str) -> str | None:
        """Why ``table`` is write-only (see the module docstring), or None."""
        found = self.tables.get(table)
        if found is None:
            return None
        if found.read_weight or not (found.workload_writes or found.modified):
            return None
        if found.workload_writes:
            return "write-only table: the workload writes it and never reads it"
        return (f"write-only table: {found.modified} rows modified since the statistics were reset "
                f"(pg_stat_user_tables), {found.scans} reads, and the workload never reads it")


def entry_cost(snapshot: Snapshot) -> float:
    """``random_page_cost + cpu_index_tuple_cost`` as the server is set (its defaults when unreadable)."""
    def number(name: str, default: float) -> float:
        try:
            return float(snapshot.setting(name) or default)
        except ValueError:
            return default

    return (number("random_page_cost", DEFAULT_RANDOM_PAGE_COST)
            + number("cpu_index_tuple_cost", DEFAULT_CPU_INDEX_TUPLE_COST))


def read_table_writes(conn: psycopg.Connection) -> dict[str, TableWrites]:
    """``pg_stat_user_tables``' figures per table (qualified, quoted; partitions added up at their root):
    one statement, a read. Lets psycopg's errors through."""
    with MarkedCursor(conn) as cur:
        rows = cur.execute(TABLE_WRITES).fetchall()
    return {qualified(s, n): TableWrites(qualified(s, n), int(m or 0), int(r or 0), int(d or 0), int(u or 0),
                                         recent=int(a or 0), recent_seconds=float(ta or 0.0),
                                         scan_seconds=float(tr or 0.0))
            for s, n, m, r, d, u, a, ta, tr in rows}


def write_costs(snapshot: Snapshot, stats: Mapping[str, TableWrites], queries: Sequence[AdvisorQuery],
                written_rows: Mapping[str, Iterable[tuple[str, float]]]) -> WriteCosts:
    """The :class:`WriteCosts` of the workload ``queries``: ``stats`` from :func:`read_table_writes`;
    ``written_rows`` maps a writing query's key to the (table, rows) its plan modifies (the top
    ModifyTable node's relation and its input's estimated rows; :func:`modified_rows`)."""
    tables = dict(stats)
    for q in queries:
        if q.writes:
            for table, rows in written_rows.get(q.key, ()):
                t = tables.get(table, TableWrites(table))
                tables[table] = replace(t, workload_rows=t.workload_rows + q.weight * rows,
                                      workload_writes=t.workload_writes + q.weight)
        else:
            for table in q.tables:
                t = tables.get(table, TableWrites(table))
                tables[table] = replace(t, read_weight=t.read_weight + q.weight)
    return WriteCosts(entry_cost(snapshot), tables)


def modified_rows(plan_root: PlanNode) -> list[tuple[str, float]]:
    """(table, estimated rows) of each ModifyTable node of a plan: its relation (qualified when the plan
    was VERBOSE) and the rows its input produces."""
    found = []
    for node in plan_root.walk():
        if node.node_type == "ModifyTable" and node.relation:
            rows = node.children[0].plan_rows if node.children else node.plan_rows
            found.append((node.relation, float(rows)))
    return found
