#!/usr/bin/env python
"""How ``dbtune audit`` scales with the size of the catalog.

Starts a throwaway PostgreSQL 18 (the embedded wheel), builds a LARGE catalog (``--tables`` tables, five
indexes and one foreign key each: 2,000 tables, 10,000 indexes, 2,000 foreign keys by default) and a
SMALL one (``--small-tables``, 20 by default) in two databases, then audits each ``--runs`` times

- through the real CLI, ``dbtune audit --dsn ... --format json --fail-on never``, as a subprocess (the
  wall time includes the interpreter's start and the imports), and
- through the Python API, :func:`dbtune.audit.audit`, in this process.

It reports the wall times (median and best of the runs), the statements the audit sent
(``Report.statements_sent``, the JSON's ``statements_sent``), the findings, and an independent count
from ``pg_stat_statements`` (preloaded on the test server; reset before each audit, then read from
another database): the audit's catalog queries (SELECT) and, separately, its session statements (BEGIN,
SET LOCAL, SAVEPOINT, RELEASE, ROLLBACK). The statement count must be the same for both catalogs.

Each table of the large catalog looks like this (``tNNNNN`` references ``t(N // 2)``, t00000 itself)::

    CREATE TABLE t00007 (id bigint PRIMARY KEY, parent_id bigint REFERENCES t00003 (id),
                         a int, b int, c int, s text);
    CREATE INDEX t00007_a ON t00007 (a);                     -- redundant: a prefix of (a, b)
    CREATE INDEX t00007_a_b ON t00007 (a, b);
    CREATE INDEX t00007_c_pos ON t00007 (c) WHERE c > 0;     -- partial
    -- and one of: (parent_id) on 3 tables in 4 (the foreign key's index), a duplicate of (a, b) on
    -- 1 in 8, (b, c) on 1 in 8 (those two leave the foreign key without an index)

The audit runs with ``[checks.unused-index] min_stats_age_days = 0`` so that every check runs, as on a
server whose statistics are older than a week (``--default-config`` audits with the defaults instead, which
skip that check on a fresh server). ``--breakdown`` adds a one-off split of an API audit into the catalog
snapshot and each check.

    python benchmarks/audit_scale.py                 # 2,000 tables, 3 runs
    python benchmarks/audit_scale.py --tables 500 --runs 5 --json

Exit status: 0, or 1 when the statement counts of the large and small catalogs differ.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from tabulate import tabulate

from dbtune.audit import audit
from dbtune.catalog.snapshot import take
from dbtune.checks import load_catalogue, run_checks
from dbtune.config import load_config
from dbtune.db.connect import read_only_snapshot, resolve
from dbtune.db.local_server import LocalServer, embedded_bindir

TABLES_PER_BATCH = 100
CONFIG_TOML = """\
# Written by benchmarks/audit_scale.py: let unused-index run on a server started seconds ago.
[checks.unused-index]
min_stats_age_days = 0
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the catalog -------------------------------------------------------------------------------------

def table_ddl(i: int) -> list[str]:
    """The statements that create table ``i``: the table with its primary key and foreign key, and four
    secondary indexes."""
    t, parent = f"t{i:05d}", f"t{i // 2:05d}"
    stmts = [
        f"CREATE TABLE {t} (id bigint PRIMARY KEY, parent_id bigint REFERENCES {parent} (id), "
        f"a int, b int, c int, s text)",
        f"CREATE INDEX {t}_a ON {t} (a)",
        f"CREATE INDEX {t}_a_b ON {t} (a, b)",
        f"CREATE INDEX {t}_c_pos ON {t} (c) WHERE c > 0",
    ]
    if i % 4 != 3:
        stmts.append(f"CREATE INDEX {t}_parent ON {t} (parent_id)")
    elif i % 8 == 3:
        stmts.append(f"CREATE INDEX {t}_a_b_dup ON {t} (a, b)")
    else:
        stmts.append(f"CREATE INDEX {t}_b_c ON {t} (b, c)")
    return stmts


def expected_findings(n: int) -> dict[str, int]:
    """What the catalog plants, per check id (other checks may add server-level findings)."""
    odd = [i for i in range(n) if i % 4 == 3]
    return {"IX001": len(odd), "IX002": sum(1 for i in odd if i % 8 == 3), "IX003": n}


