"""The pool-pressure and concurrency checks where the case files cannot reach: sessions left open during
the audit (idle in a transaction, waiting on a lock), the ON CONFLICT inference compared with the
server's own, and the guide's samples audited with its application config and write paths."""

from __future__ import annotations

import json
import re
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import conftest
import psycopg
from cli_runner import CLI
from test_migrate import load_guide

from dbtune.audit import audit
from dbtune.checks import load_catalogue
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.workload.load import load_queries

CASES = Path(__file__).parent / "cases"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"


@contextmanager
def lock_wait(db: conftest.TestDatabase) -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    """Two sessions on ``accounts`` (id 1): ``holder`` idle in the transaction of its UPDATE, ``waiter``
    running an UPDATE of the same row, waiting on holder's lock (yielded once the server shows it)."""
    db.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int); INSERT INTO accounts VALUES (1, 0)")
    holder = psycopg.connect(db.dsn, application_name="holder")
    waiter = psycopg.connect(db.dsn, application_name="waiter", autocommit=True)
    blocked = threading.Thread(target=waiter.execute, args=("UPDATE accounts SET balance = 2 WHERE id = 1",))
    try:
        holder.execute("UPDATE accounts SET balance = 1 WHERE id = 1")  # idle in transaction from here
        blocked.start()
        for _ in range(200):
            [(n,)] = db.query("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                              "AND application_name = 'waiter'")
            if n:
                break
            threading.Event().wait(0.02)
        yield holder, waiter
    finally:
        holder.rollback()
        holder.close()
        if blocked.ident is not None:
            blocked.join(10)
        waiter.close()


def test_pool_pressure_sees_idle_in_transaction_and_lock_waits(db18: conftest.TestDatabase) -> None:
    config = parse_config({"checks": {"pool-pressure": {"idle_in_transaction_s": 0}},
                           "pool": [{"name": "waiter", "size": 0, "max": 1, "connection_timeout": "5s"}]}, "test")
    quiet = audit(resolve(db18.dsn), config, select=["pool-pressure"])
    assert quiet.findings == ()
    second = psycopg.connect(db18.dsn, application_name="waiter")  # two connections of a pool of one
    try:
        with lock_wait(db18) as (holder, waiter):
            report = audit(resolve(db18.dsn), config, select=["pool-pressure"])
            holder_pid = holder.info.backend_pid
            by_object = {f.object: f for f in report.findings}
            assert f"pid {holder_pid}" in by_object, report.findings
            assert "(holder, role postgres) is idle in transaction" in by_object[f"pid {holder_pid}"].message
            [waits] = [f for f in report.findings if "wait on locks" in f.message]
            assert waits.message == f"1 session(s) wait on locks held by {holder_pid}"
            assert waits.evidence["waiting"][0]["pid"] == waiter.info.backend_pid
            assert by_object["pool waiter"].message == \
                "application 'waiter' holds 2 connections but its pool may open 1"
            assert by_object["pool waiter"].evidence["by_state"] == {"active": 1, "idle": 1}
    finally:
        second.close()

def test_on_conflict_inference_agrees_with_the_server(db18: conftest.TestDatabase, tmp_path: Path) -> None:
    """Every ON CONFLICT statement of CC003's cases is planned on a real server (the planner infers the
    arbiter: PREPARE, then EXPLAIN EXECUTE with NULL parameters; nothing runs): the ones the check reports
    are exactly those the server refuses, with SQLSTATE 42P10 (no matching unique index) or 42704 (ON
    CONSTRAINT naming no constraint)."""
    cases = tomllib.loads((CASES / "CC003.toml").read_text())["case"]
    catalogue = load_catalogue()
    for n, case in enumerate(cases):
        schema = f"cc003_{n}"
        db18.execute(f"CREATE SCHEMA {schema}; SET search_path = {schema}; {case['setup']}")
        path = tmp_path / f"{schema}.sql"
        path.write_text(case["workload"])
        config = parse_config({"database": {"search_path": [schema]}}, "test")
        report = audit(resolve(db18.dsn), config, catalogue=catalogue, select=["on-conflict-target-unmatched"],
                       workload=path)
        flagged = {f.object for f in report.findings}
        refused = set()
        with psycopg.connect(db18.dsn, autocommit=True) as conn:
            conn.execute(f"SET search_path = {schema}")  # type: ignore[arg-type]
            for q in load_queries(path, group=False).queries:
                try:
                    conn.execute(f"PREPARE probe AS {q.text}")  # type: ignore[arg-type]
                    nulls = ", ".join(["NULL"] * len(set(re.findall(r"\$\d+", q.text))))
                    conn.execute(f"EXPLAIN EXECUTE probe{f'({nulls})' if nulls else ''}")  # type: ignore[arg-type]
                except (psycopg.errors.InvalidColumnReference, psycopg.errors.UndefinedObject):
                    refused.add(q.location)
                conn.execute("DEALLOCATE ALL")
        assert bool(refused) == (n == 0), case["name"]  # the first case is the positive one
        assert flagged == refused, (case["name"], flagged, refused)


def test_the_guide_audited_with_its_app_config_and_write_paths(cli: CLI, db18: conftest.TestDatabase) -> None:
    """The guide's schema, its checklist, its .env.production, pgbouncer.ini and database.js, and its write
    paths (accept.sql): the vendor accept and the webhook record are check-then-insert races on keys no
    unique index enforces; the SET lock_timeout of database.js does nothing behind PgBouncer's
    transaction mode and belongs on the role; the optimistic update of vendor_routing uses its version."""
    load_guide(db18)
    guide = SAMPLES / "guide"
    run = cli("audit", "--dsn", db18.dsn, "--config", str(SAMPLES / "production.toml"), "--format", "json",
              "--workload", str(guide / "accept.sql"),
              "--app-config", str(guide / ".env.production"), "--app-config", str(guide / "pgbouncer.ini"),
              "--app-config", str(guide / "database.js"),
              *(arg for check_id in ("PO002", "PO003", "PO004", "PO005", "PO006", "PO007", "CC001", "CC002", "CC003",
                                     "CC004") for arg in ("--select", check_id)))
    assert run.out, run.err
    report = json.loads(run.out)
    found = sorted((f["check_id"], f["object"]) for f in report["findings"])
    assert found == [("CC002", "public.vendor_routing_responses"), ("CC002", "public.webhook_idempotency"),
                     ("PO006", "app")], report["findings"]
    races = {f["object"]: f for f in report["findings"] if f["check_id"] == "CC002"}
    assert "the fix is expect.unique[0]'s" in races["public.vendor_routing_responses"]["message"]
    [role] = [f for f in report["findings"] if f["check_id"] == "PO006"]
    assert role["message"].startswith(f"lock_timeout = 30s is set per session ({guide / 'database.js'}:")
    assert role["fix"]["sql"] == [f"ALTER ROLE app IN DATABASE {db18.name} SET lock_timeout TO '30s';"]
    assert races["public.webhook_idempotency"]["evidence"]["insert"] == (
        "INSERT INTO webhook_idempotency (message_sid, account_sid, event_type, payload) VALUES ($1, $2, $3, $4)")


def test_long_running_transaction_reports_a_running_statement_not_an_idle_one(db18: conftest.TestDatabase) -> None:
    """CC005: a statement that has been running (here, waiting on a row lock) is reported with its
    transaction's age; the session idle in its transaction that holds the lock is PO007's, not CC005's;
    under the default 300 s neither is reported."""
    config = parse_config({"checks": {"long-running-transaction": {"max_transaction_s": 0}}}, "test")
    with lock_wait(db18) as (_, waiter):
        report = audit(resolve(db18.dsn), config, select=["long-running-transaction"])
        [finding] = report.findings
        assert finding.object == f"pid {waiter.info.backend_pid}"
        assert "(waiter, role postgres) has been in a transaction for" in finding.message
        assert finding.message.endswith("(active, waiting on Lock)")
        assert finding.evidence["state"] == "active" and finding.evidence["max_transaction_s"] == 0
        default = audit(resolve(db18.dsn), parse_config({}, "test"), select=["long-running-transaction"])
        assert default.findings == ()
