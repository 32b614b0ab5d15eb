"""What a CLI start imports: HTML rendering (Jinja2, plotly) only when ``--format html`` is used, so that
``dbtune --help``, a pre-commit hook's ``dbtune migrate lint`` and every other command start without it
(issue 11's review). Read from ``python -X importtime``, which lists every module a process imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Imported only by the HTML renderers (dbtune.report.html), never at start.
HTML_ONLY = ("jinja2", "markupsafe", "plotly", "dbtune.report.html")


def imported(*args: str) -> set[str]:
    """The modules ``python -m dbtune ARGS`` imports, read from ``-X importtime`` on stderr."""
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "dbtune", *args], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


@pytest.mark.parametrize("args", [["--help"], ["migrate", "lint", "--help"], ["demo", "--help"]])
def test_the_cli_starts_without_html_rendering(args: list[str]) -> None:
    modules = imported(*args)
    assert "dbtune.cli.app" in modules  # the listing is real: the CLI itself is in it
    assert not [m for m in modules if m.split(".")[0] in HTML_ONLY or m in HTML_ONLY]
