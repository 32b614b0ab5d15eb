"""dbtune migrate apply and its waits: locks named truly in the dry run, the waits of a concurrent build
(table locks and the virtualxid waits for older transactions) retried and named, the leftover drop inside
the step's retry, a locked table that neither hangs nor goes unnamed, a server restart mid-run, and an
applier killed with ``kill -9`` whose server backend goes on building."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cli_runner import CLI
from conftest import SYSTEM_MAJOR, TestDatabase
from test_migrate import PARTITIONED

from dbtune.audit import audit
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer, system_bindir
from dbtune.migrate import api
from dbtune.migrate.runtime import ApplyError, ApplyOptions

EVENTS = """
CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL);
INSERT INTO events SELECT g, 'k' || (g % 10) FROM generate_series(1, 1000) g;
CREATE TABLE other (id int);
"""
EVENTS_CONFIG = {"expect": {"index": [{"name": "events_kind_idx", "table": "events", "columns": ["kind"]}]}}


def _generate(db: TestDatabase, directory: Path, config: dict[str, object] = EVENTS_CONFIG) -> None:
    result = api.generate(list(audit(resolve(db.dsn), parse_config(config)).findings), directory)
    assert result.generated is not None


def _validity(db: TestDatabase, index: str) -> list[tuple[object, ...]]:
    return db.query(f"SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('{index}')")


class Session:
    """Another session of the test, in its own transaction until :meth:`close`."""

    def __init__(self, db: TestDatabase, *statements: str, isolation: str = "READ COMMITTED") -> None:
        self.conn = psycopg.connect(db.dsn, autocommit=True)
        self.conn.execute(f"BEGIN ISOLATION LEVEL {isolation}")  # type: ignore[arg-type]
        for statement in statements:
            self.conn.execute(statement)  # type: ignore[arg-type]
        self.pid = self.conn.info.backend_pid

    def close(self) -> None:
        if not self.conn.closed:
            self.conn.execute("COMMIT")
            self.conn.close()


def _apply_until_retry(db: TestDatabase, directory: Path, session: Session, retry: int, *, lock_timeout_ms: int,
                       retries: int) -> list[str]:
    """Apply ``directory``, ending ``session``'s transaction when the report announces retry ``retry``; the
    lines reported."""
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if f"retry {retry}/" in line:
            session.close()

    try:
        api.apply(directory, resolve(db.dsn), ApplyOptions(lock_timeout_ms=lock_timeout_ms, retries=retries,
                                                           backoff_s=0.1, report=report))
    finally:
        session.close()
    return lines


@pytest.fixture
def events(db: TestDatabase, tmp_path: Path) -> Iterator[TestDatabase]:
    db.execute(EVENTS)
    _generate(db, tmp_path)
    yield db


def test_dry_run_names_foreign_key_lock_partition_sizes_and_blockers(db: TestDatabase, tmp_path: Path) -> None:
    """Item 7: ``ADD … FOREIGN KEY … NOT VALID`` is SHARE ROW EXCLUSIVE on both tables, a partitioned table's
    size is its partitions' (from relpages), and a session holding a conflicting lock is warned of."""
    db.execute(PARTITIONED + "CREATE TABLE \"Sales\".\"Note\" (id bigint, \"customerId\" bigint);"
               "INSERT INTO \"Sales\".\"Note\" SELECT g, g % 100 + 1 FROM generate_series(1, 100) g;"
               "ANALYZE;")
    _generate(db, tmp_path, {"expect": {
        "index": [{"table": "\"Sales\".\"Order\"", "columns": ["placed"]}],
        "constraint": [{"name": "note_customer_fk", "table": "\"Sales\".\"Note\"",
                        "definition": 'FOREIGN KEY ("customerId") REFERENCES "Sales"."Customer" (id)'}]}})
    blocker = Session(db, 'LOCK TABLE "Sales"."Customer" IN ROW EXCLUSIVE MODE')
    lines: list[str] = []
    try:
        api.apply(tmp_path, resolve(db.dsn), ApplyOptions(dry_run=True, report=lines.append))
    finally:
        blocker.close()
    fk = next(i for i, line in enumerate(lines) if "FOREIGN KEY" in line and "would run" in line)
    assert '(SHARE ROW EXCLUSIVE lock on "Sales"."Note", "Sales"."Customer"' in lines[fk]
    assert "warning: this step would wait" in lines[fk + 1]
    assert f"held by pid {blocker.pid} (idle in transaction, ROW EXCLUSIVE on \"Sales\".\"Customer\")" \
        in lines[fk + 1]
    parent = next(line for line in lines if 'ON ONLY "Sales"."Order"' in line)
    # A partitioned table has no storage of its own: its size is its partitions' (relpages, after ANALYZE).
    assert re.search(r'"Sales"\."Order" is [1-9][0-9]* (bytes|kB|MB) with the 2 relations below it\)', parent), parent


