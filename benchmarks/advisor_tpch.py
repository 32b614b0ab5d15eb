#!/usr/bin/env python
"""TPC-H side by side: primary keys only, the peers' index sets, and dbtune's advisor at three budgets.

Issue 7, "Speed and quality". On PostgreSQL 15 with hypopg (Debian's binaries, through
:class:`~dbtune.db.local_server.LocalServer`), TPC-H at ``--sf`` (default 1) generated offline by DuckDB's
dbgen and loaded by :mod:`tpch_data` into a data directory that is kept (``--data-dir``), so a second run
starts in seconds. The workload is the 22 texts of DuckDB's ``tpch_queries()``, unchanged.

Configurations, in one run (``--only`` picks some):

- ``pk``: primary keys only (the baseline every ratio is against);
- ``dexter``, ``index_advisor``: the peers' sets, the exact statements of
  ``../shared/reference/advisor-peers-tpch.md``, built for real, measured, dropped;
- ``dbtune-0.25``, ``dbtune-0.5``, ``dbtune-1``: :func:`dbtune.advisor.api.advise` with a budget of that
  fraction of the heap (bytes, the tables' main forks). Each gives two rows: the advisor's choice without
  validation (its what-if calls and wall time are the advisor's own cost), and its validated choice
  (``validate=True``: built, measured on the server, what did not help dropped). Each choice is then built
  here for real and measured like the peers'. Without ``dbtune.advisor.api`` (the advisor not merged yet)
  these rows say so and the others still run.

For each: index count and real size (``pg_relation_size`` of the built indexes), planner cost (the top
node's total cost from ``EXPLAIN``, with the indexes built) relative to primary keys only over all 22 and
without Q20 (Q20 is nearly all of the baseline's cost), what-if calls and advisor wall time, and the
measured runtime of the 22 queries: each run once per pass in order with ``statement_timeout``
(``--timeout``, 300 s), a timeout counted as the timeout, a query that timed out not run again in the same
configuration's later passes; per query the median of ``--passes`` (3) passes; the total is their sum.
Also each query's ratio to primary keys only (the issue's bar: none more than 10 % slower).

Prints a markdown table and the per-query times on stdout (progress on stderr) and writes everything as
JSON to ``--output``.

    pip install -e '.[bench]'
    python benchmarks/advisor_tpch.py                                  # SF1, every configuration
    python benchmarks/advisor_tpch.py --sf 0.05 --passes 1 --only pk,dexter,dbtune-0.5 --timeout 60

Exit status: 0; 2 for bad flags, missing duckdb/PostgreSQL 15/hypopg (the message says what to install);
3 when the server cannot be started.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore", module="platformdirs")

import psycopg  # noqa: E402
from psycopg import errors as pg_errors  # noqa: E402
from tabulate import tabulate  # noqa: E402
from tpch_data import TpchDatabase, heap_bytes, open_tpch, tpch_queries  # noqa: E402

from dbtune.config.model import Config  # noqa: E402
from dbtune.db.connect import resolve  # noqa: E402
from dbtune.db.local_server import ServerStartError  # noqa: E402
from dbtune.errors import DbtuneError, UsageError  # noqa: E402
from dbtune.escape import one_line  # noqa: E402
from dbtune.sqlnames import qualified  # noqa: E402
from dbtune.workload.model import Query  # noqa: E402
from dbtune.workload.sqlfile import parse_script  # noqa: E402

MB = 1024 * 1024
SLOWER = 1.10  # a query more than 10 % slower than with primary keys only counts as a regression
WITHOUT = 20   # the query left out of the second cost ratio

# The peers' sets, exactly as they printed them (../shared/reference/advisor-peers-tpch.md).
PEERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dexter": ("Dexter 0.4.3", (
        "CREATE INDEX ON public.lineitem (l_partkey);",
        "CREATE INDEX ON public.lineitem (l_shipmode, l_partkey);",
        "CREATE INDEX ON public.lineitem (l_suppkey);",
        "CREATE INDEX ON public.orders (o_custkey);",
        "CREATE INDEX ON public.partsupp (ps_suppkey);",
    )),
    "index_advisor": ("Supabase index_advisor", (
        "CREATE INDEX ON public.customer USING btree (c_acctbal);",
        "CREATE INDEX ON public.lineitem USING btree (l_orderkey);",
        "CREATE INDEX ON public.lineitem USING btree (l_partkey);",
        "CREATE INDEX ON public.lineitem USING btree (l_shipdate);",
        "CREATE INDEX ON public.lineitem USING btree (l_suppkey);",
        "CREATE INDEX ON public.nation USING btree (n_name);",
        "CREATE INDEX ON public.orders USING btree (o_custkey);",
        "CREATE INDEX ON public.orders USING btree (o_orderdate);",
        "CREATE INDEX ON public.part USING btree (p_brand);",
        "CREATE INDEX ON public.part USING btree (p_container);",
        "CREATE INDEX ON public.part USING btree (p_size);",
        "CREATE INDEX ON public.partsupp USING btree (ps_partkey);",
        "CREATE INDEX ON public.partsupp USING btree (ps_suppkey);",
        "CREATE INDEX ON public.supplier USING btree (s_name);",
        "CREATE INDEX ON public.supplier USING btree (s_nationkey);",
    )),
}
BUDGETS: dict[str, float] = {"dbtune-0.25": 0.25, "dbtune-0.5": 0.5, "dbtune-1": 1.0}
CONFIGURATIONS = ("pk", *PEERS, *BUDGETS)

# Secondary indexes: every index on a table of the schema that no constraint owns (the primary keys do).
SECONDARY_INDEXES = """
SELECT n.nspname, i.relname, pg_catalog.pg_get_indexdef(i.oid), pg_catalog.pg_relation_size(i.oid),
       x.indexprs IS NOT NULL, t.relname
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
WHERE n.nspname = 'public'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.oid)
ORDER BY t.relname, i.relname
"""

Progress = Callable[[str], None]


def progress(message: str) -> None:
    """A timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {one_line(message)}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class QueryTime:
    """One query's measured runtime in one configuration: each pass's seconds (a timeout counted as the
    timeout) and whether it timed out (then the later passes were not run and count the timeout too)."""

    passes: tuple[float, ...]
    timed_out: bool

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.passes))


