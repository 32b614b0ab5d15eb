"""Before/after benchmarks: the workload runner, latency histograms, statistics and comparison.

The API the CLI (and ``dbtune tune``/``dbtune demo``) calls::

    queries = load_workload(Path("workload.sql"))          # or pg_stat_statements_workload(settings, 10)
    before = run_bench(settings, queries, BenchOptions(iterations=100))
    save_result(before, Path("before.json"))
    ...
    comparison = compare(load_result(Path("before.json")), after)
    print(render_comparison(comparison, Format.TEXT))       # dbtune.report.bench
    comparison.verdicts()                                    # {"orders-by-status": Verdict.FASTER, ...}

A run is made of rounds (``BenchOptions.rounds``, default 5) with the queries interleaved; a comparison
works on each query's round statistics (:mod:`dbtune.bench.stats`, :mod:`dbtune.bench.compare`).
"""

from dbtune.bench.compare import Comparison, QueryComparison, ResultsDiffer, Verdict, compare
from dbtune.bench.plan import PlanShape
from dbtune.bench.result import (
    RESULT_VERSION,
    TIMING_SETTINGS,
    BenchResult,
    BenchServer,
    QueryResult,
    RoundResult,
    RunParameters,
    SkippedQuery,
    label,
    load_result,
    save_result,
)
from dbtune.bench.runner import BenchOptions, run_bench
from dbtune.workload.load import (
    from_pg_stat_statements,
    load_workload,
    parse_workload,
    pg_stat_statements_workload,
)
from dbtune.workload.model import WorkloadQuery
from dbtune.workload.params import Parameters, ParameterUnresolved, sample_parameters

__all__ = [
    "RESULT_VERSION", "TIMING_SETTINGS", "BenchOptions", "BenchResult", "BenchServer", "Comparison",
    "ParameterUnresolved", "Parameters", "PlanShape", "QueryComparison", "QueryResult", "ResultsDiffer",
    "RoundResult", "RunParameters", "SkippedQuery", "Verdict", "WorkloadQuery", "compare",
    "from_pg_stat_statements", "label", "load_result", "load_workload", "parse_workload",
    "pg_stat_statements_workload", "run_bench", "sample_parameters", "save_result",
]