def test_last_lock_timeout_names_the_holder_again(events: TestDatabase, tmp_path: Path) -> None:
    """Item 7 and 13: the error after the last retry names the blocking pid; ``held by`` lists the
    conflicting SHARE UPDATE EXCLUSIVE holder, not a writer holding ROW EXCLUSIVE."""
    holder = Session(events, "LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE")
    writer = Session(events, "INSERT INTO events VALUES (5000, 'w')")
    lines: list[str] = []
    try:
        with pytest.raises(ApplyError) as failed:
            api.apply(tmp_path, resolve(events.dsn), ApplyOptions(lock_timeout_ms=100, retries=1, backoff_s=0.1,
                                                                  report=lines.append))
    finally:
        holder.close()
        writer.close()
    message = str(failed.value)
    assert "after 1 retries" in message
    held = message.split("held by ", 1)[1].split("; waiting for", 1)[0]
    assert f"pid {holder.pid} (idle in transaction, SHARE UPDATE EXCLUSIVE on events)" in held
    assert f"pid {writer.pid}" not in held
    assert _validity(events, "events_kind_idx") == []


def test_build_waiting_for_an_old_snapshot_is_retried_and_named(events: TestDatabase, tmp_path: Path) -> None:
    """Item 12: a REPEATABLE READ reader that began before the build makes its concurrent phase wait; the
    lock timeout is retried (not a traceback), the message names the reader, the INVALID index the cancelled
    build left is dropped and rebuilt, and the index ends valid."""
    reader = Session(events, "SELECT count(*) FROM other", isolation="REPEATABLE READ")
    lines = _apply_until_retry(events, tmp_path, reader, 2, lock_timeout_ms=200, retries=5)
    text = "\n".join(lines)
    assert f"waiting for transactions open since before the step: pid {reader.pid} (idle in transaction" in text
    assert "dropping INVALID index public.events_kind_idx left by an earlier build" in text
    assert _validity(events, "events_kind_idx") == [(True,)]


def test_leftover_drop_is_retried_within_the_step(events: TestDatabase, tmp_path: Path) -> None:
    """Item 13: an INVALID leftover and an old transaction open on the table: the leftover's
    ``DROP INDEX CONCURRENTLY`` waits for it under lock_timeout, and its timeouts are retried as the step's."""
    events.execute("CREATE INDEX events_kind_idx ON events (kind)")
    events.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'events_kind_idx'::regclass")
    reader = Session(events, "SELECT count(*) FROM events", isolation="REPEATABLE READ")
    lines = _apply_until_retry(events, tmp_path, reader, 3, lock_timeout_ms=150, retries=6)
    assert sum("lock not granted" in line for line in lines) >= 3
    assert any(f"pid {reader.pid} (idle in transaction" in line for line in lines)
    assert _validity(events, "events_kind_idx") == [(True,)]


