"""Ranking without a what-if planner: the query's real plan (EXPLAIN, no index created) for the base cost,
and each candidate's effect estimated from ``pg_stats`` with PostgreSQL's own cost model. It ranks alone
where hypopg is absent and trial builds are not allowed, and beside hypopg for what hypopg cannot cost (gin).

For each scan of a candidate's table in the base plan (a partition's scan counts for its partitioned
table), the candidate is costed as the index scan the planner would consider (``cost_index`` and
``genericcostestimate`` in PostgreSQL's ``costsize.c``/``selfuncs.c``, simplified), with the planner cost
constants of the server (https://www.postgresql.org/docs/current/runtime-config-query.html#RUNTIME-CONFIG-QUERY-CONSTANTS):

* selectivity ``s`` of a btree: the product of the equality selectivities of the key's leading columns
  that the query compares with ``=`` or ``IN`` (``pg_stats``, :meth:`ColumnStats.selectivity_eq`, of the
  query's constants where it has them, else of an unknown value; :data:`DEFAULT_EQ_SEL` for an expression,
  as the planner assumes without statistics), times :data:`DEFAULT_INEQ_SEL` (PostgreSQL's default for an
  inequality with an unknown value) for the first range column after them; the key stops at the first
  column used otherwise. A partial index serves a query only when its predicate is one of the query's own
  constant predicates; its rows are then that predicate's (from ``pg_stats``), and its size shrinks with them;
* a gin index serves a containment (``@>``, ``?``, ``&&`` …) or a pattern (``LIKE '%x%'``, trigram
  opclass) on its column: ``s`` is the scan's own row estimate in the base plan over ``reltuples``;
* the scan's own row estimate in the base plan (the planner's, from ``pg_stats`` and the query's constants,
  of every condition on the table) bounds ``s`` from below, and is ``s`` when the key covers every column
  the query filters the table on (a range with both bounds: the planner's histogram, not the default);
* tuples ``N = s · reltuples``; index pages ``P_i = ⌈s · index pages⌉`` (the index's estimated size);
* index cost ``random_page_cost · P_i + (cpu_index_tuple_cost + cpu_operator_cost · quals) · N``;
* heap pages fetched ``F = min(2TN / (2T + N), T)`` (Mackert and Lohman, as ``index_pages_fetched``) of
  the ``T = relpages``; the cheaper of a plain index scan, ``max_io + c² · (min_io − max_io) +
  cpu_tuple_cost · N`` with ``c`` the leading column's ``correlation`` (0 for an expression),
  ``max_io = random_page_cost · F`` and ``min_io = random_page_cost + seq_page_cost · (⌈s · T⌉ − 1)``, and
  a bitmap heap scan (gin: only that), ``F`` pages at a cost per page falling from ``random_page_cost``
  to ``seq_page_cost`` with ``√(F / T)``, plus ``(cpu_tuple_cost + cpu_operator_cost · quals) · N``.

On a nested loop's inner side the scan runs once per outer row (the outer side's estimated rows, over
every nested loop above it), and the key's join columns count as equalities (a parameterized lookup). A
btree whose key, after its ``=`` columns, gives the order of the query's ``ORDER BY`` on the table (read
forwards or backwards) replaces a Sort directly above the scan too, at its plain index scan's cost, and
under a ``LIMIT`` over that Sort reads only the fraction of the rows the Limit takes.

When that is cheaper than what it replaces, the plan's total drops by the difference times the loops (the
candidate is then "used"; one candidate per scan, the one that saves the most). When the savings exceed
the total (a ``LIMIT`` above the scan), the total is scaled by the best scan's ratio instead. Not modelled,
and so never counted as a benefit: join plans an index would make possible (a hash join's side becoming a
nested loop's lookups), index-only scans, merge joins and groupings an index would feed in order.
Sizes: a btree's leaf tuples from the columns' ``avg_width`` (a gin index is sized the same way).

What it cannot cost (:meth:`StatisticsEngine.cannot_cost`): access methods other than btree and gin,
columns the table does not have, foreign tables. :attr:`StatisticsEngine.note` says so in the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from dbtune.advisor.costing import explain_query, leaf_partitions, root_table, set_read_only, statement_text
from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, EngineKind, KeyPart
from dbtune.advisor.stats import ColumnStats
from dbtune.advisor.whatif import foreign_table_reason
from dbtune.catalog.model import Relation, Snapshot
from dbtune.plans.collect import server_message
from dbtune.plans.model import Plan, PlanNode
from dbtune.workload.model import ConstantPredicate, PredicateOp, TableUsage, Usage
from dbtune.workload.schema import WorkloadSchema, read_views
from dbtune.workload.usage import UsageAnalyzer

DEFAULT_INEQ_SEL = 1 / 3  # selfuncs.h: an inequality with an unknown value
DEFAULT_EQ_SEL = 0.005  # selfuncs.h: an equality on a column without statistics
DEFAULT_MATCHING_SEL = 0.010  # selfuncs.h: a containment or match operator without statistics
BLOCK_BYTES = 8192
_PAGE_OVERHEAD = 24 + 16  # page header and btree special space, bytes
_BTREE_FILLFACTOR = 0.9
_INDEX_TUPLE_HEADER = 8  # IndexTupleData, bytes (MAXALIGNed with the key)
_LINE_POINTER = 4  # ItemIdData, bytes
_DEFAULT_WIDTH = 32  # bytes, for a column or expression without pg_stats
METHODS = ("btree", "gin")
_HEAP_SCANS = frozenset({"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"})
_EQUALITY = frozenset({Usage.EQUALITY, Usage.IN})
_FILTERS = frozenset({Usage.EQUALITY, Usage.IN, Usage.RANGE, Usage.LIKE_PREFIX, Usage.LIKE_UNKNOWN, Usage.PATTERN,
                      Usage.IS_NULL, Usage.CONTAINMENT})
COST_CONSTANTS = {"seq_page_cost": 1.0, "random_page_cost": 4.0, "cpu_tuple_cost": 0.01,
                  "cpu_index_tuple_cost": 0.005, "cpu_operator_cost": 0.0025}


@dataclass(frozen=True)
class ScanEstimate:
    """One candidate's estimated index scan of one relation: selectivity (0..1) of its usable key prefix,
    the number of key columns used (``equalities`` of them compared with ``=``/``IN``), the estimated cost
    (planner units: the cheaper of a plain index scan and a bitmap heap scan), and the plain index scan's
    cost (``ordered_cost``, the one that returns rows in the index's order; None for gin)."""

    selectivity: float
    columns_used: int
    cost: float
    equalities: int = 0
    ordered_cost: float | None = None


def _loops(node: PlanNode, above: tuple[PlanNode, ...]) -> float | None:
    """How many times the node runs per execution of the plan when it is on the inner side of a Nested Loop
    (the product of the outer sides' estimated rows), else None."""
    loops = None
    for i, ancestor in enumerate(above):
        child = above[i + 1] if i + 1 < len(above) else node
        if ancestor.node_type == "Nested Loop" and len(ancestor.children) == 2 and child is ancestor.children[1]:
            loops = (loops or 1.0) * max(ancestor.children[0].plan_rows, 1.0)
    return loops


def _serves_order(candidate: Candidate, equalities: int, usage: TableUsage) -> bool:
    """Whether the candidate's key, after its first ``equalities`` columns (fixed by ``=``), gives the rows
    in the order of one of the query's ORDER BY clauses on the table, read forwards or backwards (with each
    key's default NULLS order)."""
    if candidate.method != "btree":
        return False
    fixed = {p.text for p in candidate.keys[:equalities]}
    rest = candidate.keys[equalities:]
    for clause in usage.sort_clauses():
        keys = [k for k in clause if k.text not in fixed]
        if not keys or len(keys) > len(rest) or any(k.nulls_first != k.descending for k in keys):
            continue
        if not all(p.text == k.text and p.expression == k.expression for p, k in zip(rest, keys, strict=False)):
            continue
        if len({p.descending != k.descending for p, k in zip(rest, keys, strict=False)}) == 1:
            return True
    return False


def _pages_fetched(tuples: float, pages: int) -> float:
    """Heap pages an index scan of ``tuples`` rows reads from a table of ``pages`` pages: Mackert and Lohman's
    approximation as ``index_pages_fetched`` uses it when the table fits in the cache, ``2TN / (2T + N)``,
    at most ``T``."""
    if tuples <= 0:
        return 0.0
    return min(2 * pages * tuples / (2 * pages + tuples), float(pages))


def _align8(n: int) -> int:
    return (n + 7) // 8 * 8


class StatisticsEngine:
    """The :class:`~dbtune.advisor.model.Engine` without what-if: ranks by ``pg_stats`` selectivity (see the
    module docstring). ``conn``: an autocommit session (:func:`~dbtune.advisor.costing.whatif_session`),
    made read-only again here; ``snapshot``: its catalog (reltuples, relpages, planner settings);
    ``stats``: the ``pg_stats`` of the workload's tables."""

    kind = EngineKind.STATISTICS

    def __init__(self, conn: psycopg.Connection, snapshot: Snapshot, stats: ColumnStats) -> None:
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
        if why is None and candidate.method not in METHODS:
            why = f"pg_stats ranks {' and '.join(METHODS)} indexes only, not {candidate.method}"
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

    def _rows_of_predicate(self, candidate: Candidate, usage: TableUsage) -> float | None:
        """For a partial candidate: the fraction of rows its predicate holds (0..1) when the predicate is
        one of the query's constant predicates (``usage.constants``), else None (the index cannot serve the
        query); 1.0 for a candidate without a predicate."""
        if candidate.predicate is None:
            return 1.0
        for predicate in usage.constants:
            if predicate.sql == candidate.predicate:
                return self._predicate_fraction(candidate, predicate)
        return None

    def _predicate_fraction(self, candidate: Candidate, predicate: ConstantPredicate) -> float:
        """The fraction of rows (0..1) a constant predicate selects, from ``pg_stats``: ``null_frac`` for
        IS NULL, the selectivity of each value added up for ``=``/``IN``/a boolean column
        (:data:`DEFAULT_EQ_SEL` a value without statistics)."""
        stat = self._stats.stat(candidate.schema, candidate.table, predicate.column)
        if predicate.op is PredicateOp.IS_NULL:
            return stat.null_frac if stat is not None else DEFAULT_EQ_SEL
        return self._constant_selectivity(candidate, predicate)

    def _constant_selectivity(self, candidate: Candidate, predicate: ConstantPredicate) -> float:
        """The selectivity of ``column = value`` (or ``IN`` the values) added up over the values."""
        return min(1.0, sum(self._selectivity_eq(candidate, predicate.column, v)
                            for v in self._values(candidate, predicate)))

    def _values(self, candidate: Candidate, predicate: ConstantPredicate) -> tuple[str | None, ...]:
        """The predicate's constants as ``pg_stats`` prints them (booleans as ``t``/``f``)."""
        values: tuple[str | None, ...] = ("true",) if predicate.op is PredicateOp.TRUE else predicate.values
        table = self._by_name.get(candidate.qualified_table)
        column = table.column_by_name(predicate.column) if table is not None else None
        if column is not None and column.type == "boolean":
            values = tuple({"true": "t", "false": "f"}.get(v or "", v) for v in values)
        return values or (None,)

    def _selectivity_eq(self, candidate: Candidate, column: str, value: str | None) -> float:
        s = self._stats.selectivity_eq(candidate.schema, candidate.table, column, value)
        return DEFAULT_EQ_SEL if s is None else s

    def _key_selectivity(self, candidate: Candidate, usage: TableUsage, parameterized: bool
                         ) -> tuple[float, list[str], int]:
        """The selectivity of a btree key's leading ``=``/``IN`` columns (and join columns, when the scan is
        the inner side of a nested loop: ``parameterized``) and first range column, those columns' (or
        expressions') texts, and how many of them are equalities (see the module docstring). A column the
        partial predicate fixes already narrows nothing more."""
        expressions = {e.text: e.kinds for e in usage.expressions}
        constants = {c.column: c for c in usage.constants if c.op in (PredicateOp.EQUAL, PredicateOp.IN)}
        fixed = {c.column for c in usage.constants if c.sql == candidate.predicate}
        equality = _EQUALITY | {Usage.JOIN} if parameterized else _EQUALITY
        selectivity, used, equalities = 1.0, [], 0
        for part in candidate.keys:
            kinds = expressions.get(part.text, frozenset()) if part.expression else usage.kinds(part.text)
            if kinds & equality:
                used.append(part.text)
                equalities += 1
                if part.expression:
                    selectivity *= DEFAULT_EQ_SEL
                elif part.text not in fixed:
                    known = constants.get(part.text)
                    selectivity *= (self._constant_selectivity(candidate, known) if known is not None
                                    else self._selectivity_eq(candidate, part.text, None))
                continue
            if Usage.RANGE in kinds:
                selectivity *= DEFAULT_INEQ_SEL
                used.append(part.text)
            break
        return selectivity, used, equalities

    @staticmethod
    def _filtered(usage: TableUsage, parameterized: bool) -> set[str]:
        """The columns and expressions of the table that the query's conditions filter on (join columns only
        on a nested loop's inner side)."""
        filters = _FILTERS | {Usage.JOIN} if parameterized else _FILTERS
        out = {c for c, kinds in usage.columns.items() if kinds & filters} | set(usage.containment)
        out |= {e.text for e in usage.expressions if e.kinds & filters}
        return out | {c.column for c in usage.constants}

    @staticmethod
    def _gin_serves(part: KeyPart, usage: TableUsage) -> bool:
        """Whether the query uses the gin key's column or expression with containment or a pattern."""
        if part.expression:
            kinds = next((e.kinds for e in usage.expressions if e.text == part.text), frozenset())
            return Usage.PATTERN in kinds
        return part.text in usage.containment or Usage.PATTERN in usage.kinds(part.text)

    def estimate(self, candidate: Candidate, node: PlanNode, scanned: Relation, usage: TableUsage | None,
                 parameterized: bool = False) -> ScanEstimate | None:
        """The index scan of ``scanned`` (the candidate's table, or one of its partitions; ``node`` its scan in
        the base plan, on a nested loop's inner side when ``parameterized``) through ``candidate`` for a query
        with ``usage`` of the candidate's table (see the module docstring); None when the candidate would not
        narrow the scan."""
        if usage is None or not candidate.keys:
            return None
        reltuples = max(scanned.reltuples, 0.0)
        rows_of_index = self._rows_of_predicate(candidate, usage)
        if rows_of_index is None:
            return None
        # The scan's own estimate (the planner's, from pg_stats and the constants, of every condition on the
        # table): what the index returns when its key covers them all, and never more selective than that.
        planned = min(1.0, node.plan_rows / max(reltuples, 1.0)) if not node.parallel_aware else 0.0
        equalities = 0
        if candidate.method == "gin":
            if not self._gin_serves(candidate.keys[0], usage):
                return None
            selectivity, used = planned or DEFAULT_MATCHING_SEL, [candidate.keys[0].text]
        else:
            selectivity, used, equalities = self._key_selectivity(candidate, usage, parameterized)
            if not used and candidate.predicate is None and not _serves_order(candidate, 0, usage):
                return None  # it neither narrows the scan nor returns the rows in the query's order
            selectivity *= rows_of_index
            covered = set(used) | {c.column for c in usage.constants if c.sql == candidate.predicate}
            filtered = self._filtered(usage, parameterized)
            selectivity = planned if planned and covered >= filtered else max(selectivity, planned)
        plain, bitmap = self._scan_cost(candidate, scanned, selectivity, rows_of_index, len(used))
        return ScanEstimate(selectivity, len(used), min(plain, bitmap), equalities,
                            plain if candidate.method == "btree" else None)

    def _scan_cost(self, candidate: Candidate, scanned: Relation, selectivity: float, rows_of_index: float,
                   quals: int) -> tuple[float, float]:
        """The costs of a plain index scan (infinite for gin, which has none) and of a bitmap heap scan
        returning ``selectivity`` of ``scanned``'s rows (``cost_index`` and ``cost_bitmap_heap_scan``,
        simplified)."""
        k = self._constants
        tuples = selectivity * max(scanned.reltuples, 0.0)
        index_bytes = self._index_bytes(candidate, max(scanned.reltuples, 0.0) * rows_of_index)
        index_pages = math.ceil(selectivity / max(rows_of_index, 1e-9) * index_bytes / BLOCK_BYTES)
        index_cost = (k["random_page_cost"] * index_pages
                      + (k["cpu_index_tuple_cost"] + k["cpu_operator_cost"] * max(quals, 1)) * tuples)
        relpages = max(scanned.relpages, 1)
        fetched = _pages_fetched(tuples, relpages)
        # bitmap heap scan: each page once, in physical order; the cost per page falls from random to
        # sequential as more of the table is read
        per_page = (k["random_page_cost"] - (k["random_page_cost"] - k["seq_page_cost"]) * math.sqrt(fetched / relpages)
                    if fetched >= 2 else k["random_page_cost"])
        bitmap = fetched * per_page + (k["cpu_tuple_cost"] + k["cpu_operator_cost"] * max(quals, 1)) * tuples
        if candidate.method == "gin":
            return math.inf, index_cost + bitmap
        max_io = k["random_page_cost"] * fetched
        min_io = k["random_page_cost"] + k["seq_page_cost"] * (math.ceil(selectivity * relpages) - 1)
        correlation = self._correlation(candidate)
        plain = max_io + correlation ** 2 * (min_io - max_io) + k["cpu_tuple_cost"] * tuples
        return index_cost + plain, index_cost + bitmap

    def _correlation(self, candidate: Candidate) -> float:
        part = candidate.keys[0]
        if candidate.method != "btree" or part.expression:
            return 0.0
        stat = self._stats.stat(candidate.schema, candidate.table, part.text)
        return stat.correlation if stat is not None and stat.correlation is not None else 0.0

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
        for node, above in plan.nodes_with_ancestors():
            loops = _loops(node, above)
            best = self._best_for_scan(node, above, indexes, usage.table, loops is not None)
            if best is not None:
                candidate, saving, ratio = best
                savings += (loops or 1.0) * saving
                ratios.append(ratio)
                used.add(candidate)
        if not used:
            return Costing(plan.total_cost)
        total = plan.total_cost - savings
        if total <= 0:
            total = plan.total_cost * min(ratios)
        return Costing(total, frozenset(used))

    def _best_for_scan(self, node: PlanNode, above: tuple[PlanNode, ...], indexes: Iterable[Candidate],
                       usage_of: Callable[[str], TableUsage | None], parameterized: bool
                       ) -> tuple[Candidate, float, float] | None:
        """For a heap scan node (``above``: its ancestors, the root first): the candidate that saves the most,
        the saving (planner units, per execution of the node) and the ratio of its new cost to the old one;
        None when no candidate is cheaper. A candidate that returns rows in the order of a Sort directly
        above the scan replaces the Sort too (and, under a Limit over that Sort, reads only the rows the
        Limit takes)."""
        if node.node_type not in _HEAP_SCANS or node.total_cost <= 0:
            return None
        table = self._root_table(node.relation)
        scanned = self._by_name.get(node.relation or "")
        if table is None or scanned is None:
            return None
        usage = usage_of(table.qualified_name)
        # A scan through an existing index: the candidate must beat that index in the same model, and saves
        # the planner's cost of the scan in the proportion the model gives (not the model's own error).
        existing = self._existing_index(node, scanned, table)
        baseline = self.estimate(existing, node, scanned, usage, parameterized) if existing is not None else None
        best: tuple[Candidate, float, float] | None = None
        for candidate in sorted(indexes, key=Candidate.describe):
            if (candidate.schema, candidate.table) != (table.schema, table.name):
                continue
            estimate = self.estimate(candidate, node, scanned, usage, parameterized)
            if estimate is None:
                continue
            options = []
            if baseline is None:
                options.append((node.total_cost, estimate.cost))
            elif estimate.cost < baseline.cost:
                options.append((node.total_cost, node.total_cost * estimate.cost / baseline.cost))
            ordered = self._ordered_option(candidate, estimate, node, above, usage)
            if ordered is not None:
                options.append(ordered)
            for old, new in options:
                if new < old and (best is None or old - new > best[1]):
                    best = (candidate, old - new, new / old)
        return best

    def _existing_index(self, node: PlanNode, scanned: Relation, table: Relation) -> Candidate | None:
        """The index the scan node already reads (an Index Scan's, or the one Bitmap Index Scan under a
        Bitmap Heap Scan), as a candidate on ``table`` (the scanned relation's root), or None."""
        name = node.index
        if node.node_type == "Bitmap Heap Scan" and len(node.children) == 1:
            name = node.children[0].index
        index = next((ix for ix in self._snapshot.indexes_on(scanned.oid) if ix.name == name), None) if name else None
        if index is None:
            return None
        keys = []
        for k, attnum in enumerate(index.key_attnums[:index.n_key_columns]):
            column = scanned.column(attnum) if attnum else None
            text = column.name if column is not None else index.columns[k].removeprefix("(").removesuffix(")")
            keys.append(KeyPart(text, expression=column is None, descending=index.descending(k)))
        include = tuple(c.name for a in index.key_attnums[index.n_key_columns:] if (c := scanned.column(a)) is not None)
        return Candidate(table.schema, table.name, tuple(keys), include, index.predicate, index.method)

    def _ordered_option(self, candidate: Candidate, estimate: ScanEstimate, node: PlanNode,
                        above: tuple[PlanNode, ...], usage: TableUsage | None) -> tuple[float, float] | None:
        """(old, new) cost of the Sort above the scan (or of the Limit over it) when the candidate's plain
        index scan returns the rows in that order, else None."""
        if (usage is None or estimate.ordered_cost is None or not above
                or above[-1].node_type not in ("Sort", "Incremental Sort")
                or not _serves_order(candidate, estimate.equalities, usage)):
            return None
        if len(above) >= 2 and above[-2].node_type == "Limit":
            limit = above[-2]
            fraction = min(1.0, limit.plan_rows / max(node.plan_rows, 1.0))
            return limit.total_cost, estimate.ordered_cost * fraction
        return above[-1].total_cost, estimate.ordered_cost

    def _index_bytes(self, candidate: Candidate, reltuples: float) -> int:
        """A btree's estimated size (bytes) over ``reltuples`` rows: leaf tuples of the key and INCLUDE
        columns' ``avg_width`` (MAXALIGNed, with the tuple header and line pointer), pages filled to the
        default fillfactor 90, one internal page per 250 leaves, and the metapage."""
        widths = [self._width(candidate, p.text, p.expression) for p in candidate.keys]
        widths += [self._width(candidate, c, False) for c in candidate.include]
        per_tuple = _align8(_INDEX_TUPLE_HEADER + sum(widths)) + _LINE_POINTER
        per_page = (BLOCK_BYTES - _PAGE_OVERHEAD) * _BTREE_FILLFACTOR
        leaves = math.ceil(reltuples * per_tuple / per_page) if reltuples > 0 else 1
        return (leaves + math.ceil(leaves / 250) + 1) * BLOCK_BYTES

    def _width(self, candidate: Candidate, column: str, expression: bool) -> int:
        width = None if expression else self._stats.width(candidate.schema, candidate.table, column)
        return width if width is not None else _DEFAULT_WIDTH

    def _predicate_rows(self, candidate: Candidate) -> float:
        """The fraction of the table's rows a partial candidate holds (1.0 without a predicate, or for a
        predicate that is not a constant predicate of one column): its predicate read back as a query's
        constant predicate (the workload's usage reader)."""
        if candidate.predicate is None:
            return 1.0
        usage = self._usage_analyzer().usage(f"SELECT 1 FROM {candidate.qualified_table} WHERE {candidate.predicate}")
        table = usage.table(candidate.qualified_table)
        fraction = self._rows_of_predicate(candidate, table) if table is not None else None
        return 1.0 if fraction is None else fraction

    def size(self, candidate: Candidate) -> int:
        """The candidate's estimated size in bytes: a btree over the rows it holds (the table's
        ``reltuples``, times its predicate's fraction for a partial index) with the ``avg_width`` of its
        columns (:data:`_DEFAULT_WIDTH` without pg_stats); for a partitioned table, one such btree per leaf
        partition (with the parent's widths), added up."""
        leaves = leaf_partitions(self._snapshot, candidate.schema, candidate.table)
        table = self._by_name.get(candidate.qualified_table)
        fraction = self._predicate_rows(candidate)
        return sum(self._index_bytes(candidate, max(r.reltuples, 0.0) * fraction)
                   for r in leaves or ([table] if table else []))

    def close(self) -> None:
        """Nothing to do: nothing was created."""