@dataclass(frozen=True)
class Index:
    """A built secondary index: ``pg_get_indexdef`` and its real size in bytes."""

    definition: str
    bytes: int


@dataclass(frozen=True)
class Row:
    """One configuration's figures. ``cost`` is query number → planner total cost with ``indexes`` built,
    ``whatif_cost`` the same with them as hypopg's hypothetical indexes (as the reference costed the peers);
    ``times`` is None when runtime was not measured (an advisor that failed); ``error`` says why."""

    name: str
    label: str
    indexes: tuple[Index, ...] = ()
    cost: dict[int, float] = field(default_factory=dict)
    times: dict[int, QueryTime] | None = None
    whatif_cost: dict[int, float] = field(default_factory=dict)
    whatif_calls: int | None = None
    advisor_s: float | None = None
    advice: dict[str, Any] | None = None
    error: str | None = None

    @property
    def real_bytes(self) -> int:
        return sum(i.bytes for i in self.indexes)

    @property
    def total_s(self) -> float | None:
        return None if self.times is None else sum(t.median_s for t in self.times.values())


# --- the server side ---------------------------------------------------------------------------------


def secondary_indexes(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """``(schema, index, indexdef, bytes, has expressions, table)`` for each secondary index in ``public``."""
    return conn.execute(SECONDARY_INDEXES).fetchall()


def drop_secondary_indexes(conn: psycopg.Connection) -> list[str]:
    """Drop every secondary index (the primary keys stay); returns their definitions."""
    found = secondary_indexes(conn)
    for schema, name, *_ in found:
        conn.execute(f"DROP INDEX {qualified(schema, name)}")  # type: ignore[arg-type]
    return [str(r[2]) for r in found]


def build(conn: psycopg.Connection, statements: Sequence[str], say: Progress) -> tuple[Index, ...]:
    """Run ``statements`` (``CREATE INDEX …``), ``ANALYZE`` the tables that got an expression index (its
    statistics), and return every secondary index now present with its real size."""
    started = time.perf_counter()
    conn.execute("SET maintenance_work_mem = '1GB'")  # build time only; the index is the same
    for sql in statements:
        conn.execute(sql)  # type: ignore[arg-type]
    present = secondary_indexes(conn)
    for table in sorted({str(r[5]) for r in present if r[4]}):
        conn.execute(f"ANALYZE {qualified('public', table)}")  # type: ignore[arg-type]
    indexes = tuple(Index(str(r[2]), int(r[3])) for r in present)
    say(f"built {len(statements)} indexes in {time.perf_counter() - started:.1f} s: "
        f"{sum(i.bytes for i in indexes) / MB:.1f} MB")
    return indexes


def planner_costs(conn: psycopg.Connection, queries: Sequence[tuple[int, str]]) -> dict[int, float]:
    """Query number → the planner's total cost of its plan (``EXPLAIN (FORMAT JSON)``, not run)."""
    out = {}
    for number, sql in queries:
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}").fetchone()  # type: ignore[arg-type]
        assert row is not None
        plan = row[0] if isinstance(row[0], list) else json.loads(row[0])
        out[number] = float(plan[0]["Plan"]["Total Cost"])
    return out


