#!/usr/bin/env python
"""How long ``dbtune audit`` takes on a real schema: MusicBrainz's (369 tables, 908 indexes, 770 foreign keys).

Starts a throwaway PostgreSQL 18 (the embedded wheel), loads ``../shared/data/musicbrainz`` as its
SOURCE.md says (on a server without ICU the ``musicbrainz`` collation is made from libc's "C"), runs
ANALYZE, then audits it ``--runs`` times through the real CLI (``dbtune audit --format json
--fail-on never``, the wall time including the interpreter's start) and prints the median and best wall
time, the statements sent and the findings. Target: under 3 s.

    python benchmarks/audit_real.py            # 3 runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dbtune.db.local_server import LocalServer, ServerStartError, embedded_bindir

SHARED = Path(os.environ.get("DBTUNE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MUSICBRAINZ = SHARED / "data" / "musicbrainz"
FILES = ("Extensions", "CreateCollations", "CreateTypes", "CreateTables", "CreatePrimaryKeys",
         "CreateSearchConfiguration", "CreateFunctions", "CreateIndexes", "CreateFKConstraints",
         "CreateConstraints", "SetSequences", "CreateViews", "InsertDefaultRows")


def load(server: LocalServer, dbname: str) -> None:
    """Create ``dbname`` and load MusicBrainz's core schema into it (schema ``musicbrainz``)."""
    import psycopg

    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {dbname}")  # type: ignore[arg-type]
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        conn.execute("CREATE SCHEMA musicbrainz")
        conn.execute(f"ALTER DATABASE {dbname} SET search_path = musicbrainz, public")  # type: ignore[arg-type]
    for name in FILES:
        try:
            server.psql_file(dbname, MUSICBRAINZ / f"{name}.sql")
        except ServerStartError as e:
            if name != "CreateCollations" or "ICU is not supported" not in str(e):
                raise
            with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
                conn.execute('CREATE COLLATION musicbrainz.musicbrainz FROM "C"')
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        conn.execute("ANALYZE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="audits (default 3)")
    args = parser.parse_args(argv)
    server = LocalServer.create(embedded_bindir())
    server.init({"shared_preload_libraries": "'pg_stat_statements'"})
    server.start()
    try:
        started = time.perf_counter()
        load(server, "musicbrainz")
        print(f"loaded MusicBrainz in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTUNE_")) and k != "DATABASE_URL"}
        seconds: list[float] = []
        report: dict[str, object] = {}
        with tempfile.TemporaryDirectory() as cwd:
            for _ in range(args.runs):
                t0 = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "dbtune", "audit", "--dsn", server.dsn("musicbrainz"),
                                       "--format", "json", "--fail-on", "never"],
                                      capture_output=True, text=True, cwd=cwd, env=env, check=False)
                seconds.append(time.perf_counter() - t0)
                if proc.returncode != 0:
                    raise SystemExit(f"dbtune audit exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
                report = json.loads(proc.stdout)
        findings = report["findings"]
        print(f"dbtune audit, MusicBrainz schema: {statistics.median(seconds):.2f} s median wall through the CLI "
              f"(best {min(seconds):.2f} s, {args.runs} runs), {report['statements_sent']} statements, "
              f"{len(findings)} findings")  # type: ignore[arg-type]
    finally:
        server.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
