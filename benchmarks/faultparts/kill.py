"""Kill, restart and two appliers (issue 9, items 1, 2 and 5): the fault injection that
``tests/test_faults_kill.py``, ``tests/test_faults_restart.py`` and ``tests/test_faults_appliers.py`` run with
small counts and ``benchmarks/faults.py --part kill`` (``restart``, ``appliers``) runs in full.

One migration, generated the way a user does (a ``dbtune.toml`` with ``[[expect.index]]`` and
``[[expect.constraint]]`` entries, then ``dbtune migrate generate``, which audits): three ``CREATE INDEX
CONCURRENTLY`` on ``orders``, a partitioned table's index ``ON ONLY events`` with a concurrent build on each
partition and ``ALTER INDEX … ATTACH PARTITION``, and a foreign key and a check constraint each added ``NOT
VALID`` then validated. Each trial applies it to a fresh copy of the template database with the real CLI (a
subprocess), kills that with SIGKILL, optionally ends the server backend it left running (as an operator
would), applies again, and reads the catalog: no INVALID index (``pg_index.indisvalid``), no two indexes of a
table with the same definition but their names, every partitioned index with an index attached for each
partition, every constraint validated, and the version table recording the head revision exactly when every
object of the migration exists.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from faultparts import Figure

PART = "kill"

CONFIG = """\
# The migration of the kill trials: three concurrent builds on orders, a partitioned index, two constraints.
[[expect.index]]
name = "orders_status_created_idx"
table = "orders"
columns = ["status", "created_at DESC"]

[[expect.index]]
name = "orders_created_idx"
table = "orders"
columns = ["created_at"]

[[expect.index]]
name = "orders_account_idx"
table = "orders"
columns = ["account_id"]

[[expect.index]]
name = "events_account_idx"
table = "events"
columns = ["account_id"]

[[expect.constraint]]
name = "orders_account_fk"
table = "orders"
definition = "FOREIGN KEY (account_id) REFERENCES accounts (id)"

[[expect.constraint]]
name = "orders_total_check"
table = "orders"
definition = "CHECK (total >= 0)"
"""
INDEXES = ("orders_status_created_idx", "orders_created_idx", "orders_account_idx", "events_account_idx")
CONSTRAINTS = ("orders_account_fk", "orders_total_check")
# The lines `dbtune migrate apply` reports as each step starts.
STEP_PREFIXES = ("  building ", "  running ", "  checking ")


def schema(rows: int) -> str:
    """The tables of the migration: ``orders`` and the partitioned ``events`` with ``rows`` rows each."""
    return f"""
