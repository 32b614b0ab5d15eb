"""Proof on the real server (issue 7, item 5): build the recommended indexes, benchmark the queries they
serve before and after with ``dbtune bench``, keep an index only when it measurably helps, and drop
(concurrently) every other one.

The steps, for ``validate(settings, recommendations, workload, bench)``:

1. the affected queries (every query a recommendation serves, as its :class:`~dbtune.workload.WorkloadQuery`
   from the workload, matched by pglast fingerprint or name, else built from its text; and every other
   workload query that names a table a recommendation indexes, whose real plan may take the index though
   the planner's costing did not count it as served) are benchmarked
   "before" with ``bench`` and a per-execution ``statement_timeout``;
2. every recommendation's :attr:`~dbtune.advisor.model.Recommendation.changes` run in order through the
   migration runtime (:mod:`dbtune.migrate.runtime`: ``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` under
   ``lock_timeout`` with retries; a partitioned parent ``ON ONLY``, each partition's concurrent build and
   ``ATTACH PARTITION``, then the check of the parent's ``indisvalid``); a build that fails leaves nothing
   (the runtime drops the INVALID index a failed concurrent build leaves, and whatever else the
   recommendation built is dropped here) and is rejected with the server's reason; the tables are analyzed;
3. the same queries are benchmarked "after" and compared (:func:`dbtune.bench.compare`: each query's
   verdict against the noise floor of the reference statements);
4. an index is kept when at least one query whose after-plan uses it got significantly faster, and
   those queries together saved time: the sum over them of ``weight × (median after − median before)``
   (ms; the weight of the served query, its calls or the workload file's weight) is below zero. A query
   the index made significantly slower is a plan the planner got wrong; it costs the index its place
   unless the queries it made significantly faster saved at least :data:`OUTWEIGH` times what the slower
   ones lost (TPC-H's ``lineitem (l_partkey, l_quantity)``: Q17 and Q20 from over 10 s to 0.06 and 0.7 s,
   Q9 2.5 → 3.2 s; ``orders (o_custkey)``: Q22 0.3 → 0.1 s, Q5 and Q7 0.4 s slower, dropped); a kept index
   says which queries it made slower. Otherwise it is dropped (``DROP INDEX
   CONCURRENTLY IF EXISTS``; plain ``DROP INDEX`` for a partitioned parent, which cannot be dropped
   concurrently) and returned as a :class:`~dbtune.advisor.model.Rejected` of stage ``validation`` with the
   reason and the figures ("q1 320 → 121 ms faster, but q2 434 → 722 ms: a net loss of 89 ms"). An index
   no plan takes (a duplicate of an existing index's use, say) therefore never counts as faster and goes
   (the A/A rule).

An index whose served queries could not be measured (the bench skipped them: no values for a ``$n``, a
statement it does not run) and that no measured plan uses is *not kept*: it is dropped like the rest, and
its reason says so ("could not measure by-email: no values for its parameters: …"), never "no plan uses
it". Validation keeps only what it proved; the report lists the index with that reason, so a user who
gives the query a ``-- params:`` line can validate it.

The measurement (:data:`VALIDATION_BENCH`): 7 rounds of one execution per query after one warm-up, the
reference statements 30 times a round, and a query cancelled by ``statement_timeout`` (``timeout_ms``) is
not run again on that side (``stop_on_timeout``). A query whose executions timed out before and finished
after counts as faster (and the mirror case as slower), with the timeout as its "before" latency. The
verdicts come from :func:`dbtune.bench.compare` with the noise floor's drift interval at 80 %
(:data:`DRIFT_CONFIDENCE`, ``bench compare`` keeps 95 %). Why: with 3 rounds (the old setting) the
reference statements' interval has about 4 degrees of freedom (t = 2.78), and on TPC-H SF1 its far end,
the floor, came out at 1.84–1.91×: a query had to get twice as fast to count, and Q5's 433 → 722 ms was
"no significant change". 7 rounds give about 12 degrees of freedom (t = 2.18, the interval's half-width
0.53 of one round's spread instead of 0.82): for the same machine spread the floor's logarithm shrinks by
half; at 80 % (t = 1.36) by two thirds. The query's own interval stays at 95 %, and it must clear the drift
bound, so the test stays stricter than one 95 % test (a false "faster" about 1 % one-sided where the two
intervals are equally wide, against 0.3 % at 95 %/95 %); a wrong keep costs a useless index, a wrong drop
a missed one, and the net-gain rule above guards the keep. Its cost: 8 executions a side of each query, so
13 TPC-H queries of 0.1–3 s (about 12 s a pass) take about 100 s a side, 3–4 minutes with the builds; a
query that times out costs one timeout a side (10 s), not eight. Measured on a small real case (a 0.4 s
CPU-bound statement made 1.3× faster, 8 s for before, after and an A/A run) on a 2-core machine shared with
other test runs (load 1.4–2.4): at 3 rounds "reaches into the noise floor" (1.32×–2.20×) or "includes 1";
at 7 rounds with the bound at 80 %, in the quietest of five tries "faster, clear of the noise floor
1.06×", under bursts of load "includes 1" or "reaches into the noise floor 1.60×"; the A/A runs, whose
rounds moved by up to 0.61× and 1.42×, were "no significant change" every time (floors up to 1.9×): a
loaded machine makes validation keep less, never more. The
demo's millisecond queries afford more executions (the caller passes its own
:class:`~dbtune.bench.BenchOptions`).

Only on a non-production target, after ``--yes``: :func:`refuse_production`. See
https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY and
https://www.postgresql.org/docs/current/sql-dropindex.html.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pglast
import psycopg
from pglast.parser import ParseError

from dbtune.advisor.model import Advice, Candidate, Measured, Recommendation, Rejected
from dbtune.bench import BenchOptions, BenchResult, Comparison, QueryComparison, Verdict, WorkloadQuery, run_bench
from dbtune.bench import compare as compare_runs
from dbtune.bench.result import QueryResult
from dbtune.db.connect import ConnectionSettings, connect, describe
from dbtune.errors import DbtuneError, UsageError
from dbtune.escape import one_line
from dbtune.migrate import runtime
from dbtune.migrate.runtime import ApplyError, ApplyOptions
from dbtune.model import Change, ChangeKind
from dbtune.progress import Count, no_count
from dbtune.sqlnames import qualified, quote_ident
from dbtune.workload.statements import named_relations

# 7 rounds of 1 execution after 1 warm-up, the reference statements 30 times a round, a timed-out query not
# run again: a 1.3x change on a 0.4-3 s query clears the floor, 13 TPC-H queries take minutes (module docstring).
VALIDATION_BENCH = BenchOptions(iterations=7, rounds=7, warmup=1, param_samples=10, reference_iterations=30,
                                stop_on_timeout=True)
# The confidence of the machine-drift interval behind the noise floor (dbtune.bench.compare's drift_confidence).
DRIFT_CONFIDENCE = 0.80
# A query made significantly slower costs an index its place unless the queries it made significantly faster
# saved at least this many times what the slower ones lost (weighted ms).
OUTWEIGH = 3.0
DEFAULT_TIMEOUT_MS = 10_000
STAGE = "validation"
WATCHED = "watched "  # the key of a measured query that no recommendation serves
_TIMED_OUT = "statement timeout"  # in the server's message for SQLSTATE 57014 from statement_timeout


def refuse_production(conn_or_settings: psycopg.Connection | ConnectionSettings, *, yes: bool, what: str,
                      acts: str = "builds indexes") -> None:
    """Raise :class:`UsageError` (exit 2) unless ``what`` (``--validate``, ``--trial-builds``, ``dbtune
    tune``, ``probe race``) may write to this target as it ``acts`` ("builds indexes", "writes a scratch
    schema"): ``yes`` must be given (``--yes``), and the server must not
    look like production: ``default_transaction_read_only`` on for new sessions (``reset_val``: as set by
    ``ALTER DATABASE``/``ALTER ROLE``, the server's config or the connection's options),
    ``transaction_read_only`` on in a fresh session, or a hot standby (``pg_is_in_recovery()``).

    ``conn_or_settings``: an open connection (not checked for ``transaction_read_only``, which its caller's
    own read-only transaction may set) or the settings to open one with. Raises
    :class:`~dbtune.errors.ConnectionFailed` when it cannot connect. See
    https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-DEFAULT-TRANSACTION-READ-ONLY
    and https://www.postgresql.org/docs/current/hot-standby.html.
    """
    if not yes:
        raise UsageError(f"{what} {acts} on the target: pass --yes on a non-production server")
    if isinstance(conn_or_settings, ConnectionSettings):
        with connect(conn_or_settings, autocommit=True) as conn:
            reasons = _production_signs(conn, fresh=True)
        target = describe(conn_or_settings)
    else:
        reasons = _production_signs(conn_or_settings, fresh=False)
        target = "the target"
    if reasons:
        raise UsageError(f"{what} refused: {target} looks like production ({'; '.join(reasons)}); it {acts} "
                         "only on a non-production server")


_READ_ONLY = """
/* whether new sessions are read-only (reset_val: the session's value before any SET), whether this one is,
   and whether the server is a hot standby */
SELECT (SELECT s.reset_val FROM pg_catalog.pg_settings s WHERE s.name = 'default_transaction_read_only'),
       pg_catalog.current_setting('transaction_read_only'), pg_catalog.pg_is_in_recovery()
"""


def _production_signs(conn: psycopg.Connection, *, fresh: bool) -> list[str]:
    row = conn.execute(_READ_ONLY).fetchone()
    assert row is not None
    default_ro, tx_ro, standby = row
    signs = []
    if default_ro == "on":
        signs.append("default_transaction_read_only is on")
    if fresh and tx_ro == "on" and default_ro != "on" and not standby:
        signs.append("transaction_read_only is on")
    if standby:
        signs.append("it is a hot standby (pg_is_in_recovery() is true)")
    return signs


@dataclass(frozen=True)
class _Built:
    """What one recommendation built: the indexes it created that did not exist before (qualified), the
    statements that drop them (parent first), the tables it changed, and its size in bytes."""

    position: int
    recommendation: Recommendation
    created: tuple[str, ...]
    drops: tuple[Change, ...]
    tables: tuple[str, ...]
    real_bytes: int | None
    relnames: tuple[str, ...] = ()  # the created indexes' pg_class.relname, as plans name them


def validate(settings: ConnectionSettings, advice_or_recommendations: Advice | Sequence[Recommendation],
             workload: Sequence[WorkloadQuery], bench: BenchOptions = VALIDATION_BENCH, *, keep: bool = True,
             timeout_ms: int = DEFAULT_TIMEOUT_MS, lock_timeout_ms: int = runtime.DEFAULT_LOCK_TIMEOUT_MS,
             progress: Callable[[str], None] = lambda _: None, count: Count = no_count,
             ) -> tuple[tuple[Recommendation, ...], tuple[Rejected, ...]]:
    """Prove each recommendation on the server (see the module docstring) and return ``(kept, rejected)``:
    the kept recommendations in their order with ``measured`` (one :class:`Measured` per query it serves:
    median latency before and after in ms, ratio after/before, verdict) and ``real_bytes``
    (``pg_relation_size`` of the index and of its partitions' indexes, bytes) filled in; the rest as
    :class:`Rejected` of stage ``validation`` with the reason and the figures.

    ``workload`` gives each served query's parameters (``-- params:``) where it holds the query; ``bench``
    the benchmark's rounds and iterations (:data:`VALIDATION_BENCH` by default), both sides alike;
    ``timeout_ms`` each execution's ``statement_timeout``. ``keep=False`` drops every index built at the
    end, kept or not (``dbtune tune``'s migration then builds the kept ones). ``progress`` is told each
    step; ``count`` the benchmarks' statements run (:func:`~dbtune.bench.run_bench`) and the indexes built
    (``("indexes built", n, len(recommendations))``).

    Refuses a production-looking server (:func:`refuse_production`: the caller has had ``--yes``). Raises
    :class:`UsageError` for bad bench options, :class:`~dbtune.errors.ConnectionFailed` /
    :class:`~dbtune.errors.ServerRefused` (exit 3) when the server cannot be reached; a failed build is
    a rejection, not an error. Whatever happens, nothing is left half-built.
    """
    recommendations = tuple(advice_or_recommendations.recommendations
                            if isinstance(advice_or_recommendations, Advice) else advice_or_recommendations)
    if not recommendations:
        return (), ()
    refuse_production(settings, yes=True, what="validation")
    queries = _affected_queries(recommendations, workload)
    timed = replace(settings, statement_timeout_ms=timeout_ms)
    progress(f"validating {len(recommendations)} index(es) on {describe(settings)}: {len(queries)} queries "
             f"benchmarked before and after ({bench.describe()}; statement_timeout {timeout_ms} ms)")
    before = run_bench(timed, list(queries.values()), bench, source="validation", progress=progress, count=count)
    opts = ApplyOptions(lock_timeout_ms=lock_timeout_ms, report=progress)
    built: list[_Built] = []
    rejected: dict[int, Rejected] = {}
    try:
        with _runtime_op(settings, opts) as op:
            count(runtime.INDEXES_BUILT, 0, len(recommendations))
            for n, rec in enumerate(recommendations):
                progress(f"building {one_line(rec.candidate.describe())}")
                try:
                    built.append(_build(op, n, rec, settings))
                except ApplyError as exc:
                    rejected[n] = Rejected(rec.candidate, STAGE, f"its build failed, nothing of it is left: {exc}",
                                           rec.benefit, rec.write_cost, rec.estimated_bytes)
                count(runtime.INDEXES_BUILT, n + 1, len(recommendations))
            for table in dict.fromkeys(t for b in built for t in b.tables):
                op.run(runtime.analyze, table)
            after = run_bench(timed, list(queries.values()), bench, source="validation", progress=progress,
                              count=count) \
                if built else None
            judged = _judge(built, queries, before, after, timeout_ms) if after is not None else {}
            kept: list[Recommendation] = []
            for b in built:
                reason, measured = judged[b.position]
                n = b.position
                if reason is None:
                    kept.append(replace(b.recommendation, measured=measured, real_bytes=b.real_bytes))
                    progress(f"keeping {one_line(b.recommendation.candidate.describe())}")
                    continue
                rec = b.recommendation
                progress(f"dropping {one_line(rec.candidate.describe())}: {reason}")
                _drop(op, b)
                rejected[n] = Rejected(rec.candidate, STAGE, reason, rec.benefit, rec.write_cost,
                                       b.real_bytes or rec.estimated_bytes, measured)
            built = [b for b in built if b.position not in rejected]
            if not keep:
                for b in built:
                    progress(f"dropping {one_line(b.recommendation.candidate.describe())} (the migration builds it)")
                    _drop(op, b)
                built = []
    except BaseException:
        _drop_all_quietly(settings, opts, built)
        raise
    return tuple(kept), tuple(rejected[n] for n in sorted(rejected))


def validated_advice(settings: ConnectionSettings, advice: Advice, workload: Sequence[WorkloadQuery],
                     bench: BenchOptions = VALIDATION_BENCH, *, keep: bool = True,
                     timeout_ms: int = DEFAULT_TIMEOUT_MS,
                     progress: Callable[[str], None] = lambda _: None, count: Count = no_count) -> Advice:
    """``advice`` after :func:`validate`: the kept recommendations, the validation's rejections added to
    ``rejected``, ``validated`` true; a checklist or catalogue proposal judged not needed because a
    recommendation that validation reverted serves it (its :attr:`~dbtune.advisor.model.Rejected.served_by`,
    set by :func:`dbtune.advisor.judge.judge_findings`, is a candidate validation rejected) is needed again,
    and leaves ``not_needed``. Raises what :func:`validate` raises."""
    kept, rejected = validate(settings, advice, workload, bench, keep=keep, timeout_ms=timeout_ms, progress=progress,
                              count=count)
    reverted = [r.candidate for r in rejected]
    not_needed = tuple(r for r in advice.not_needed if r.served_by is None or r.served_by not in reverted)
    return replace(advice, recommendations=kept, rejected=(*advice.rejected, *rejected), not_needed=not_needed,
                   validated=True)


def _fingerprint(sql: str) -> str | None:
    try:
        return str(pglast.fingerprint(sql))
    except ParseError:
        return None


def _affected_queries(recommendations: Sequence[Recommendation],
                      workload: Sequence[WorkloadQuery]) -> dict[str, WorkloadQuery]:
    """Each served query (by its key) as the workload holds it: matched by fingerprint, then by name;
    a query the workload does not hold is benchmarked from its text, named by its key. Then every other
    workload query that names a table a recommendation indexes (key ``watched <name>``): the planner's
    costing did not count it as served, but its real plan may take the index, as TPC-H's Q5 takes
    ``orders (o_custkey)`` built for Q13 and Q22, and then it is judged with the rest."""
    by_fingerprint = {fp: w for w in workload if (fp := _fingerprint(w.sql)) is not None}
    by_name = {w.name: w for w in workload}
    found: dict[str, WorkloadQuery] = {}
    names: set[str] = set()
    for rec in recommendations:
        for q in rec.queries:
            if q.key in found:
                continue
            fp = _fingerprint(q.sql)
            w = (by_fingerprint.get(fp) if fp else None) or by_name.get(q.name) or WorkloadQuery(q.name or q.key, q.sql)
            if w.name in names:  # two served statements under one name: the bench tells them apart by name
                w = replace(w, name=f"{w.name} ({q.key})")
            names.add(w.name)
            found[q.key] = w
    tables = {name for rec in recommendations
              for name in (qualified(rec.candidate.schema, rec.candidate.table), quote_ident(rec.candidate.table))}
    chosen = {id(w) for w in found.values()}
    for w in workload:
        if id(w) in chosen or w.name in names or not tables.intersection(_relations(w.sql)):
            continue
        names.add(w.name)
        found[f"{WATCHED}{w.name}"] = w
    return found


def _relations(sql: str) -> tuple[str, ...]:
    """The relations ``sql`` names (:func:`dbtune.workload.statements.named_relations`: ``schema.name``
    as written qualified, ``name`` unqualified), ``()`` when it does not parse."""
    try:
        return named_relations(pglast.parse_sql(sql))
    except ParseError:
        return ()


@contextmanager
def _runtime_op(settings: ConnectionSettings, opts: ApplyOptions) -> Iterator[Any]:
    """An Alembic ``Operations`` on a connection of its own, so the migration runtime's step functions run
    here as they run in a revision (each step outside any transaction, under ``lock_timeout``)."""
    from alembic.config import Config as AlembicConfig
    from alembic.operations import Operations
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationContext

    from dbtune.migrate.env import engine_for

    config = AlembicConfig()
    config.attributes["dbtune_apply"] = opts
    engine = engine_for(settings)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, environment_context=EnvironmentContext(
                config, None),  # type: ignore[arg-type]  # no script directory: no revisions run
                                                 opts={"transaction_per_migration": True})
            yield _StepOps(Operations(context), context, settings, opts)
    finally:
        engine.dispose()


class _StepOps:
    """Runs one runtime step at a time inside the logical transaction Alembic's ``autocommit_block``
    expects (as ``transaction_per_migration`` gives each revision)."""

    def __init__(self, op: Any, context: Any, settings: ConnectionSettings, opts: ApplyOptions) -> None:
        self.op, self.context, self.settings, self.opts = op, context, settings, opts

    def run(self, step: Callable[..., None], *args: Any) -> None:
        with self.context.begin_transaction(_per_migration=True):
            step(self.op, *args)


def _run_change(ops: _StepOps, change: Change) -> None:
    """One change through the runtime function a generated revision calls for it
    (:func:`dbtune.migrate.render._call`'s choice)."""
    if change.kind is ChangeKind.CREATE_INDEX and not change.transactional and change.index:
        ops.run(runtime.build_index, change.index, change.up)
    elif change.kind is ChangeKind.ATTACH_INDEX and change.index:
        ops.run(runtime.attach_index, change.index, change.up)
    else:
        ops.run(runtime.run_step, change.up, change.table)


def _exists(ops: _StepOps, index: str) -> bool:
    return _scalar(ops, "SELECT pg_catalog.to_regclass(%(i)s) IS NOT NULL", i=index) is True


def _scalar(ops: _StepOps, sql: str, **params: Any) -> Any:
    connection = ops.context.connection
    value = connection.exec_driver_sql(sql, params).scalar()
    connection.commit()
    return value


_INDEX_BYTES = """
/* an index's size in bytes: its own, or for a partitioned index the sum over its partitions' indexes */
SELECT COALESCE((SELECT sum(pg_catalog.pg_relation_size(t.relid))
                   FROM pg_catalog.pg_partition_tree(%(i)s::regclass) t),
                 pg_catalog.pg_relation_size(%(i)s::regclass))::bigint
"""


def _build(ops: _StepOps, position: int, rec: Recommendation, settings: ConnectionSettings) -> _Built:
    """Run ``rec``'s changes in order; on failure drop whatever of them was built and raise
    :class:`ApplyError` with the server's reason."""
    from sqlalchemy.exc import SQLAlchemyError

    changes = rec.changes or _changes_of(rec.candidate, settings)
    creates = [c for c in changes if c.kind is ChangeKind.CREATE_INDEX and c.index]
    if not creates:
        raise ApplyError("it carries no CREATE INDEX change")
    existed = {c.index for c in creates if c.index and _exists(ops, c.index)}
    parent = creates[0] if creates[0].transactional else None  # CREATE INDEX … ON ONLY a partitioned table
    drops = tuple(Change(up=c.down, table=c.table, index=c.index, kind=ChangeKind.DROP_INDEX)
                  for c in creates if c.down and c.index not in existed)
    tables = tuple(dict.fromkeys(c.table for c in changes if c.table))
    try:
        for change in changes:
            _run_change(ops, change)
        if parent is not None and parent.index:
            partitions = tuple(c.table for c in creates[1:] if c.table)
            ops.run(runtime.complete_partitioned_index, parent.index, parent.up, partitions)
    except (DbtuneError, SQLAlchemyError) as exc:
        reason = str(exc) if isinstance(exc, DbtuneError) else one_line(str(getattr(exc, "orig", exc)))
        try:
            _drop(ops, _Built(position, rec, (), drops, tables, None))
        except (DbtuneError, SQLAlchemyError) as cleanup:
            reason += f"; dropping what it built failed too ({one_line(str(cleanup))})"
        raise ApplyError(reason) from None
    except BaseException:  # an interrupt in the middle of a build: drop what it left, on a session of its own
        _drop_all_quietly(ops.settings, ops.opts, [_Built(position, rec, (), drops, tables, None)])
        raise
    created = tuple(c.index for c in creates if c.index and c.index not in existed and _exists(ops, c.index))
    relnames = tuple(str(_scalar(ops, "SELECT relname FROM pg_catalog.pg_class WHERE oid = %(i)s::regclass", i=ix))
                     for ix in created)
    size = _scalar(ops, _INDEX_BYTES, i=creates[0].index) if creates[0].index in created else None
    return _Built(position, rec, created, drops, tables, int(size) if size is not None else None, relnames)


def _changes_of(candidate: Candidate, settings: ConnectionSettings) -> tuple[Change, ...]:
    """The migration's changes for a candidate that came without them
    (:func:`dbtune.migrate.changes.create_index` on a fresh snapshot)."""
    from dbtune.catalog.snapshot import take
    from dbtune.db.connect import read_only_snapshot
    from dbtune.migrate.changes import create_index

    with read_only_snapshot(settings) as conn:
        snapshot = take(conn)
    table = next((r for r in snapshot.relations.values()
                  if r.schema == candidate.schema and r.name == candidate.table), None)
    if table is None:
        raise ApplyError(f"table {candidate.qualified_table} does not exist")
    return create_index(snapshot, table, candidate.index_name(), candidate.columns, unique=candidate.unique,
                        method=candidate.method, include=[quote_ident(c) for c in candidate.include],
                        where=candidate.predicate)


def _drop(ops: _StepOps, built: _Built) -> None:
    """Drop what a recommendation built: the parent (or only) index first, which takes its attached
    partitions' indexes with it, then any partition index left unattached (``IF EXISTS``: a no-op for the
    ones already gone)."""
    for change in built.drops:
        ops.run(runtime.run_step, change.up, change.table)


def _drop_all_quietly(settings: ConnectionSettings, opts: ApplyOptions, built: Sequence[_Built]) -> None:
    """After an error (or an interrupt) in the middle of validation: drop every index it built, so
    nothing is left behind; a failure here is reported, the first error is the one raised."""
    if not any(b.drops for b in built):
        return
    try:
        with _runtime_op(settings, opts) as op:
            for b in built:
                _drop(op, b)
    except Exception as exc:  # noqa: BLE001 - the error that stopped validation is the one to raise
        opts.report(f"could not drop the indexes validation built ({one_line(str(exc))}): "
                    + ", ".join(c.index or "" for b in built for c in b.drops))


def _uses(result: QueryComparison, relnames: Sequence[str]) -> bool:
    """Whether the after-plan scans any of the indexes named ``relnames`` (plans name them bare, quoted
    as needed: ``Index Scan using "Idx" on t``, ``Bitmap Index Scan on idx``)."""
    if result.plan_after is None:
        return False
    return any(re.search(rf"(?:using|Bitmap Index Scan on) {re.escape(quote_ident(name))}(?: |$)", scan)
               for scan in result.plan_after.scans for name in relnames)


def _timed_out(q: QueryResult) -> bool:
    return q.errors > 0 and _TIMED_OUT in (q.first_error or "")


@dataclass(frozen=True)
class _Outcome:
    """One query's verdict as validation reads it, with its latencies (ms; a timed-out side at the timeout)."""

    verdict: Verdict
    reason: str
    before_ms: float
    after_ms: float
    ratio: float


def _outcome(c: QueryComparison, before: QueryResult, after: QueryResult, timeout_ms: int) -> _Outcome:
    """The comparison's verdict, except that a side whose executions timed out (statement_timeout) while
    the other side's did not counts as the slower one, at the timeout; and that a query measured faster
    with the same plan before and after (the same scans, so no new index read) is no change."""
    b_ms = float(timeout_ms) if before.count == 0 else c.before.p50_ms
    a_ms = float(timeout_ms) if after.count == 0 else c.after.p50_ms
    ratio = 1 / c.ratio.point if c.ratio is not None and c.ratio.point else (a_ms / b_ms if b_ms else 1.0)
    if _timed_out(before) and not _timed_out(after) and after.count:
        return _Outcome(Verdict.FASTER, f"timed out before ({before.errors} of {before.errors + before.count} "
                        f"executions over {timeout_ms} ms), finished after", b_ms, a_ms, a_ms / b_ms)
    if _timed_out(after) and not _timed_out(before) and before.count:
        return _Outcome(Verdict.SLOWER, f"finished before, timed out after ({after.errors} of "
                        f"{after.errors + after.count} executions over {timeout_ms} ms)", b_ms, a_ms, a_ms / b_ms)
    if (c.verdict is Verdict.FASTER and c.plan_before is not None and c.plan_after is not None
            and c.plan_change is None and c.plan_before.scans == c.plan_after.scans):
        # The same plan, scan for scan, reads no new index: what got faster is the machine (caches, load),
        # not the recommendation. (Slower stays slower: an index costs writes without changing their plan.)
        return _Outcome(Verdict.NO_CHANGE, f"{c.reason}, but its plan is the same before and after: not the "
                        "index's doing", b_ms, a_ms, ratio)
    return _Outcome(c.verdict, c.reason, b_ms, a_ms, ratio)


def _judge(built: Sequence[_Built], queries: dict[str, WorkloadQuery], before: BenchResult, after: BenchResult,
           timeout_ms: int) -> dict[int, tuple[str | None, tuple[Measured, ...]]]:
    """For each built recommendation (by position): ``(None, measured)`` to keep it, ``(reason, measured)``
    to drop it."""
    comparison: Comparison = compare_runs(before, after, force=True, drift_confidence=DRIFT_CONFIDENCE)
    by_name = {c.name: c for c in comparison.queries}
    results_before = {q.name: q for q in before.queries}
    results_after = {q.name: q for q in after.queries}
    skipped = {s.name: s.reason for s in (*before.skipped, *after.skipped)}
    outcomes = {name: _outcome(c, results_before[name], results_after[name], timeout_ms)
                for name, c in by_name.items() if name in results_before and name in results_after}
    weights = {q.key: q.weight for b in built for q in b.recommendation.queries}
    weight = {w.name: weights.get(key, 1.0) for key, w in queries.items()}
    judged: dict[int, tuple[str | None, tuple[Measured, ...]]] = {}  # by position
    for b in built:
        rec = b.recommendation
        names = list(dict.fromkeys(queries[q.key].name for q in rec.queries if q.key in queries))
        measured = tuple(Measured(q.key, name, o.before_ms, o.after_ms, o.ratio, o.verdict.value, o.reason)
                         for q in rec.queries if (name := queries[q.key].name) in outcomes
                         for o in (outcomes[name],))
        if not b.created:
            judged[b.position] = ("an identical index already exists: building it changed nothing", measured)
            continue
        using = [n for n, c in by_name.items() if n in outcomes and _uses(c, b.relnames)]
        slower = [n for n in using if outcomes[n].verdict is Verdict.SLOWER]
        faster = [n for n in using if outcomes[n].verdict is Verdict.FASTER]
        measured += tuple(Measured(n, n, outcomes[n].before_ms, outcomes[n].after_ms, outcomes[n].ratio,
                                   outcomes[n].verdict.value, outcomes[n].reason)
                          for n in using if n not in names)
        unmeasured = [f"{n}: {skipped[n]}" for n in names if n in skipped]
        if slower:
            judged[b.position] = (_outweighed(faster, slower, outcomes, weight)
                                  or _net_loss(faster, using, outcomes, weight), measured)
        elif faster:
            judged[b.position] = (_net_loss(faster, using, outcomes, weight), measured)
        elif not using and unmeasured:
            judged[b.position] = (f"could not measure {'; '.join(unmeasured)}"
                                  + ("; the plans of the queries measured do not use it"
                                     if len(unmeasured) < len(names) else ""), measured)
        elif not using:
            judged[b.position] = ("no plan of the queries it serves uses it", measured)
        else:
            judged[b.position] = (f"no query that uses it got significantly faster ({', '.join(using)}: "
                                  + "; ".join(outcomes[n].verdict.value for n in using) + ")", measured)
    return judged


def _ms(value: float) -> str:
    """A latency for a reason: whole ms from 10 ms, three significant digits below."""
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.3g}"


def _figures(names: Sequence[str], outcomes: dict[str, _Outcome], weight: dict[str, float]) -> str:
    """``q1 320 → 121 ms, q2 434 → 722 ms (weight 3) and q3 …``: each query's median latencies."""
    shown = [f"{n} {_ms(outcomes[n].before_ms)} → {_ms(outcomes[n].after_ms)} ms"
             + (f" (weight {weight[n]:g})" if weight[n] != 1 else "") for n in names]
    return ", ".join(shown[:-1]) + f" and {shown[-1]}" if len(shown) > 1 else shown[0]


def _outweighed(faster: Sequence[str], slower: Sequence[str], outcomes: dict[str, _Outcome],
                weight: dict[str, float]) -> str | None:
    """The reason to drop an index that made ``slower`` significantly slower: none of ``faster`` got
    significantly faster, or together they saved less than :data:`OUTWEIGH` times the time the slower
    ones lost (``weight ×`` median latency, ms); ``None`` when the gain outweighs the loss."""
    made = f"made {_figures(slower, outcomes, weight)} significantly slower"
    if not faster:
        return made
    gain = math.fsum(weight[n] * (outcomes[n].before_ms - outcomes[n].after_ms) for n in faster)
    loss = math.fsum(weight[n] * (outcomes[n].after_ms - outcomes[n].before_ms) for n in slower)
    if gain >= OUTWEIGH * loss:
        return None
    return (f"{made}; what {_figures(faster, outcomes, weight)} saved ({_ms(gain)} ms) is less than "
            f"{OUTWEIGH:g} times that loss ({_ms(loss)} ms)")


def _net_loss(faster: Sequence[str], using: Sequence[str], outcomes: dict[str, _Outcome],
              weight: dict[str, float]) -> str | None:
    """``None`` when the queries whose after-plan uses the index saved time in all (the sum of ``weight ×
    (after − before)`` median latencies, ms, is below zero); else the reason, with the figures."""
    net = math.fsum(weight[n] * (outcomes[n].after_ms - outcomes[n].before_ms) for n in using)
    if net < 0:
        return None
    losers = [n for n in using if n not in faster and outcomes[n].after_ms > outcomes[n].before_ms]
    weighted = " (weighted)" if any(weight[n] != 1 for n in using) else ""
    return (f"{_figures(faster, outcomes, weight)} faster, but "
            f"{_figures(losers, outcomes, weight) if losers else 'nothing else'}: a net loss of "
            f"{_ms(net)} ms{weighted}")
