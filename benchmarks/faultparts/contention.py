"""Lock contention during ``migrate apply`` (issue 9, item 3): what a writer feels while the migration waits
behind another session's lock, and how apply retries, names the blocker and gives up. The scenario code of
``tests/test_faults_contention.py`` (small counts) and ``benchmarks/faults.py --part contention`` (full).

The migration is the kill trials' two constraints (:mod:`faultparts.kill`: a foreign key and a check, each
added ``NOT VALID`` then validated). A *blocker* session holds ``ROW EXCLUSIVE``
on ``orders`` in an open transaction (an ``UPDATE`` of one row, then idle in transaction), the way an
application's forgotten transaction does. ``ALTER TABLE … ADD CONSTRAINT`` needs ``SHARE ROW EXCLUSIVE``
(a foreign key) or ``ACCESS EXCLUSIVE`` (a check), which conflicts with it, so the step waits; and while it
waits in the lock queue every later ``INSERT`` into ``orders`` (``ROW EXCLUSIVE``) queues behind it
(https://www.postgresql.org/docs/current/explicit-locking.html). ``lock_timeout`` bounds that wait: the step
gives up, the writers go on, apply retries after a pause. A writer inserts into ``orders`` all along and
times every ``INSERT``: its longest stall must stay within the ``lock_timeout`` apply runs with.

Two runs: the blocker ends its transaction after ``hold_s`` (apply retries, then succeeds); and one where
it outlasts the retry budget (apply exits 3 with one ``error:`` line naming the blocker).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from apply_write_stall import Writer

from faultparts import Figure, kill

PART = "contention"
INSERT = ("INSERT INTO orders (id, account_id, status, total, created_at) "
          "VALUES (%s, 1 + %s %% 1000, 'new', 1, now())")
# Only the kill migration's two constraints: each ALTER TABLE … ADD CONSTRAINT queues behind the blocker.
CONFIG = kill.CONFIG[kill.CONFIG.index("[[expect.constraint]]"):]


@dataclass(frozen=True)
class ContentionResult:
    """One apply behind a blocker: its exit code and stderr lines, the blocker's pid, the retries apply
    announced, the writer's longest ``INSERT`` (ms) and inserts done, and whether the catalog converged."""

    code: int
    lines: tuple[str, ...]
    blocker_pid: int
    lock_timeout_ms: int
    retries: int
    longest_stall_ms: float
    inserts: int
    converged: bool

    @property
    def blocker_named(self) -> bool:
        return any(f"pid {self.blocker_pid}" in line for line in self.lines)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.lines if line.startswith("error:")]

    @property
    def tracebacks(self) -> int:
        return sum("Traceback" in line for line in self.lines)


def behind_a_blocker(target: kill.Target, name: str, *, hold_s: float, lock_timeout_ms: int, retries: int,
                     writer_s: float = 600) -> ContentionResult:
    """Apply the migration to a fresh copy while a blocker holds ROW EXCLUSIVE on ``orders`` until ``hold_s``
    seconds after apply's first retry (0: until apply ends) and a writer inserts into it; see the module
    docstring."""
    dsn = kill.fresh_database(target, name)
    blocker = psycopg.connect(dsn, autocommit=True, application_name="contention blocker")
    try:
        blocker.execute("BEGIN")
        blocker.execute("UPDATE orders SET total = total WHERE id = 1")
        pid = blocker.info.backend_pid
        start = int(time.time() * 1000) % 1_000_000_000 + 10_000_000_000  # ids beyond the table's
        writer = Writer(dsn, 10_000_000, writer_s, sql=INSERT, params=lambda n: (start + n, n))
        writer.start()
        writer.ready.wait(60)
        if writer.error is not None:
            raise RuntimeError(f"the writer failed: {writer.error}")
        applier = kill.Applier(target, dsn, "--lock-timeout", f"{lock_timeout_ms}ms", "--retries", str(retries))
        release = None
        if hold_s > 0:  # the blocker lets go hold_s after apply's first retry (not before apply got there)
            applier.wait_for_line(lambda lines: any(" retry " in line for line in lines), 120)
            release = threading.Timer(hold_s, lambda: blocker.execute("COMMIT"))
            release.start()
        code = applier.finish(600)
        writer.stop.set()
        writer.join(60)
        if writer.error is not None:
            raise RuntimeError(f"the writer failed: {writer.error}")
        if release is not None:
            release.join()
        elif not blocker.closed:
            blocker.execute("COMMIT")
    finally:
        blocker.close()
    state = kill.catalog_state(dsn)
    lines = tuple(applier.lines)
    kill.drop_database(target, name)
    return ContentionResult(code, lines, pid, lock_timeout_ms,
                            sum("retry " in line and ("lock not granted" in line or "not queued for" in line)
                                for line in lines),
                            max(writer.latencies, default=0.0) * 1000, len(writer.latencies),
                            code == 0 and not (state.invalid or state.unvalidated or state.duplicates)
                            and not [c for c in state.missing if c in kill.CONSTRAINTS]
                            and target.revision in state.recorded)


