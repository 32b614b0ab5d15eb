"""``dbtune tune``: the whole loop on a user's database (meant for staging). It asks before it writes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dbtune.bench import BenchOptions, load_workload, pg_stat_statements_workload
from dbtune.bench.runner import DEFAULT_ROUNDS
from dbtune.cli.common import ConfigOption, DsnOption, QuietOption, connection_settings, note
from dbtune.cli.loop import LoopPrinter
from dbtune.config import load_config
from dbtune.db.connect import describe
from dbtune.errors import UsageError
from dbtune.loop import run_loop
from dbtune.migrate.plan import MigrationPlan
from dbtune.migrate.runtime import ApplyOptions
from dbtune.report import Format


def tune_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    workload: Annotated[Path | None, typer.Option("--workload", help="Queries to benchmark (.sql).",
                                                  show_default=False)] = None,
    from_pg_stat_statements: Annotated[int, typer.Option(
        "--from-pg-stat-statements", help="Benchmark the top N statements by total time (without --workload).",
    )] = 20,
    directory: Annotated[Path, typer.Option("--dir", help="The migrations directory.")] = Path("migrations"),
    iterations: Annotated[int, typer.Option("--iterations", help="Measured runs of each query.")] = 30,
    include_drops: Annotated[bool, typer.Option("--include-drops", help="Also drop duplicate, redundant "
                                                                        "and unused indexes.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking (for scripts).")] = False,
    format: Annotated[Format, typer.Option("--format", "-f", help="Audit report format.")] = Format.TEXT,
    quiet: QuietOption = False,
) -> None:
    """Audit, generate and lint the migration, benchmark, apply (after confirmation), benchmark again,
    compare. Writes to the target: meant for staging."""
    cfg, _ = load_config(config)
    settings = connection_settings(dsn, cfg)
    queries = load_workload(workload) if workload else pg_stat_statements_workload(settings, from_pg_stat_statements)
    if not queries:
        raise UsageError("no queries to benchmark: pg_stat_statements is empty; pass --workload FILE")

    def confirm(plan: MigrationPlan) -> bool:
        note(f"\n{len(plan.steps)} change(s) will be applied to {describe(settings)}:", False)
        for step in plan.steps:
            note(f"  {step.check_name}: {' '.join(step.change.up.split())}", False)
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("dbtune tune changes the database: confirm with --yes when not on a terminal")
        return typer.confirm("Apply these changes?", default=False, err=True)

    printer = LoopPrinter(format)
    bench = BenchOptions(iterations=iterations, rounds=min(DEFAULT_ROUNDS, iterations))
    result = run_loop(settings, cfg, queries, directory, bench=bench,
                      apply_options=ApplyOptions(report=lambda m: note(m, quiet)), include_drops=include_drops,
                      confirm=confirm, stage=lambda s: note(f"== {s}", quiet),
                      progress=lambda m: note("   " + m, quiet), observer=printer)
    printer.finish(result)
