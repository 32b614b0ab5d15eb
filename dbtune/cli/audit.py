"""``dbtune audit``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dbtune.appconfig import AppConfig, read_app_config
from dbtune.appconfig.read import relative_to
from dbtune.audit import audit
from dbtune.cli.common import (
    AppConfigOption,
    ConfigOption,
    DsnOption,
    NoColorOption,
    OutputOption,
    QuietOption,
    VerboseOption,
    WorkloadFormatOption,
    check_workload_format,
    connection_settings,
    fail_on_level,
    fails,
    format_option,
    write_output,
)
from dbtune.config import load_config
from dbtune.config.model import Config
from dbtune.errors import ExitCode
from dbtune.report import Format, render
from dbtune.report.render import RENDERERS


def app_config_of(config: Config, config_path: Path | None, paths: list[str]) -> AppConfig | None:
    """The application config of the config's ``app_config`` (relative to the config file) and the command
    line's ``--app-config`` (relative to the working directory); ``None`` when neither names any."""
    if not config.app_config and not paths:
        return None
    base = config_path.parent if config_path else None
    return read_app_config([*(relative_to(item, base) for item in config.app_config), *paths])


def audit_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    format: Annotated[Format, format_option(RENDERERS, "dbtune audit", "Report format")] = Format.TEXT,
    output: OutputOption = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", help="Exit 1 when a finding is at or above: error, warning, info, never. "
                          "Default: the config's audit.fail_on (error).", show_default=False)] = None,
    select: Annotated[list[str] | None, typer.Option("--select", metavar="CHECK",
                                                    help="Run only this check (id or name); repeat for more.")] = None,
    ignore: Annotated[list[str] | None, typer.Option("--ignore", metavar="CHECK",
                                                    help="Skip this check (id or name); repeat for more.")] = None,
    statement_timeout: Annotated[str | None, typer.Option(
        "--statement-timeout", help="Per-statement limit, e.g. 30s (default: config, then 30s).",
        show_default=False)] = None,
    workload: Annotated[Path | None, typer.Option(
        "--workload", help="SQL file of the application's queries to plan for the plan checks (default: the "
        "top audit.plan_queries statements of pg_stat_statements, when it is created).",
        show_default=False)] = None,
    workload_format: WorkloadFormatOption = None,
    app_config: AppConfigOption = None,
    verbose: VerboseOption = False,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
) -> None:
    """Audit a database, read-only, against the check catalogue and the config's expectations, and the
    plans of its workload (planned, never run) against the plan checks."""
    check_workload_format(workload_format, workload)
    cfg, cfg_path = load_config(config)
    level = fail_on_level(fail_on, cfg)
    app = app_config_of(cfg, cfg_path, app_config or [])
    settings = connection_settings(dsn, cfg, statement_timeout)
    report = audit(settings, cfg, config_path=cfg_path, select=select or (), ignore=ignore or (),
                   workload=workload, workload_format=workload_format, app_config=app)
    write_output(render(report, format), output)
    raise typer.Exit(int(ExitCode.FINDINGS if fails(report.worst(), level) else ExitCode.CLEAN))
