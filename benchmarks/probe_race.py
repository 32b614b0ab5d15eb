#!/usr/bin/env python
"""How long ``dbtune probe race`` takes: 16 sessions × 200 rounds (the defaults) on the guide's schema
(sample_configs/guide/schema.sql, no data: the probe races on an empty scratch copy either way), once
without and once with the guide's partial unique index ``unique_routing_acceptance``. Target: each run
under 30 s on 2 cores.

Starts a throwaway PostgreSQL 18 (the embedded wheel) and calls :func:`dbtune.probe.race.run_race`, as
``dbtune probe race --yes`` does; prints, for each run, the rounds' wall time (``elapsed``: from the first
round's barrier to the last round's end), the whole probe's (``total``: with the scratch copy, the
sessions' connections and the drop), the win rate and the winners per round.

    python benchmarks/probe_race.py
    python benchmarks/probe_race.py --sessions 16 --rounds 200 --json

Exit status: 0, or 1 when a run takes 30 s or more, or the win rate is not below 100 % without the index
and 100 % with it.
"""

from __future__ import annotations

import argparse
import json
import sys

import psycopg
from tabulate import tabulate

from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer, embedded_bindir
from dbtune.probe.race import RaceOptions, run_race
from dbtune.samples import guide_file

TARGET_S = 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    server = LocalServer.create(embedded_bindir())
    try:
        server.init()
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE guide")
        with psycopg.connect(server.dsn("guide"), autocommit=True) as conn:
            conn.execute(guide_file("schema.sql").read_text())  # type: ignore[arg-type]
        settings = resolve(server.dsn("guide"))
        options = RaceOptions(sessions=args.sessions, rounds=args.rounds)
        rows = []
        for label, ddl in (("without the partial unique index", None),
                           ("with unique_routing_acceptance", "CREATE UNIQUE INDEX unique_routing_acceptance ON "
                            "vendor_routing_responses (routing_id) WHERE response = 'ACCEPTED'")):
            if ddl:
                with psycopg.connect(server.dsn("guide"), autocommit=True) as conn:
                    conn.execute(ddl)  # type: ignore[arg-type]
            result = run_race(settings, options, yes=True)
            rows.append({"run": label, "sessions": result.sessions, "rounds": result.rounds,
                         "elapsed_s": round(result.elapsed_s, 2), "total_s": round(result.total_s, 2),
                         "win_rate_pct": round(result.win_rate_pct, 2), "rounds_0": result.zero,
                         "rounds_1": result.one, "rounds_many": result.many})
    finally:
        server.destroy()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(tabulate(rows, headers="keys"))
    ok = (all(r["total_s"] < TARGET_S for r in rows) and rows[0]["win_rate_pct"] < 100
          and rows[1]["win_rate_pct"] == 100)
    print(f"target: each run under {TARGET_S:.0f} s, win rate below 100 % without the index and 100 % with it: "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
