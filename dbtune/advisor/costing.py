"""What the engines share: the what-if session, one query's plan as a :class:`Costing`, and
:class:`CostCache`, which answers repeated requests without asking the server again.

Costs are planner cost units (the ``Total Cost`` of the plan's top node,
https://www.postgresql.org/docs/current/using-explain.html); sizes are bytes.

Why the cache may reuse a costing for another candidate set: the planner chooses the cheapest plan among
those the present indexes allow. A plan found with candidates ``C`` present that uses only ``U ⊆ C`` is
still possible with any ``C'`` where ``U ⊆ C' ⊆ C``, and no plan possible with ``C'`` was impossible with
``C``; so the cheapest plan with ``C'`` is the same one, at the same cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import psycopg

from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, Engine
from dbtune.catalog.model import Relation, Snapshot
from dbtune.db.connect import ConnectionSettings, MarkedCursor
from dbtune.plans.collect import (
    GENERIC_PLAN_VERSION,
    ExplainOptions,
    explain_session,
    parameter_count,
    plan_statement,
    server_message,
    startup_pruned,
)
from dbtune.plans.model import Plan
from dbtune.progress import Count, no_count
from dbtune.workload.statements import explainable_text

_SET = "SELECT pg_catalog.set_config(%s, %s, %s)"
TRIAL_LOCK_TIMEOUT_MS = 1000
_prepared_numbers = itertools.count(1)


def whatif_session(settings: ConnectionSettings, *, trial_builds: bool = False) -> psycopg.Connection:
    """The autocommit session an engine works in: ``statement_timeout`` from ``settings``
    (``statement_timeout_ms``), ``default_transaction_read_only = on`` unless ``trial_builds`` (whose
    ``CREATE INDEX`` is rolled back; ``lock_timeout`` is then :data:`TRIAL_LOCK_TIMEOUT_MS` ms, so a build
    never queues behind a long lock and blocks the table's other sessions), every statement marked.

    Raises :class:`~dbtune.errors.ConnectionFailed` (exit 3) when the server cannot be reached and
    :class:`~dbtune.errors.ServerRefused` when it refuses the session settings.
    See https://www.postgresql.org/docs/current/runtime-config-client.html.
    """
    options = ExplainOptions(analyze=trial_builds, allow_writes=trial_builds,
                             session_settings={"lock_timeout": str(TRIAL_LOCK_TIMEOUT_MS)} if trial_builds else {})
    return explain_session(settings, options)


def set_read_only(conn: psycopg.Connection) -> None:
    """``default_transaction_read_only = on`` for the rest of the session (set with ``set_config()``)."""
    MarkedCursor(conn).execute(_SET, ("default_transaction_read_only", "on", False))


def root_table(snapshot: Snapshot, relation: Relation) -> Relation:
    """The table a relation belongs to for the advisor: itself, or the partitioned table at the root of its
    partition tree."""
    while relation.is_partition and relation.parent_oid in snapshot.relations:
        relation = snapshot.relations[relation.parent_oid]  # type: ignore[index]
    return relation


def leaf_partitions(snapshot: Snapshot, schema: str, table: str) -> list[Relation]:
    """The leaf partitions of the partitioned table ``schema.table`` (unquoted names), at any depth, in
    oid order; ``[]`` when it is not a partitioned table of the snapshot."""
    parent = snapshot.relation_named(schema, table)
    if parent is None or not parent.is_partitioned:
        return []
    return [r for _, r in sorted(snapshot.relations.items()) if not r.is_partitioned and r.is_partition
            and root_table(snapshot, r).oid == parent.oid]


def statement_text(query: AdvisorQuery) -> str:
    """The text sent to EXPLAIN: ``query.sql`` without a trailing ``;``, with pg_stat_statements'
    ``interval $1`` written as the server takes it (:func:`~dbtune.workload.statements.explainable_text`)."""
    return explainable_text(query.sql.strip().rstrip(";").strip())


def explain_query(conn: psycopg.Connection, query: AdvisorQuery, version_num: int, *,
                  partition_pruning: bool = True) -> Plan:
    """``query``'s plan (its generic plan when it has ``$n`` parameters; without ``partition_pruning``, every
    partition's scan) in a transaction or savepoint of its own that is rolled back
    (:func:`dbtune.plans.collect.plan_statement`). Lets psycopg.Error through."""
    return plan_statement(conn, statement_text(query), version_num, partition_pruning=partition_pruning,
                          prepared=f"dbtune_whatif_{next(_prepared_numbers)}")


def index_names_used(plan: Plan) -> set[tuple[str | None, str]]:
    """``(schema, index name)`` of every index a plan node scans; the schema is the scanned table's (an
    index lives in its table's schema), from the nearest node that names it (a Bitmap Index Scan's heap
    scan above it); None when EXPLAIN ran without VERBOSE."""
    out: set[tuple[str | None, str]] = set()
    for node, above in plan.nodes_with_ancestors():
        if node.index is None:
            continue
        schema = next((str(n.raw["Schema"]) for n in (node, *reversed(above)) if n.raw.get("Schema")), None)
        out.add((schema, node.index))
    return out


def plan_costing(conn: psycopg.Connection, query: AdvisorQuery, version_num: int,
                 names: dict[tuple[str | None, str], Candidate]) -> Costing:
    """The :class:`Costing` of ``query`` with the indexes present now: the plan's total cost and the
    candidates (``names``: ``(schema, index name)`` → candidate; schema None: an index name unique in the
    database, in whatever schema) its nodes scan, or the server's message when it cannot plan the query
    (the session goes on).

    Before PostgreSQL 16, a generic plan whose NULL parameters pruned partitions' scans at executor startup
    that a constant had not pruned at plan time keeps those scans out
    (:func:`~dbtune.plans.collect.plan_statement`): its cost stands (the generic plan's, plan-time pruning
    kept), and the candidates it uses are read from the same plan without partition pruning too, whose
    scans the removed subplans are (https://www.postgresql.org/docs/current/ddl-partitioning.html)."""
    try:
        plan = explain_query(conn, query, version_num)
        scanned = [plan]
        if version_num < GENERIC_PLAN_VERSION and startup_pruned(plan) and parameter_count(statement_text(query)):
            scanned.append(explain_query(conn, query, version_num, partition_pruning=False))
    except psycopg.Error as exc:
        return Costing(None, error=server_message(exc)[0])
    except ValueError as exc:
        return Costing(None, error=str(exc))
    used = frozenset(names.get(n) or names[(None, n[1])] for p in scanned for n in index_names_used(p)
                     if n in names or (None, n[1]) in names)
    return Costing(plan.total_cost, used)


def could_use(query: AdvisorQuery, candidate: Candidate) -> bool:
    """Whether ``query``'s plan could use ``candidate`` at all: it is on one of the query's tables and,
    where the query's referenced columns of that table are known (:meth:`AdvisorQuery.referenced`), its
    key or INCLUDE names one of them; a key expression or a predicate counts as naming one (not looked
    into).

    Why a candidate naming none of them cannot change the plan: every use the planner makes of an index
    (an index condition, a join's parameterized lookup, the order of an ORDER BY, GROUP BY, DISTINCT,
    window or merge join, min()/max(), an index-only scan, a unique index proving a join's inner side
    unique) involves a column of the table the statement names, and an index-only scan needs all of them
    (https://www.postgresql.org/docs/current/indexes-index-only-scans.html). Assumed: the statement's
    text is all the planner sees of the table; a row-level security policy's qualifications, which the
    planner adds, are not in it (their columns are not counted).
    """
    if candidate.qualified_table not in query.tables:
        return False
    columns = query.referenced(candidate.qualified_table)
    if columns is None or candidate.predicate is not None:
        return True
    return any(k.expression or k.text in columns for k in candidate.keys) or any(c in columns
                                                                                for c in candidate.include)


@dataclass(frozen=True)
class _Recorded:
    present: frozenset[Candidate]
    costing: Costing


STATEMENTS_PLANNED = "statements planned"


class CostCache:
    """An :class:`~dbtune.advisor.model.Engine`'s answers, cached.

    :meth:`cost` keeps of ``indexes`` only the candidates the query's plan could use (:func:`could_use`:
    on the query's tables, ``query.tables``, qualified and quoted as :attr:`Candidate.qualified_table`, and
    naming a column it references), so a query is asked again only when that set changes; a recorded
    costing with candidates ``C`` present whose plan used ``U`` answers any request
    ``C'`` with ``U ⊆ C' ⊆ C`` (see the module docstring); an error answers its own set only.
    ``calls`` counts the cost requests sent to the engine (cache hits are not counted), ``size_calls`` the
    size requests. An engine with a ``cost_many(queries, indexes)`` method (trial builds: one build for
    several queries) is asked through it by :meth:`cost_many`. ``count`` is told
    ``("statements planned", calls, None)`` after each request to the engine (the search decides how many).
    """

    def __init__(self, engine: Engine, count: Count = no_count) -> None:
        self.engine = engine
        self.count = count
        self.calls = 0
        self.size_calls = 0
        self._recorded: dict[str, list[_Recorded]] = {}
        self._exact: dict[tuple[str, frozenset[Candidate]], Costing] = {}
        self._sizes: dict[Candidate, int] = {}
        self._usable: dict[tuple[str, Candidate], bool] = {}

    def _relevant(self, query: AdvisorQuery, indexes: Iterable[Candidate]) -> frozenset[Candidate]:
        """:meth:`relevant`, remembering :func:`could_use` for each query and candidate."""
        out = []
        for c in indexes:
            usable = self._usable.get((query.key, c))
            if usable is None:
                usable = self._usable[(query.key, c)] = could_use(query, c)
            if usable:
                out.append(c)
        return frozenset(out)

    @staticmethod
    def relevant(query: AdvisorQuery, indexes: Iterable[Candidate]) -> frozenset[Candidate]:
        """The candidates of ``indexes`` that ``query``'s plan could use (see :func:`could_use`)."""
        return frozenset(c for c in indexes if could_use(query, c))

    def cached(self, query: AdvisorQuery, indexes: Iterable[Candidate]) -> Costing | None:
        """The answer the cache holds for ``query`` with ``indexes`` (filtered as :meth:`cost` does), or None."""
        return self._lookup(query, self._relevant(query, indexes))

    def _lookup(self, query: AdvisorQuery, present: frozenset[Candidate]) -> Costing | None:
        found = self._exact.get((query.key, present))
        if found is not None:
            return found
        for rec in self._recorded.get(query.key, ()):
            if rec.costing.used <= present <= rec.present:
                self._exact[(query.key, present)] = rec.costing
                return rec.costing
        return None

    def _record(self, query: AdvisorQuery, present: frozenset[Candidate], costing: Costing) -> Costing:
        self._exact[(query.key, present)] = costing
        if costing.error is None:  # a refused candidate refuses only the sets it is in
            self._recorded.setdefault(query.key, []).append(_Recorded(present, costing))
        return costing

    def cost(self, query: AdvisorQuery, indexes: Iterable[Candidate]) -> Costing:
        """``query``'s costing with ``indexes`` (those on its tables) present, from the cache or the engine.
        Never raises for a query the server refuses: the costing's ``error`` holds the message."""
        present = self._relevant(query, indexes)
        found = self._lookup(query, present)
        if found is not None:
            return found
        self.calls += 1
        costing = self._record(query, present, self.engine.cost(query, present))
        self.count(STATEMENTS_PLANNED, self.calls, None)
        return costing

    def cost_many(self, queries: Sequence[AdvisorQuery], indexes: Iterable[Candidate]) -> tuple[Costing, ...]:
        """The costing of each query with ``indexes`` present (each filtered to its tables), in order. The
        requests the cache cannot answer go to the engine's ``cost_many`` in one batch per candidate set
        when it has one (each query counts as one call), else one by one."""
        wanted = tuple(indexes)
        batch: Callable[[Sequence[AdvisorQuery], frozenset[Candidate]], Sequence[Costing]] | None = getattr(
            self.engine, "cost_many", None)
        out: dict[int, Costing] = {}
        missing: dict[frozenset[Candidate], list[int]] = {}
        for i, query in enumerate(queries):
            present = self._relevant(query, wanted)
            found = self.cached(query, present)
            if found is not None:
                out[i] = found
            elif batch is None:
                out[i] = self.cost(query, present)
            else:
                missing.setdefault(present, []).append(i)
        assert batch is not None or not missing
        for present, positions in missing.items():
            todo: list[int] = []
            for i in positions:  # a query twice in the batch, or answered by an earlier group
                found = self.cached(queries[i], present)
                if found is None and all(queries[j].key != queries[i].key for j in todo):
                    todo.append(i)
            if todo:
                self.calls += len(todo)
                answers = batch([queries[i] for i in todo], present) if batch is not None else ()
                for i, costing in zip(todo, answers, strict=True):
                    self._record(queries[i], present, costing)
                self.count(STATEMENTS_PLANNED, self.calls, None)
            for i in positions:
                answer = self.cached(queries[i], present)
                assert answer is not None
                out[i] = answer
        return tuple(out[i] for i in range(len(queries)))

    def size(self, candidate: Candidate) -> int:
        """The candidate's size in bytes (the engine's estimate, or a trial build's real size), cached, and
        never smaller than the size of any prefix of its key (the same index with fewer key columns), so a
        wider index never looks cheaper than one it extends."""
        found = self._sizes.get(candidate)
        if found is not None:
            return found
        prefixes = [self.size(replace(candidate, keys=candidate.keys[:k], unique=False))
                    for k in range(1, len(candidate.keys))]
        self.size_calls += 1
        size = max([self.engine.size(candidate), *prefixes])
        self._sizes[candidate] = size
        return size