def test_build_that_never_gets_its_wait_fails_in_one_line(events: TestDatabase, tmp_path: Path, cli: CLI) -> None:
    """Item 12: the old transaction never ends: apply ends with one ``error:`` line naming it, exit 3."""
    reader = Session(events, "SELECT count(*) FROM other", isolation="REPEATABLE READ")
    try:
        run = cli("migrate", "apply", "--dsn", events.dsn, "--dir", str(tmp_path), "--lock-timeout", "100ms",
                  "--retries", "1")
    finally:
        reader.close()
    assert run.code == 3 and "Traceback" not in run.err
    errors = [line for line in run.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"pid {reader.pid}" in errors[0] and "lock timeout" in errors[0]


def test_locked_table_is_named_by_dry_run_audit_and_generate(events: TestDatabase, tmp_path: Path,
                                                             cli: CLI) -> None:
    """Item 14: a table held in ACCESS EXCLUSIVE: the dry run does not hang (sizes from relpages) and warns
    of the holder; audit and generate go on without that table (issue 9: tests/test_faults_locks.py),
    naming it and the holder: the audit in its SKIPPED section, generate in a warning that the migration
    leaves the table out."""
    holder = Session(events, "LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
    try:
        dry = cli("migrate", "apply", "--dsn", events.dsn, "--dir", str(tmp_path), "--dry-run")
        audited = cli("audit", "--dsn", events.dsn)
        generated = cli("migrate", "generate", "--dsn", events.dsn, "--dir", str(tmp_path / "again"))
    finally:
        holder.close()
    assert dry.code == 0, dry.err
    assert f"held by pid {holder.pid} (idle in transaction, ACCESS EXCLUSIVE on events)" in dry.out
    assert audited.code in (0, 1) and generated.code == 0, (audited, generated)
    assert f"- table public.events: held in ACCESS EXCLUSIVE by pid {holder.pid} (idle in transaction" \
        in audited.out, audited.out
    assert (f"warning: table public.events is left out of this migration: held in ACCESS EXCLUSIVE by pid "
            f"{holder.pid} (idle in transaction") in generated.err, generated.err


def _wait_for(predicate, what: str, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def _applier(dsn: str, directory: Path, *options: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTUNE_")) and k != "DATABASE_URL"}
    return subprocess.Popen([sys.executable, "-m", "dbtune", "migrate", "apply", "--dsn", dsn, "--dir",
                             str(directory), *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=directory)


def _building(db: TestDatabase, applier: subprocess.Popen[str]) -> bool:
    assert applier.poll() is None, applier.communicate()
    return db.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%INDEX CONCURRENTLY%' "
                    "AND wait_event = 'virtualxid' AND pid <> pg_backend_pid()") == [(1,)]


def test_orphaned_build_is_named_and_waited_for(events: TestDatabase, tmp_path: Path, cli: CLI) -> None:
    """Item 17: ``kill -9`` of apply while its build waits: the server backend goes on and keeps the
    migration lock; a re-run with ``--no-wait`` is refused saying the holder's client is gone and what it is
    still running, and a plain re-run waits for it and then applies."""
    reader = Session(events, "SELECT count(*) FROM other", isolation="REPEATABLE READ")
    try:
        first = _applier(events.dsn, tmp_path, "--lock-timeout", "60s")
        _wait_for(lambda: _building(events, first), "the build to wait for the old transaction")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        refused = cli("migrate", "apply", "--dsn", events.dsn, "--dir", str(tmp_path), "--no-wait")
        waiting = _applier(events.dsn, tmp_path)
        _wait_for(lambda: events.query("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE "
                                       f"'dbtune migrate apply: pid {waiting.pid} %'") == [(1,)], "the waiter")
    finally:
        reader.close()
    out, err = waiting.communicate(timeout=60)
    assert refused.code == 3
    assert f"whose client (pid {first.pid} on" in refused.err and "is gone, is still running: CREATE /* dbtune */ " \
        "INDEX CONCURRENTLY" in refused.err and "re-run without --no-wait" in refused.err
    assert waiting.returncode == 0, err
    assert "waiting for the dbtune migration lock" in err and "applied 1 revision(s)" in err
    assert _validity(events, "events_kind_idx") == [(True,)]


@pytest.fixture
def throwaway() -> Iterator[LocalServer]:
    """A server of this test alone (PostgreSQL 15 where installed, else 18), which the test may shut down."""
    from dbtune.db.local_server import embedded_bindir

    server = LocalServer.create(system_bindir(SYSTEM_MAJOR) or embedded_bindir())
    server.init()
    server.start()
    yield server
    server.destroy()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_server_shutdown_during_apply_is_one_error_line(throwaway: LocalServer, tmp_path: Path,
                                                        mode: str) -> None:
    """Item 12: the server shuts down (fast or immediate) while apply waits on a build: one ``error:`` line,
    exit 3, no traceback."""
    db = TestDatabase(throwaway, "postgres")
    db.execute(EVENTS)
    _generate(db, tmp_path)
    reader = Session(db, "SELECT count(*) FROM other", isolation="REPEATABLE READ")  # ends with the server
    applier = _applier(db.dsn, tmp_path, "--lock-timeout", "60s")
    _wait_for(lambda: _building(db, applier), "the build to wait")
    throwaway.stop(mode)  # the reader's session ends with the server
    out, err = applier.communicate(timeout=60)
    reader.conn.close()
    assert applier.returncode == 3, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1, err
