"""The index advisor as a plain Python API: ``advise(settings, config, queries, options) -> Advice``.

One run, in one read-only session (``default_transaction_read_only = on``, ``statement_timeout`` from
``settings``, every statement marked ``/* dbtune */``):

1. in one ``REPEATABLE READ`` transaction: the catalog snapshot, the views, ``pg_stat_user_tables``' write
   figures, the database's size, and, without a workload given, the top ``options.top`` statements of
   pg_stat_statements (each weighted by its calls);
2. each statement's column usage (:class:`~dbtune.workload.UsageAnalyzer`) and the candidates it suggests
   (:func:`~dbtune.advisor.candidates.generate_candidates`, from ``pg_stats``), none on a table the
   planner has no statistics for (:func:`~dbtune.advisor.stats.read_without_statistics`: never analyzed;
   ``Advice.engine_note`` names it with the fix, ``ANALYZE`` it and advise again; dbtune never runs it);
3. the engine: hypopg where it is installed in the database; else, with ``options.trial_builds`` on a
   target that does not look like production, indexes built for real inside transactions that are rolled
   back; else ``pg_stats`` selectivity (``Advice.engine_note`` says which, and what it could not cost);
4. the selection under the budget (:func:`~dbtune.advisor.select.select_indexes`) with each table's write
   cost (:mod:`dbtune.advisor.writes`); each recommendation's migration steps
   (:func:`dbtune.migrate.changes.create_index`);
5. the audit's own proposals (``findings``) judged (:mod:`dbtune.advisor.judge`);
6. with ``options.validate``, the proof on the server (:func:`dbtune.advisor.validate.validate`).

The engine is closed in any case, so no hypothetical index outlives the run. Nothing is written to the
target, except by trial builds (rolled back) and validation, which run only where
:func:`~dbtune.advisor.validate.refuse_production` allows them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import psycopg
from pglast import ast
from pglast.parser import ParseError

from dbtune.advisor.candidates import generate_candidates
from dbtune.advisor.costing import CostCache, root_table, whatif_session
from dbtune.advisor.judge import judge_findings
from dbtune.advisor.model import (
    NO_CANDIDATE_FOR,
    Advice,
    AdvisorQuery,
    Candidate,
    Engine,
    EngineKind,
    QueryProblem,
    Recommendation,
    Rejected,
)
from dbtune.advisor.ranking import StatisticsEngine
from dbtune.advisor.select import STAGE, select_indexes
from dbtune.advisor.stats import ColumnStats, read_column_stats, read_without_statistics
from dbtune.advisor.whatif import HypoPGEngine, hypopg_available
from dbtune.advisor.writes import TableWrites, WriteCosts, modified_rows, read_table_writes, write_costs
from dbtune.catalog.model import Relation, Snapshot
from dbtune.catalog.snapshot import take
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings, MarkedCursor, describe
from dbtune.errors import ServerRefused, UsageError
from dbtune.migrate.changes import create_index
from dbtune.model import Finding
from dbtune.pgsql import parse_sql
from dbtune.plans.collect import PlanQuery, collect_plans, explain_session
from dbtune.progress import Count, no_count
from dbtune.sqlnames import quote_ident
from dbtune.workload.model import Query, QueryUsage, WorkloadQuery
from dbtune.workload.pgss import pg_stat_statements_queries
from dbtune.workload.schema import SchemaRelation, WorkloadSchema, read_views
from dbtune.workload.statements import utility_statement, walk
from dbtune.workload.usage import UsageAnalyzer

DATABASE_SIZE = "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())"
NO_PLANNER = "ranked by pg_stats selectivity; planner costs not available"


@dataclass(frozen=True)
class AdviseOptions:
    """How to advise: ``budget`` for the new indexes (a float up to 1: that fraction of the database's
    size, ``pg_database_size``; an int: bytes),
    ``max_indexes`` (None: no limit), ``trial_builds`` (build candidates for real where hypopg is
    missing; a non-production target only), ``validate`` (prove the choice on the server; a
    non-production target only), ``yes`` (the user confirmed the target is not production), ``top`` (the
    pg_stat_statements statements read when no workload is given)."""

    budget: float | int = 0.5
    max_indexes: int | None = None
    trial_builds: bool = False
    validate: bool = False
    top: int = 50
    yes: bool = False


def budget_bytes(budget: float | int, database_bytes: int) -> int:
    """The budget in bytes: a float is a fraction of ``database_bytes``, an int is bytes. Raises
    :class:`UsageError` for a negative budget or a fraction above 1."""
    if isinstance(budget, float):
        if not 0 <= budget <= 1:
            raise UsageError(f"--budget: a fraction of the database's size must be between 0 and 1, got {budget}")
        return int(budget * database_bytes)
    if budget < 0:
        raise UsageError(f"--budget must be 0 or more bytes, got {budget}")
    return int(budget)


def _modifies(sql: str) -> bool:
    """Whether the statement inserts, updates, deletes or merges rows (a SELECT … FOR UPDATE does not)."""
    try:
        return any(isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt)
                   for raw in parse_sql(sql) for node in walk(raw.stmt))
    except ParseError:
        return False


@dataclass(frozen=True)
class _Workload:
    queries: tuple[AdvisorQuery, ...]
    usages: dict[str, QueryUsage]
    problems: tuple[QueryProblem, ...]
    sources: dict[str, Query]


def _workload(queries: Sequence[Query], analyzer: UsageAnalyzer) -> _Workload:
    """The statements as the advisor costs them: one :class:`AdvisorQuery` per fingerprint and relations
    (weights added up, each table's referenced columns from its usage, none when a column reference is
    unresolved), those that do not parse as problems; skipped and utility statements left out."""
    found: dict[str, AdvisorQuery] = {}
    usages: dict[str, QueryUsage] = {}
    sources: dict[str, Query] = {}
    problems: list[QueryProblem] = []
    for q in queries:
        name = q.name or q.location
        if q.skipped is not None:
            continue
        try:
            if utility_statement(q.text) is not None:
                continue
        except ParseError:
            pass
        usage = analyzer.usage(q.text)
        if usage.reason is not None and usage.reason.startswith("does not parse"):
            problems.append(QueryProblem(name, q.text, usage.reason))
            continue
        key = f"{q.fingerprint} {' '.join(q.relations)}".strip()
        weight = float(q.weight if q.weight is not None else q.calls if q.calls else 1)
        tables = tuple(t.table for t in usage.tables) or q.relations
        if key in found:
            found[key] = replace(found[key], weight=found[key].weight + weight)
            continue
        columns = None if usage.unresolved else tuple((t.table, frozenset(t.referenced)) for t in usage.tables
                                                      if t.referenced)
        found[key] = AdvisorQuery(key, name, q.text, weight, tables, writes=_modifies(q.text), columns=columns)
        usages[key] = usage
        sources[key] = q
    return _Workload(tuple(found.values()), usages, tuple(problems), sources)


def advise(settings: ConnectionSettings, config: Config, queries: Sequence[Query] | None, options: AdviseOptions, *,
           findings: Sequence[Finding] = (), progress: Callable[[str], None] = lambda _: None,
           snapshot: Snapshot | None = None, count: Count = no_count) -> Advice:
    """Advise indexes for the workload ``queries`` (None: the top ``options.top`` statements of
    pg_stat_statements) on the database ``settings`` names; see the module docstring.

    ``config`` is the run's configuration (unqualified names resolve under the session's search path, the
    one the statements are planned under); ``findings`` are the audit's, whose
    IX006 and IX001 proposals are judged into ``Advice.not_needed``. ``progress`` gets one line per step;
    ``count`` (a progress bar's :data:`~dbtune.progress.Count`) the statements planned
    (:class:`~dbtune.advisor.costing.CostCache`), the trial indexes built
    (:class:`~dbtune.advisor.trial.TrialBuildEngine`) and, with ``validate``, what
    :func:`~dbtune.advisor.validate.validate` counts.
    ``snapshot`` is the caller's catalog snapshot of the same database (the audit's, taken just before),
    used instead of reading the catalog a second time (about 30 statements and, on 10,000 indexes, a
    second or so).
    Raises :class:`~dbtune.errors.ConnectionFailed` (cannot connect), :class:`ServerRefused` (the server
    refused the session or a catalog read), :class:`UsageError` (a bad budget, no pg_stat_statements
    without a workload, ``--trial-builds``/``--validate`` on what looks like production). A statement that
    does not parse or that the server refuses is a :class:`QueryProblem`; the rest goes on.
    """
    started = time.perf_counter()
    if options.max_indexes is not None and options.max_indexes < 0:
        raise UsageError(f"--max-indexes must be 0 or more, got {options.max_indexes}")
    if options.trial_builds or options.validate:
        from dbtune.advisor.validate import refuse_production

        if options.trial_builds:
            refuse_production(settings, yes=options.yes, what="--trial-builds")
        if options.validate:
            refuse_production(settings, yes=options.yes, what="--validate")
    with explain_session(settings) as conn:
        snapshot, views, table_writes, database_bytes, workload_queries = _read(conn, queries, options, snapshot)
        progress(f"snapshot: {len(snapshot.relations)} relations, {len(workload_queries)} statements")
        # Names resolve under the session's search path, the one the engines plan the statements under.
        schema = WorkloadSchema.from_snapshot(snapshot, views)
        workload = _workload(workload_queries, UsageAnalyzer(schema))
        tables = _tables(snapshot, workload)
        stats = read_column_stats(conn, [(t.schema, t.name) for t in tables])
        # A partition's candidates are its partitioned root's (see candidates.py): so is its lack of statistics.
        roots = {root_table(snapshot, t) for t in tables}
        unanalyzed = read_without_statistics(conn, [(r.schema, r.name) for r in roots])
        # A table another session holds in ACCESS EXCLUSIVE: its indexes were not read, so it gets no candidate
        # (one could repeat an index it has), and the snapshot's skip says who holds it.
        unread = {s.what.removeprefix("table "): s.reason for s in snapshot.skipped if s.what.startswith("table ")}
        candidate_set = generate_candidates([(q, workload.usages[q.key]) for q in workload.queries], snapshot, stats,
                                            without_statistics={**{t: w.reason for t, w in unanalyzed.items()},
                                                                **unread})
        progress(f"candidates: {len(candidate_set.all)} for {len(workload.queries)} statements")
        costs = write_costs(snapshot, table_writes, workload.queries, _written_rows(settings, workload.queries))
        budget = budget_bytes(options.budget, database_bytes)
        engine, ranker_engine, builder = _engines(settings, conn, snapshot, stats, options, count)
        try:
            cache = CostCache(engine, count)
            ranker = CostCache(ranker_engine) if ranker_engine is not None else None
            by_query, write_only = _without_write_only(candidate_set.by_query, costs, cache)
            selection = select_indexes(workload.queries, by_query, cache, budget_bytes=budget,
                                       max_indexes=options.max_indexes, write_cost=costs, ranker=ranker)
            progress(f"selection: {len(selection.recommendations)} recommended, {cache.calls} what-if calls")
            recommendations = tuple(_with_changes(snapshot, r) for r in selection.recommendations)
            not_needed = judge_findings(findings, snapshot, workload.queries, workload.usages, recommendations, costs,
                                        {t: w.deleted for t, w in table_writes.items()}, cache=cache)
            calls = cache.calls + (ranker.calls if ranker is not None else 0)
            note = _engine_note(engine, candidate_set.all, ranker is not None, candidate_set.skipped)
        finally:
            try:
                engine.close()
                if ranker_engine is not None:
                    ranker_engine.close()
            finally:
                if builder is not None:
                    builder.close()
    problems = (*workload.problems, *(QueryProblem(q.name, q.sql, msg) for q, msg in selection.failed))
    advice = Advice(
        target=describe(settings), server_version=snapshot.server.short_version, engine=engine.kind,
        engine_note=note, budget_bytes=budget, max_indexes=options.max_indexes, database_bytes=database_bytes,
        recommendations=recommendations, rejected=(*write_only, *selection.rejected), not_needed=not_needed,
        problems=problems, queries=len(workload.queries), candidates=len(candidate_set.all), whatif_calls=calls,
        duration_ms=(time.perf_counter() - started) * 1000)
    if options.validate and advice.recommendations:
        from dbtune.advisor.validate import validated_advice

        bench = [WorkloadQuery(q.name, q.sql, workload.sources[q.key].params_sql) for q in workload.queries]
        advice = validated_advice(settings, advice, bench, progress=progress, count=count)
        advice = replace(advice, duration_ms=(time.perf_counter() - started) * 1000)
    return advice


def _read(conn: psycopg.Connection, queries: Sequence[Query] | None, options: AdviseOptions,
          snapshot: Snapshot | None = None
          ) -> tuple[Snapshot, tuple[SchemaRelation, ...], dict[str, TableWrites], int, Sequence[Query]]:
    """Everything read in the one ``REPEATABLE READ`` transaction (the catalog snapshot unless given)."""
    try:
        # BEGIN and ROLLBACK sent as statements (marked /* dbtune */, as every statement dbtune sends), not
        # by psycopg's transaction(), whose own BEGIN/COMMIT carry no marker.
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            snapshot = take(conn) if snapshot is None else snapshot
            views = read_views(conn)
            table_writes = read_table_writes(conn)
            with MarkedCursor(conn) as cur:
                row = cur.execute(DATABASE_SIZE).fetchone()
            database_bytes = int(row[0]) if row else 0
            found = queries if queries is not None else pg_stat_statements_queries(conn, options.top)
        finally:
            conn.execute("ROLLBACK")
    except psycopg.Error as exc:
        raise ServerRefused(f"the server refused a catalog read: {' '.join(str(exc).split())}") from None
    return snapshot, views, table_writes, database_bytes, found


def _tables(snapshot: Snapshot, workload: _Workload) -> list[Relation]:
    """Every table the workload's statements use, by name."""
    names = {t for q in workload.queries for t in q.tables}
    return [rel for rel in (snapshot.find_relation(name) for name in sorted(names)) if rel is not None]


