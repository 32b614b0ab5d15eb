"""``dbtune probe load``: the workload as a load, ``clients`` sessions for ``duration_s`` seconds, with its
throughput (transactions per second) and latency percentiles, to set against a deployment profile's
targets (:mod:`dbtune.probe.profile`).

Unlike ``bench run`` (one query at a time, in rounds, to compare two runs), the load is a mix: each
session draws its next statement at random, every statement alike, as ``pgbench`` draws among its ``-f``
scripts. Each statement is one transaction; a write (with ``allow_writes`` only) runs in a transaction
that is rolled back, as in ``bench``.

Two engines run the same statements:

- **pgbench** (PostgreSQL's own load generator, https://www.postgresql.org/docs/current/pgbench.html),
  where the statements fit it: one ``-f`` script per statement, the ``$n`` parameters written as pgbench
  variables set by ``\\set`` from the sampled values (``\\set`` evaluates numbers only, so every sampled
  value must be an integer, written as pgbench prints it back), ``-M prepared`` (the statement prepared
  once per session, as a driver does after a few executions), per-transaction latencies from its
  ``--log`` files. Any other value, a ``:name`` in the statement's text (pgbench would read it as a
  variable) or no pgbench binary is a reason it does not fit; the report says which. pgbench stops a
  session at its first error, so when it stopped any, the runner measures instead (unless pgbench was
  forced).
- **dbtune's runner** everywhere: :mod:`dbtune.bench.runner`'s sessions and parameter sampling, then
  threads, one connection each, executing prepared statements through libpq itself (psycopg's
  ``pgconn``, so the client adds little more per execution than pgbench's C), every latency recorded in
  an HdrHistogram.

The latencies of a write include, with pgbench, its ``BEGIN`` and ``ROLLBACK`` round trips (one script);
the runner times the statement alone.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import psycopg
from hdrh.histogram import HdrHistogram
from pglast.parser import scan
from psycopg import conninfo, pq

from dbtune.bench.result import SkippedQuery, label
from dbtune.bench.runner import BenchOptions, open_session, prepare_query, run_together
from dbtune.bench.stats import new_histogram, percentile_ms, record
from dbtune.db.connect import ConnectionSettings, MarkedCursor, describe, mark
from dbtune.db.local_server import embedded_bindir
from dbtune.errors import ServerRefused, UsageError
from dbtune.model import report_header
from dbtune.progress import Count, no_count
from dbtune.workload.model import WorkloadQuery
from dbtune.workload.params import Parameters

# An integer as pgbench prints it back (no leading zero, no plus sign): a value \set would print otherwise
# ("007" as 7, "1.50" as 1.5) would reach a text column changed, so it is left to the runner.
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
# A ``:name`` pgbench substitutes (not part of a ``::`` cast): https://www.postgresql.org/docs/current/pgbench.html
_PGBENCH_VARIABLE = re.compile(r"(?<!:):(?=[A-Za-z0-9_])")
SECONDS_RUN = "seconds run"  # what run_load's count is told
_TPS = re.compile(r"^tps = ([0-9.]+)", re.M)
_ABORTED = re.compile(r"client \d+ script (\d+) aborted")
_INT64 = 2**63


class Engine(StrEnum):
    """What drives the load."""

    PGBENCH = "pgbench"
    RUNNER = "dbtune"


@dataclass(frozen=True)
class LoadOptions:
    """``clients`` concurrent sessions for ``duration_s`` seconds (whole seconds: pgbench's ``-T``);
    ``allow_writes`` runs DML in rolled-back transactions; ``engine`` forces one engine (``None``: pgbench
    where the statements fit it); ``param_samples`` parameter sets sampled per statement; ``seed`` makes
    sampling and the runner's draws repeatable; ``pgbench`` the binary (default: the embedded server's,
    else ``pgbench`` on ``PATH``)."""

    clients: int = 4
    duration_s: int = 10
    allow_writes: bool = False
    engine: Engine | None = None
    param_samples: int = 100
    seed: int = 1
    pgbench: Path | None = None

    def validate(self) -> None:
        """Raise :class:`UsageError` naming the option out of range."""
        if self.clients < 1:
            raise UsageError(f"--clients must be at least 1, got {self.clients}")
        if self.duration_s < 1:
            raise UsageError(f"--duration must be at least 1 second, got {self.duration_s}")
        if self.param_samples < 1:
            raise UsageError(f"param_samples must be at least 1, got {self.param_samples}")


@dataclass(frozen=True)
class StatementLoad:
    """One statement under load: its executions (``count``, failed ones in ``errors``, the first error's
    text), latency percentiles (ms) and where its parameters came from."""

    name: str
    sql: str
    kind: str
    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    parameters: tuple[str, ...] = ()
    first_error: str | None = None


@dataclass(frozen=True)
class LoadResult:
    """A load run: which ``engine`` ran and ``engine_reason`` why; ``clients`` × ``duration_s`` (the
    requested seconds; ``elapsed_s`` measured); ``transactions`` completed (one statement each) and
    ``errors``; ``tps`` (transactions per second: pgbench's own figure, else ``transactions /
    elapsed_s``); ``p50_ms``/``p95_ms``/``p99_ms`` over every transaction; per statement in
    ``statements``; statements not run in ``skipped`` with why; ``target`` the password-free label."""

    command: ClassVar[str] = "probe load"

    engine: Engine
    engine_reason: str
    clients: int
    duration_s: int
    elapsed_s: float
    transactions: int
    errors: int
    tps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    statements: tuple[StatementLoad, ...]
    skipped: tuple[SkippedQuery, ...] = ()
    target: str = ""

    @property
    def error_rate_pct(self) -> float:
        """Failed transactions as a percentage of all attempted (0 when none ran)."""
        attempted = self.transactions + self.errors
        return 100.0 * self.errors / attempted if attempted else 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``report_version``, ``command``, ``kind`` ``dbtune-probe-load``, the fields as they
        are (ms, s, transactions per second) and ``error_rate_pct``."""
        return {**report_header(self), "kind": "dbtune-probe-load", **dataclasses.asdict(self),
                "error_rate_pct": self.error_rate_pct}


