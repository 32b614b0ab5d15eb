"""The audit with a table held in ACCESS EXCLUSIVE (issue 9, item 4), timed: ``dbtune audit`` (the CLI, a
subprocess, JSON) on the kill trials' schema (:mod:`faultparts.kill`, with its ``dbtune.toml``) once with no
lock and once while another session holds ``LOCK TABLE orders IN ACCESS EXCLUSIVE MODE`` in an open
transaction. Figures: both wall times against the audit's own limit (``statement_timeout``, 30 s), the exit
codes, whether ``orders`` is listed as skipped with the holder's pid, and whether every finding on the
other objects is the same as without the lock. ``tests/test_faults_locks.py`` tests the same on
PostgreSQL 15 and 18."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from faultparts import Figure, kill

PART = "locked_audit"
LIMIT_S = 30.0  # the audit's default statement_timeout


def _audit(target: kill.Target, dsn: str) -> tuple[int, float, dict[str, Any]]:
    started = time.perf_counter()
    done = kill.dbtune("audit", "--dsn", dsn, "--format", "json", "--fail-on", "never", cwd=target.workdir)
    elapsed = time.perf_counter() - started
    return done.returncode, elapsed, json.loads(done.stdout) if done.returncode in (0, 1) else {}


def _others(report: dict[str, Any], table: str) -> set[tuple[str, str]]:
    """The findings not on ``table`` nor on one of its indexes (all named ``orders_…`` in this schema)."""
    return {(f["check_name"], f["object"]) for f in report.get("findings", [])
            if f["object"] != table and not f["object"].startswith((table + " ", table + "_"))}


def add_arguments(parser: Any) -> None:
    parser.add_argument("--locked-audit-rows", type=int, default=1_000_000,
                        help="rows of orders and events (default 1,000,000)")


def run(args: Any) -> list[Figure]:
    with kill.throwaway_server() as server, tempfile.TemporaryDirectory(prefix="dbtune-locked-") as work:
        print(f"   loading {args.locked_audit_rows:,} rows", file=sys.stderr, flush=True)
        target = kill.prepare(server, Path(work), args.locked_audit_rows, template="locked_template")
        dsn = target.dsn(target.template)
        free_code, free_s, free = _audit(target, dsn)
        holder = psycopg.connect(dsn, autocommit=True)
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        pid = holder.info.backend_pid
        try:
            locked_code, locked_s, locked = _audit(target, dsn)
        finally:
            holder.execute("COMMIT")
            holder.close()
    skips = [s for s in locked.get("skipped", []) if s["what"] == "table public.orders"]
    named = bool(skips) and f"pid {pid}" in skips[0]["reason"]
    same = bool(free) and _others(locked, "public.orders") == _others(free, "public.orders")
    return [
        Figure(PART, "audit wall time, no lock", round(free_s, 2), "s", f"< {LIMIT_S:.0f} s", free_s < LIMIT_S),
        Figure(PART, "audit wall time, orders held in ACCESS EXCLUSIVE", round(locked_s, 2), "s",
               f"< {LIMIT_S:.0f} s", locked_s < LIMIT_S),
        Figure(PART, "exit codes (no lock / locked)", f"{free_code} / {locked_code}", "", "0 / 0",
               free_code == 0 and locked_code == 0),
        Figure(PART, "orders listed as skipped with the holder's pid", "yes" if named else "no", "", "yes", named),
        Figure(PART, "findings on the other objects the same as without the lock",
               f"{len(_others(locked, 'public.orders'))} of {len(_others(free, 'public.orders'))}", "", "all",
               same),
    ]