CREATE TABLE accounts (id bigint PRIMARY KEY, region text NOT NULL);
INSERT INTO accounts SELECT g, 'r' || (g % 7) FROM generate_series(1, 1000) g;
CREATE TABLE orders (id bigint PRIMARY KEY, account_id bigint NOT NULL, status text NOT NULL,
                     total numeric NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO orders SELECT g, 1 + g % 1000, 's' || (g % 5), g % 997,
                          timestamptz '2025-01-01' + g * interval '1 second' FROM generate_series(1, {rows}) g;
CREATE TABLE events (id bigint NOT NULL, account_id bigint NOT NULL, created_at date NOT NULL)
  PARTITION BY RANGE (created_at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events SELECT g, 1 + g % 1000, date '2025-01-01' + (g % 700) FROM generate_series(1, {rows}) g;
ANALYZE;
"""


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PG", "DBTUNE_")) and k != "DATABASE_URL"}


def dbtune(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python -m dbtune ARGS`` in ``cwd``, with no PG*/DBTUNE_* variables; its exit code and output."""
    return subprocess.run([sys.executable, "-m", "dbtune", *args], capture_output=True, text=True, cwd=cwd,
                          env=_clean_env(), timeout=timeout, check=False)


@dataclass(frozen=True)
class Target:
    """A server holding ``template`` (the tables, before the migration) and ``workdir`` holding the
    ``dbtune.toml`` and the ``migrations`` directory generated from it, whose one revision is ``revision``."""

    server: Any  # dbtune.db.local_server.LocalServer
    template: str
    workdir: Path
    revision: str

    @property
    def migrations(self) -> Path:
        return self.workdir / "migrations"

    def dsn(self, dbname: str) -> str:
        return str(self.server.dsn(dbname))


def prepare(server: Any, workdir: Path, rows: int, template: str = "kill_template", config: str = CONFIG) -> Target:
    """Load :func:`schema` into a new database ``template`` on ``server`` and generate the migration in
    ``workdir`` with ``dbtune migrate generate`` (which audits against ``config``, written there as its
    ``dbtune.toml``: :data:`CONFIG` by default)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {template}")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {template}")  # type: ignore[arg-type]
    with psycopg.connect(server.dsn(template), autocommit=True) as conn:
        conn.execute(schema(rows))  # type: ignore[arg-type]
    (workdir / "dbtune.toml").write_text(config)
    done = dbtune("migrate", "generate", "--dsn", server.dsn(template), "--dir", "migrations", cwd=workdir)
    if done.returncode != 0:
        raise RuntimeError(f"migrate generate failed: {done.stderr}")
    (revision,) = [p.name.split("_", 1)[0] for p in (workdir / "migrations" / "versions").glob("*.py")]
    return Target(server, template, workdir, revision)


def fresh_database(target: Target, name: str) -> str:
    """A copy of the template database, ``name``; its DSN."""
    with psycopg.connect(target.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {target.template}")  # type: ignore[arg-type]
    return target.dsn(name)


def drop_database(target: Target, name: str) -> None:
    with psycopg.connect(target.dsn("postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]


class Applier:
    """``dbtune migrate apply`` running as a subprocess, its stderr lines collected as they come."""

    def __init__(self, target: Target, dsn: str, *options: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dbtune", "migrate", "apply", "--dsn", dsn, "--dir", "migrations", *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=target.workdir, env=_clean_env())
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.out = ""

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.process.pid

    def steps_started(self) -> int:
        return sum(line.startswith(STEP_PREFIXES) for line in self.lines)

    def wait_for_line(self, predicate: Callable[[list[str]], bool], timeout: float) -> bool:
        """Wait until ``predicate(lines)`` holds (True) or the process ends or ``timeout`` s pass (False)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (not self._reader.is_alive() and self.process.poll() is not None):
                    return predicate(self.lines)
                self._changed.wait(min(left, 0.2))
        return True

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    def finish(self, timeout: float) -> int:
        """Wait for the process (killing it after ``timeout`` s) and its output; its exit code."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()
        self._reader.join(10)
        assert self.process.stdout is not None
        self.out = self.process.stdout.read()  # a few lines at most: apply reports on stderr
        return int(self.process.returncode)

    @property
    def err(self) -> str:
        return "\n".join(self.lines)


def applier_backends(dsn: str, client_pid: int) -> list[int]:
    """The server backends of the applier whose client process is ``client_pid`` (its application_name)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_catalog.pg_stat_activity WHERE application_name LIKE %s",
                            (f"dbtune migrate apply: pid {client_pid} %",)).fetchall()
    return [int(r[0]) for r in rows]


def terminate_backends(dsn: str, pids: list[int]) -> None:
    """``pg_terminate_backend`` each pid and wait (up to 30 s) until they are gone."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for pid in pids:
            conn.execute("SELECT pg_catalog.pg_terminate_backend(%s, 30000)", (pid,))


# --- what the catalog says -----------------------------------------------------------------------------

_INVALID = """
SELECT x.indexrelid::regclass::text FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
 WHERE NOT x.indisvalid AND c.relnamespace = 'public'::regnamespace ORDER BY 1
"""
# Two indexes of one table whose definitions differ only in their names.
_DUPLICATES = """
SELECT x.indrelid::regclass::text, string_agg(x.indexrelid::regclass::text, ', ' ORDER BY c.relname)
  FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
 WHERE c.relnamespace = 'public'::regnamespace
 GROUP BY x.indrelid, replace(pg_catalog.pg_get_indexdef(x.indexrelid),
                              ' INDEX ' || pg_catalog.quote_ident(c.relname) || ' ON ', ' INDEX ON ')
HAVING count(*) > 1 ORDER BY 1
"""
# Each partitioned index's partitions that have no index attached to it.
_UNATTACHED = """
SELECT p.indexrelid::regclass::text, h.inhrelid::regclass::text
  FROM pg_catalog.pg_index p JOIN pg_catalog.pg_class pc ON pc.oid = p.indexrelid AND pc.relkind = 'I'
  JOIN pg_catalog.pg_inherits h ON h.inhparent = p.indrelid
 WHERE pc.relnamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits a JOIN pg_catalog.pg_index x ON x.indexrelid = a.inhrelid
                    WHERE a.inhparent = p.indexrelid AND x.indrelid = h.inhrelid)
 ORDER BY 1, 2
