"""The workload runner: each query, after a warm-up, for a number of iterations or a duration, from
``clients`` concurrent sessions (threads, one connection each), every latency recorded.

Safety: by default only SELECTs run, in sessions with ``default_transaction_read_only = on``, so nothing
can be written even by a function a SELECT calls. DML (and ``SELECT … FOR UPDATE``) runs only with
``allow_writes``, and then every execution sits in its own transaction that is rolled back; only the
statement itself (execute and fetch) is timed, not ``BEGIN``/``ROLLBACK``. Sequences still advance
(``nextval`` is never rolled back) and rolled-back rows leave dead tuples for vacuum.

Statements are sent with psycopg's ``RawCursor``, so the server sees the ``$n`` placeholders exactly as an
application's driver sends them (parameters as text of unknown type; psycopg prepares a statement after
its fifth execution on a connection, as drivers commonly do). Every session has ``statement_timeout``
from the connection settings and ``application_name=dbtune``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pglast
import psycopg
from pglast.parser import ParseError

from dbtune.bench.params import Parameters, ParameterUnresolved, cycle, sample_parameters
from dbtune.bench.plan import PlanShape, explain
from dbtune.bench.result import TIMING_SETTINGS, BenchResult, BenchServer, QueryResult, RunParameters, SkippedQuery
from dbtune.bench.stats import encode, new_histogram, percentile_ms, record
from dbtune.db.connect import ConnectionSettings, MarkedCursor, MarkedRawCursor, connect, describe
from dbtune.errors import ServerRefused, UsageError
from dbtune.workload import WorkloadQuery, statement_kind

DEFAULT_SAMPLE_CAP = 100_000


@dataclass(frozen=True)
class BenchOptions:
    """How to run: ``iterations`` per client and query, or ``duration_s`` seconds per query (then
    ``iterations`` is ignored); ``warmup`` unmeasured executions per client first; ``clients`` concurrent
    sessions; ``allow_writes`` runs DML in rolled-back transactions; ``param_samples`` distinct parameter
    sets to draw per query; ``sample_cap`` raw latencies kept per query (a uniform reservoir beyond it);
    ``seed`` makes parameter sampling and the reservoir repeatable."""

    iterations: int = 100
    duration_s: float | None = None
    warmup: int = 5
    clients: int = 1
    allow_writes: bool = False
    param_samples: int = 100
    sample_cap: int = DEFAULT_SAMPLE_CAP
    seed: int = 1

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the option that is out of range."""
        if self.duration_s is None and self.iterations < 1:
            raise UsageError(f"--iterations must be at least 1, got {self.iterations}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise UsageError(f"--duration must be more than 0 seconds, got {self.duration_s}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.clients < 1:
            raise UsageError(f"--clients must be at least 1, got {self.clients}")
        if self.param_samples < 1 or self.sample_cap < 1:
            raise UsageError("param_samples and sample_cap must be at least 1")


@dataclass
class _ClientStats:
    histogram: object = field(default_factory=new_histogram)
    samples: list[float] = field(default_factory=list)
    seen: int = 0
    count: int = 0
    total_ms: float = 0.0
    min_ms: float = float("inf")
    max_ms: float = 0.0
    rows: int = 0
    errors: int = 0
    first_error: str | None = None
    crashed: BaseException | None = None


_SERVER = """
-- The server and database a run measures, and the settings that change timings.
SELECT pg_catalog.current_setting('server_version') AS version,
       pg_catalog.current_setting('server_version_num')::int AS version_num,
       pg_catalog.current_database() AS database
"""

_SETTINGS = """
-- The current value (with unit, as SHOW prints it) of each named setting.
SELECT s.name, pg_catalog.current_setting(s.name) FROM pg_catalog.unnest(%s::text[]) AS s(name)
"""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _session(settings: ConnectionSettings, read_only: bool) -> psycopg.Connection:
    conn = connect(settings, autocommit=True)
    try:
        conn.execute(f"SET statement_timeout = {int(settings.statement_timeout_ms)}")  # type: ignore[arg-type]
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        conn.close()
        raise ServerRefused(f"{describe(settings)} refused the benchmark session: {_one_line(exc)}") from None
    conn.cursor_factory = MarkedRawCursor  # type: ignore[assignment]
    return conn


def _execute(cur: psycopg.RawCursor, sql: str, values: tuple[str, ...], write: bool) -> tuple[float, int]:
    """One execution: (latency in ms, rows returned or affected). Writes run in a rolled-back transaction;
    only execute + fetch is timed."""
    if write:
        with cur.connection.transaction(force_rollback=True):
            started = time.perf_counter_ns()
            cur.execute(sql, values or None)  # type: ignore[arg-type]
            rows = len(cur.fetchall()) if cur.description is not None else max(cur.rowcount, 0)
            elapsed = time.perf_counter_ns() - started
    else:
        started = time.perf_counter_ns()
        cur.execute(sql, values or None)  # type: ignore[arg-type]
        rows = len(cur.fetchall()) if cur.description is not None else max(cur.rowcount, 0)
        elapsed = time.perf_counter_ns() - started
    return elapsed / 1e6, rows


def _client(conn: psycopg.Connection, sql: str, params: Parameters, write: bool, options: BenchOptions,
            index: int, barrier: threading.Barrier, stats: _ClientStats) -> None:
    cap = max(1, options.sample_cap // options.clients)
    rng = random.Random(f"{options.seed}:{index}")
    values = cycle(params, start=index * max(1, len(params.sets) // options.clients))
    cur = MarkedRawCursor(conn)
    waited = False
    try:
        for _ in range(options.warmup):
            try:
                _execute(cur, sql, next(values), write)
            except psycopg.Error:
                if conn.broken:
                    raise
        barrier.wait()
        waited = True
        deadline = time.monotonic() + options.duration_s if options.duration_s else None
        done = 0
        while (done < options.iterations) if deadline is None else (done == 0 or time.monotonic() < deadline):
            done += 1
            try:
                ms, rows = _execute(cur, sql, next(values), write)
            except psycopg.Error as exc:
                stats.errors += 1
                stats.first_error = stats.first_error or _one_line(exc)
                if conn.broken:
                    break
                continue
            record(stats.histogram, ms)  # type: ignore[arg-type]
            stats.count += 1
            stats.total_ms += ms
            stats.min_ms = min(stats.min_ms, ms)
            stats.max_ms = max(stats.max_ms, ms)
            stats.rows += rows
            stats.seen += 1
            if len(stats.samples) < cap:
                stats.samples.append(ms)
            else:  # reservoir sampling (Algorithm R): every latency is kept with probability cap / seen
                j = rng.randrange(stats.seen)
                if j < cap:
                    stats.samples[j] = ms
    except threading.BrokenBarrierError:
        return  # another session failed before the measured phase; it reports why
    except BaseException as exc:  # reported by the caller; never leave the other sessions waiting
        if isinstance(exc, psycopg.Error):
            stats.errors += 1
            stats.first_error = stats.first_error or _one_line(exc)
        else:
            stats.crashed = exc
        if not waited:
            barrier.abort()


def _measure(conns: list[psycopg.Connection], sql: str, params: Parameters, write: bool,
             options: BenchOptions) -> tuple[list[_ClientStats], float]:
    """Run one query from every session; the per-client stats and the measured phase's wall time (s)."""
    barrier = threading.Barrier(len(conns) + 1)
    stats = [_ClientStats() for _ in conns]
    threads = [threading.Thread(target=_client, args=(c, sql, params, write, options, i, barrier, stats[i]),
                                name=f"dbtune-bench-{i}", daemon=True) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for s in stats:
        if s.crashed is not None:
            raise s.crashed
    lost = next((i for i, c in enumerate(conns) if c.broken or c.closed), None)
    if lost is not None:
        raise ServerRefused(f"lost benchmark session {lost + 1}: {stats[lost].first_error or 'connection closed'}")
    return stats, elapsed


def _summarise(q: WorkloadQuery, fingerprint: str, kind: str, plan: PlanShape, params: Parameters,
               stats: list[_ClientStats], elapsed_s: float) -> QueryResult:
    histogram = new_histogram()
    for s in stats:
        histogram.add(s.histogram)
    count = sum(s.count for s in stats)
    errors = sum(s.errors for s in stats)
    samples = [round(x, 4) for s in stats for x in s.samples]
    first_error = next((s.first_error for s in stats if s.first_error), None)
    return QueryResult(
        name=q.name, sql=q.sql, fingerprint=fingerprint, kind=kind, count=count, errors=errors,
        p50_ms=percentile_ms(histogram, 50), p95_ms=percentile_ms(histogram, 95),
        p99_ms=percentile_ms(histogram, 99),
        mean_ms=sum(s.total_ms for s in stats) / count if count else 0.0,
        min_ms=min((s.min_ms for s in stats if s.count), default=0.0),
        max_ms=max((s.max_ms for s in stats if s.count), default=0.0),
        throughput_qps=count / elapsed_s if elapsed_s > 0 else 0.0,
        histogram=encode(histogram), samples=tuple(samples), plan=plan,
        rows=sum(s.rows for s in stats) / count if count else 0.0,
        parameters=params.sources, first_error=first_error)


def _prepare(control: psycopg.Connection, q: WorkloadQuery, options: BenchOptions,
             version_num: int) -> tuple[str, str, Parameters, PlanShape] | str:
    """Fingerprint, kind, parameters and plan of a query, or the reason it is skipped."""
    if q.parse_error is not None:
        return f"does not parse: {q.parse_error}"
    try:
        fingerprint = pglast.fingerprint(q.sql)
        kind = statement_kind(q.sql)
    except ParseError as exc:
        return f"does not parse: {exc.args[0]}"
    if kind == "other":
        return "not a SELECT, INSERT, UPDATE, DELETE or MERGE statement"
    if kind == "write" and not options.allow_writes:
        verb = q.sql.split(None, 1)[0].upper()
        what = (f"it writes ({verb})" if verb not in ("SELECT", "WITH", "(")
                else "it locks or modifies rows (FOR UPDATE/SHARE, SELECT INTO or a data-modifying WITH)")
        return f"{what}; pass --allow-writes to run it in transactions that are rolled back"
    try:
        params = sample_parameters(control, q.sql, q.params_sql, k=options.param_samples, seed=options.seed)
    except ParameterUnresolved as exc:
        return f"no values for its parameters: {exc}"
    except psycopg.Error as exc:
        return f"sampling its parameters failed: {_one_line(exc)}"
    try:
        plan = explain(control, q.sql, params.sets[0], version_num)
    except psycopg.Error as exc:
        return f"the server cannot plan it: {_one_line(exc)}"
    return fingerprint, kind, params, plan


def run_bench(settings: ConnectionSettings, workload: Sequence[WorkloadQuery], options: BenchOptions, *,
              source: str = "", progress: Callable[[str], None] = lambda _: None) -> BenchResult:
    """Benchmark ``workload`` on the target of ``settings``; returns the :class:`BenchResult`.

    A query that cannot run (writes without ``allow_writes``, a ``$n`` without values, a statement the
    server cannot plan) is listed in ``skipped`` with the reason; executions that fail are counted in
    ``errors``. ``progress`` receives one line per query. Raises :class:`UsageError` for bad options,
    :class:`~dbtune.errors.ConnectionFailed` / :class:`ServerRefused` (exit 3) when the server cannot be
    reached or refuses the session.
    """
    options.validate()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    control = _session(settings, read_only=True)
    conns: list[psycopg.Connection] = []
    try:
        control.cursor_factory = MarkedCursor  # type: ignore[assignment]
        try:
            version, version_num, database = control.execute(_SERVER).fetchone()  # type: ignore[misc]
            timing = {str(k): str(v) for k, v in
                      control.execute(_SETTINGS, (list(TIMING_SETTINGS),)).fetchall()}  # type: ignore[call-overload]
        except psycopg.Error as exc:
            raise ServerRefused(f"{describe(settings)} refused a settings query: {_one_line(exc)}") from None
        conns = [_session(settings, read_only=not options.allow_writes) for _ in range(options.clients)]
        how = f"{options.duration_s:g} s" if options.duration_s else f"{options.iterations} iterations"
        progress(f"benchmarking {len(workload)} queries on {describe(settings)} ({how} x {options.clients} "
                 f"client{'s' if options.clients != 1 else ''}, warm-up {options.warmup})")
        results: list[QueryResult] = []
        skipped: list[SkippedQuery] = []
        for q in workload:
            prepared = _prepare(control, q, options, int(version_num))
            if isinstance(prepared, str):
                skipped.append(SkippedQuery(q.name, q.sql, prepared))
                progress(f"  {q.name}: skipped: {prepared}")
                continue
            fingerprint, kind, params, plan = prepared
            stats, elapsed = _measure(conns, q.sql, params, kind == "write", options)
            result = _summarise(q, fingerprint, kind, plan, params, stats, elapsed)
            results.append(result)
            progress(_progress_line(result, options))
    finally:
        for c in (control, *conns):
            c.close()
    run = RunParameters(iterations=None if options.duration_s else options.iterations,
                        duration_s=options.duration_s, clients=options.clients, warmup=options.warmup,
                        allow_writes=options.allow_writes, started_at=started_at, workload=source,
                        param_samples=options.param_samples, seed=options.seed)
    return BenchResult(BenchServer(str(version), int(version_num), str(database), describe(settings)), timing,
                       run, tuple(results), tuple(skipped))


def _progress_line(r: QueryResult, options: BenchOptions) -> str:
    who = f" x {options.clients} clients" if options.clients > 1 else ""
    if r.count == 0:
        return f"  {r.name}: all {r.errors} executions failed{who}: {r.first_error}"
    errors = f", {r.errors} errors ({r.first_error})" if r.errors else ""
    return (f"  {r.name}: {r.count} runs{who}, p50 {r.p50_ms:.3f} ms, p95 {r.p95_ms:.3f} ms, "
            f"mean {r.mean_ms:.3f} ms, {r.throughput_qps:.0f} q/s{errors} — {r.plan.shape if r.plan else ''}")