def whatif_costs(conn: psycopg.Connection, statements: Sequence[str],
                 queries: Sequence[tuple[int, str]]) -> dict[int, float]:
    """:func:`planner_costs` with ``statements`` as hypothetical indexes (``hypopg_create_index``), all
    reset afterwards (https://hypopg.readthedocs.io/)."""
    try:
        for sql in statements:
            conn.execute("SELECT hypopg_create_index(%s)", [sql.rstrip().rstrip(";")])
        return planner_costs(conn, queries)
    finally:
        conn.execute("SELECT hypopg_reset()")


def measure(dsn: str, queries: Sequence[tuple[int, str]], passes: int, timeout_s: int,
            say: Progress) -> dict[int, QueryTime]:
    """Run the queries in order, ``passes`` times, each with ``statement_timeout = timeout_s``; seconds by
    ``time.perf_counter`` around execute and fetch. A query that times out counts ``timeout_s`` in that
    pass and every later one, and is not run again."""
    seconds: dict[int, list[float]] = {n: [] for n, _ in queries}
    timed_out: set[int] = set()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = '{int(timeout_s)}s'")  # type: ignore[arg-type]
        for p in range(passes):
            started = time.perf_counter()
            for number, sql in queries:
                if number in timed_out:
                    seconds[number].append(float(timeout_s))
                    continue
                t0 = time.perf_counter()
                try:
                    with conn.cursor() as cur:
                        cur.execute(sql)  # type: ignore[arg-type]
                        cur.fetchall()
                    seconds[number].append(time.perf_counter() - t0)
                except pg_errors.QueryCanceled:
                    timed_out.add(number)
                    seconds[number].append(float(timeout_s))
                    say(f"Q{number} timed out at {timeout_s} s")
            say(f"pass {p + 1}/{passes}: {time.perf_counter() - started:.1f} s")
    return {n: QueryTime(tuple(s), n in timed_out) for n, s in seconds.items()}


# --- dbtune's advisor ----------------------------------------------------------------------------------


def advisor_available() -> bool:
    """Whether this checkout has the advisor's API (``dbtune.advisor.api``)."""
    return importlib.util.find_spec("dbtune.advisor.api") is not None


def workload(queries: Sequence[tuple[int, str]]) -> list[Query]:
    """The 22 texts as the workload reader gives them (one script, each named ``Q<n>``)."""
    script = "".join(f"-- name: Q{n}\n{sql.strip()}\n" for n, sql in queries)
    found, errors, _ = parse_script(script, "tpch_queries()")
    if errors or len(found) != len(queries):
        raise UsageError(f"tpch_queries(): {len(found)} of {len(queries)} statements read"
                         + (f"; {errors[0]}" if errors else ""))
    return found