"""
_UNVALIDATED = """
SELECT conrelid::regclass::text || '.' || conname FROM pg_catalog.pg_constraint
 WHERE NOT convalidated AND connamespace = 'public'::regnamespace ORDER BY 1
"""


@dataclass(frozen=True)
class CatalogState:
    """What the catalog of a trial's database holds: INVALID indexes, duplicate indexes (table: names),
    partitioned indexes with a partition unattached, constraints not validated, objects of the migration
    missing, and the revisions the version table records."""

    invalid: tuple[str, ...]
    duplicates: tuple[str, ...]
    unattached: tuple[str, ...]
    unvalidated: tuple[str, ...]
    missing: tuple[str, ...]
    recorded: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Every object of the migration exists, valid, validated, attached."""
        return not (self.missing or self.invalid or self.unattached or self.unvalidated)

    def version_mismatch(self, revision: str) -> bool:
        """The version table does not match the schema: it records ``revision`` while the schema is not
        complete, or the schema is complete and the table does not record it."""
        return (revision in self.recorded) != self.complete

    def problems(self) -> list[str]:
        return [f"{what}: {', '.join(items)}" for what, items in (
            ("INVALID", self.invalid), ("duplicates", self.duplicates), ("unattached", self.unattached),
            ("not validated", self.unvalidated), ("missing", self.missing)) if items]


def catalog_state(dsn: str) -> CatalogState:
    """Read :class:`CatalogState` from the database at ``dsn``."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        def strings(sql: str) -> tuple[str, ...]:
            return tuple(": ".join(str(v) for v in row) for row in conn.execute(sql).fetchall())  # type: ignore[arg-type]

        missing = [i for i in INDEXES
                   if conn.execute("SELECT pg_catalog.to_regclass(%s)", (i,)).fetchone() == (None,)]
        missing += [c for c in CONSTRAINTS
                    if not conn.execute("SELECT 1 FROM pg_catalog.pg_constraint WHERE conname = %s", (c,)).fetchall()]
        has_table = conn.execute("SELECT pg_catalog.to_regclass('dbtune_version')").fetchone() != (None,)
        recorded = tuple(str(r[0]) for r in conn.execute("SELECT version_num FROM dbtune_version").fetchall()) \
            if has_table else ()
        return CatalogState(strings(_INVALID), strings(_DUPLICATES), strings(_UNATTACHED), strings(_UNVALIDATED),
                            tuple(missing), recorded)


# --- kill trials ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One kill: at ``at`` s after the start (``kind`` "time") or as step ``at`` starts (``kind`` "step"),
    then (``end_orphan``) the server backend left running is terminated before the re-run."""

    kind: str
    at: float
    end_orphan: bool

    def describe(self) -> str:
        when = f"at {self.at:.2f} s" if self.kind == "time" else f"as step {int(self.at)} starts"
        return f"SIGKILL {when}" + (", orphaned backend terminated" if self.end_orphan else "")