def build_catalog(dsn: str, n: int) -> tuple[float, dict[str, int]]:
    """Create ``n`` tables in batches of :data:`TABLES_PER_BATCH`, each batch one multi-statement string
    (one round trip, one implicit transaction). Returns the seconds taken and the catalog's counts."""
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for lo in range(0, n, TABLES_PER_BATCH):
            batch = [s for i in range(lo, min(n, lo + TABLES_PER_BATCH)) for s in table_ddl(i)]
            conn.execute(";\n".join(batch))  # type: ignore[arg-type]  # no parameters: simple protocol
        conn.execute("ANALYZE")
        row = conn.execute("""
            SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relkind = 'r'),
                   (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
                    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'),
                   (SELECT count(*) FROM pg_constraint WHERE contype = 'f')""").fetchone()
    assert row is not None
    return time.perf_counter() - started, {"tables": row[0], "indexes": row[1], "foreign_keys": row[2]}


# --- pg_stat_statements cross-check -------------------------------------------------------------------

_LEADING_COMMENTS = re.compile(r"^(\s*--[^\n]*\n|\s*/\*.*?\*/)*\s*", re.S)


def _first_word(query: str) -> str:
    rest = _LEADING_COMMENTS.sub("", query, count=1)
    return (rest.split(None, 1) or [""])[0].upper()


class StatementCounter:
    """Counts, with pg_stat_statements, what one database received between :meth:`reset` and
    :meth:`count`. Its own statements run in the ``postgres`` database, so they are never counted."""

    def __init__(self, server: LocalServer) -> None:
        self.conn = psycopg.connect(server.dsn("postgres"), autocommit=True)
        self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def reset(self) -> None:
        self.conn.execute("SELECT pg_stat_statements_reset()")

    def count(self, dbname: str) -> dict[str, int]:
        rows = self.conn.execute(
            "SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = %s", (dbname,)).fetchall()
        out = Counter({"catalog": 0, "session": 0})
        for query, calls in rows:
            out["catalog" if _first_word(query) in ("SELECT", "WITH") else "session"] += calls
        return dict(out)

    def close(self) -> None:
        self.conn.close()


# --- measurements -------------------------------------------------------------------------------------

@dataclass
class Run:
    mode: str  # "cli" or "api"
    seconds: float
    cpu_seconds: float  # the auditing process's own CPU time (user + system), whatever else loads the machine
    statements_sent: int
    findings: int
    by_check: dict[str, int]
    pgss: dict[str, int]


@dataclass
class Catalog:
    label: str
    dbname: str
    size: dict[str, int]
    build_seconds: float
    runs: list[Run] = field(default_factory=list)

    def of(self, mode: str) -> list[Run]:
        return [r for r in self.runs if r.mode == mode]


def dbtune_command() -> list[str]:
    """The ``dbtune`` script of this interpreter's environment (the code being measured), else ``python -m
    dbtune``; never another ``dbtune`` on PATH (a global install of another checkout, a pyenv shim)."""
    exe = Path(sys.executable).parent / "dbtune"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "dbtune"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(dsn: str, config_args: list[str], cwd: Path) -> tuple[float, float, dict[str, object]]:
    env = {k: v for k, v in os.environ.items() if k not in ("DBTUNE_CONFIG", "DATABASE_URL", "NO_COLOR")}
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run([*dbtune_command(), "audit", "--dsn", dsn, "--format", "json", "--fail-on", "never",
                           *config_args], capture_output=True, text=True, cwd=cwd, env=env, check=False)
    seconds = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"dbtune audit exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return seconds, cpu, json.loads(proc.stdout)


def measure(server: LocalServer, catalog: Catalog, runs: int, config_path: Path | None, cwd: Path,
            counter: StatementCounter) -> None:
    dsn = server.dsn(catalog.dbname)
    config, cfg_path = load_config(config_path, search=False)
    config_args = ["--config", str(config_path)] if config_path else []
    for k in range(runs):
        counter.reset()
        seconds, cpu, report = run_cli(dsn, config_args, cwd)
        findings = report["findings"]  # type: ignore[assignment]
        catalog.runs.append(Run("cli", seconds, cpu, int(report["statements_sent"]),  # type: ignore[arg-type]
                                len(findings), dict(Counter(f["check_id"] for f in findings)),
                                counter.count(catalog.dbname)))
        counter.reset()
        cpu = time.process_time()
        started = time.perf_counter()
        rep = audit(resolve(dsn), config, config_path=cfg_path)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        catalog.runs.append(Run("api", seconds, cpu, rep.statements_sent, len(rep.findings),
                                dict(Counter(f.check_id for f in rep.findings)),
                                counter.count(catalog.dbname)))
        log(f"  {catalog.label} run {k + 1}/{runs}: cli {catalog.runs[-2].seconds:.2f} s, "
            f"api {seconds:.2f} s, {rep.statements_sent} statements, {len(rep.findings)} findings")