def run_advisor(db: TpchDatabase, queries: Sequence[Query], budget_bytes: int, validate: bool) -> tuple[Any, float]:
    """:func:`dbtune.advisor.api.advise` on the TPC-H database, as ``dbtune advise [--validate --yes]`` runs
    it by default (dbtune's own statement_timeout; validation's bench and timeout are the advisor's);
    returns the ``Advice`` and its wall time (s)."""
    from dbtune.advisor.api import AdviseOptions, advise

    options: dict[str, Any] = {"budget": budget_bytes, "validate": validate}
    if "yes" in {f.name for f in dataclasses.fields(AdviseOptions)}:
        options["yes"] = True  # a throwaway benchmark server, not production
    settings = resolve(db.dsn)
    started = time.perf_counter()
    advice = advise(settings, Config(), list(queries), AdviseOptions(**options), progress=lambda m: progress(f"  {m}"))
    return advice, time.perf_counter() - started


# --- the run -------------------------------------------------------------------------------------------


def configuration_rows(name: str, db: TpchDatabase, conn: psycopg.Connection, queries: Sequence[tuple[int, str]],
                       heap: int, args: argparse.Namespace) -> list[Row]:
    """Build, cost, measure and drop one configuration (two rows for a dbtune budget)."""
    if name == "pk":
        return [_measured(Row("pk", "primary keys only"), (), db, conn, queries, args)]
    if name in PEERS:
        label, statements = PEERS[name]
        return [_measured(Row(name, label), statements, db, conn, queries, args)]
    fraction = BUDGETS[name]
    rows = []
    for validate in (False, True):
        label = f"dbtune {fraction:g}× heap, {'validated' if validate else 'planner’s choice'}"
        row = Row(name + ("-validated" if validate else ""), label)
        if not advisor_available():
            rows.append(dataclasses.replace(row, error="dbtune.advisor.api is not in this checkout yet"))
            progress(f"{label}: skipped, dbtune.advisor.api is not in this checkout yet")
            continue
        progress(f"{label}: advising with a budget of {fraction * heap / MB:.0f} MB")
        try:
            advice, wall_s = run_advisor(db, workload(queries), round(fraction * heap), validate)
        except Exception as exc:  # the advisor is new: one failing budget must not lose the other rows
            progress(f"{label}: the advisor failed: {type(exc).__name__}: {exc}")
            rows.append(dataclasses.replace(row, error=f"{type(exc).__name__}: {one_line(str(exc))}"))
            drop_secondary_indexes(conn)
            continue
        wanted = {r.candidate.index_name(): r.candidate.create_sql(r.candidate.index_name())
                  for r in advice.recommendations}
        present = {str(r[1]) for r in secondary_indexes(conn)}
        prebuilt = bool(present) and present == set(wanted)  # validation keeps what it proved, built
        if present and not prebuilt:
            progress(f"{label}: dropping {len(present)} indexes the advisor left built that are not its choice")
            drop_secondary_indexes(conn)
        progress(f"{label}: {len(wanted)} indexes, {advice.whatif_calls} what-if calls, {wall_s:.1f} s; "
                 f"{len(advice.rejected)} rejected, {len(advice.problems)} queries it could not use")
        row = dataclasses.replace(row, whatif_calls=advice.whatif_calls, advisor_s=wall_s, advice=advice.to_json())
        rows.append(_measured(row, list(wanted.values()), db, conn, queries, args, prebuilt=prebuilt))
    return rows