@dataclass(frozen=True)
class TrialResult:
    trial: Trial
    after_kill: CatalogState
    after_rerun: CatalogState
    rerun_code: int
    tracebacks: int
    mismatches: int  # the version table against the schema, after the kill and after the re-run
    partial: bool  # the kill left the migration half done (some of its objects, not recorded)
    output: str = field(repr=False, default="")

    @property
    def converged(self) -> bool:
        s = self.after_rerun
        return self.rerun_code == 0 and s.complete and not s.duplicates and not self.mismatches

    def describe(self) -> str:
        state = "converged" if self.converged else f"NOT converged (exit {self.rerun_code}; " \
            f"{'; '.join(self.after_rerun.problems()) or 'version table mismatch'})"
        return f"{self.trial.describe()}: {'left it half done' if self.partial else 'nothing half done'}; {state}"


def measure(target: Target, name: str = "kill_measure") -> tuple[float, int]:
    """An unkilled apply on a fresh copy: its wall time (s) and the number of steps it reports."""
    dsn = fresh_database(target, name)
    try:
        started = time.monotonic()
        applier = Applier(target, dsn)
        code = applier.finish(3600)
        elapsed = time.monotonic() - started
        if code != 0:
            raise RuntimeError(f"the unkilled apply failed: {applier.err}")
        return elapsed, applier.steps_started()
    finally:
        drop_database(target, name)


def plan_trials(rng: random.Random, count: int, duration_s: float, steps: int) -> list[Trial]:
    """``count`` trials, alternating a kill as a random step starts and a kill at a random time over
    ``duration_s``; each ends the orphaned backend or not, at random."""
    return [Trial("step", rng.randint(1, steps), rng.random() < 0.5) if n % 2 == 0
            else Trial("time", rng.uniform(0.0, duration_s), rng.random() < 0.5) for n in range(count)]


def run_trial(target: Target, trial: Trial, name: str, timeout_s: float = 600) -> TrialResult:
    """Apply on a fresh copy, kill as ``trial`` says, apply again, and read the catalog after each."""
    dsn = fresh_database(target, name)
    try:
        applier = Applier(target, dsn)
        if trial.kind == "step":
            applier.wait_for_line(lambda lines: sum(x.startswith(STEP_PREFIXES) for x in lines) >= trial.at,
                                  timeout_s)
        else:
            applier.wait_for_line(lambda lines: False, trial.at)
        orphans = applier_backends(dsn, applier.pid)
        applier.kill()
        applier.finish(30)
        if trial.end_orphan:
            terminate_backends(dsn, orphans)
        killed = catalog_state(dsn)
        rerun = dbtune("migrate", "apply", "--dsn", dsn, "--dir", "migrations", cwd=target.workdir,
                       timeout=timeout_s)
        after = catalog_state(dsn)
        done_some = len(killed.missing) < len(INDEXES) + len(CONSTRAINTS)
        # After the kill the version table may lag behind a finished schema (killed before the stamp), but
        # it must never record the revision of a schema that is not complete.
        mismatches = int(target.revision in killed.recorded and not killed.complete) \
            + int(after.version_mismatch(target.revision))
        return TrialResult(trial, killed, after, rerun.returncode,
                           (applier.err + rerun.stderr).count("Traceback"), mismatches,
                           done_some and target.revision not in killed.recorded,
                           f"killed:\n{applier.err}\nre-run:\n{rerun.stderr}")
    finally:
        drop_database(target, name)


def kill_trials(target: Target, seed: int, count: int) -> list[TrialResult]:
    """Measure an unkilled apply, then run ``count`` seeded trials (:func:`plan_trials`)."""
    duration, steps = measure(target)
    trials = plan_trials(random.Random(seed), count, duration, steps)
    return [run_trial(target, t, f"kill_trial_{n}") for n, t in enumerate(trials)]


@contextmanager
def old_snapshot(dsn: str) -> Iterator[int]:
    """A ``REPEATABLE READ`` transaction holding a snapshot, which a concurrent index build started after it
    waits for (its pid); committed on exit, unless a server restart ended it."""
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        conn.execute("SELECT count(*) FROM accounts")
        yield int(conn.info.backend_pid)
    finally:
        try:
            conn.execute("COMMIT")
        except psycopg.OperationalError:
            pass  # the server restarted under it
        conn.close()


