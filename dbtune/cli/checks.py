"""``dbtune checks list`` and ``dbtune checks show NAME``."""

from __future__ import annotations

from typing import Annotated

import typer
from tabulate import tabulate

from dbtune.checks import DOC_SECTIONS, load_catalogue
from dbtune.checks.runner import no_check_message
from dbtune.cli.common import VerboseOption, echo
from dbtune.errors import UsageError

app = typer.Typer(rich_markup_mode=None, help="The check catalogue.", no_args_is_help=True)


@app.command("list")
def list_checks(verbose: VerboseOption = False) -> None:
    """List every check: id, name, area, severity, whether a fix is generated, and what it finds."""
    rows = [(c.meta.id, c.meta.name, c.meta.area, c.meta.severity.value, "yes" if c.meta.fix else "",
             c.summary) for c in load_catalogue()]
    echo(tabulate(rows, headers=["id", "name", "area", "severity", "fix", "summary"],
                        maxcolwidths=[None, None, None, None, None, 70]))


@app.command("show")
def show_check(name: Annotated[str, typer.Argument(help="Check id or name, e.g. IX001 or duplicate-index.")],
               verbose: VerboseOption = False) -> None:
    """Print a check's documentation page."""
    catalogue = load_catalogue()
    found = catalogue.get(name)
    if found is None:
        raise UsageError(no_check_message(name, catalogue))
    m = found.meta
    lines = [f"{m.id} {m.name}", "",
             f"area: {m.area}    severity: {m.severity.value}    fix generated: {'yes' if m.fix else 'no'}"
             f"    minimum server_version_num: {m.min_version_num}"]
    if m.options:
        lines.append("options: " + ", ".join(f"{k} = {v!r}" for k, v in m.options.items()))
    for section in DOC_SECTIONS:
        lines += ["", f"## {section}", found.doc[section]]
    echo("\n".join(lines))