def breakdown(dsn: str, config_path: Path | None) -> list[tuple[str, float, int]]:
    """One API audit split into its parts: catalogue load, snapshot (SQL), then each check alone."""
    config, _ = load_config(config_path, search=False)
    out = []
    started = time.perf_counter()
    catalogue = load_catalogue(config.audit.checks_paths)
    out.append(("load catalogue", time.perf_counter() - started, len(catalogue)))
    started = time.perf_counter()
    with read_only_snapshot(resolve(dsn)) as conn:
        snap = take(conn)
    out.append(("snapshot (catalog SQL)", time.perf_counter() - started, snap.statements_sent))
    for check in catalogue:
        started = time.perf_counter()
        result = run_checks(catalogue, snap, config, select=[check.meta.id])
        seconds = time.perf_counter() - started
        out.append((f"{check.meta.id} {check.meta.name}", seconds, len(result.findings)))
    return out


# --- output -------------------------------------------------------------------------------------------

def _times(runs: list[Run]) -> dict[str, float]:
    s = [r.seconds for r in runs]
    return {"median_s": round(statistics.median(s), 3), "best_s": round(min(s), 3),
            "worst_s": round(max(s), 3),
            "cpu_median_s": round(statistics.median(r.cpu_seconds for r in runs), 3)}


def _one(values: Iterator[object] | list[object]) -> object:
    distinct = sorted(set(values), key=str)  # type: ignore[arg-type]
    return distinct[0] if len(distinct) == 1 else distinct


def summary(catalogs: list[Catalog], breakdown_rows: list[tuple[str, float, int]] | None,
            args: argparse.Namespace) -> dict[str, object]:
    out: dict[str, object] = {"runs": args.runs, "config": "defaults" if args.default_config
                              else "unused-index min_stats_age_days = 0", "cpus": os.cpu_count(),
                              "load_average_1min": round(os.getloadavg()[0], 2)}
    for c in catalogs:
        cli, api = c.of("cli"), c.of("api")
        out[c.label] = {
            **c.size, "build_s": round(c.build_seconds, 2),
            "cli": _times(cli), "api": _times(api),
            "statements_sent": _one([r.statements_sent for r in c.runs]),
            "pg_stat_statements": _one([json.dumps(r.pgss, sort_keys=True) for r in c.runs]),
            "findings": _one([r.findings for r in c.runs]),
            "findings_by_check": c.runs[-1].by_check,
        }
        pgss = out[c.label]["pg_stat_statements"]  # type: ignore[index]
        if isinstance(pgss, str):
            out[c.label]["pg_stat_statements"] = json.loads(pgss)  # type: ignore[index]
    if breakdown_rows is not None:
        out["breakdown"] = [{"part": p, "seconds": round(s, 4), "count": n} for p, s, n in breakdown_rows]
    return out


def print_tables(catalogs: list[Catalog], data: dict[str, object],
                 breakdown_rows: list[tuple[str, float, int]] | None) -> None:
    headers = ["", *(f"{c.label} ({c.size['tables']:,} tables)" for c in catalogs)]
    rows: list[list[object]] = []

    def row(label: str, fn) -> None:  # type: ignore[no-untyped-def]
        rows.append([label, *(fn(c, data[c.label]) for c in catalogs)])

    row("tables / indexes / foreign keys",
        lambda c, d: f"{d['tables']:,} / {d['indexes']:,} / {d['foreign_keys']:,}")
    row("catalog build (s)", lambda c, d: f"{d['build_s']:.2f}")
    row("CLI wall, median (best) (s)", lambda c, d: f"{d['cli']['median_s']:.2f} ({d['cli']['best_s']:.2f})")
    row("API wall, median (best) (s)", lambda c, d: f"{d['api']['median_s']:.2f} ({d['api']['best_s']:.2f})")
    row("CLI process CPU, median (s)", lambda c, d: f"{d['cli']['cpu_median_s']:.2f}")
    row("API client CPU, median (s)", lambda c, d: f"{d['api']['cpu_median_s']:.2f}")
    row("statements_sent (Report / JSON)", lambda c, d: d["statements_sent"])
    row("pg_stat_statements: catalog SELECTs", lambda c, d: _pgss(d, "catalog"))
    row("pg_stat_statements: session statements", lambda c, d: _pgss(d, "session"))
    row("findings", lambda c, d: d["findings"])
    row("findings by check",
        lambda c, d: ", ".join(f"{k} {v}" for k, v in sorted(d["findings_by_check"].items())))
    print(tabulate(rows, headers=headers, tablefmt="github"))
    print(f"\n{data['runs']} run(s) of each; config: {data['config']}; {data['cpus']} CPU(s), "
          f"load average {data['load_average_1min']} at the end (wall times grow with other load, CPU times "
          f"much less)")
    if breakdown_rows is not None:
        print()
        print(tabulate([[p, f"{s * 1000:.1f}", n] for p, s, n in breakdown_rows],
                       headers=[f"API audit, {catalogs[0].label} catalog", "ms", "statements / findings"],
                       tablefmt="github"))


