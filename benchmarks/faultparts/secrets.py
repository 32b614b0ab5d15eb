"""Issue 9, item 8: the test password given four ways (DSN, PGPASSWORD, .pgpass, service file) to every
command, slow ones included (bench compare, the probes, tune), and to failing runs, against a throwaway
PostgreSQL 18 that requires scram-sha-256 over TCP; every stdout, stderr and file written is scanned for
the password as is, URL-encoded and base64 (tests/faultkit/secrets.py)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from faultparts import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))


def run(args: argparse.Namespace) -> list[Figure]:
    import psycopg
    from faultkit.fuzz import TARGET_SCHEMA
    from faultkit.secrets import Scan, commands, create_role, failing_commands, failing_ways, run_and_scan, ways

    from dbtune.db.local_server import LocalServer, embedded_bindir

    server = LocalServer.create(embedded_bindir())
    server.init({"shared_preload_libraries": "'pg_stat_statements'"})
    server.start()
    scan = Scan()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE secrets")
        with psycopg.connect(server.dsn("secrets"), autocommit=True) as conn:
            conn.execute(TARGET_SCHEMA)  # type: ignore[arg-type]
        create_role(server, "secrets")
        work = Path(tempfile.mkdtemp(prefix="dbtune-secrets-"))
        for way in ways(server, "secrets", work / "auth"):
            run_and_scan(way, commands(way, full=True), work / "run", scan)
        for way in failing_ways(server, "secrets"):
            run_and_scan(way, failing_commands(way), work / "run", scan)
    finally:
        server.destroy()
    for where, form in scan.leaks:
        print(f"secrets: leaked ({form}) in {where}", file=sys.stderr)
    return [
        Figure("secrets", "commands run", scan.commands, "", "> 0", scan.commands > 0),
        Figure("secrets", "files scanned", scan.files, "", "> 0", scan.files > 0),
        Figure("secrets", "bytes scanned", scan.bytes, "bytes", "> 0", scan.bytes > 0),
        Figure("secrets", "leaked secrets", len(scan.leaks), "", "0", not scan.leaks),
    ]