@dataclass(frozen=True)
class LoadStatement:
    """A statement of the load: its query, kind (``read``/``write``) and sampled parameters."""

    query: WorkloadQuery
    kind: str
    params: Parameters


def pgbench_binary(given: Path | None = None) -> Path | None:
    """The pgbench to run: ``given``, else the embedded PostgreSQL's, else the first on ``PATH``; None when
    there is none."""
    if given is not None:
        return given if given.exists() else None
    try:
        embedded = embedded_bindir() / "pgbench"
        if embedded.exists():
            return embedded
    except ImportError:
        pass
    found = shutil.which("pgbench")
    return Path(found) if found else None


def pgbench_unfit(statements: Sequence[LoadStatement], binary: Path | None) -> str | None:
    """Why pgbench cannot run these statements as they are (None when it can): no binary, a ``:name`` in
    a statement's text, or a sampled parameter value that ``\\set`` cannot express (not an integer as
    pgbench prints it)."""
    if binary is None:
        return "no pgbench binary (neither the embedded PostgreSQL's nor one on PATH)"
    for s in statements:
        name = label(s.query.name, s.query.sql)
        if _PGBENCH_VARIABLE.search(s.query.sql):
            return f"{name} holds ':name' text, which pgbench would read as a variable"
        for values in s.params.sets:
            for n, value in enumerate(values, start=1):
                if not _INTEGER.fullmatch(value) or abs(int(value)) >= _INT64 or value == "-0":
                    return f"{name}: ${n} takes values such as {value[:20]!r}, which pgbench's \\set cannot express"
    return None


def _pgbench_sql(sql: str) -> str:
    """``sql`` with each ``$n`` as the pgbench variable ``:pn`` (found by PostgreSQL's own scanner, so a
    ``$1`` inside a string literal stays)."""
    out, last = [], 0
    for token in scan(sql):
        if token.name == "PARAM":
            out.append(sql[last:token.start])
            out.append(f":p{sql[token.start + 1:token.end + 1]}")
            last = token.end + 1
    out.append(sql[last:])
    return "".join(out)


def pgbench_script(statement: LoadStatement) -> str:
    """The ``-f`` script of one statement: ``\\set i random(0, k-1)`` and one ``\\set pN`` per parameter
    choosing the ``i``-th sampled set, then the statement (marked), in ``BEGIN``/``ROLLBACK`` when it
    writes."""
    lines = []
    sets = statement.params.sets
    if statement.params.count:
        lines.append(f"\\set i random(0, {len(sets) - 1})")
        for n in range(statement.params.count):
            cases = " ".join(f"WHEN :i = {i} THEN {values[n]}" for i, values in enumerate(sets[:-1]))
            last = sets[-1][n]
            lines.append(f"\\set p{n + 1} CASE {cases} ELSE {last} END" if cases else f"\\set p{n + 1} {last}")
    sql = _pgbench_sql(mark(statement.query.sql))  # a command may span lines (pgbench 10+)
    if statement.kind == "write":
        lines += ["BEGIN;", sql + ";", "ROLLBACK;"]
    else:
        lines.append(sql + ";")
    return "\n".join(lines) + "\n"


