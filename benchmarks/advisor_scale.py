#!/usr/bin/env python
"""How the index advisor's what-if calls and wall time grow with the workload (issue 7): 20, 60 and 200
distinct statements on pagila's five tables (``tests/pagila_workload.py``), without validation.

Starts a throwaway PostgreSQL (Debian's 15 with hypopg where installed, else the embedded 18, which ranks
by pg_stats; ``--server`` picks), loads pagila from ``../shared/data/pagila`` with that server's psql, then
runs :func:`dbtune.advisor.api.advise` once per size and prints a table: statements, candidates, what-if
calls, the bound the tests hold pagila to (6 × (statements + candidates)), indexes recommended and the
advisor's wall time (s). The server is destroyed at the end.

    python benchmarks/advisor_scale.py                 # 20, 60, 200 statements: about a minute with hypopg
    python benchmarks/advisor_scale.py --sizes 20,60 --server pg18

Exit status: 0; 2 when the requested server or the shared data is missing.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
warnings.filterwarnings("ignore", module="platformdirs")

import psycopg  # noqa: E402
from pagila_workload import pagila_statements  # noqa: E402
from tabulate import tabulate  # noqa: E402

from dbtune.advisor.api import AdviseOptions, advise  # noqa: E402
from dbtune.config.model import Config  # noqa: E402
from dbtune.db.connect import ConnectionSettings  # noqa: E402
from dbtune.db.local_server import LocalServer, embedded_bindir, system_bindir  # noqa: E402
from dbtune.workload.sqlfile import parse_script  # noqa: E402

PAGILA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pagila"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20,60,200", help="statement counts, comma-separated (at most 212)")
    parser.add_argument("--server", choices=("pg15", "pg18"), default=None,
                        help="pg15 (hypopg) or pg18 (pg_stats); default: pg15 where installed")
    args = parser.parse_args()
    bindir = system_bindir(15) if args.server != "pg18" else None
    if args.server == "pg15" and bindir is None:
        print("error: PostgreSQL 15 is not installed (apt-get install postgresql-15 postgresql-15-hypopg)",
              file=sys.stderr)
        return 2
    if not PAGILA.is_dir():
        print(f"error: the shared pagila data is absent ({PAGILA})", file=sys.stderr)
        return 2
    server = LocalServer.create(bindir or embedded_bindir())
    rows = []
    try:
        server.init()
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE pagila")
        for name in ("pagila-schema.sql", "pagila-data.sql"):
            server.psql_file("pagila", PAGILA / name)
        with psycopg.connect(server.dsn("pagila"), autocommit=True) as conn:
            if bindir is not None:
                conn.execute("CREATE EXTENSION hypopg")
            conn.execute("ANALYZE")
            conn.execute("SELECT pg_catalog.pg_stat_reset()")
        settings = ConnectionSettings(dsn=server.dsn("pagila"))
        for size in (int(s) for s in args.sizes.split(",")):
            queries, _, _ = parse_script(pagila_statements(size), "pagila.sql")
            started = time.perf_counter()
            advice = advise(settings, Config(), queries, AdviseOptions())
            wall = time.perf_counter() - started
            rows.append([size, advice.candidates, advice.whatif_calls, 6 * (advice.queries + advice.candidates),
                         len(advice.recommendations), f"{wall:.1f}"])
            print(f"{size} statements: {advice.whatif_calls} calls, {wall:.1f} s ({advice.engine})",
                  file=sys.stderr, flush=True)
    finally:
        server.destroy()
    print(tabulate(rows, headers=["statements", "candidates", "what-if calls", "6 x (q + c)", "recommended",
                                  "wall (s)"], tablefmt="github"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