def build_waiting(dsn: str, index: str) -> bool:
    """Whether a session runs ``CREATE INDEX CONCURRENTLY … index`` waiting for an older transaction."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        return bool(conn.execute("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE query LIKE %s "
                                 "AND wait_event = 'virtualxid'", (f"%INDEX CONCURRENTLY%{index}%",)).fetchone()
                    == (1,))


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


@dataclass(frozen=True)
class LeftoverResult:
    """The INVALID index a killed applier's backend left when its build failed after the kill, and what the
    next apply did with it."""

    leftover: tuple[str, ...]  # INVALID indexes once the orphaned backend is gone
    holders: int  # sessions still holding the migration lock then
    rerun_code: int
    rerun_err: str
    after: CatalogState


def orphaned_invalid_leftover(target: Target, name: str = "kill_leftover") -> LeftoverResult:
    """Kill apply while its first build waits for an old snapshot: the orphaned backend's build then fails
    at ``lock_timeout`` (nobody is left to retry it or drop what it built), leaving an INVALID index that
    no session holds. The old snapshot ends, and a plain re-run must drop and rebuild it."""
    dsn = fresh_database(target, name)
    first = INDEXES[0]
    try:
        with old_snapshot(dsn):
            applier = Applier(target, dsn, "--lock-timeout", "1s")
            wait_until(lambda: build_waiting(dsn, first), f"the build of {first} to wait")
            applier.kill()
            applier.finish(30)
            wait_until(lambda: not applier_backends(dsn, applier.pid), "the orphaned backend to end")
            with psycopg.connect(dsn, autocommit=True) as conn:
                holders = conn.execute("SELECT count(*) FROM pg_catalog.pg_locks WHERE locktype = 'advisory'"
                                       ).fetchone()
            leftover = catalog_state(dsn).invalid
        rerun = dbtune("migrate", "apply", "--dsn", dsn, "--dir", "migrations", cwd=target.workdir)
        return LeftoverResult(leftover, int(holders[0]) if holders else -1, rerun.returncode, rerun.stderr,
                              catalog_state(dsn))
    finally:
        drop_database(target, name)


# --- server restarts -----------------------------------------------------------------------------------

WORKLOAD = """\
-- name: orders by status
SELECT count(*) FROM orders WHERE status = 's1';
-- name: an account's events
SELECT count(*) FROM events WHERE account_id = 7;
"""


@dataclass(frozen=True)
class RestartResult:
    """A command interrupted by a server restart (its exit code and stderr), and its re-run (exit code, stderr,
    and for apply the catalog after it)."""

    code: int
    err: str
    rerun_code: int
    rerun_err: str
    after: CatalogState | None

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]

    @property
    def clean(self) -> bool:
        """Exit 3 with exactly one ``error:`` line and no traceback; the re-run exits 0 (and apply converges)."""
        return (self.code == 3 and len(self.error_lines) == 1 and "Traceback" not in self.err + self.rerun_err
                and self.rerun_code == 0 and (self.after is None or (
                    self.after.complete and not self.after.duplicates)))


def restart(server: Any, mode: str) -> None:
    """Shut the server down (``fast`` or ``immediate``) and start it again."""
    server.stop(mode)
    server.start()


def restart_during_apply(target: Target, mode: str, name: str = "kill_restart") -> RestartResult:
    """Restart the server while apply's first build waits for an old snapshot (a reader the restart ends),
    then apply again. ``target`` must be on a server of the caller's own."""
    dsn = fresh_database(target, name)
    try:
        with old_snapshot(dsn):
            applier = Applier(target, dsn, "--lock-timeout", "60s")
            wait_until(lambda: build_waiting(dsn, INDEXES[0]), f"the build of {INDEXES[0]} to wait")
            restart(target.server, mode)
        code = applier.finish(120)
        rerun = dbtune("migrate", "apply", "--dsn", dsn, "--dir", "migrations", cwd=target.workdir)
        return RestartResult(code, applier.err, rerun.returncode, rerun.stderr, catalog_state(dsn))
    finally:
        drop_database(target, name)


