"""The ``dbtune`` command: the Typer app and the error boundary.

Every :class:`~dbtune.errors.DbtuneError` becomes one ``error:`` line on stderr and its exit code; a
traceback is printed only with ``--verbose``.
"""

from __future__ import annotations

import sys
import traceback
import warnings
from typing import Any

import typer
from pydantic import ValidationError

from dbtune import __version__
from dbtune.cli import bench as bench_cli
from dbtune.cli import checks as checks_cli
from dbtune.cli import migrate as migrate_cli
from dbtune.cli import migrate_ops, probe_load
from dbtune.cli import probe as probe_cli
from dbtune.cli.advise import advise_command
from dbtune.cli.audit import audit_command
from dbtune.cli.common import echo, error_line
from dbtune.cli.demo import demo_command
from dbtune.cli.explain import explain_command
from dbtune.cli.tune import tune_command
from dbtune.config.messages import plain_message
from dbtune.errors import DbtuneError, ExitCode

# Click's exceptions, from wherever this Typer takes Click (its own vendored copy, or the click package).
_click_errors = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())

app = typer.Typer(
    rich_markup_mode=None,
    name="dbtune",
    help="PostgreSQL tuning advisor: audit a database against a catalogue of checks and your checklist.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("audit")(audit_command)
app.command("advise")(advise_command)
app.command("demo")(demo_command)
app.command("explain")(explain_command)
app.command("tune")(tune_command)
app.add_typer(checks_cli.app, name="checks")
migrate_ops.register(migrate_cli.app)
app.add_typer(migrate_cli.app, name="migrate")
app.add_typer(bench_cli.app, name="bench")
probe_load.register(probe_cli.probe_app)
app.add_typer(probe_cli.probe_app, name="probe")


def _version(value: bool) -> None:
    if value:
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
