"""Hostile identifiers (issue 9, item 6): the scenario of ``tests/faultkit/hostile.py`` on a throwaway
server that logs every statement, with more rows than the tests; figures: names tried, objects exact after
apply, statements that were not intended, tracebacks."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from faultkit import hostile  # noqa: E402

from dbtune.db.local_server import system_bindir  # noqa: E402
from faultparts import Figure  # noqa: E402


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hostile-rows", type=int, default=50_000, help="rows per hostile table (default 50000)")
    parser.add_argument("--hostile-server", choices=("pg15", "pg18"), default="pg15",
                        help="Debian's 15 with hypopg (default) or the embedded 18")


def run(args: argparse.Namespace) -> list[Figure]:
    major = 15 if args.hostile_server == "pg15" and system_bindir(15) is not None else None
    with hostile.logging_server(major) as server, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE hostile")
        if major == 15:
            with psycopg.connect(server.dsn("hostile"), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION hypopg")
        result = hostile.run_hostile(server, "hostile", Path(tmp), rows=args.hostile_rows)
    intended, exact = hostile.objects_exact(result)
    injected = len(hostile.unintended(result))
    failed = [c for c in result.commands if c.code not in (0, 1)]
    return [
        Figure("hostile", "names tried", len(hostile.names_tried()), "", "every kind", True),
        Figure("hostile", "objects exact after apply", f"{exact} of {intended}", "", "all", exact == intended),
        Figure("hostile", "commands failed", len(failed), "", "0", not failed),
        Figure("hostile", "injected statements", injected, "", "0", injected == 0),
        Figure("hostile", "tracebacks", result.tracebacks, "", "0", result.tracebacks == 0),
    ]
