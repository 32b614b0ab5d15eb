"""``dbtune probe``: measure the guide's targets on a staging database or the demo. ``probe race`` here;
other probes register their commands on :data:`probe_app`."""

from __future__ import annotations

from typing import Annotated

import typer

from dbtune.cli.common import (
    ConfigOption,
    DsnOption,
    NoColorOption,
    OutputOption,
    QuietOption,
    VerboseOption,
    connection_settings,
    format_option,
    write_output,
)
from dbtune.cli.progress import progress_display
from dbtune.config import load_config
from dbtune.errors import ExitCode
from dbtune.probe.race import RaceOptions, run_race
from dbtune.report import Format
from dbtune.report.race import RACE_RENDERERS, render_race

probe_app = typer.Typer(rich_markup_mode=None, no_args_is_help=True,
                        help="Measure the guide's targets (vendor win rate, load, crash recovery, replication lag) "
                             "on a staging database or the demo; never on production.")


@probe_app.command("race")
def race_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    sessions: Annotated[int | None, typer.Option(
        "--sessions", help="Concurrent sessions accepting the same routing each round (default: [probe.race] "
                           "sessions, 16).", show_default=False)] = None,
    rounds: Annotated[int | None, typer.Option(
        "--rounds", help="Rounds, each with a routing of its own (default: [probe.race] rounds, 200).",
        show_default=False)] = None,
    table: Annotated[str | None, typer.Option(
        "--table", help="The response table to copy and race (default: [probe.race] table, "
                        "vendor_routing_responses).", show_default=False)] = None,
    yes: Annotated[bool, typer.Option(
        "--yes", help="Confirm the target is not production: the probe creates and drops a scratch schema "
                      "dbtune_probe_<random> in it.")] = False,
    format: Annotated[Format, format_option(RACE_RENDERERS, "dbtune probe race", "Output format")] = Format.TEXT,
    output: OutputOption = None,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Race concurrent accepts of the same routing (read whether an ACCEPTED response exists, then insert
    one, in one READ COMMITTED transaction) on a scratch copy of the response table, and report the win rate
    (rounds with exactly one winner) and the constraint that makes it 100 %, or the index that would.
    Exit 1 when the win rate is below 100 %."""
    cfg, _ = load_config(config)
    options = RaceOptions.from_config(cfg.probe.race, table=table, sessions=sessions, rounds=rounds)
    settings = connection_settings(dsn, cfg)
    with progress_display(quiet, no_color) as display:
        result = run_race(settings, options, yes=yes, progress=display.note, count=display.count)
    write_output(render_race(result, format), output)
    raise typer.Exit(int(ExitCode.CLEAN if result.passed else ExitCode.FINDINGS))