def _pgss(d: dict[str, object], key: str) -> object:
    p = d["pg_stat_statements"]
    return p.get(key) if isinstance(p, dict) else [json.loads(x).get(key) for x in p]  # type: ignore[union-attr]


# --- main ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=2000,
                        help="tables in the large catalog (default 2000)")
    parser.add_argument("--small-tables", type=int, default=20,
                        help="tables in the small catalog (default 20)")
    parser.add_argument("--runs", type=int, default=3, help="audits per catalog and mode (default 3)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    parser.add_argument("--default-config", action="store_true",
                        help="audit with the default config (unused-index is then skipped on a fresh server)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time the snapshot and each check of one API audit of the large catalog")
    args = parser.parse_args(argv)
    if args.tables < 1 or args.small_tables < 1 or args.runs < 1:
        parser.error("--tables, --small-tables and --runs must be at least 1")

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="dbtune-bench-"))
    config_path = None
    if not args.default_config:
        config_path = workdir / "dbtune.toml"
        config_path.write_text(CONFIG_TOML)
    log("starting PostgreSQL 18 (embedded)")
    server = LocalServer.create(embedded_bindir())
    counter: StatementCounter | None = None
    try:
        server.init({"shared_preload_libraries": "'pg_stat_statements'", "max_locks_per_transaction": "256"})
        server.start()
        catalogs: list[Catalog] = []
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
            for dbname in ("bench_large", "bench_small"):
                conn.execute(f"CREATE DATABASE {dbname}")  # type: ignore[arg-type]
        counter = StatementCounter(server)
        for label, dbname, n in (("large", "bench_large", args.tables),
                                 ("small", "bench_small", args.small_tables)):
            log(f"building the {label} catalog ({n:,} tables)")
            seconds, size = build_catalog(server.dsn(dbname), n)
            log(f"  {size['tables']:,} tables, {size['indexes']:,} indexes, "
                f"{size['foreign_keys']:,} foreign keys in {seconds:.2f} s")
            catalogs.append(Catalog(label, dbname, size, seconds))
        for catalog in catalogs:
            log(f"auditing the {catalog.label} catalog ({args.runs} run(s) through the CLI and the API)")
            measure(server, catalog, args.runs, config_path, workdir, counter)
        rows = breakdown(server.dsn(catalogs[0].dbname), config_path) if args.breakdown else None
    finally:
        if counter is not None:
            counter.close()
        server.destroy()
        shutil.rmtree(workdir, ignore_errors=True)

    data = summary(catalogs, rows, args)
    data["total_s"] = round(time.perf_counter() - started, 2)
    large, small = data["large"], data["small"]
    same = (large["statements_sent"] == small["statements_sent"]  # type: ignore[index]
            and large["pg_stat_statements"] == small["pg_stat_statements"])  # type: ignore[index]
    data["statement_count_independent_of_size"] = same
    planted = expected_findings(args.tables)
    data["planted_findings_found"] = all(
        large["findings_by_check"].get(k) == v for k, v in planted.items())  # type: ignore[index]
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print_tables(catalogs, data, rows)
        print(f"statement count independent of catalog size: {'yes' if same else 'NO'}; "
              f"planted findings {planted} found: {'yes' if data['planted_findings_found'] else 'NO'}; "
              f"total {data['total_s']:.1f} s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