def _written_rows(settings: ConnectionSettings, queries: Sequence[AdvisorQuery]) -> dict[str, list[tuple[str, float]]]:
    """For each writing statement, the (table, rows) its plan estimates it modifies: planned, never run, in a
    read-only session of its own (:func:`~dbtune.plans.collect.collect_plans`); one that cannot be planned
    counts no rows (its problem is reported by the selection)."""
    writing = [q for q in queries if q.writes]
    if not writing:
        return {}
    collection = collect_plans(settings, [PlanQuery(q.sql, name=q.key) for q in writing])
    return {q.key: modified_rows(e.plan.root) for q, e in zip(writing, collection.queries, strict=True)
            if e.plan is not None}


def _engines(settings: ConnectionSettings, conn: psycopg.Connection, snapshot: Snapshot, stats: ColumnStats,
             options: AdviseOptions, count: Count = no_count
             ) -> tuple[Engine, Engine | None, psycopg.Connection | None]:
    """The engine that costs the candidates, the pg_stats ranking for those it cannot cost (None when the
    engine is that ranking already), and the trial builds' own writable session (None without them)."""
    if hypopg_available(conn):
        return HypoPGEngine(conn, snapshot), StatisticsEngine(conn, snapshot, stats), None
    if options.trial_builds:
        from dbtune.advisor.trial import TrialBuildEngine

        builder = whatif_session(settings, trial_builds=True)
        return TrialBuildEngine(builder, snapshot, count), StatisticsEngine(conn, snapshot, stats), builder
    return StatisticsEngine(conn, snapshot, stats), None, None


