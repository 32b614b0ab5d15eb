"""``dbtune bench run`` and ``dbtune bench compare BEFORE AFTER``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dbtune.bench import (
    BenchOptions,
    compare,
    load_result,
    load_workload,
    pg_stat_statements_workload,
    run_bench,
    save_result,
)
from dbtune.bench.runner import DEFAULT_ROUNDS
from dbtune.cli.common import (
    DsnOption,
    NoColorOption,
    OutputOption,
    QuietOption,
    VerboseOption,
    WorkloadFormatOption,
    check_workload_format,
    format_option,
    note,
    write_output,
)
from dbtune.cli.progress import progress_display
from dbtune.db.connect import resolve
from dbtune.errors import UsageError
from dbtune.report import Format
from dbtune.report.bench import COMPARISON_RENDERERS, RESULT_RENDERERS, render_comparison, render_result

app = typer.Typer(rich_markup_mode=None, help="Benchmark a workload, and compare two runs before and after a change.",
                  no_args_is_help=True)


@app.command("run")
def run_command(
    dsn: DsnOption = None,
    workload: Annotated[Path | None, typer.Option(
        "--workload", help="SQL file: statements with optional `-- name:` and `-- params:` lines "
        "(sample_configs/guide/workload.sql), or plain statements.", show_default=False)] = None,
    top: Annotated[int | None, typer.Option(
        "--from-pg-stat-statements", help="Benchmark the top N statements of pg_stat_statements by "
        "total_exec_time instead of a file.", show_default=False)] = None,
    iterations: Annotated[int, typer.Option(
        "--iterations", help="Measured executions per query and client, spread over the rounds.")] = 100,
    duration: Annotated[float | None, typer.Option(
        "--duration", help="Seconds per query (spread over the rounds; all clients at once) instead of "
        "--iterations. The run takes about this times the number of queries.", show_default=False)] = None,
    rounds: Annotated[int, typer.Option(
        "--rounds", help="Rounds, each running every query in turn, so that drift over time shows as noise "
        "in `bench compare`.")] = DEFAULT_ROUNDS,
    warmup: Annotated[int, typer.Option("--warmup", help="Unmeasured executions per query and client before "
                                                         "the first round.")] = 5,
    clients: Annotated[int, typer.Option("--clients", help="Concurrent sessions (one connection each).")] = 1,
    allow_writes: Annotated[bool, typer.Option(
        "--allow-writes", help="Also run INSERT/UPDATE/DELETE/MERGE, each execution in a transaction that is "
        "rolled back.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Write the result (JSON) to FILE for `bench compare`.",
                                             show_default=False)] = None,
    format: Annotated[Format, format_option(RESULT_RENDERERS, "dbtune bench run",
                                            "Summary format on stdout")] = Format.TEXT,
    workload_format: WorkloadFormatOption = None,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Run a workload against the database and record latencies, throughput and plan shapes."""
    if (workload is None) == (top is None):
        raise UsageError("give exactly one of --workload FILE and --from-pg-stat-statements N")
    options = BenchOptions(iterations=iterations, duration_s=duration, warmup=warmup, clients=clients,
                           allow_writes=allow_writes, rounds=rounds)
    options.validate()
    check_workload_format(workload_format, workload)
    queries = load_workload(workload, workload_format) if workload is not None else None
    settings = resolve(dsn)
    if queries is None:
        assert top is not None
        queries = pg_stat_statements_workload(settings, top)
        if not queries:
            raise UsageError(f"--from-pg-stat-statements {top}: pg_stat_statements holds no SELECT or DML "
                             "statement for this database")
        source = f"pg_stat_statements top {top}"
    else:
        source = str(workload)
    with progress_display(quiet, no_color) as display:
        result = run_bench(settings, queries, options, source=source, progress=display.note, count=display.count)
    if not result.queries:
        first = result.skipped[0]
        raise UsageError(f"no query could be run: all {len(result.skipped)} skipped "
                         f"(first: {first.name}: {first.reason})")
    if out is not None:
        save_result(result, out)
        note(f"wrote {out}", quiet)
    write_output(render_result(result, format), None)


@app.command("compare")
def compare_command(
    before: Annotated[Path, typer.Argument(help="Result file of the run before the change (`bench run --out`).")],
    after: Annotated[Path, typer.Argument(help="Result file of the run after the change.")],
    force: Annotated[bool, typer.Option(
        "--force", help="Compare even when the server, database, timing settings or run parameters (clients, "
        "iterations, duration, rounds, warm-up) differ.")] = False,
    format: Annotated[Format, format_option(COMPARISON_RENDERERS, "dbtune bench compare")] = Format.TEXT,
    output: OutputOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Compare two runs query by query: percentiles, the ratio of the round medians with its confidence
    interval and noise floor, a verdict, plan changes."""
    comparison = compare(load_result(before), load_result(after), force=force)
    write_output(render_comparison(comparison, format), output)
