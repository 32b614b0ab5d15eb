"""``dbtune explain``: plan queries (or run them with ``--analyze``) and check the plans."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import pglast
import typer
from pglast.parser import ParseError

from dbtune.cli.common import (
    FAIL_ON,
    ConfigOption,
    DsnOption,
    NoColorOption,
    OutputOption,
    QuietOption,
    VerboseOption,
    WorkloadFormatOption,
    check_workload_format,
    connection_settings,
    error_line,
    fails,
    format_option,
    write_output,
)
from dbtune.config import load_config
from dbtune.errors import ExitCode, UsageError
from dbtune.plans import ExplainOptions, PlanQuery, explain, workload_queries
from dbtune.report import Format
from dbtune.report.explain import EXPLAIN_RENDERERS, render_explain


def _statements(text: str) -> list[PlanQuery]:
    """The statements of the SQL argument; text pglast cannot split is sent whole (the server judges)."""
    if not text.strip():
        raise UsageError("the SQL argument is empty")
    try:
        parts = [s.strip() for s in pglast.split(text)]
    except ParseError:
        parts = [text.strip().rstrip(";")]
    return [PlanQuery(s) for s in parts if s]


def explain_command(
    sql: Annotated[str | None, typer.Argument(
        help="The statement(s) to explain, `$n` parameters allowed; `-` reads them from stdin.",
        show_default=False)] = None,
    workload: Annotated[Path | None, typer.Option(
        "--workload", help="SQL file: statements with optional `-- name:` and `-- params:` lines, or plain "
        "statements.", show_default=False)] = None,
    workload_format: WorkloadFormatOption = None,
    top: Annotated[int | None, typer.Option(
        "--from-pg-stat-statements", help="Explain the top N statements on user tables of pg_stat_statements by "
        "total_exec_time.", show_default=False)] = None,
    dsn: DsnOption = None,
    config: ConfigOption = None,
    analyze: Annotated[bool, typer.Option(
        "--analyze", help="Run the queries (EXPLAIN ANALYZE, BUFFERS), each in a transaction that is rolled "
        "back; only SELECTs unless --allow-writes; `$n` get values sampled from the tables.")] = False,
    allow_writes: Annotated[bool, typer.Option(
        "--allow-writes", help="With --analyze, also run INSERT/UPDATE/DELETE/MERGE (rolled back).")] = False,
    format: Annotated[Format, format_option(EXPLAIN_RENDERERS, "dbtune explain", "Output format")] = Format.TEXT,
    output: OutputOption = None,
    fail_on: Annotated[str, typer.Option(
        "--fail-on", help="Exit 1 when a finding is at or above: error, warning, info, never.")] = "never",
    statement_timeout: Annotated[str | None, typer.Option(
        "--statement-timeout", help="Per-statement limit, e.g. 30s (default: config, then 30s); a query that "
        "hits it is reported and the others go on.", show_default=False)] = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Show the plans of queries with the plan checks' findings. Plans only by default (a query with `$n`
    gets its generic plan); nothing is written. Exit 0, or 1 with findings at or above --fail-on, 2 when a
    query could not be explained (the others are still shown), 3 when the server cannot be reached."""
    if sum(x is not None for x in (sql, workload, top)) != 1:
        raise UsageError("give exactly one of SQL, --workload FILE and --from-pg-stat-statements N")
    check_workload_format(workload_format, workload)
    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on: {fail_on!r} is not one of {', '.join(FAIL_ON)}")
    if allow_writes and not analyze:
        raise UsageError("--allow-writes only matters with --analyze (without it nothing runs)")
    cfg, cfg_path = load_config(config)
    settings = connection_settings(dsn, cfg, statement_timeout)
    if sql is not None:
        queries = _statements(sys.stdin.read() if sql == "-" else sql)
    else:
        queries = workload_queries(settings, path=workload, top=top, workload_format=workload_format)
        if not queries:
            raise UsageError(f"--from-pg-stat-statements {top}: pg_stat_statements holds no SELECT or DML "
                             "statement on user tables for this database")
    report = explain(settings, queries, cfg, options=ExplainOptions(analyze=analyze, allow_writes=allow_writes))
    write_output(render_explain(report, format), output)
    if report.failed:
        first = report.failed[0]
        location = first.query.location
        where = f" ({location})" if location and not (first.error or "").startswith(location) else ""
        error_line(f"{len(report.failed)} of {len(report.entries)} queries could not be explained "
                   f"(first: {first.label}{where}: {first.error})")
        raise typer.Exit(int(ExitCode.USAGE))
    raise typer.Exit(int(ExitCode.FINDINGS if fails(report.worst(), fail_on) else ExitCode.CLEAN))