def _without_write_only(by_query: dict[str, tuple[Candidate, ...]], costs: WriteCosts, cache: CostCache
                        ) -> tuple[dict[str, tuple[Candidate, ...]], list[Rejected]]:
    """The candidates left after those on write-only tables, which are rejected with the reason."""
    rejected: dict[Candidate, Rejected] = {}
    kept: dict[str, tuple[Candidate, ...]] = {}
    for key, cands in by_query.items():
        keep = []
        for c in cands:
            why = costs.write_only(c.qualified_table)
            if why is None:
                keep.append(c)
            elif c not in rejected:
                rejected[c] = Rejected(c, STAGE, why, write_cost=costs(c), estimated_bytes=cache.size(c))
        kept[key] = tuple(keep)
    return kept, list(rejected.values())


def _with_changes(snapshot: Snapshot, rec: Recommendation) -> Recommendation:
    """``rec`` with the migration steps that build it (concurrently; on a partitioned table, per partition)."""
    cand = rec.candidate
    table = snapshot.find_relation(cand.qualified_table)
    if table is None:
        return rec
    changes = create_index(snapshot, table, cand.index_name(), list(cand.columns), unique=cand.unique,
                           method=cand.method, include=[quote_ident(c) for c in cand.include], where=cand.predicate)
    return replace(rec, changes=changes)


def _engine_note(engine: Engine, candidates: Sequence[Candidate], ranked: bool,
                 skipped: Sequence[tuple[str, str]] = ()) -> str:
    """How the candidates were ranked, what could not be costed, and what was not proposed (a foreign
    table, …)."""
    uncostable = [c for c in candidates if engine.cannot_cost(c) is not None]
    if engine.kind is EngineKind.HYPOPG:
        note = "ranked by planner costs with hypothetical indexes (hypopg)"
    elif engine.kind is EngineKind.TRIAL_BUILD:
        note = ("ranked by planner costs with each candidate built for real in a transaction rolled back "
                "(--trial-builds)")
    else:
        note = (f"{NO_PLANNER} (hypopg is not installed in this database; --trial-builds builds the candidates "
                "for real on a non-production target)")
    if uncostable:
        reasons = sorted({engine.cannot_cost(c) or "" for c in uncostable})
        how = "ranked by pg_stats selectivity" if ranked else "not ranked"
        note += f"; {len(uncostable)} candidate(s) could not be costed ({'; '.join(reasons)}): {how}"
    if skipped:
        note += NO_CANDIDATE_FOR + "; ".join(f"{obj} ({why})" for obj, why in skipped)
    return note
