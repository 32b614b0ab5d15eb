"""The read-only promise (issue 9, item 9): ``audit``, ``explain`` and ``advise`` as a role that may only
read and as one that could write, on a throwaway PostgreSQL 15 with hypopg and no autovacuum, with the
counters of ``tests/faultkit/readonly.py``; figures: commands run as the read-only role, statements other
than reads, rows written, WAL records, and whether the control write was seen."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from faultkit import readonly  # noqa: E402

from faultparts import Figure  # noqa: E402


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--readonly-rows", type=int, default=100_000,
                        help="customers (orders: 10 times as many; default 100000)")


def run(args: argparse.Namespace) -> list[Figure]:
    with readonly.quiet_server(15) as server, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE readonly")
        with readonly.logins(server, "bench", "readonly") as roles:
            readonly.prepare(server, "readonly", roles, rows=args.readonly_rows, hypopg=True)
            runs = readonly.run_commands(server, "readonly", roles, Path(tmp))
            control = readonly.probe_writes(server, "readonly", roles["owner"])
    reader = [w for w in runs if w.role == "reader" and w.command.code == 0]
    writes = sum(len(w.writes) for w in runs)
    rows = sum(w.rows_written for w in runs)
    wal = sum(w.wal_records for w in runs)
    tracebacks = sum("Traceback" in w.command.err for w in runs)
    seen = control.rows_written > 0 and control.wal_records > 0 and len(control.writes) == 3
    return [
        Figure("readonly", "commands run as the read-only role", len(reader), "", f"{len(readonly.COMMANDS)}",
               len(reader) == len(readonly.COMMANDS)),
        Figure("readonly", "commands run as a role that could write",
               sum(w.role == "owner" and w.command.code == 0 for w in runs), "", f"{len(readonly.COMMANDS)}",
               sum(w.role == "owner" and w.command.code == 0 for w in runs) == len(readonly.COMMANDS)),
        Figure("readonly", "statements other than reads", writes, "", "0", writes == 0),
        Figure("readonly", "rows written", rows, "", "0", rows == 0),
        Figure("readonly", "WAL records of their statements", wal, "", "0", wal == 0),
        Figure("readonly", "control write seen by the counters", "yes" if seen else "no", "", "yes", seen),
        Figure("readonly", "tracebacks", tracebacks, "", "0", tracebacks == 0),
    ]