def figures(part: str, waited: ContentionResult, gave_up: ContentionResult) -> list[Figure]:
    limit = waited.lock_timeout_ms
    # A queued INSERT waits at most lock_timeout behind the migration's request, plus the time to hand the
    # lock on: a tenth of lock_timeout is the margin allowed for that on a loaded 2-core machine.
    worst = max(waited.longest_stall_ms, gave_up.longest_stall_ms)
    return [
        Figure(part, f"longest write stall while apply waited behind a blocker ({waited.inserts:,} inserts)",
               round(worst, 1), "ms", f"≤ lock_timeout {limit} ms (+10 %)", worst <= limit * 1.1),
        Figure(part, "lock retries announced before the blocker let go", waited.retries, "", "> 0",
               waited.retries > 0),
        Figure(part, "blocker named (pid and query) in the retry lines", "yes" if waited.blocker_named else "no",
               "", "yes", waited.blocker_named),
        Figure(part, "converged once the blocker let go", "yes" if waited.converged else "no", "", "yes",
               waited.converged),
        Figure(part, "blocker outlasting the retry budget: exit code", gave_up.code, "", "3", gave_up.code == 3),
        Figure(part, "... error lines naming the blocker", len([e for e in gave_up.error_lines
                                                                 if f"pid {gave_up.blocker_pid}" in e]),
               "", "1", len(gave_up.error_lines) == 1 and f"pid {gave_up.blocker_pid}" in gave_up.error_lines[0]),
        Figure(part, "tracebacks", waited.tracebacks + gave_up.tracebacks, "", "0",
               waited.tracebacks + gave_up.tracebacks == 0),
    ]


def add_arguments(parser: Any) -> None:
    parser.add_argument("--contention-rows", type=int, default=1_000_000,
                        help="rows of orders and events for the contention runs (default 1,000,000)")


def run(args: Any) -> list[Figure]:
    import tempfile

    with kill.throwaway_server() as server, tempfile.TemporaryDirectory(prefix="dbtune-contention-") as work:
        print(f"   loading {args.contention_rows:,} rows into orders and events", file=sys.stderr, flush=True)
        target = kill.prepare(server, Path(work), args.contention_rows, template="contention_template",
                              config=CONFIG)
        waited = behind_a_blocker(target, "contention_wait", hold_s=6, lock_timeout_ms=2000, retries=5)
        print(f"   behind a blocker until 6 s after the first retry: exit {waited.code}, {waited.retries} retries, "
              f"longest stall {waited.longest_stall_ms:.0f} ms", file=sys.stderr, flush=True)
        gave_up = behind_a_blocker(target, "contention_give_up", hold_s=0, lock_timeout_ms=2000, retries=2)
        print(f"   blocker for good: exit {gave_up.code}, {gave_up.error_lines[:1]}", file=sys.stderr, flush=True)
    return figures(PART, waited, gave_up)
