"""``dbtune tune``: the whole loop on a user's database (meant for staging). It asks before it writes: once
before the advisor builds its recommended indexes to measure them (each dropped again; what did not help
is reverted, and the output says why), once before the migration is applied."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dbtune.bench import BenchOptions, load_workload, pg_stat_statements_workload
from dbtune.bench.runner import DEFAULT_ROUNDS
from dbtune.cli.audit import app_config_of
from dbtune.cli.common import (
    AppConfigOption,
    ConfigOption,
    DsnOption,
    NoColorOption,
    QuietOption,
    check_output,
    connection_settings,
    format_option,
    note,
    write_output,
)
from dbtune.cli.loop import LOOP_RENDERERS, LoopPrinter
from dbtune.cli.progress import progress_display
from dbtune.config import load_config
from dbtune.db.connect import describe
from dbtune.errors import UsageError
from dbtune.loop import AdvisorStage, run_loop
from dbtune.migrate.plan import MigrationPlan
from dbtune.migrate.runtime import ApplyOptions
from dbtune.report import Format, render
from dbtune.workload import load_queries
from dbtune.workload.model import Query


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
    advisor: Annotated[bool, typer.Option("--advisor/--no-advisor", help="Run the index advisor and prove its "
                                          "choice on the server (builds and drops indexes).")] = True,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Build and apply without asking (for scripts); "
                                                          "the target is not production.")] = False,
    format: Annotated[Format, format_option(LOOP_RENDERERS, "dbtune tune", "Report format (html: the whole "
                                            "loop's review on one page, written at the end)")] = Format.TEXT,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the review page (--format html) to FILE instead of stdout.",
        show_default=False)] = None,
    app_config: AppConfigOption = None,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Audit, advise (the advisor's indexes built, measured and kept only when they help), generate and
    lint the migration, benchmark, apply (after confirmation), benchmark again, compare. Writes to the
    target: meant for staging."""
    if output is not None and format is not Format.HTML:
        raise UsageError(f"--output {output}: tune prints each stage as it ends; --output writes the review page "
                         "of --format html")
    check_output(output)
    cfg, cfg_path = load_config(config)
    app = app_config_of(cfg, cfg_path, app_config or [])  # before connecting: a bad file is exit 2
    settings = connection_settings(dsn, cfg)
    queries = load_workload(workload) if workload else pg_stat_statements_workload(settings, from_pg_stat_statements)
    if not queries:
        raise UsageError("no queries to benchmark: pg_stat_statements is empty; pass --workload FILE")

    def confirmed(question: str) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise UsageError("dbtune tune changes the database: confirm with --yes when not on a terminal")
        return typer.confirm(question, default=False, err=True)

    def confirm(plan: MigrationPlan) -> bool:
        note(f"\n{len(plan.steps)} change(s) will be applied to {describe(settings)}:", False)
        for step in plan.steps:
            note(f"  {step.check_name}: {' '.join(step.change.up.split())}", False)
        return confirmed("Apply these changes?")

    stage = None
    if advisor:
        note(f"the advisor builds the indexes it recommends on {describe(settings)} to measure them, and drops "
             "them again: the migration builds those that help", quiet)
        if confirmed("Build them?"):
            from dbtune.advisor.api import AdviseOptions

            stage = AdvisorStage(AdviseOptions(trial_builds=True, validate=True, yes=True,
                                               top=from_pg_stat_statements),
                                 queries=_advisor_queries(workload))
        else:
            note("advisor skipped: its choice is proven only by building it", quiet)

    bench = BenchOptions(iterations=iterations, rounds=min(DEFAULT_ROUNDS, iterations))
    with progress_display(quiet, no_color) as display:
        printer = LoopPrinter(format, expected=cfg.expect.index, display=display)

        def confirm_apply(plan: MigrationPlan) -> bool:
            with display.paused():  # the question below the bars, not under them
                return confirm(plan)

        result = run_loop(settings, cfg, queries, directory, bench=bench,
                          apply_options=ApplyOptions(report=display.note), include_drops=include_drops,
                          confirm=confirm_apply, stage=lambda s: display.note(f"== {s}"),
                          progress=lambda m: display.note("   " + m), observer=printer, advisor=stage,
                          app_config=app, statements=workload)
        printer.finish(result)
    if format is Format.HTML:
        write_output(render(result, Format.HTML), output)  # the registry imports Jinja2 and plotly now


def _advisor_queries(workload: Path | None) -> tuple[Query, ...] | None:
    """The advisor's workload: the ``--workload`` file's statements (pgbench meta-commands left out), or
    None: pg_stat_statements' top statements, weighted by their calls."""
    if workload is None:
        return None
    return tuple(q for q in load_queries(workload).queries if q.skipped is None)
