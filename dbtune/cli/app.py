"""The ``dbtune`` command: the Typer app and the error boundary.

Every :class:`~dbtune.errors.DbtuneError` becomes one ``error:`` line on stderr and its exit code; a
traceback is printed only with ``--verbose``.

A command's module (and the library it calls: psycopg, pglast, sqlglot, the catalogue …) is imported only
when that command runs or its help is shown (:class:`LazyGroup`): ``dbtune --help`` lists the commands
from :data:`COMMANDS` alone.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from dbtune import __version__
from dbtune.errors import DbtuneError, ExitCode

# Click's exceptions, from wherever this Typer takes Click (its own vendored copy, or the click package).
_click_errors = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())


@dataclass(frozen=True)
class LazyCommand:
    """A command of ``dbtune``: ``load`` imports its module and returns its function or Typer app;
    ``summary`` is the first sentence of its help, the line ``dbtune --help`` shows (a test checks that
    the two agree)."""

    summary: str
    load: Callable[[], Any]


def _attribute(module: str, name: str) -> Callable[[], Any]:
    return lambda: getattr(import_module(module), name)


@cache
def _migrate_app() -> typer.Typer:
    from dbtune.cli import migrate, migrate_ops

    migrate_ops.register(migrate.app)
    return migrate.app


@cache
def _probe_app() -> typer.Typer:
    from dbtune.cli import probe, probe_load

    probe_load.register(probe.probe_app)
    return probe.probe_app


COMMANDS: dict[str, LazyCommand] = {
    "audit": LazyCommand("Audit a database, read-only, against the check catalogue and the config's expectations, "
                         "and the plans of its workload (planned, never run) against the plan checks.",
                         _attribute("dbtune.cli.audit", "audit_command")),
    "advise": LazyCommand("Recommend indexes for the workload as a whole: candidates from each query's column "
                          "usage, costed by the planner with hypothetical indexes (hypopg) or ranked by pg_stats, "
                          "chosen under --budget weighing each index's benefit against its size and write cost.",
                          _attribute("dbtune.cli.advise", "advise_command")),
    "demo": LazyCommand("Start a throwaway PostgreSQL with the guide's schema, data and query mix, audit it, then "
                        "generate, lint and apply the fixes, benchmark the queries and race concurrent vendor "
                        "accepts (the vendor win rate) before and after, and audit again.",
                        _attribute("dbtune.cli.demo", "demo_command")),
    "explain": LazyCommand("Show the plans of queries with the plan checks' findings.",
                           _attribute("dbtune.cli.explain", "explain_command")),
    "tune": LazyCommand("Audit, advise (the advisor's indexes built, measured and kept only when they help), "
                        "generate and lint the migration, benchmark, apply (after confirmation), benchmark again, "
                        "compare.", _attribute("dbtune.cli.tune", "tune_command")),
    "checks": LazyCommand("The check catalogue.", _attribute("dbtune.cli.checks", "app")),
    "migrate": LazyCommand("Migrations.", _migrate_app),
    "bench": LazyCommand("Benchmark a workload, and compare two runs before and after a change.",
                         _attribute("dbtune.cli.bench", "app")),
    "probe": LazyCommand("Measure the guide's targets (vendor win rate, load, crash recovery, replication lag) on "
                         "a staging database or the demo; never on production.", _probe_app),
}


class _Unloaded(TyperCommand):
    """A command of :data:`COMMANDS` not imported yet: its name and summary, for the listing."""

    def __init__(self, name: str, command: LazyCommand) -> None:
        super().__init__(name=name, help=command.summary)
        self.lazy = command


def loaded(name: str, target: Any) -> Any:
    """The Click command Typer builds for a command function (as ``app.command(name)`` does) or a Typer
    app (as ``app.add_typer`` does)."""
    if isinstance(target, typer.Typer):
        return typer.main.get_group(target)
    single = typer.Typer(rich_markup_mode=None, pretty_exceptions_enable=False, add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class LazyGroup(TyperGroup):
    """The root group: holds every command of :data:`COMMANDS` by name (so that a typo is still answered
    with "Did you mean …"), and imports one only when it is asked for (:meth:`get_command`)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, command in COMMANDS.items():
            self.commands.setdefault(name, _Unloaded(name, command))

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = self.commands.get(cmd_name)
        if isinstance(command, _Unloaded):
            command = self.commands[cmd_name] = loaded(cmd_name, command.lazy.load())
        return command

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """The listing of ``dbtune --help``, from the commands as they are (unloaded ones by their summary),
        as Typer lays it out."""
        rows = [(name, command) for name, command in self.commands.items() if not command.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, command.get_short_help_str(limit)) for name, command in rows])


app = typer.Typer(
    rich_markup_mode=None,
    name="dbtune",
    help="PostgreSQL tuning advisor: audit a database against a catalogue of checks and your checklist.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyGroup,
)


def _version(value: bool) -> None:
    if value:
        from dbtune.cli.common import echo

        echo(f"dbtune {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """dbtune: audit, advise, migrate, benchmark."""


def _usage_message(exc: Any) -> str:
    """Click's message for a usage error, in dbtune's words: an option's refused value as
    ``--format: 'xml' is not one of 'text', 'json'``, without the wording of the pydantic coercion
    Typer uses (``Value error, …``, ``Input should be a valid integer, unable to parse …``)."""
    from pydantic import ValidationError

    from dbtune.config.messages import plain_message

    cause = exc.__cause__
    param: Any = getattr(exc, "param", None)
    if isinstance(exc, _click_errors.BadParameter) and isinstance(cause, ValidationError) and cause.errors():
        name = (param.opts[0] if getattr(param, "opts", None) else None) or getattr(param, "name", None)
        value = cause.errors()[0].get("input")
        message = plain_message(cause.errors()[0]).rstrip(".")
        if repr(value) not in message and isinstance(value, str):
            message += f", got {value!r}"
        return f"{name}: {message}" if name else message
    return " ".join(exc.format_message().split())


def error_line(message: str) -> None:
    """:func:`dbtune.cli.common.error_line`, imported when an error is printed (the module imports the
    report renderers and the config model, which ``dbtune --help`` does without)."""
    from dbtune.cli.common import error_line as print_error

    print_error(message)


def main() -> None:
    """Console entry point."""
    warnings.filterwarnings("ignore", module="platformdirs")
    verbose = any(a in ("--verbose", "-v") for a in sys.argv[1:])
    try:
        code = app(standalone_mode=False, prog_name="dbtune")
    except DbtuneError as exc:
        if verbose:
            traceback.print_exc()
        error_line(str(exc))
        sys.exit(int(exc.exit_code))
    except _NoArgsIsHelp as exc:
        # A bare `dbtune` or command group: its usage and commands, on stderr as a usage error is.
        print(exc.format_message(), file=sys.stderr, flush=True)
        sys.exit(int(ExitCode.USAGE))
    except _click_errors.UsageError as exc:
        # Bad options or arguments: one line, like every other error, not Click's usage panel.
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        error_line(f"{_usage_message(exc)}{where}")
        sys.exit(int(ExitCode.USAGE))
    except _click_errors.ClickException as exc:
        error_line(" ".join(exc.format_message().split()))
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        error_line("interrupted")
        sys.exit(130)
    if code == 130:  # Typer turns a KeyboardInterrupt (Ctrl-C) inside a command into exit code 130 itself
        error_line("interrupted")
    sys.exit(code if isinstance(code, int) else int(ExitCode.CLEAN))
