"""Options shared by several commands, and the helpers that turn them into library arguments."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dbtune.config.model import Config, parse_timeout_ms
from dbtune.errors import UsageError
from dbtune.escape import one_line, terminal_safe
from dbtune.model import Severity
from dbtune.report.render import Format, renderer
from dbtune.workload.formats import WorkloadFormat

if TYPE_CHECKING:
    from dbtune.db.connect import ConnectionSettings

DsnOption = Annotated[str | None, typer.Option(
    "--dsn", help="Connection string (URI or key=value). Default: DATABASE_URL, then libpq's PG* variables.",
    show_default=False)]
ConfigOption = Annotated[Path | None, typer.Option(
    "--config", "-c", help="dbtune.toml (default: nearest dbtune.toml or [tool.dbtune] in pyproject.toml).",
    show_default=False)]
OutputOption = Annotated[Path | None, typer.Option(
    "--output", "-o", help="Write the report to FILE instead of stdout.", show_default=False)]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Tracebacks on errors.")]
AppConfigOption = Annotated[list[str] | None, typer.Option(
    "--app-config", metavar="PATH",
    help="The application's own config: a .env file, docker-compose file, pgbouncer.ini or HikariCP "
         ".properties, or a PgBouncer admin console DSN (dbname=pgbouncer) to read live; repeat for more. "
         "Added to the config's app_config.", show_default=False)]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")]
NoColorOption = Annotated[bool, typer.Option("--no-color", help="No colour in output.")]
WorkloadFormatOption = Annotated[WorkloadFormat | None, typer.Option(
    "--workload-format", help="Read --workload as a psql script, a pgbench -f script (meta-commands and "
    "BEGIN/END skipped, with why), a TPC-H qgen template (:x/:o lines stripped, :1 markers as $n) or plain "
    "SQL. Default: detected from the text.", show_default=False)]

FAIL_ON = ("error", "warning", "info", "never")


def format_option(table: Mapping[Format, Any], command: str, help: str = "Output format") -> Any:
    """The ``--format/-f`` option of ``command``, whose formats are the keys of its renderer ``table``: a
    format it does not write is refused as the command line is read, before any work, with one
    ``error:`` line naming those it writes (:func:`dbtune.report.render.renderer`, exit 2)."""
    names = ", ".join(table)

    def check(value: str) -> Format:
        renderer(table, value, command)
        return Format(value)

    return typer.Option("--format", "-f", help=f"{help}: {names}.", parser=check, metavar="FORMAT")


def check_workload_format(workload_format: WorkloadFormat | None, workload: Path | None) -> None:
    """Raises :class:`UsageError` when ``--workload-format`` is given without ``--workload``."""
    if workload_format is not None and workload is None:
        raise UsageError("--workload-format only matters with --workload FILE")


def fail_on_level(cli_value: str | None, config: Config) -> str:
    """``--fail-on``, else ``DBTUNE_FAIL_ON``, else the config's ``audit.fail_on``."""
    value = cli_value or os.environ.get("DBTUNE_FAIL_ON") or config.audit.fail_on
    if value not in FAIL_ON:
        source = "--fail-on" if cli_value else "DBTUNE_FAIL_ON"
        raise UsageError(f"{source}: {value!r} is not one of {', '.join(FAIL_ON)}")
    return value


def fails(worst: Severity | None, fail_on: str) -> bool:
    """Whether the worst finding reaches the ``--fail-on`` threshold."""
    if fail_on == "never" or worst is None:
        return False
    return worst.rank >= Severity(fail_on).rank


def connection_settings(dsn: str | None, config: Config, statement_timeout: str | None = None) -> ConnectionSettings:
    """The target from ``--dsn`` (else ``DATABASE_URL``, else libpq's defaults) with the config's timeouts;
    ``--statement-timeout`` (``"30s"``, ``"500ms"`` …) overrides the config's."""
    from dbtune.db.connect import resolve  # psycopg: only for the commands that connect

    timeout_ms = config.database.statement_timeout
    if statement_timeout:
        try:
            timeout_ms = parse_timeout_ms(statement_timeout)
        except ValueError as exc:
            raise UsageError(f"--statement-timeout: {exc}") from None
    return resolve(dsn, statement_timeout_ms=timeout_ms,
                   connect_timeout_s=max(1, config.database.connect_timeout // 1000))


def write_output(text: str, output: Path | None) -> None:
    """The report to ``output`` (written whole, then renamed) or to stdout, with every control character
    that a name from the catalog may carry escaped (:func:`dbtune.escape.terminal_safe`)."""
    text = terminal_safe(text)
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        tmp = output.with_name(output.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(output)
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot write: {exc.strerror or exc}") from None


def check_output(output: Path | None) -> None:
    """Raises :class:`UsageError` when ``output`` cannot be written (its directory missing or read-only,
    or it is a directory): asked before a long command starts, so that it fails before the work, not
    after it. :func:`write_output` still reports a failure at the end."""
    if output is None:
        return
    folder = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise UsageError(f"--output {output}: is a directory")
    if not folder.is_dir():
        raise UsageError(f"--output {output}: no such directory {folder}")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise UsageError(f"--output {output}: cannot write: Permission denied")


def echo(text: str = "", nl: bool = True) -> None:
    """Text on stdout, its control characters escaped but for its own line breaks."""
    sys.stdout.write(terminal_safe(text) + ("\n" if nl else ""))
    sys.stdout.flush()


def note(message: str, quiet: bool = False) -> None:
    """A progress line on stderr (one line: a name's newline is shown escaped)."""
    if not quiet:
        print(one_line(message), file=sys.stderr, flush=True)


def error_line(message: str) -> None:
    """``error: …`` on stderr, on one line whatever the message holds."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
