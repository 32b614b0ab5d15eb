"""``dbtune advise``: index recommendations for a workload, costed by the planner, proven with --validate."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from dbtune.cli.common import (
    ConfigOption,
    DsnOption,
    NoColorOption,
    OutputOption,
    QuietOption,
    VerboseOption,
    WorkloadFormatOption,
    check_workload_format,
    connection_settings,
    format_option,
    note,
    write_output,
)
from dbtune.cli.progress import progress_display
from dbtune.config import load_config
from dbtune.errors import ExitCode, UsageError
from dbtune.report import Format
from dbtune.report.advice import ADVICE_RENDERERS, render_advice
from dbtune.units import parse_size

DEFAULT_BUDGET = 0.5
_FRACTION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*")


def parse_budget(text: str) -> float | int:
    """``--budget``: a fraction of the database's size (``0.25``, a number above 0 and at most 1) or bytes
    with a unit (``200MB``, ``1.5GB``: :func:`dbtune.units.parse_size`). Returns a float for a fraction, an
    int for bytes. Raises :class:`UsageError` naming ``--budget`` otherwise."""
    m = _FRACTION.fullmatch(text)
    if m is not None:
        value = float(m.group(1))
        if not 0 < value <= 1:
            raise UsageError(f"--budget: {text!r} is not a fraction of the database's size above 0 and at most 1; "
                             "give a size with a unit for bytes (such as 200MB)")
        return value
    try:
        size = parse_size(text)
    except ValueError as exc:
        raise UsageError(f"--budget: {exc}, or a fraction of the database's size such as 0.5") from None
    if size <= 0:
        raise UsageError(f"--budget: {text!r} is no room for an index; give a size above 0")
    return size


def advise_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    workload: Annotated[Path | None, typer.Option(
        "--workload", help="SQL file (or `-` for stdin) of the application's queries, with optional `-- name:`, "
        "`-- params:` and `-- weight:` lines. Default: the top --top statements of pg_stat_statements, "
        "weighted by calls.", show_default=False)] = None,
    workload_format: WorkloadFormatOption = None,
    top: Annotated[int | None, typer.Option(
        "--top", min=1, help="Without --workload: how many pg_stat_statements statements on user tables (by "
        "total_exec_time) to advise for. Default 50.", show_default=False)] = None,
    budget: Annotated[str, typer.Option(
        "--budget", help="Room for the new indexes: a fraction (at most 1) of the database's size, or bytes "
        "with a unit (200MB, 1.5GB).")] = str(DEFAULT_BUDGET),
    max_indexes: Annotated[int | None, typer.Option(
        "--max-indexes", min=1, help="Recommend at most this many indexes.", show_default=False)] = None,
    trial_builds: Annotated[bool, typer.Option(
        "--trial-builds", help="Without hypopg: build the shortlisted indexes for real, each in a transaction "
        "that is rolled back, to cost them (writes; a non-production server only, with --yes).")] = False,
    validate: Annotated[bool, typer.Option(
        "--validate", help="Build the chosen indexes, measure the queries they serve before and after, and "
        "drop every index that did not measurably help (writes; a non-production server only, with --yes).")]
        = False,
    yes: Annotated[bool, typer.Option(
        "--yes", help="Confirm that --trial-builds/--validate may build indexes on this server.")] = False,
    format: Annotated[Format, format_option(ADVICE_RENDERERS, "dbtune advise", "Output format")] = Format.TEXT,
    output: OutputOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Recommend indexes for the workload as a whole: candidates from each query's column usage, costed by
    the planner with hypothetical indexes (hypopg) or ranked by pg_stats, chosen under --budget weighing each
    index's benefit against its size and write cost. Read-only unless --trial-builds or --validate (with
    --yes, never on a server that looks like production). Exit 0 with the advice, 2 for bad input, 3 when
    the server cannot be reached or refuses."""
    check_workload_format(workload_format, workload)
    if workload is not None and top is not None:
        raise UsageError("give --workload FILE or --top N (pg_stat_statements), not both")
    options_budget = parse_budget(budget)
    if yes and not (trial_builds or validate):
        raise UsageError("--yes only matters with --trial-builds or --validate (without them nothing is written)")
    from dbtune.advisor.model import QueryProblem
    from dbtune.workload import load_queries

    cfg, _ = load_config(config)
    settings = connection_settings(dsn, cfg)
    queries = None
    unread: tuple[QueryProblem, ...] = ()
    if workload is not None:
        loaded = load_queries(str(workload), workload_format=workload_format)
        queries = [q for q in loaded.queries if q.skipped is None]
        unread = tuple(QueryProblem(e.name or e.location, "", f"{e.location}: {e.message}")
                       for e in loaded.errors)
    from dbtune.advisor.api import AdviseOptions, advise

    # advise() refuses --trial-builds/--validate without --yes or on what looks like production
    options = AdviseOptions(budget=options_budget, max_indexes=max_indexes, trial_builds=trial_builds,
                            validate=validate, yes=yes)
    if top is not None:
        options = replace(options, top=top)
    with progress_display(quiet, no_color) as display:
        advice = advise(settings, cfg, queries, options, progress=display.note, count=display.count)
    if unread:
        advice = replace(advice, problems=(*unread, *advice.problems))
    write_output(render_advice(advice, format), output)
    if advice.problems:
        note(f"{len(advice.problems)} workload statement(s) not used (see PROBLEMS); the rest was advised on",
             quiet)
    raise typer.Exit(int(ExitCode.CLEAN))