def _measured(row: Row, statements: Sequence[str], db: TpchDatabase, conn: psycopg.Connection,
              queries: Sequence[tuple[int, str]], args: argparse.Namespace, *, prebuilt: bool = False) -> Row:
    """Cost ``statements`` as hypothetical indexes, build them (``prebuilt``: they are already, so there is
    no what-if cost), cost and measure the queries, drop every secondary index."""
    whatif = {} if prebuilt else whatif_costs(conn, statements, queries)
    progress(f"{row.label}: " + ("using the indexes validation kept" if prebuilt
                                 else f"building {len(statements)} indexes"))
    try:
        indexes = build(conn, () if prebuilt else statements, progress)
        cost = planner_costs(conn, queries)
        times = measure(db.dsn, queries, args.passes, args.timeout, progress)
    finally:
        drop_secondary_indexes(conn)
    row = dataclasses.replace(row, indexes=indexes, cost=cost, whatif_cost=whatif, times=times)
    progress(f"{row.label}: 22 queries {row.total_s:.1f} s")
    return row


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; returns the JSON document."""
    queries = tpch_queries()
    with open_tpch(args.data_dir, args.sf, progress) as db, psycopg.connect(db.dsn, autocommit=True) as conn:
        left = drop_secondary_indexes(conn)
        if left:
            progress(f"dropped {len(left)} secondary indexes an interrupted run left: {'; '.join(left)}")
        conn.execute("SELECT pg_stat_reset()")  # earlier runs' reads are not this run's workload
        heap = sum(heap_bytes(conn).values())
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        baseline = planner_costs(conn, queries)
        rows: list[Row] = []
        for name in args.only:
            rows.extend(configuration_rows(name, db, conn, queries, heap, args))
    return document(args, db, version, heap, baseline, rows)


def document(args: argparse.Namespace, db: TpchDatabase, version: str, heap: int, baseline: dict[int, float],
             rows: Sequence[Row]) -> dict[str, Any]:
    pk = next((r for r in rows if r.name == "pk" and r.times), None)
    return {
        "sf": args.sf, "passes": args.passes, "timeout_s": args.timeout, "server_version": version,
        "heap_bytes": heap, "load": {k: v for k, v in db.info.items() if k != "state"},
        "baseline_cost": {f"Q{n}": round(c, 2) for n, c in baseline.items()},
        "configurations": [_row_json(r, baseline, pk) for r in rows],
    }


def _ratio(cost: dict[int, float], baseline: dict[int, float], leave_out: int | None = None) -> float | None:
    if not cost:
        return None
    keep = [n for n in baseline if n != leave_out]
    return sum(cost[n] for n in keep) / sum(baseline[n] for n in keep)


def _slower(row: Row, pk: Row | None) -> dict[int, float]:
    """Query → ratio to primary keys only, for the queries more than 10 % slower."""
    if pk is None or pk.times is None or row.times is None or row is pk:
        return {}
    ratios = {n: t.median_s / pk.times[n].median_s for n, t in row.times.items() if pk.times[n].median_s > 0}
    return {n: r for n, r in ratios.items() if r > SLOWER}


def _row_json(row: Row, baseline: dict[int, float], pk: Row | None) -> dict[str, Any]:
    return {
        "name": row.name, "label": row.label, "error": row.error,
        "indexes": [{"definition": i.definition, "bytes": i.bytes} for i in row.indexes],
        "index_count": len(row.indexes), "real_bytes": row.real_bytes,
        "cost": {f"Q{n}": round(c, 2) for n, c in row.cost.items()},
        "cost_relative": _ratio(row.cost, baseline), "cost_relative_without_q20": _ratio(row.cost, baseline, WITHOUT),
        "whatif_cost": {f"Q{n}": round(c, 2) for n, c in row.whatif_cost.items()},
        "whatif_cost_relative": _ratio(row.whatif_cost, baseline),
        "whatif_cost_relative_without_q20": _ratio(row.whatif_cost, baseline, WITHOUT),
        "whatif_calls": row.whatif_calls, "advisor_s": None if row.advisor_s is None else round(row.advisor_s, 2),
        "runtime": None if row.times is None else {
            f"Q{n}": {"median_s": round(t.median_s, 4), "passes_s": [round(s, 4) for s in t.passes],
                      "timed_out": t.timed_out} for n, t in row.times.items()},
        "total_s": None if row.total_s is None else round(row.total_s, 3),
        "slower_than_pk": {f"Q{n}": round(r, 3) for n, r in _slower(row, pk).items()},
        "advice": row.advice,
    }


# --- output ----------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %"


def summary_table(doc: dict[str, Any]) -> str:
    """The markdown table of the configurations."""
    head = ["configuration", "indexes", "real size MB", "planner cost vs PK (22)", f"without Q{WITHOUT}",
            "what-if calls", "advisor s", "22 queries s", "timeouts", "> 10 % slower than PK"]
    body = []
    for c in doc["configurations"]:
        runtime = c["runtime"] or {}
        timeouts = [q for q, t in runtime.items() if t["timed_out"]]
        slower = ", ".join(f"{q} ×{r:.2f}" for q, r in c["slower_than_pk"].items())
        if c["error"]:
            body.append([f"{c['label']} ({c['error']})"] + [""] * (len(head) - 1))
            continue
        body.append([c["label"], c["index_count"], f"{c['real_bytes'] / MB:.1f}", _pct(c["cost_relative"]),
                     _pct(c["cost_relative_without_q20"]),
                     "" if c["whatif_calls"] is None else c["whatif_calls"],
                     "" if c["advisor_s"] is None else f"{c['advisor_s']:.1f}",
                     "" if c["total_s"] is None else f"{c['total_s']:.1f}", ", ".join(timeouts), slower])
    return tabulate(body, head, tablefmt="github")


def per_query_table(doc: dict[str, Any]) -> str:
    """Median seconds per query (rows) and configuration (columns); ``T`` marks a timeout."""
    measured = [c for c in doc["configurations"] if c["runtime"]]
    head = ["query", *(c["name"] for c in measured)]
    body = []
    for q in measured[0]["runtime"] if measured else ():
        body.append([q, *(f"{c['runtime'][q]['median_s']:.2f}" + (" T" if c["runtime"][q]["timed_out"] else "")
                          for c in measured)])
    body.append(["total", *(f"{c['total_s']:.1f}" for c in measured)])
    return tabulate(body, head, tablefmt="github")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0, help="TPC-H scale factor (default 1)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the kept server's directory (default: tpch-sf<SF> beside the repository)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the 22 queries (median; default 3)")
    parser.add_argument("--timeout", type=int, default=300, help="statement_timeout in seconds (default 300)")
    parser.add_argument("--only", default=",".join(CONFIGURATIONS),
                        help=f"comma-separated configurations (default all: {','.join(CONFIGURATIONS)})")
    parser.add_argument("--output", type=Path, default=None, help="write the JSON document here")
    args = parser.parse_args(argv)
    if args.sf <= 0 or args.passes < 1 or args.timeout < 1:
        raise UsageError("--sf must be > 0, --passes and --timeout at least 1")
    args.only = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in args.only if n not in CONFIGURATIONS]
    if unknown or not args.only:
        raise UsageError(f"--only: unknown configuration {', '.join(unknown) or '(none given)'} "
                         f"(choose from {', '.join(CONFIGURATIONS)})")
    if args.data_dir is None:
        args.data_dir = Path(__file__).resolve().parents[2] / f"tpch-sf{args.sf:g}"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        doc = run(args)
    except DbtuneError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 3 if isinstance(exc, ServerStartError) else int(exc.exit_code)
    except psycopg.OperationalError as exc:
        print(f"error: the TPC-H server: {one_line(str(exc))}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("error: interrupted (the server is stopped; its data directory is kept)", file=sys.stderr)
        return 130
    print(f"TPC-H sf {args.sf:g}, PostgreSQL {doc['server_version']}, heap {doc['heap_bytes'] / MB:.0f} MB, "
          f"median of {args.passes} passes, statement_timeout {args.timeout} s\n")
    print(summary_table(doc))
    print("\nMedian seconds per query (T: timed out)\n")
    print(per_query_table(doc))
    if args.output:
        args.output.write_text(json.dumps(doc, indent=2) + "\n")
        progress(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
