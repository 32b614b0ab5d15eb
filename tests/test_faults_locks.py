"""Issue 9 item 4: a table held in ACCESS EXCLUSIVE by another session. The audit finishes, reports every
other object exactly as without the lock, and lists that table as skipped with the holder's pid; a session
merely *waiting* for ACCESS EXCLUSIVE (queued behind a reader) is named too, since a new ACCESS SHARE
request queues behind it. ``explain`` plans the other queries and reports the one that reads the table.
Runs on every server of the ``pg`` fixture (15 and 18)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
from cli_runner import CLI
from conftest import TestDatabase

SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers,
                     status text NOT NULL CHECK (status <> ''), note text);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_status_idx1 ON orders (status);                       -- a duplicate: IX002
CREATE TABLE events (id bigint, customer_id bigint REFERENCES customers, kind text);  -- no PK: CN001
CREATE INDEX events_kind_idx ON events (kind);
CREATE INDEX events_kind_idx1 ON events (kind);                           -- a duplicate: IX002
CREATE INDEX events_lower_kind_idx ON events (lower(kind)) WHERE kind IS NOT NULL;
INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 200) g;
INSERT INTO orders SELECT g, 1 + g % 200, 'new', NULL FROM generate_series(1, 500) g;
INSERT INTO events SELECT g, 1 + g % 200, 'k' || g % 7 FROM generate_series(1, 500) g;
ANALYZE;
"""

CONFIG = """
[[expect.index]]
table = "events"
columns = ["customer_id"]
reason = "events of a customer"

[[expect.index]]
table = "orders"
columns = ["customer_id"]
reason = "orders of a customer"
"""


def _audit(cli: CLI, db: TestDatabase, config: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    run = cli("audit", "--dsn", db.dsn, "--config", str(config), "--format", "json", "--fail-on", "never")
    assert run.code == 0 and "Traceback" not in run.err, run
    return run.code, json.loads(run.out)


def _findings(report: dict) -> set[tuple[str, str, str]]:  # type: ignore[type-arg]
    return {(f["check_name"], f["object"], f["message"]) for f in report["findings"]}


def _on(table: str, findings: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """The findings on ``table``: the table itself, or one of its indexes (all named ``<table>_…`` here)."""
    return {f for f in findings if f[1] == table or f[1].startswith((table + " ", table + "_"))}


def _setup(db: TestDatabase, tmp_path: Path) -> Path:
    db.execute(SCHEMA)
    config = tmp_path / "dbtune.toml"
    config.write_text(CONFIG)
    return config


def test_a_table_held_in_access_exclusive_is_skipped_and_the_rest_reported(db: TestDatabase, cli: CLI,
                                                                           tmp_path: Path) -> None:
    config = _setup(db, tmp_path)
    _, free = _audit(cli, db, config)
    before = _findings(free)
    # The lock-free audit has findings on the table that will be locked (its duplicate index, its missing
    # primary key and expected index): the locked audit must leave exactly those out, and nothing else.
    assert _on("public.events", before) and _on("public.orders", before), before
    holder = psycopg.connect(db.dsn, autocommit=True)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        _, locked = _audit(cli, db, config)
    finally:
        holder.execute("COMMIT")
        pid = holder.info.backend_pid
        holder.close()
    assert _findings(locked) == before - _on("public.events", before)
    [skip] = [s for s in locked["skipped"] if s["what"] == "table public.events"]
    assert skip["reason"].startswith(f"held in ACCESS EXCLUSIVE by pid {pid} (idle in transaction, since "), skip
    assert "LOCK TABLE events IN ACCESS EXCLUSIVE MODE" in skip["reason"]
    assert "no finding is reported on it" in skip["reason"]
    # Released, the audit is what it was.
    _, again = _audit(cli, db, config)
    assert _findings(again) == before and not [s for s in again["skipped"] if s["what"].startswith("table ")]


def test_a_session_waiting_for_access_exclusive_is_named_too(db: TestDatabase, cli: CLI, tmp_path: Path) -> None:
    """``ALTER TABLE`` queued behind a long reader: the audit's own ACCESS SHARE would queue behind it."""
    config = _setup(db, tmp_path)
    reader = psycopg.connect(db.dsn, autocommit=True)
    alterer = psycopg.connect(db.dsn, autocommit=True)
    waiter_pid = alterer.info.backend_pid
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM orders")
    waiting = threading.Thread(target=lambda: alterer.execute("ALTER TABLE orders ADD COLUMN extra int"))
    try:
        waiting.start()
        for _ in range(100):
            rows = db.query(f"SELECT count(*) FROM pg_locks WHERE pid = {waiter_pid} AND NOT granted")
            if rows == [(1,)]:
                break
            threading.Event().wait(0.05)
        _, report = _audit(cli, db, config)
    finally:
        reader.execute("COMMIT")
        waiting.join(30)
        reader.close()
        alterer.close()
    [skip] = [s for s in report["skipped"] if s["what"] == "table public.orders"]
    assert skip["reason"].startswith(f"held in ACCESS EXCLUSIVE by pid {waiter_pid}, waiting for it "
                                     "(active, since "), skip
    assert "ALTER TABLE orders ADD COLUMN extra int" in skip["reason"]
    assert _on("public.orders", _findings(report)) == set()
    assert _on("public.events", _findings(report))  # the other tables are reported


def test_explain_plans_the_other_queries_and_names_the_lock(db: TestDatabase, cli: CLI, tmp_path: Path) -> None:
    _setup(db, tmp_path)
    workload = tmp_path / "w.sql"
    workload.write_text("-- name: by-kind\nSELECT count(*) FROM events WHERE kind = $1;\n"
                        "-- name: by-status\nSELECT count(*) FROM orders WHERE status = $1;\n")
    holder = psycopg.connect(db.dsn, autocommit=True)
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        run = cli("explain", "--dsn", db.dsn, "--workload", str(workload), "--format", "json")
    finally:
        holder.execute("COMMIT")
        holder.close()
    assert "Traceback" not in run.err, run
    by_name = {q["name"]: q for q in json.loads(run.out)["queries"]}
    assert by_name["by-status"]["plan"] is not None
    error = by_name["by-kind"]["error"]
    assert error["sqlstate"] == "55P03" and "ACCESS EXCLUSIVE on a table it reads" in error["message"], error
