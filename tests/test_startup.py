"""What a CLI start imports (issue 11's review): HTML rendering (Jinja2, plotly) only when ``--format
html`` is used, so that ``dbtune --help``, a pre-commit hook's ``dbtune migrate lint`` and every other
command start without it; and ``dbtune --help`` none of the library (its commands' modules are imported
when one runs: :class:`dbtune.cli.app.LazyGroup`). Read from ``sys.modules`` as the process exits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.main import get_command

from dbtune.cli.app import COMMANDS, app

# Imported only by the HTML renderers (dbtune.report.html), never at start.
HTML_ONLY = ("jinja2", "markupsafe", "plotly", "dbtune.report.html")
# What the commands use, which listing them needs none of.
LIBRARIES = ("psycopg", "pglast", "sqlglot", "pydantic", "tabulate", "yaml", "rich", "alembic", "sqlalchemy")


# ``dbtune ARGS`` in a fresh interpreter, then the names in sys.modules on stderr when it exits (-X importtime
# would miss a module imported by importlib.import_module, as the lazy entries import theirs).
PROBE = ("import atexit, json, sys; atexit.register(lambda: sys.stderr.write('\\nMODULES ' + json.dumps(sorted("
         "sys.modules)))); sys.argv = ['dbtune', *sys.argv[1:]]; from dbtune.cli.app import main; main()")


def imported(*args: str) -> set[str]:
    """The modules ``dbtune ARGS`` has imported when it exits."""
    run = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    return set(json.loads(run.stderr.rsplit("\nMODULES ", 1)[1]))


@pytest.mark.parametrize("args", [["--help"], ["migrate", "lint", "--help"], ["demo", "--help"]])
def test_the_cli_starts_without_html_rendering(args: list[str]) -> None:
    modules = imported(*args)
    assert "dbtune.cli.app" in modules  # the listing is real: the CLI itself is in it
    assert not [m for m in modules if m.split(".")[0] in HTML_ONLY or m in HTML_ONLY]


def test_dbtune_help_imports_no_command_and_no_library() -> None:
    modules = imported("--help")
    assert "dbtune.cli.app" in modules
    assert not [m for m in modules if m.split(".")[0] in LIBRARIES or m.startswith("dbtune.") and
                m not in ("dbtune.cli", "dbtune.cli.app", "dbtune.errors")]


@pytest.mark.parametrize("width", [80, 200])
def test_the_listing_of_dbtune_help_is_each_command_s_own_first_sentence(width: int) -> None:
    """``dbtune --help`` lists the commands by their summaries in COMMANDS, none imported; each one loaded,
    the listing made from its own help is the same."""
    group = get_command(app)
    ctx = group.make_context("dbtune", [], resilient_parsing=True, terminal_width=width, max_content_width=width)
    listed = group.get_help(ctx)
    for name in COMMANDS:
        assert type(group.get_command(ctx, name)).__name__ in ("TyperCommand", "TyperGroup")
    assert group.get_help(ctx) == listed


@pytest.mark.parametrize("args", [["migrate", "lint", "--help"], ["checks", "list", "--help"]])
def test_commands_that_read_no_workload_nor_app_config_start_without_their_libraries(args: list[str]) -> None:
    """sqlglot (column usage), PyYAML and python-dotenv (the application config's readers) are imported by
    the packages' names that need them, not by the packages (dbtune.lazy)."""
    modules = imported(*args)
    assert "dbtune.cli.migrate" in modules or "dbtune.cli.checks" in modules
    assert not [m for m in modules if m.split(".")[0] in ("sqlglot", "yaml", "dotenv")]
