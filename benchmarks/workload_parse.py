#!/usr/bin/env python
"""How fast ``dbtune.workload`` reads statements and resolves their column usage, on one core.

The statements are the 113 JOB queries (``../shared/data/job/queries``) and the 22 TPC-H queries
(``../shared/data/tpch/templates``, the qgen templates with their markers substituted as the tests do),
repeated in order to ``--statements`` statements (10,000 by default). The schema comes from the
benchmarks' own ``CREATE TABLE`` files (JOB in ``public``, TPC-H in ``tpch``, search path ``public,
tpch``, TPC-H Q15's view ``revenue0``), parsed by pglast: no server is needed.

Measured, each in this process pinned to one CPU (``sched_setaffinity``):

- **load**: the statements written as one psql script, read by :func:`dbtune.workload.load_queries`
  (pglast split, fingerprints, grouping);
- **usage, uncached**: :meth:`UsageAnalyzer.usage` with ``cache=False`` on every statement: pglast
  parse, sqlglot parse and qualify, classification, each time;
- **usage, cached**: a fresh analyzer with its cache (per fingerprint; per fingerprint and constants for
  statements whose usage depends on their constants), the statements repeated as they are;
- **usage, cached, varied text**: the same, but every repetition differs in a comment and white space,
  so nothing is cached by exact text.

It also splits one uncached pass over the distinct statements into its phases (pglast, sqlglot parse,
sqlglot qualify, classification). The target is 1,000 statements/s; the uncached rate is the honest cost
of a statement never seen before.

    python benchmarks/workload_parse.py
    python benchmarks/workload_parse.py --statements 2000 --json

Exit status: 0, or 1 when a statement gets no usage (a reason) or the cached rate misses the target.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pglast import parser
from tabulate import tabulate

from dbtune.workload import UsageAnalyzer, WorkloadSchema, load_queries
from dbtune.workload.sqlfile import split_script
from dbtune.workload.usage import _Run, _Text

SHARED = Path(os.environ.get("DBTUNE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
DATA = SHARED / "data"
TARGET_QPS = 1000.0


def tpch_script(n: int) -> str:
    """A qgen template as a script (directive lines dropped, markers in literals given sample values,
    bare markers left as psql variables, which the loader turns into ``$n``)."""
    text = (DATA / "tpch" / "templates" / f"{n}.sql").read_text()
    text = re.sub(r"(?m)^:[a-z](?: .*)?$", "", text)
    text = text.replace("revenue:s", "revenue0")
    text = re.sub(r"date ':\d+'", "date '1995-03-15'", text)
    text = re.sub(r"interval ':\d+'", "interval '90'", text)
    return re.sub(r"'([^'\n]*)'", lambda m: "'" + re.sub(r":\d+", "X", m.group(1)) + "'", text)


def workload() -> tuple[WorkloadSchema, list[str]]:
    """The schema and the 135 distinct statements."""
    statements = [p.read_text().strip().rstrip(";") for p in sorted((DATA / "job" / "queries").glob("*.sql"))]
    q15_view = ""
    for n in range(1, 23):
        found, errors = split_script(tpch_script(n), f"tpch/{n}.sql")
        assert not errors, errors
        statements += [s.text for s in found if s.text.lower().startswith("select")]
        q15_view = q15_view or next((s.text for s in found if s.text.lower().startswith("create view")), "")
    job = WorkloadSchema.from_sql((DATA / "job" / "schema.sql").read_text())
    tpch = WorkloadSchema.from_sql((DATA / "tpch" / "tpch-create.sql").read_text() + ";\n" + q15_view,
                                   search_path=("tpch",))
    return WorkloadSchema(job.relations + tpch.relations, ("public", "tpch")), statements


def timed(fn: Callable[..., object], *args: object) -> float:
    """Seconds that ``fn(*args)`` takes."""
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def fingerprint_and_parse(text: str) -> None:
    parser.fingerprint(text)
    parser.parse_sql_json(text)


def phases(schema: WorkloadSchema, statements: list[str]) -> dict[str, float]:
    """Seconds per phase for one uncached pass over ``statements``."""
    import sqlglot

    analyzer = UsageAnalyzer(schema)
    out = {"pglast parse and fingerprint": 0.0, "sqlglot parse": 0.0, "sqlglot qualify (with table resolution)": 0.0,
           "classification and lineage": 0.0}
    for text in statements:
        out["pglast parse and fingerprint"] += timed(fingerprint_and_parse, text)
        out["sqlglot parse"] += timed(sqlglot.parse_one, text, "postgres")
        started = time.perf_counter()
        tree, _ = analyzer._prepare(text)
        out["sqlglot qualify (with table resolution)"] += time.perf_counter() - started
        run = _Run(analyzer, tree, _Text(text))
        out["classification and lineage"] += timed(run.classify)
    out["sqlglot qualify (with table resolution)"] -= out["sqlglot parse"]  # _prepare parses again
    return out


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--statements", type=int, default=10_000, help="statements per measurement (10,000)")
    args.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: the first allowed)")
    args.add_argument("--json", action="store_true", help="print the figures as JSON on stdout")
    opts = args.parse_args()
    allowed = sorted(os.sched_getaffinity(0))
    cpu = opts.cpu if opts.cpu is not None else allowed[0]
    os.sched_setaffinity(0, {cpu})
    schema, distinct = workload()
    n = opts.statements
    statements = [distinct[i % len(distinct)] for i in range(n)]
    varied = [f"/* rep {i // len(distinct)} */ " + s.replace("\n", "\n ") for i, s in enumerate(statements)]

    bad = {s[:60]: r for s in distinct if (r := UsageAnalyzer(schema).usage(s, cache=False).reason)}
    rows: list[dict[str, object]] = []

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "workload.sql"
        script.write_text(";\n".join(statements) + ";\n")
        loaded: list[int] = []
        seconds = timed(lambda: loaded.append(len(load_queries(script).queries)))
        rows.append({"measure": "load (split, fingerprint, group)", "statements": n, "seconds": seconds,
                     "per_second": n / seconds, "note": f"{loaded[0]} distinct"})

    uncached = UsageAnalyzer(schema)
    seconds = timed(lambda: [uncached.usage(s, cache=False) for s in statements])
    rows.append({"measure": "usage, uncached", "statements": n, "seconds": seconds, "per_second": n / seconds,
                 "note": "every statement parsed and resolved"})
    for label, texts in (("usage, cached", statements), ("usage, cached, varied text", varied)):
        analyzer = UsageAnalyzer(schema)
        seconds = timed(lambda: [analyzer.usage(s) for s in texts])  # noqa: B023 - called right here
        rows.append({"measure": label, "statements": n, "seconds": seconds, "per_second": n / seconds,
                     "note": f"{analyzer.misses} misses, {analyzer.hits} hits"})

    split = phases(schema, distinct)
    total = sum(split.values())
    result = {
        "cpu": cpu, "python": sys.version.split()[0], "distinct_statements": len(distinct),
        "statements": n, "target_per_second": TARGET_QPS, "rows": rows,
        "uncached_phases_ms_per_statement": {k: 1000 * v / len(distinct) for k, v in split.items()},
        "statements_without_usage": bad,
    }
    cached_rate = next(float(r["per_second"]) for r in rows if r["measure"] == "usage, cached")  # type: ignore[arg-type]
    ok = not bad and cached_rate >= TARGET_QPS
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{len(distinct)} distinct statements (113 JOB, 22 TPC-H) repeated to {n:,}; one core (CPU {cpu}), "
              f"Python {result['python']}\n")
        print(tabulate([[r["measure"], f"{r['statements']:,}", f"{r['seconds']:.2f}", f"{r['per_second']:,.0f}",
                         r["note"]] for r in rows],
                       headers=["measure", "statements", "seconds", "statements/s", ""], tablefmt="github"))
        print()
        print(tabulate([[k, f"{1000 * v / len(distinct):.2f}", f"{100 * v / total:.0f}%"] for k, v in split.items()],
                       headers=["uncached phase", "ms/statement", "share"], tablefmt="github"))
        print(f"\ntarget {TARGET_QPS:,.0f}/s: cached {'met' if cached_rate >= TARGET_QPS else 'MISSED'}; uncached "
              f"{next(r['per_second'] for r in rows if r['measure'] == 'usage, uncached'):,.0f}/s")
        if bad:
            print(f"statements without usage: {bad}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