def _pgbench_target(settings: ConnectionSettings) -> tuple[str, dict[str, str]]:
    """The conninfo for pgbench without its password, and the environment that carries the password."""
    params = settings.params()
    password = params.pop("password", None)
    params.setdefault("application_name", "dbtune")
    params.setdefault("connect_timeout", str(settings.connect_timeout_s))
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    if password or settings.password():
        env["PGPASSWORD"] = password or settings.password() or ""
    env["PGOPTIONS"] = (os.environ.get("PGOPTIONS", "")
                        + f" -c statement_timeout={int(settings.statement_timeout_ms)}").strip()
    return conninfo.make_conninfo(**params), env


def _run_pgbench(binary: Path, settings: ConnectionSettings, ready: Sequence[LoadStatement], options: LoadOptions,
                 count: Count = no_count) -> tuple[float, float, list[HdrHistogram], list[int], list[int], str | None,
                                                   int]:
    """Run pgbench; (its tps, elapsed s, a histogram per statement, successes and failures per
    statement, the first error line, the sessions it stopped at an error). ``count``: the seconds run."""
    target, env = _pgbench_target(settings)
    if not options.allow_writes:
        env["PGOPTIONS"] += " -c default_transaction_read_only=on"
    with tempfile.TemporaryDirectory(prefix="dbtune-pgbench-") as tmp:
        args = [str(binary), "-n", "-M", "prepared", "-c", str(options.clients),
                "-j", str(min(options.clients, os.cpu_count() or 1)), "-T", str(options.duration_s),
                "-l", "--log-prefix", str(Path(tmp) / "log")]
        for i, s in enumerate(ready):
            script = Path(tmp) / f"s{i}.sql"
            script.write_text(pgbench_script(s))
            args += ["-f", str(script)]
        args.append(target)
        started = time.perf_counter()
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=tmp) as running:
            while True:
                try:
                    out, err = running.communicate(timeout=0.25)  # retried: no output is lost
                    break
                except subprocess.TimeoutExpired:
                    elapsed = time.perf_counter() - started
                    if elapsed > options.duration_s + 120:
                        running.kill()
                        raise ServerRefused(f"pgbench did not finish within {options.duration_s + 120} s on "
                                            f"{describe(settings)}") from None
                    count(SECONDS_RUN, min(elapsed, options.duration_s), options.duration_s)
        done = subprocess.CompletedProcess(args, running.returncode, out, err)
        elapsed = time.perf_counter() - started
        errors = [line for line in done.stderr.splitlines() if "error" in line.lower() or "abort" in line.lower()]
        if done.returncode not in (0, 2) or (done.returncode == 2 and not list(Path(tmp).glob("log*"))):
            reason = errors[0] if errors else done.stderr.strip()[-300:]
            raise ServerRefused(f"pgbench failed on {describe(settings)}: {' '.join(reason.split())}")
        histograms = [new_histogram() for _ in ready]
        counts = [0] * len(ready)
        failed = [0] * len(ready)
        for log in Path(tmp).glob("log*"):
            with log.open() as lines:
                _read_log(lines, histograms, counts, failed)
        aborted = 0
        for stopped in _ABORTED.finditer(done.stderr):  # a client stops at its first error, not logged
            failed[int(stopped.group(1))] += 1
            aborted += 1
        m = _TPS.search(done.stdout)
        tps = float(m.group(1)) if m else sum(counts) / options.duration_s
        return tps, elapsed, histograms, counts, failed, (" ".join(errors[0].split()) if errors else None), aborted


def _read_log(lines: Iterable[str], histograms: list[HdrHistogram], counts: list[int], failed: list[int]) -> None:
    """Add one pgbench ``--log`` file to the per-script histograms and counts. A line is ``client_id
    transaction_no time script_no time_epoch time_us …``, ``time`` in µs (or ``failed``)."""
    for line in lines:
        fields = line.split()
        if len(fields) < 4:
            continue
        which = int(fields[3])
        if not fields[2].isdigit():
            failed[which] += 1
            continue
        record(histograms[which], int(fields[2]) / 1000.0)
        counts[which] += 1


@dataclass
class _ClientLoad:
    histograms: list[HdrHistogram]
    counts: list[int]
    errors: list[int]
    first_error: list[str | None]
    crashed: BaseException | None = None


