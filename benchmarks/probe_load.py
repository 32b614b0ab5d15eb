#!/usr/bin/env python
"""``dbtune probe load``'s own runner against pgbench, on the same statements and clients, in one run.

Starts a throwaway PostgreSQL 18 (the embedded wheel), loads ``--rows`` rows (100,000 by default) into::

    CREATE TABLE items (id int PRIMARY KEY, code text, qty int NOT NULL);

and runs the mix of three statements whose parameters are numbers (so pgbench fits them)::

    SELECT qty FROM items WHERE id = $1                    -- by-id
    SELECT count(*) FROM items WHERE id BETWEEN $1 AND $2   -- range of 50
    UPDATE items SET qty = qty + 1 WHERE id = $1            -- bump, rolled back

with both engines of :func:`dbtune.probe.load.run_load`, each ``--clients`` sessions for ``--duration``
seconds, alternating ``--passes`` times (pgbench first, then dbtune's runner), and prints each pass's
throughput and p50/p99 and the ratio of the medians, runner / pgbench (target: at least 80 %). Both share
the machine with the server (2 cores here), as an application's driver does.

    python benchmarks/probe_load.py                    # 4 clients x 5 s, 3 passes
    python benchmarks/probe_load.py --clients 8 --duration 10 --passes 5

Exit status: 0, or 1 when the ratio is below 80 %.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import psycopg

from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer, embedded_bindir
from dbtune.probe.load import Engine, LoadOptions, run_load
from dbtune.workload.load import parse_workload

WORKLOAD = """
-- name: by-id
SELECT qty FROM items WHERE id = $1;
-- name: range
SELECT count(*) FROM items WHERE id BETWEEN $1 AND $2;
-- params: SELECT id, id + 50 FROM items ORDER BY random() LIMIT 100
-- name: bump
UPDATE items SET qty = qty + 1 WHERE id = $1;
"""
TARGET = 0.8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    server = LocalServer.create(embedded_bindir())
    try:
        server.init({"shared_buffers": "'128MB'"})
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE items (id int PRIMARY KEY, code text, qty int NOT NULL)")
            conn.execute("INSERT INTO items SELECT g, md5(g::text), 0 FROM generate_series(1, %s) g", (args.rows,))
            conn.execute("VACUUM ANALYZE items")
        settings = resolve(server.dsn())
        workload = parse_workload(WORKLOAD)
        tps: dict[Engine, list[float]] = {Engine.PGBENCH: [], Engine.RUNNER: []}
        print(f"{args.clients} clients x {args.duration} s, {len(workload)} statements, {args.rows:,} rows")
        print(f"{'pass':>4}  {'engine':<8} {'tps':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for n in range(1, args.passes + 1):
            for engine in (Engine.PGBENCH, Engine.RUNNER):
                r = run_load(settings, workload, LoadOptions(clients=args.clients, duration_s=args.duration,
                                                             allow_writes=True, engine=engine))
                tps[engine].append(r.tps)
                print(f"{n:>4}  {engine.value:<8} {r.tps:>10,.0f} {r.p50_ms:>8.3f} {r.p99_ms:>8.3f}"
                      + (f"  ({r.errors} errors)" if r.errors else ""))
        ratio = statistics.median(tps[Engine.RUNNER]) / statistics.median(tps[Engine.PGBENCH])
        print(f"median tps: pgbench {statistics.median(tps[Engine.PGBENCH]):,.0f}, dbtune "
              f"{statistics.median(tps[Engine.RUNNER]):,.0f}; ratio {ratio:.0%} (target {TARGET:.0%})")
        return 0 if ratio >= TARGET else 1
    finally:
        server.destroy()


if __name__ == "__main__":
    sys.exit(main())
