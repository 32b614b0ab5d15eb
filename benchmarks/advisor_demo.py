#!/usr/bin/env python
"""The guide's workload on the demo database, p99 per query before and after the index advisor's
validated choice (issue 7's ``benchmarks/advisor_demo.py``).

Starts the demo's embedded PostgreSQL 18 (:class:`dbtune.db.demo.Demo`), loads the guide's schema and data
at ``--scale`` (0.1 by default: 50,000 orders, 100,000 webhook rows) and runs the application's query mix
``--mix`` times (the advisor weighs each index against its table's writes since its last ANALYZE, so the
analyzed load does not count). Then, with no index but the
schema's own:

1. **before**: ``dbtune bench`` over the guide's ``workload.sql`` (``--iterations`` measured executions per
   query in 5 rounds, writes rolled back);
2. **advise**: :func:`dbtune.advisor.api.advise` on the same workload, with trial builds (the embedded
   server has no hypopg), the audit's checklist findings judged; then
   :func:`dbtune.advisor.validate.validated_advice` with ``keep=True``: every recommended index built, the
   queries it serves measured before and after, and only what got measurably faster left in place;
3. **after**: the same benchmark with the advisor's validated choice in place, compared with the first
   (:func:`dbtune.bench.compare`: a verdict against the noise floor).

It prints the indexes kept and reverted (with the reason), then a table: per query, p99 before and after
(ms), the ratio of the round medians (before / after), the verdict and the plan change. ``--json`` prints
the comparison's JSON instead. The guide's checklist indexes are not built here: the table shows what the
advisor's own choice does to the guide's queries.

    python benchmarks/advisor_demo.py                     # scale 0.1: about two minutes on 2 cores
    python benchmarks/advisor_demo.py --scale 0.02 --iterations 10

Exit status: 0, or 1 when a query the advisor's choice serves got significantly slower.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from tabulate import tabulate

from dbtune.advisor.api import AdviseOptions, advise
from dbtune.advisor.validate import validated_advice
from dbtune.audit import audit
from dbtune.bench import BenchOptions, Verdict, compare, load_workload, run_bench
from dbtune.config import load_config
from dbtune.db.connect import resolve
from dbtune.db.demo import Demo
from dbtune.loop import without_audit_advice
from dbtune.samples import guide_file, samples_dir
from dbtune.workload import load_queries


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="demo data size (1.0: 500,000 orders)")
    parser.add_argument("--mix", type=int, default=20, help="runs of each query of the application's mix first")
    parser.add_argument("--iterations", type=int, default=30, help="measured executions per query and side")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = parser.parse_args()

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    config, _ = load_config(samples_dir() / "production.toml")
    config = without_audit_advice(config)
    path = guide_file("workload.sql")
    workload = load_workload(path)
    queries = tuple(q for q in load_queries(path).queries if q.skipped is None)
    bench = BenchOptions(iterations=args.iterations, rounds=5, warmup=2, param_samples=20, allow_writes=True)
    started = time.perf_counter()
    demo = Demo.start()
    try:
        say(f"loading the guide's data at scale {args.scale}")
        demo.load(args.scale, progress=lambda m: say("  " + m))
        demo.run_workload(args.mix)
        settings = resolve(demo.dsn)
        say("benchmark before")
        before = run_bench(settings, workload, bench, source="workload", progress=say)
        say("advise (trial builds), then validate")
        findings = audit(settings, config).findings
        advice = advise(settings, config, queries, AdviseOptions(trial_builds=True, yes=True), findings=findings,
                        progress=say)
        advice = validated_advice(settings, advice, workload, bench, keep=True, progress=say)
        say("benchmark after")
        after = run_bench(settings, workload, bench, source="workload", progress=say)
    finally:
        demo.destroy()
    comparison = compare(before, after)
    if args.json:
        print(json.dumps({"advice": advice.to_json(), "comparison": comparison.to_json()}, indent=2))
    else:
        print(f"advisor: ranked by {advice.engine.value}; kept {len(advice.recommendations)}, reverted "
              f"{sum(1 for r in advice.rejected if r.stage == 'validation')}")
        for rec in advice.recommendations:
            print(f"  kept      {rec.candidate.describe()} ({rec.real_bytes or rec.estimated_bytes} bytes)")
        for r in advice.rejected:
            if r.stage == "validation":
                print(f"  reverted  {r.candidate.describe()}: {r.reason}")
        for r in advice.not_needed:
            print(f"  not needed (checklist) {r.candidate.describe()}: {r.reason}")
        rows = [[q.name, f"{q.before.p99_ms:.3f}", f"{q.after.p99_ms:.3f}",
                 f"{q.ratio.point:.2f}×" if q.ratio else "-", q.verdict.value, q.plan_change or ""]
                for q in comparison.queries]
        print(tabulate(rows, headers=["query", "p99 before (ms)", "p99 after (ms)", "ratio", "verdict",
                                      "plan change"]))
        print(f"\nwall time {time.perf_counter() - started:.0f} s, scale {args.scale}, {bench.describe()}")
    served = {q.name for rec in advice.recommendations for q in rec.queries}
    slower = [q.name for q in comparison.queries if q.name in served and q.verdict is Verdict.SLOWER]
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
