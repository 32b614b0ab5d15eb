#!/usr/bin/env python
"""Wall time of ``dbtune explain`` on a 1,000-statement workload.

Starts a throwaway PostgreSQL 18 (the embedded wheel), creates the Join Order Benchmark schema (``public``)
and the TPC-H schema (``tpch``, with TPC-H Q15's view), both empty, and writes a workload file of
``--statements`` statements (1,000 by default): the 113 JOB queries and the 22 TPC-H queries (qgen markers
as ``$n``, so they get generic plans) repeated in order. Then it measures

- **CLI**: ``dbtune explain --workload FILE --format json`` as a subprocess (interpreter start, imports,
  reading and grouping the file by fingerprint, one EXPLAIN per distinct statement, plan checks, JSON);
- **API, every statement**: :func:`dbtune.plans.collect_plans` over all the statements, ungrouped: one
  EXPLAIN each, plus the plan checks.

    python benchmarks/explain_workload.py
    python benchmarks/explain_workload.py --statements 2000 --json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore", module="platformdirs")

import psycopg  # noqa: E402
from workload_parse import DATA, workload  # noqa: E402

from dbtune.checks import load_catalogue  # noqa: E402
from dbtune.config.model import Config  # noqa: E402
from dbtune.db.connect import resolve  # noqa: E402
from dbtune.db.local_server import LocalServer, embedded_bindir  # noqa: E402
from dbtune.plans import PlanQuery, collect_plans, run_plan_checks  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    _, distinct = workload()
    statements = [distinct[i % len(distinct)] for i in range(args.statements)]
    server = LocalServer.create(embedded_bindir())
    try:
        server.init()
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        q15 = next(s for s in _tpch_views())
        with psycopg.connect(server.dsn("bench"), autocommit=True) as conn:
            conn.execute((DATA / "job" / "schema.sql").read_text())  # type: ignore[arg-type]
            conn.execute("CREATE SCHEMA tpch; SET search_path = tpch")
            conn.execute((DATA / "tpch" / "tpch-create.sql").read_text())  # type: ignore[arg-type]
            conn.execute(q15)  # type: ignore[arg-type]
            conn.execute("ALTER DATABASE bench SET search_path = public, tpch")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "workload.sql"
            path.write_text("".join(f"{s};\n" for s in statements))
            started = time.perf_counter()
            run = subprocess.run(["dbtune", "explain", "--dsn", server.dsn("bench"), "--workload", str(path),
                                  "--format", "json"], capture_output=True, text=True)
            cli_s = time.perf_counter() - started
        if run.returncode not in (0, 1):
            print(run.stderr, file=sys.stderr)
            return 1
        explained = json.loads(run.stdout)["queries"]
        cli_errors = sum(1 for q in explained if q.get("error"))
        catalogue = load_catalogue()
        started = time.perf_counter()
        collection = collect_plans(resolve(server.dsn("bench")), [PlanQuery(s) for s in statements])
        checked = run_plan_checks(catalogue, list(collection.queries), Config())
        api_s = time.perf_counter() - started
        api_errors = sum(1 for q in collection.queries if q.error)
    finally:
        server.destroy()
    rows = [
        ["dbtune explain (CLI, grouped by fingerprint)", args.statements, len(explained), cli_errors,
         round(cli_s, 2), round(len(explained) / cli_s, 1)],
        ["collect_plans + plan checks (API, every statement)", args.statements, len(collection.queries),
         api_errors, round(api_s, 2), round(len(collection.queries) / api_s, 1)],
    ]
    if args.json:
        print(json.dumps({"statements": args.statements, "cli_s": cli_s, "cli_explained": len(explained),
                          "api_s": api_s, "api_explained": len(collection.queries),
                          "findings": len(checked.findings)}))
    else:
        print(tabulate(rows, headers=["what", "statements", "explained", "errors", "wall (s)", "plans/s"]))
    return 0


def _tpch_views() -> list[str]:
    from workload_parse import split_script, tpch_script

    found, _ = split_script(tpch_script(15), "tpch/15.sql")
    return [s.text for s in found if s.text.lower().startswith("create view")]


if __name__ == "__main__":
    sys.exit(main())
