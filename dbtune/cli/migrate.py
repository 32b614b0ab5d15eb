"""``dbtune migrate``: commands on migrations. One function per command, each self-contained.

* ``dbtune migrate lint FILE…`` — lint SQL migration files and Alembic revisions
  (:func:`dbtune.migrate.lint.lint_paths`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dbtune.cli.common import (
    FAIL_ON,
    ConfigOption,
    OutputOption,
    QuietOption,
    VerboseOption,
    fails,
    format_option,
    write_output,
)
from dbtune.config import load_config
from dbtune.errors import ExitCode, UsageError
from dbtune.report import Format
from dbtune.report.lint import LINT_RENDERERS

app = typer.Typer(rich_markup_mode=None, help="Migrations.", no_args_is_help=True)


# --- lint ---------------------------------------------------------------------------------------------


@app.command("lint")
def lint_command(
    files: Annotated[list[Path], typer.Argument(
        help="SQL migration files (run as psql -f runs them: autocommit unless BEGIN … COMMIT), Alembic "
             "revision files (.py), or directories of them (e.g. migrations/).", show_default=False)],
    format: Annotated[Format, format_option(LINT_RENDERERS, "dbtune migrate lint", "Report format")] = Format.TEXT,
    no_squawk: Annotated[bool, typer.Option(
        "--no-squawk", help="Do not run squawk, even when it is on PATH.")] = False,
    fail_on: Annotated[str, typer.Option(
        "--fail-on", help="Exit 1 when a finding is at or above: error, warning, info, never.")] = "warning",
    downgrade: Annotated[bool, typer.Option(
        "--downgrade", help="Also lint downgrade() of Alembic revisions.")] = False,
    ignore: Annotated[list[str] | None, typer.Option(
        "--ignore", help="Do not run this lint rule (id or name); repeatable.", show_default=False)] = None,
    config: ConfigOption = None,
    output: OutputOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
) -> None:
    """Lint SQL migration files and Alembic revisions for unsafe schema changes.

    The rules are the catalogue's checks of area migrations (`dbtune checks list`); squawk's findings are
    merged in (squawk-cli is installed with dbtune). Needs no database."""
    from dbtune.migrate.lint import lint_paths
    from dbtune.report.lint import render_lint

    if fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on: {fail_on!r} is not one of {', '.join(FAIL_ON)}")
    cfg, _ = load_config(config)
    result = lint_paths(files, use_squawk=not no_squawk, config=cfg, include_downgrade=downgrade,
                        ignore=ignore or ())
    write_output(render_lint(result, format), output)
    raise typer.Exit(int(ExitCode.FINDINGS if fails(result.worst(), fail_on) else ExitCode.CLEAN))
