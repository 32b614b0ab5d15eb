"""Ranking without a what-if planner: the query's real plan (EXPLAIN, no index created) for the base cost,
and each candidate's effect estimated from ``pg_stats`` with PostgreSQL's own cost model.

For each scan of a candidate's table in the base plan (a partition's scan counts for its partitioned
table), the candidate is costed as the index scan the planner would consider (``cost_index`` and
``genericcostestimate`` in PostgreSQL's ``costsize.c``/``selfuncs.c``, simplified), with the planner cost
constants of the server (https://www.postgresql.org/docs/current/runtime-config-query.html#RUNTIME-CONFIG-QUERY-CONSTANTS):

* selectivity ``s``: the product of the equality selectivities (``pg_stats``: most common values and
  ``n_distinct``, :meth:`ColumnStats.selectivity_eq`) of the key's leading columns that the query compares
  with ``=`` or ``IN``, times :data:`DEFAULT_INEQ_SEL` (PostgreSQL's default for an inequality with an
  unknown value) for the first range column after them; the key stops at the first column used otherwise;
* tuples ``N = s · reltuples``; index pages ``P_i = ⌈s · index pages⌉`` (the index's estimated size);
* index cost ``random_page_cost · P_i + (cpu_index_tuple_cost + cpu_operator_cost · quals) · N``;
* heap cost, with ``c`` the leading column's ``correlation``: ``max_io + c² · (min_io − max_io)`` where
  ``max_io = random_page_cost · min(N, relpages)`` and ``min_io = random_page_cost + seq_page_cost ·
  (⌈s · relpages⌉ − 1)``; plus ``cpu_tuple_cost · N``.

When that is cheaper than the scan's own cost, the plan's total drops by the difference (the candidate is
then "used"; one candidate per scan, the cheapest). When the savings exceed the total (a ``LIMIT`` above
the scan), the total is scaled by the best scan's ratio instead. Not modelled, and so never counted as a
benefit: sorts an index would avoid, join lookups (a nested loop's inner index scan), index-only scans.

What it cannot cost (:meth:`StatisticsEngine.cannot_cost`): access methods other than btree, a key that
starts with an expression (``pg_stats`` has no row for an expression no index has), partial indexes,
foreign tables. :attr:`StatisticsEngine.note` says so in the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import psycopg

from dbtune.advisor.costing import explain_query, leaf_partitions, root_table, set_read_only, statement_text
from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, EngineKind
from dbtune.advisor.whatif import foreign_table_reason
from dbtune.catalog.model import Relation, Snapshot
from dbtune.plans.collect import server_message
from dbtune.plans.model import Plan, PlanNode
from dbtune.workload.model import TableUsage, Usage
from dbtune.workload.schema import WorkloadSchema, read_views
from dbtune.workload.usage import UsageAnalyzer

DEFAULT_INEQ_SEL = 1 / 3  # selfuncs.h: an inequality with an unknown value
DEFAULT_EQ_SEL = 0.005  # selfuncs.h: an equality on a column without statistics
BLOCK_BYTES = 8192
_PAGE_OVERHEAD = 24 + 16  # page header and btree special space, bytes
_BTREE_FILLFACTOR = 0.9
_INDEX_TUPLE_OVERHEAD = 8 + 4  # IndexTupleData and its line pointer, bytes
_DEFAULT_WIDTH = 32  # bytes, for a column or expression without pg_stats
_HEAP_SCANS = frozenset({"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"})
_EQUALITY = frozenset({Usage.EQUALITY, Usage.IN})
COST_CONSTANTS = {"seq_page_cost": 1.0, "random_page_cost": 4.0, "cpu_tuple_cost": 0.01,
                  "cpu_index_tuple_cost": 0.005, "cpu_operator_cost": 0.0025}


class ColumnStatistics(Protocol):
    """What the engine reads of ``pg_stats`` (:class:`dbtune.advisor.stats.ColumnStats`)."""

    def selectivity_eq(self, schema: str, table: str, column: str, value: str | None = None) -> float | None: ...

    def width(self, schema: str, table: str, column: str) -> int | None: ...


@dataclass(frozen=True)
class ScanEstimate:
    """One candidate's estimated index scan of one relation: selectivity (0..1) of its usable key prefix,
    the number of key columns used, and the estimated cost (planner units)."""

    selectivity: float
    columns_used: int
    cost: float


def _align8(n: int) -> int:
    return (n + 7) // 8 * 8


class StatisticsEngine:
    """The :class:`~dbtune.advisor.model.Engine` without what-if: ranks by ``pg_stats`` selectivity (see the
    module docstring). ``conn``: an autocommit session (:func:`~dbtune.advisor.costing.whatif_session`),
    made read-only again here; ``snapshot``: its catalog (reltuples, relpages, planner settings);
    ``stats``: the ``pg_stats`` of the workload's tables."""

    kind = EngineKind.STATISTICS

    def __init__(self, conn: psycopg.Connection, snapshot: Snapshot, stats: ColumnStatistics) -> None:
        self._conn = conn
        self._snapshot = snapshot
        self._stats = stats
        set_read_only(conn)
        self._plans: dict[str, Plan | str] = {}
        self._refused: dict[Candidate, str] = {}
        self._by_name = {r.qualified_name: r for r in snapshot.relations.values()}
        self._constants = {name: self._setting(name, default) for name, default in COST_CONSTANTS.items()}
        self._analyzer: UsageAnalyzer | None = None

    def _usage_analyzer(self) -> UsageAnalyzer:
        """Column usage with the snapshot's tables and the database's views (read once, when first needed),
        so a query on a view is costed on its base tables."""
        if self._analyzer is None:
            self._analyzer = UsageAnalyzer(WorkloadSchema.from_snapshot(self._snapshot, read_views(self._conn)))
        return self._analyzer

    def _setting(self, name: str, default: float) -> float:
        try:
            return float(self._snapshot.setting(name) or default)
        except ValueError:
            return default

    @property
    def note(self) -> str:
        """How it ranked, and what it could not cost (each candidate refused so far, with why)."""
        text = ("ranked by pg_stats selectivity: each query's plan without the candidates, each scan re-costed "
                "as an index scan with the server's planner cost constants; sorts, join lookups and index-only "
                "scans are not estimated")
        if self._refused:
            text += "; not costed: " + "; ".join(f"{c.describe()} ({why})" for c, why in self._refused.items())
        return text

    def cannot_cost(self, candidate: Candidate) -> str | None:
        """Why ``candidate`` cannot be ranked from ``pg_stats`` (see the module docstring), or None."""
        why = foreign_table_reason(self._snapshot, candidate)
        if why is None and candidate.method != "btree":
            why = f"pg_stats ranks btree keys only, not {candidate.method}"
        elif why is None and candidate.keys and candidate.keys[0].expression:
            why = "pg_stats has no statistics for an expression that no index has"
        elif why is None and candidate.predicate is not None:
            why = "a partial index's predicate is not estimated from pg_stats"
        elif why is None:
            why = self._missing_column(candidate)
        if why is not None:
            self._refused.setdefault(candidate, why)
        return why

    def _missing_column(self, candidate: Candidate) -> str | None:
        table = self._by_name.get(candidate.qualified_table)
        if table is None:
            return f"{candidate.qualified_table} is not a table of the catalog snapshot"
        for column in [p.text for p in candidate.keys if not p.expression] + list(candidate.include):
            if table.column_by_name(column) is None:
                return f"{candidate.qualified_table} has no column {column}"
        return None

    def _base_plan(self, query: AdvisorQuery) -> Plan | str:
        found = self._plans.get(query.key)
        if found is None:
            try:
                found = explain_query(self._conn, query, self._snapshot.server.version_num)
            except psycopg.Error as exc:
                found = server_message(exc)[0]
            except ValueError as exc:
                found = str(exc)
            self._plans[query.key] = found
        return found

    def _root_table(self, relation: str | None) -> Relation | None:
        """The table a scanned relation belongs to: itself, or the partitioned table at its tree's root."""
        rel = self._by_name.get(relation or "")
        return root_table(self._snapshot, rel) if rel is not None else None

    def estimate(self, candidate: Candidate, scanned: Relation, usage: TableUsage | None) -> ScanEstimate | None:
        """The index scan of ``scanned`` (the candidate's table, or one of its partitions) through
        ``candidate`` for a query with ``usage`` of the candidate's table; None when no leading key column
        is compared with ``=``, ``IN`` or a range (the index would not narrow the scan)."""
        if usage is None:
            return None
        selectivity, used = 1.0, 0
        for part in candidate.keys:
            kinds = usage.kinds(part.text) if not part.expression else frozenset()
            if kinds & _EQUALITY:
                s = self._stats.selectivity_eq(candidate.schema, candidate.table, part.text)
                selectivity *= DEFAULT_EQ_SEL if s is None else s
                used += 1
                continue
            if Usage.RANGE in kinds:
                selectivity *= DEFAULT_INEQ_SEL
                used += 1
            break
        if not used:
            return None
        k = self._constants
        tuples = selectivity * max(scanned.reltuples, 0.0)
        index_pages = math.ceil(selectivity * self._index_bytes(candidate, max(scanned.reltuples, 0.0)) / BLOCK_BYTES)
        index_cost = (k["random_page_cost"] * index_pages
                      + (k["cpu_index_tuple_cost"] + k["cpu_operator_cost"] * used) * tuples)
        relpages = max(scanned.relpages, 1)
        max_io = k["random_page_cost"] * min(tuples, relpages)
        min_io = k["random_page_cost"] + k["seq_page_cost"] * (math.ceil(selectivity * relpages) - 1)
        correlation = self._correlation(candidate)
        heap_cost = max_io + correlation ** 2 * (min_io - max_io) + k["cpu_tuple_cost"] * tuples
        return ScanEstimate(selectivity, used, index_cost + heap_cost)

    def _correlation(self, candidate: Candidate) -> float:
        stat = getattr(self._stats, "stat", None)
        found = stat(candidate.schema, candidate.table, candidate.keys[0].text) if stat else None
        value = getattr(found, "correlation", None)
        return float(value) if isinstance(value, int | float) else 0.0

    def cost(self, query: AdvisorQuery, indexes: frozenset[Candidate]) -> Costing:
        """``query``'s estimated planner cost with ``indexes`` present (see the module docstring), and the
        candidates the estimate uses. A query the server cannot plan, or a candidate this engine cannot
        cost, gives a Costing with ``error``."""
        for candidate in indexes:
            why = self.cannot_cost(candidate)
            if why is not None:
                return Costing(None, error=f"{candidate.describe()}: {why}")
        plan = self._base_plan(query)
        if isinstance(plan, str):
            return Costing(None, error=plan)
        if not indexes:
            return Costing(plan.total_cost)
        usage = self._usage_analyzer().usage(statement_text(query))
        savings, ratios, used = 0.0, [], set()
        for node in plan.nodes():
            best = self._best_for_scan(node, indexes, usage.table)
            if best is not None:
                candidate, new_cost = best
                savings += node.total_cost - new_cost
                ratios.append(new_cost / node.total_cost)
                used.add(candidate)
        if not used:
            return Costing(plan.total_cost)
        total = plan.total_cost - savings
        if total <= 0:
            total = plan.total_cost * min(ratios)
        return Costing(total, frozenset(used))

    def _best_for_scan(self, node: PlanNode, indexes: Iterable[Candidate],
                       usage_of: Callable[[str], TableUsage | None]) -> tuple[Candidate, float] | None:
        """The candidate whose index scan would be cheapest for a heap scan node, and its cost, when one is
        cheaper than the node."""
        if node.node_type not in _HEAP_SCANS or node.total_cost <= 0:
            return None
        table = self._root_table(node.relation)
        scanned = self._by_name.get(node.relation or "")
        if table is None or scanned is None:
            return None
        best: tuple[Candidate, float] | None = None
        for candidate in sorted(indexes, key=Candidate.describe):
            if (candidate.schema, candidate.table) != (table.schema, table.name):
                continue
            estimate = self.estimate(candidate, scanned, usage_of(table.qualified_name))
            if estimate is not None and estimate.cost < node.total_cost and (best is None or estimate.cost < best[1]):
                best = (candidate, estimate.cost)
        return best

    def _index_bytes(self, candidate: Candidate, reltuples: float) -> int:
        """A btree's estimated size (bytes) over ``reltuples`` rows: leaf tuples of the key and INCLUDE
        columns' ``avg_width`` (MAXALIGNed, with the tuple header and line pointer), pages filled to the
        default fillfactor 90, one internal page per 250 leaves, and the metapage."""
        widths = [self._width(candidate, p.text, p.expression) for p in candidate.keys]
        widths += [self._width(candidate, c, False) for c in candidate.include]
        per_tuple = _align8(8 + sum(widths)) + 4
        per_page = (BLOCK_BYTES - _PAGE_OVERHEAD) * _BTREE_FILLFACTOR
        leaves = math.ceil(reltuples * per_tuple / per_page) if reltuples > 0 else 1
        return (leaves + math.ceil(leaves / 250) + 1) * BLOCK_BYTES

    def _width(self, candidate: Candidate, column: str, expression: bool) -> int:
        width = None if expression else self._stats.width(candidate.schema, candidate.table, column)
        return width if width is not None else _DEFAULT_WIDTH

    def size(self, candidate: Candidate) -> int:
        """The candidate's estimated size in bytes: a btree over the table's ``reltuples`` rows with the
        ``avg_width`` of its columns (:data:`_DEFAULT_WIDTH` without pg_stats); for a partitioned table, one
        such btree per leaf partition (with the parent's widths), added up."""
        leaves = leaf_partitions(self._snapshot, candidate.schema, candidate.table)
        table = self._by_name.get(candidate.qualified_table)
        return sum(self._index_bytes(candidate, max(r.reltuples, 0.0)) for r in leaves or ([table] if table else []))

    def close(self) -> None:
        """Nothing to do: nothing was created."""