def _client(conn: psycopg.Connection, ready: Sequence[LoadStatement], stats: _ClientLoad, index: int, seed: int,
            barrier: threading.Barrier, duration_s: float) -> None:
    """One session's loop: draw a statement, execute it with its next parameter set, record the latency.

    The statements are prepared once (``PQprepare``) and executed through libpq itself
    (``PQexecPrepared`` on psycopg's ``pgconn``, text parameters of unknown type, as a driver sends them),
    so the loop adds little more client time per execution than pgbench's C does."""
    rng = random.Random(f"{seed}:load:{index}")
    pgconn = conn.pgconn
    names = [f"dbtune_load_{i}".encode() for i in range(len(ready))]
    writes = [s.kind == "write" for s in ready]
    values = [[[v.encode() for v in values] for values in s.params.sets] for s in ready]
    position = [index * max(1, len(v) // 7) for v in values]
    choices = range(len(ready))
    perf, ok = time.perf_counter_ns, (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
    try:
        for name, s in zip(names, ready, strict=True):
            prepared = pgconn.prepare(name, mark(s.query.sql).encode())
            if prepared.status not in ok:
                raise ServerRefused(f"could not prepare {label(s.query.name, s.query.sql)}: "
                                    f"{' '.join(prepared.get_error_message().split())}")
        barrier.wait()
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            for i in rng.choices(choices, k=64):
                params = values[i][position[i] % len(values[i])]
                position[i] += 1
                if writes[i]:
                    pgconn.exec_(b"BEGIN")
                started = perf()
                result = pgconn.exec_prepared(names[i], params or None)
                elapsed = perf() - started
                if writes[i]:
                    pgconn.exec_(b"ROLLBACK")
                if result.status in ok:
                    record(stats.histograms[i], elapsed / 1e6)
                    stats.counts[i] += 1
                else:
                    stats.errors[i] += 1
                    stats.first_error[i] = stats.first_error[i] or " ".join(result.get_error_message().split())
                    if pgconn.status != pq.ConnStatus.OK:
                        return
                if time.monotonic() >= end:
                    break
    except threading.BrokenBarrierError:
        return
    except BaseException as exc:  # reported by the caller
        stats.crashed = exc
        barrier.abort()


def _run_threads(settings: ConnectionSettings, ready: Sequence[LoadStatement], options: LoadOptions,
                 count: Count = no_count) -> tuple[float, list[HdrHistogram], list[int], list[int], list[str | None]]:
    """dbtune's runner: (elapsed s, a histogram per statement, successes, failures, first errors).
    ``count``: the seconds run."""
    conns = [open_session(settings, read_only=not options.allow_writes) for _ in range(options.clients)]
    try:
        stats = [_ClientLoad([new_histogram() for _ in ready], [0] * len(ready), [0] * len(ready),
                             [None] * len(ready)) for _ in conns]
        barrier = threading.Barrier(len(conns) + 1)
        threads = [threading.Thread(target=_client, args=(c, ready, stats[i], i, options.seed, barrier,
                                                          options.duration_s),
                                    name=f"dbtune-load-{i}", daemon=True) for i, c in enumerate(conns)]
        # From when every session has prepared its statements.
        elapsed = run_together(threads, barrier,
                               lambda s: count(SECONDS_RUN, min(s, options.duration_s), options.duration_s))
    finally:
        for c in conns:
            c.close()
    for s in stats:
        if s.crashed is not None:
            raise s.crashed
    histograms = [new_histogram() for _ in ready]
    for s in stats:
        for i, h in enumerate(s.histograms):
            histograms[i].add(h)
    counts = [sum(s.counts[i] for s in stats) for i in range(len(ready))]
    failed = [sum(s.errors[i] for s in stats) for i in range(len(ready))]
    first = [next((s.first_error[i] for s in stats if s.first_error[i]), None) for i in range(len(ready))]
    return elapsed, histograms, counts, failed, first


def _prepare_all(settings: ConnectionSettings, workload: Sequence[WorkloadQuery], options: LoadOptions
                 ) -> tuple[list[LoadStatement], list[SkippedQuery]]:
    bench = BenchOptions(clients=options.clients, allow_writes=options.allow_writes,
                         param_samples=options.param_samples, seed=options.seed)
    control = open_session(settings, read_only=True)
    control.cursor_factory = MarkedCursor  # type: ignore[assignment]
    try:
        version_num = int(control.execute("SELECT pg_catalog.current_setting('server_version_num')"
                                          ).fetchone()[0])  # type: ignore[index]
        ready, skipped = [], []
        for q in workload:
            prepared = prepare_query(control, q, bench, version_num)
            if isinstance(prepared, str):
                skipped.append(SkippedQuery(q.name, q.sql, prepared))
                continue
            _, kind, params, _ = prepared
            ready.append(LoadStatement(q, kind, params))
    except psycopg.Error as exc:
        raise ServerRefused(f"{describe(settings)} refused a settings query: {' '.join(str(exc).split())}") from None
    finally:
        control.close()
    return ready, skipped


def run_load(settings: ConnectionSettings, workload: Sequence[WorkloadQuery], options: LoadOptions, *,
             progress: Callable[[str], None] = lambda _: None, count: Count = no_count) -> LoadResult:
    """Put the workload on the target as a load (see the module docstring) and measure it; ``count`` (a
    progress bar) is told ``("seconds run", s, options.duration_s)`` about four times a second.

    Statements that cannot run (writes without ``allow_writes``, ``$n`` without values, not planned by the
    server) are in ``skipped``; the engine is pgbench where every statement that runs fits it (or as
    ``options.engine`` forces: forcing pgbench where it does not fit is a :class:`UsageError` naming the
    reason). Raises :class:`UsageError` when no statement can run or an option is out of range,
    :class:`~dbtune.errors.ConnectionFailed` / :class:`ServerRefused` (exit 3) when the server cannot be
    reached or refuses the sessions, or pgbench fails.
    """
    options.validate()
    ready, skipped = _prepare_all(settings, workload, options)
    if not ready:
        first = f" (first: {label(skipped[0].name, skipped[0].sql)}: {skipped[0].reason})" if skipped else ""
        raise UsageError(f"no statement of the workload can run under load{first}")
    binary = pgbench_binary(options.pgbench)
    unfit = pgbench_unfit(ready, binary)
    if options.engine == Engine.PGBENCH and unfit:
        raise UsageError(f"--engine pgbench: {unfit}")
    engine = options.engine or (Engine.RUNNER if unfit else Engine.PGBENCH)
    if engine == Engine.PGBENCH:
        reason = ("forced (--engine pgbench)" if options.engine else
                  "every statement fits pgbench -f (parameters as \\set from sampled numbers)")
    else:
        reason = "forced (--engine dbtune)" if options.engine else f"pgbench does not fit: {unfit}"
    clients = f"{options.clients} client{'s' if options.clients != 1 else ''}"
    progress(f"load on {describe(settings)}: {len(ready)} statements, {clients} x "
             f"{options.duration_s} s, engine {engine.value} ({reason})")
    first_errors: list[str | None]
    if engine == Engine.PGBENCH:
        assert binary is not None
        tps, elapsed, histograms, counts, failed, first_error, aborted = _run_pgbench(binary, settings, ready,
                                                                                      options, count)
        first_errors = [first_error if f else None for f in failed]
        if aborted:
            stopped = (f"pgbench stopped {aborted} of {options.clients} sessions at their first error "
                       f"({first_error})")
            if options.engine is None:
                # Not a load at --clients x --duration any more: the runner counts errors and goes on.
                engine, reason = Engine.RUNNER, f"{stopped}; dbtune's runner counts errors and goes on"
                progress(f"  {reason}")
            else:
                reason += f"; {stopped}"
    if engine == Engine.RUNNER:
        elapsed, histograms, counts, failed, first_errors = _run_threads(settings, ready, options, count)
        tps = sum(counts) / elapsed if elapsed > 0 else 0.0
    count(SECONDS_RUN, options.duration_s, options.duration_s)
    total = new_histogram()
    for h in histograms:
        total.add(h)
    statements = tuple(
        StatementLoad(s.query.name, s.query.sql, s.kind, counts[i], failed[i],
                      percentile_ms(histograms[i], 50), percentile_ms(histograms[i], 95),
                      percentile_ms(histograms[i], 99), s.params.sources, first_errors[i])
        for i, s in enumerate(ready))
    return LoadResult(engine, reason, options.clients, options.duration_s, round(elapsed, 3), sum(counts),
                      sum(failed), round(tps, 1) if math.isfinite(tps) else 0.0, percentile_ms(total, 50),
                      percentile_ms(total, 95), percentile_ms(total, 99), statements, tuple(skipped),
                      describe(settings))


__all__ = ["Engine", "LoadOptions", "LoadResult", "LoadStatement", "StatementLoad", "pgbench_binary",
           "pgbench_script", "pgbench_unfit", "run_load"]