def restart_during_bench(target: Target, mode: str, name: str = "kill_bench") -> RestartResult:
    """Restart the server while ``dbtune bench run`` measures, then run the bench again (a short run)."""
    dsn = fresh_database(target, name)
    (target.workdir / "workload.sql").write_text(WORKLOAD)
    try:
        bench = subprocess.Popen([sys.executable, "-m", "dbtune", "bench", "run", "--dsn", dsn, "--workload",
                                  "workload.sql", "--iterations", "1000000", "--warmup", "0"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=target.workdir,
                                 env=_clean_env())

        def measuring() -> bool:
            assert bench.poll() is None, bench.communicate()
            with psycopg.connect(dsn, autocommit=True) as conn:
                return conn.execute("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = "
                                    "'dbtune' AND state = 'active' AND query LIKE '%dbtune bench%'").fetchone() != (0,)

        wait_until(measuring, "the bench to run")
        restart(target.server, mode)
        try:
            _, err = bench.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            bench.kill()
            _, err = bench.communicate()
        rerun = dbtune("bench", "run", "--dsn", dsn, "--workload", "workload.sql", "--iterations", "5",
                       cwd=target.workdir)
        return RestartResult(bench.returncode, err, rerun.returncode, rerun.stderr, None)
    finally:
        drop_database(target, name)


def restart_figures(part: str, results: dict[str, RestartResult]) -> list[Figure]:
    """One figure per restart case (``apply fast``, ``bench immediate`` …): exit 3, one error line, re-run ok."""
    return [Figure(part, f"server restart ({what}): exit 3, one error: line, re-run converges",
                   "yes" if r.clean else f"no (exit {r.code}, {len(r.error_lines)} error lines, re-run "
                   f"exit {r.rerun_code})", "", "yes", r.clean) for what, r in results.items()]


def restart_cases(target: Target) -> dict[str, RestartResult]:
    """Every restart case: apply and bench, each with a fast and an immediate shutdown."""
    out: dict[str, RestartResult] = {}
    for mode in ("fast", "immediate"):
        out[f"apply, {mode} shutdown"] = restart_during_apply(target, mode)
        out[f"bench run, {mode} shutdown"] = restart_during_bench(target, mode)
    return out


# --- two appliers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppliersResult:
    """Two appliers at once (the first's build held by an old snapshot so that they overlap) and a third
    with ``--no-wait``: each one's exit code and stderr, the first's client pid, the catalog after."""

    first_pid: int
    first: tuple[int, str]
    second: tuple[int, str]
    refused: tuple[int, str]
    refused_ms: float  # the --no-wait run's wall time, its process start included
    refused_while_held: bool  # it returned while the first still held the lock (it did not wait)
    after: CatalogState


def two_appliers(target: Target, name: str = "kill_appliers") -> AppliersResult:
    """Start apply, hold its first build with an old snapshot, start a second apply (which must wait for the
    migration lock, saying whom for) and a third with ``--no-wait`` (which must exit 3 at once naming the
    first); then end the snapshot and let both finish."""
    dsn = fresh_database(target, name)
    try:
        with old_snapshot(dsn):
            first = Applier(target, dsn, "--lock-timeout", "60s")
            wait_until(lambda: build_waiting(dsn, INDEXES[0]), f"the build of {INDEXES[0]} to wait")
            second = Applier(target, dsn)
            second.wait_for_line(lambda lines: any("waiting for the dbtune migration lock" in x for x in lines), 60)
            started = time.monotonic()
            refused = dbtune("migrate", "apply", "--dsn", dsn, "--dir", "migrations", "--no-wait", cwd=target.workdir)
            refused_ms = (time.monotonic() - started) * 1000
            held = first.process.poll() is None and bool(applier_backends(dsn, first.pid))
        first_code, second_code = first.finish(120), second.finish(120)
        return AppliersResult(first.pid, (first_code, first.err), (second_code, second.err),
                              (refused.returncode, refused.stderr), refused_ms, held, catalog_state(dsn))
    finally:
        drop_database(target, name)


def simultaneous_appliers(target: Target, name: str) -> tuple[int, int, bool]:
    """Two plain appliers started together on a fresh copy: (how many said they applied the revision, how many
    exited non-zero, whether the catalog converged)."""
    dsn = fresh_database(target, name)
    try:
        both = [Applier(target, dsn), Applier(target, dsn)]
        codes = [a.finish(3600) for a in both]
        applied = sum("applied 1 revision(s)" in a.err for a in both)
        state = catalog_state(dsn)
        return applied, sum(c != 0 for c in codes), state.complete and not state.duplicates
    finally:
        drop_database(target, name)


# --- the benchmark part --------------------------------------------------------------------------------


def add_arguments(parser: Any) -> None:
    parser.add_argument("--kill-trials", type=int, default=100, help="kill trials (default 100)")
    parser.add_argument("--kill-rows", type=int, default=1_000_000,
                        help="rows of orders and of the partitioned events (default 1,000,000)")


@contextmanager
def throwaway_server() -> Iterator[Any]:
    """A server of its own (the embedded PostgreSQL 18), destroyed on exit."""
    from dbtune.db.local_server import LocalServer, embedded_bindir

    server = LocalServer.create(embedded_bindir())
    server.init({"max_wal_size": "'2GB'"})
    server.start()
    try:
        yield server
    finally:
        server.destroy()


def figures(part: str, results: list[TrialResult], leftover: LeftoverResult | None) -> list[Figure]:
    """The figures of the kill trials (and of the orphaned leftover's case, when run)."""
    out = [
        Figure(part, "kill trials run (SIGKILL of migrate apply)", len(results), "", "as asked", bool(results)),
        Figure(part, "trials that left the migration half done", sum(r.partial for r in results), "", "> 0",
               any(r.partial for r in results)),
        Figure(part, "converged after one re-run", sum(r.converged for r in results), "", f"{len(results)}",
               all(r.converged for r in results)),
        Figure(part, "INVALID indexes left", sum(len(r.after_rerun.invalid) for r in results), "", "0",
               not any(r.after_rerun.invalid for r in results)),
        Figure(part, "duplicate indexes", sum(len(r.after_rerun.duplicates) for r in results), "", "0",
               not any(r.after_rerun.duplicates for r in results)),
        Figure(part, "version-table mismatches", sum(r.mismatches for r in results), "", "0",
               not any(r.mismatches for r in results)),
        Figure(part, "tracebacks", sum(r.tracebacks for r in results), "", "0",
               not any(r.tracebacks for r in results)),
    ]
    if leftover is not None:
        ok = bool(leftover.leftover) and leftover.rerun_code == 0 and leftover.after.complete
        out.append(Figure(part, "orphaned build's INVALID leftover dropped and rebuilt by the next apply",
                          "yes" if ok else "no", "", "yes", ok))
    return out


def run(args: Any) -> list[Figure]:
    import tempfile

    with throwaway_server() as server, tempfile.TemporaryDirectory(prefix="dbtune-kill-") as work:
        print(f"   loading {args.kill_rows:,} rows into orders and events", file=sys.stderr, flush=True)
        target = prepare(server, Path(work), args.kill_rows)
        results = []
        duration, steps = measure(target)
        print(f"   unkilled apply: {duration:.1f} s, {steps} steps", file=sys.stderr, flush=True)
        for n, trial in enumerate(plan_trials(random.Random(args.seed), args.kill_trials, duration, steps)):
            result = run_trial(target, trial, f"kill_trial_{n}")
            print(f"   trial {n + 1}/{args.kill_trials}: {result.describe()}", file=sys.stderr, flush=True)
            results.append(result)
        leftover = orphaned_invalid_leftover(target)
    return figures(PART, results, leftover)
