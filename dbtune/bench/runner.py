"""The workload runner: every query, after a warm-up, in ``rounds`` rounds, from ``clients`` concurrent
sessions (threads, one connection each), every latency recorded.

Rounds: a run is not one block of executions per query but ``rounds`` (default 5) passes over the whole
workload. In each pass every query runs its share of the iterations (or of the duration), in an order
shuffled per round with the seed, beside two reference statements that no schema change can affect
(:data:`REFERENCE_STATEMENTS`). So each query is measured at several moments spread over the run, and the
median of each round is a statistic whose spread shows the drift over time (caches, CPU frequency, other
load) that executions within one block cannot; :mod:`dbtune.bench.compare` judges on those round
statistics and on how the reference statements moved between two runs.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pglast
import psycopg
from pglast.parser import ParseError

from dbtune.bench.plan import PlanShape, explain
from dbtune.bench.result import (
    CPU_BOUND,
    ROUND_TRIP,
    TIMING_SETTINGS,
    BenchResult,
    BenchServer,
    QueryResult,
    RoundResult,
    RunParameters,
    SkippedQuery,
    label,
)
from dbtune.bench.stats import encode, mean, median, new_histogram, percentile_ms, record
from dbtune.db.connect import ConnectionSettings, MarkedCursor, MarkedRawCursor, connect, describe
from dbtune.errors import ServerRefused, UsageError
from dbtune.progress import Count, no_count
from dbtune.workload import WorkloadQuery, statement_kind
from dbtune.workload.params import NO_PARAMETERS, Parameters, ParameterUnresolved, cycle, sample_parameters

DEFAULT_SAMPLE_CAP = 100_000
DEFAULT_ROUNDS = 5
# Measured in every round beside the workload, at least REFERENCE_ITERATIONS times: no schema change can
# make them faster or slower, so how they moved between two runs is the drift of the machine (see
# dbtune.bench.stats.Drift): the round trip shows a delay added to every statement (a busy machine), the
# CPU-bound one a factor on the work (a CPU that clocked down).
REFERENCE_STATEMENTS = {
    ROUND_TRIP: "/* dbtune bench: reference */ SELECT 1",
    CPU_BOUND: "/* dbtune bench: reference */ SELECT count(*) FROM pg_catalog.generate_series(1, 20000)",
}
REFERENCE_ITERATIONS = 10


@dataclass(frozen=True)
class BenchOptions:
    """How to run: ``rounds`` rounds (see the module docstring); ``iterations`` measured executions per
    query and client in all, spread evenly over the rounds, or ``duration_s`` seconds per query in all
    (``duration_s / rounds`` in each round; then ``iterations`` is ignored); ``warmup`` unmeasured
    executions per query and client before the first round; ``clients`` concurrent sessions;
    ``allow_writes`` runs DML in rolled-back transactions; ``param_samples`` distinct parameter sets to
    draw per query; ``sample_cap`` raw latencies kept per query (a uniform reservoir beyond it); ``seed``
    makes parameter sampling, the order of the queries in each round and the reservoir repeatable;
    ``reference_iterations`` the least executions of each reference statement in a round;
    ``stop_on_timeout``: once an execution of a query is cancelled by ``statement_timeout`` (in the
    warm-up or a round), its later executions are not run but counted as failed with the same error, so a
    query that cannot finish costs one timeout, not one a round."""

    iterations: int = 100
    duration_s: float | None = None
    warmup: int = 5
    clients: int = 1
    allow_writes: bool = False
    param_samples: int = 100
    sample_cap: int = DEFAULT_SAMPLE_CAP
    seed: int = 1
    rounds: int = DEFAULT_ROUNDS
    reference_iterations: int = REFERENCE_ITERATIONS
    stop_on_timeout: bool = False

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the option that is out of range."""
        if self.rounds < 1:
            raise UsageError(f"--rounds must be at least 1, got {self.rounds}")
        if self.duration_s is None and self.iterations < self.rounds:
            raise UsageError(f"--iterations must be at least --rounds ({self.rounds}): every round measures "
                             f"each query at least once, got {self.iterations}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise UsageError(f"--duration must be more than 0 seconds, got {self.duration_s}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.clients < 1:
            raise UsageError(f"--clients must be at least 1, got {self.clients}")
        if self.param_samples < 1 or self.sample_cap < 1 or self.reference_iterations < 1:
            raise UsageError("param_samples, sample_cap and reference_iterations must be at least 1")

    def iterations_in_round(self, index: int) -> int:
        """Measured executions per client of each query in round ``index`` (0-based): ``iterations`` split
        as evenly as possible, the first rounds taking the remainder."""
        return self.iterations // self.rounds + (1 if index < self.iterations % self.rounds else 0)

    def describe(self) -> str:
        """``5 rounds, 100 iterations per query and client (20 a round), 1 client, warm-up 5`` or, with a
        duration, ``5 rounds, 30 s per query (6 s a round), 4 clients, warm-up 5``."""
        rounds = f"{self.rounds} round{'s' if self.rounds != 1 else ''}"
        if self.duration_s:
            how = f"{self.duration_s:g} s per query ({self.duration_s / self.rounds:g} s a round)"
        else:
            per_round = self.iterations / self.rounds
            how = (f"{self.iterations} iterations per query and client "
                   f"({per_round:g} a round)" if per_round == int(per_round) else
                   f"{self.iterations} iterations per query and client ({int(per_round)}–{int(per_round) + 1} "
                   "a round)")
        clients = f"{self.clients} client{'s' if self.clients != 1 else ''}"
        return f"{rounds}, {how}, {clients}, warm-up {self.warmup}" + (", writes rolled back"
                                                                           if self.allow_writes else "")


@dataclass
class _ClientStats:
    """One client's measurements of one query, over all rounds; ``round`` holds the current round's."""

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
    round: list[float] = field(default_factory=list)
    round_errors: int = 0
    timed_out: str | None = None  # the statement_timeout error that stops it (BenchOptions.stop_on_timeout)


@dataclass
class _Running:
    """A query through the rounds: what :func:`_prepare` found, each client's parameter cycle, random
    generator (for the reservoir) and stats, and the rounds measured so far."""

    query: WorkloadQuery
    fingerprint: str
    kind: str
    params: Parameters
    plan: PlanShape | None
    values: list[Iterator[tuple[str, ...]]]
    rngs: list[random.Random]
    stats: list[_ClientStats]
    rounds: list[RoundResult] = field(default_factory=list)
    elapsed_s: float = 0.0
    warmup_s: float = 0.0


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


def open_session(settings: ConnectionSettings, read_only: bool) -> psycopg.Connection:
    """A benchmark session (autocommit, the settings' ``statement_timeout``, read-only unless writes are
    allowed) whose cursors send ``$n`` as written. Raises :class:`ServerRefused` when the server refuses the
    settings, :class:`~dbtune.errors.ConnectionFailed` when it cannot connect."""
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


def execute_timed(cur: psycopg.RawCursor, sql: str, values: tuple[str, ...], write: bool) -> tuple[float, int]:
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


_STOPPED = " (not run again after it timed out)"


def _client(conn: psycopg.Connection, q: _Running, index: int, warmup: int, iterations: int,
            duration_s: float | None, cap: int, barrier: threading.Barrier, stop_on_timeout: bool = False) -> None:
    """Client ``index``: ``warmup`` unmeasured executions, then (after every client is ready) ``iterations``
    measured ones, or as many as fit in ``duration_s`` (at least one). With ``stop_on_timeout``, after a
    ``statement_timeout`` cancellation the remaining executions are counted as failed, not run."""
    stats, values, rng, write = q.stats[index], q.values[index], q.rngs[index], q.kind == "write"
    sql = q.query.sql
    cur = MarkedRawCursor(conn)
    waited = False

    def failed(exc: psycopg.Error) -> None:
        if stop_on_timeout and isinstance(exc, psycopg.errors.QueryCanceled) and stats.timed_out is None:
            stats.timed_out = _one_line(exc) + _STOPPED

    try:
        for _ in range(warmup):
            if stats.timed_out is not None:
                break
            try:
                execute_timed(cur, sql, next(values), write)
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                failed(exc)
        barrier.wait()
        waited = True
        deadline = time.monotonic() + duration_s if duration_s else None
        done = 0
        while (done < iterations) if deadline is None else (done == 0 or time.monotonic() < deadline):
            done += 1
            if stats.timed_out is not None:
                stats.errors += 1
                stats.round_errors += 1
                stats.first_error = stats.first_error or stats.timed_out
                if deadline is not None:
                    break
                continue
            try:
                ms, rows = execute_timed(cur, sql, next(values), write)
            except psycopg.Error as exc:
                stats.errors += 1
                stats.round_errors += 1
                stats.first_error = stats.first_error or _one_line(exc)
                failed(exc)
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
            stats.round.append(ms)
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
            stats.round_errors += 1
            stats.first_error = stats.first_error or _one_line(exc)
        else:
            stats.crashed = exc
        if not waited:
            barrier.abort()


def run_together(threads: Sequence[threading.Thread], barrier: threading.Barrier,
                 tick: Callable[[float], None] | None = None) -> float:
    """Start ``threads``, pass ``barrier`` with them (the caller is its last party: the threads wait there
    once ready) and join them; the seconds from the barrier to the last thread's end (from when the barrier
    broke, when a thread aborted it). ``tick``, when given, is told the seconds since the barrier about
    four times a second while the threads run (a progress bar's clock)."""
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        pass
    started = time.perf_counter()
    for t in threads:
        while t.is_alive():
            t.join(None if tick is None else 0.25)
            if tick is not None:
                tick(time.perf_counter() - started)
    return time.perf_counter() - started


def _measure(conns: list[psycopg.Connection], q: _Running, options: BenchOptions, *, warmup: int,
             iterations: int, duration_s: float | None) -> float:
    """Run one query from every session (``warmup`` then ``iterations`` or ``duration_s`` each); the
    measured phase's wall time (s). Raises :class:`ServerRefused` when a session is lost."""
    barrier = threading.Barrier(len(conns) + 1)
    cap = max(1, options.sample_cap // options.clients)
    for s in q.stats:
        s.round = []
        s.round_errors = 0
    threads = [threading.Thread(target=_client, args=(c, q, i, warmup, iterations, duration_s, cap, barrier,
                                                      options.stop_on_timeout),
                                name=f"dbtune-bench-{i}", daemon=True) for i, c in enumerate(conns)]
    elapsed = run_together(threads, barrier)
    for s in q.stats:
        if s.crashed is not None:
            raise s.crashed
    lost = next((i for i, c in enumerate(conns) if c.broken or c.closed), None)
    if lost is not None:
        raise ServerRefused(f"lost benchmark session {lost + 1}: {q.stats[lost].first_error or 'connection closed'}")
    return elapsed


def _round_result(q: _Running, elapsed_s: float) -> RoundResult:
    latencies = [x for s in q.stats for x in s.round]
    errors = sum(s.round_errors for s in q.stats)
    if not latencies:
        return RoundResult(0, errors, 0.0, 0.0, elapsed_s)
    return RoundResult(len(latencies), errors, round(median(latencies), 4), round(mean(latencies), 4),
                       round(elapsed_s, 4))


def _summarise(q: _Running) -> QueryResult:
    stats = q.stats
    histogram = new_histogram()
    for s in stats:
        histogram.add(s.histogram)
    count = sum(s.count for s in stats)
    errors = sum(s.errors for s in stats)
    samples = [round(x, 4) for s in stats for x in s.samples]
    first_error = next((s.first_error for s in stats if s.first_error), None)
    return QueryResult(
        name=q.query.name, sql=q.query.sql, fingerprint=q.fingerprint, kind=q.kind, count=count, errors=errors,
        p50_ms=percentile_ms(histogram, 50), p95_ms=percentile_ms(histogram, 95),
        p99_ms=percentile_ms(histogram, 99),
        mean_ms=sum(s.total_ms for s in stats) / count if count else 0.0,
        min_ms=min((s.min_ms for s in stats if s.count), default=0.0),
        max_ms=max((s.max_ms for s in stats if s.count), default=0.0),
        throughput_qps=count / q.elapsed_s if q.elapsed_s > 0 else 0.0,
        histogram=encode(histogram), samples=tuple(samples), plan=q.plan,
        rows=sum(s.rows for s in stats) / count if count else 0.0,
        parameters=q.params.sources, first_error=first_error,
        rounds=tuple(q.rounds))


def prepare_query(control: psycopg.Connection, q: WorkloadQuery, options: BenchOptions,
             version_num: int) -> tuple[str, str, Parameters, PlanShape] | str:
    """Fingerprint, kind (``read``/``write``), sampled parameters and plan of a query, or the reason (a
    string) it is skipped: it does not parse, is not DML, writes without ``allow_writes``, has a ``$n``
    without values, or the server cannot plan it."""
    if q.parse_error is not None:
        return f"does not parse: {q.parse_error}"
    if q.skipped is not None:
        return q.skipped
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
              source: str = "", progress: Callable[[str], None] = lambda _: None,
              count: Count = no_count) -> BenchResult:
    """Benchmark ``workload`` on the target of ``settings`` in ``options.rounds`` interleaved rounds (see the
    module docstring); returns the :class:`BenchResult` with every query's round statistics.

    A query that cannot run (writes without ``allow_writes``, a ``$n`` without values, a statement the
    server cannot plan) is listed in ``skipped`` with the reason; executions that fail are counted in
    ``errors``. ``progress`` receives what is about to run and the expected run time, one line per round
    and one per query at the end; ``count`` receives ``("statements run", done, total)`` after each
    query's share of a round (total: queries and reference statements times rounds). Raises
    :class:`UsageError` for bad options,
    :class:`~dbtune.errors.ConnectionFailed` / :class:`ServerRefused` (exit 3) when the server cannot be
    reached or refuses the session.
    """
    options.validate()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    control = open_session(settings, read_only=True)
    conns: list[psycopg.Connection] = []
    try:
        control.cursor_factory = MarkedCursor  # type: ignore[assignment]
        try:
            version, version_num, database = control.execute(_SERVER).fetchone()  # type: ignore[misc]
            timing = {str(k): str(v) for k, v in
                      control.execute(_SETTINGS, (list(TIMING_SETTINGS),)).fetchall()}  # type: ignore[call-overload]
        except psycopg.Error as exc:
            raise ServerRefused(f"{describe(settings)} refused a settings query: {_one_line(exc)}") from None
        conns = [open_session(settings, read_only=not options.allow_writes) for _ in range(options.clients)]
        progress(f"benchmarking {len(workload)} queries on {describe(settings)}: {options.describe()}; "
                 "the queries interleaved in each round")
        running: list[_Running] = []
        skipped: list[SkippedQuery] = []
        for q in workload:
            prepared = prepare_query(control, q, options, int(version_num))
            if isinstance(prepared, str):
                skipped.append(SkippedQuery(q.name, q.sql, prepared))
                progress(f"  {label(q.name, q.sql)}: skipped: {prepared}")
                continue
            running.append(_start(q, *prepared, options))
        references = [_start(WorkloadQuery(name, sql), pglast.fingerprint(sql), "read", NO_PARAMETERS, None, options)
                      for name, sql in REFERENCE_STATEMENTS.items()]
        if running:
            _run_rounds(conns, running, references, options, progress, count)
    finally:
        for c in (control, *conns):
            c.close()
    results = [_summarise(q) for q in running]
    for r in results:
        progress(_progress_line(r, options))
    run = RunParameters(iterations=None if options.duration_s else options.iterations,
                        duration_s=options.duration_s, clients=options.clients, warmup=options.warmup,
                        allow_writes=options.allow_writes, started_at=started_at, workload=source,
                        param_samples=options.param_samples, seed=options.seed, rounds=options.rounds)
    return BenchResult(BenchServer(str(version), int(version_num), str(database), describe(settings)), timing,
                       run, tuple(results), tuple(skipped),
                       references=tuple(_summarise(r) for r in references) if running else ())


def _start(q: WorkloadQuery, fingerprint: str, kind: str, params: Parameters, plan: PlanShape | None,
           options: BenchOptions) -> _Running:
    spacing = max(1, len(params.sets) // options.clients)
    return _Running(q, fingerprint, kind, params, plan,
                    values=[cycle(params, start=i * spacing) for i in range(options.clients)],
                    rngs=[random.Random(f"{options.seed}:{i}") for i in range(options.clients)],
                    stats=[_ClientStats() for _ in range(options.clients)])


def _run_rounds(conns: list[psycopg.Connection], running: list[_Running], references: list[_Running],
                options: BenchOptions, progress: Callable[[str], None], count: Count = no_count) -> None:
    """The warm-up of every query, then the rounds: in each, every query and the reference statements in an
    order shuffled with the seed (the same orders on both sides of a comparison). A reference statement
    runs at least ``options.reference_iterations`` times a round (:data:`REFERENCE_ITERATIONS` by default;
    with a duration, for a tenth of the round's)."""
    everything = [*running, *references]
    if options.warmup:
        for q in everything:
            started = time.perf_counter()
            _measure(conns, q, options, warmup=options.warmup, iterations=0, duration_s=None)
            q.warmup_s = time.perf_counter() - started
    progress("  " + _expected(running, options))
    order = list(range(len(everything)))
    done, total = 0, len(everything) * options.rounds
    count("statements run", done, total)
    started = time.perf_counter()
    for r in range(options.rounds):
        random.Random(f"{options.seed}:round:{r}").shuffle(order)
        duration = options.duration_s / options.rounds if options.duration_s else None
        for i in order:
            q = everything[i]
            iterations, seconds = options.iterations_in_round(r), duration
            if q in references:
                iterations, seconds = max(iterations, options.reference_iterations), duration and duration / 10
            elapsed = _measure(conns, q, options, warmup=0, iterations=iterations, duration_s=seconds)
            q.elapsed_s += elapsed
            q.rounds.append(_round_result(q, elapsed))
            done += 1
            count("statements run", done, total)
        spent = time.perf_counter() - started
        left = spent / (r + 1) * (options.rounds - r - 1)
        progress(f"  round {r + 1}/{options.rounds} done, {_seconds(spent)} so far"
                 + (f", about {_seconds(left)} to go" if left else ""))


def _expected(running: list[_Running], options: BenchOptions) -> str:
    """The expected run time of the rounds: exact with a duration, estimated from the warm-up otherwise."""
    if options.duration_s:
        total = options.duration_s * len(running)
        return f"expected run time {_seconds(total)} ({len(running)} queries x {options.duration_s:g} s)"
    if not options.warmup:
        return "expected run time: not estimated without a warm-up; each round reports the time left"
    total = sum(q.warmup_s / options.warmup * options.iterations for q in running)
    return (f"expected run time about {_seconds(total)} ({len(running)} queries x {options.iterations} "
            "iterations, at the warm-up's pace)")


def _seconds(s: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 05 s``, ``2 h 01 min``."""
    if s < 10:
        return f"{s:.1f} s"
    whole = int(round(s))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def _progress_line(r: QueryResult, options: BenchOptions) -> str:
    who = f" x {options.clients} clients" if options.clients > 1 else ""
    name = label(r.name, r.sql)
    if r.count == 0:
        return f"  {name}: all {r.errors} executions failed{who}: {r.first_error}"
    errors = f", {r.errors} errors ({r.first_error})" if r.errors else ""
    return (f"  {name}: {r.count} runs{who}, p50 {r.p50_ms:.3f} ms, p95 {r.p95_ms:.3f} ms, "
            f"mean {r.mean_ms:.3f} ms, {r.throughput_qps:.0f} q/s{errors} — {r.plan.shape if r.plan else ''}")
