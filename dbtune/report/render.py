"""Output formats and the lookup tables that pick a renderer.

Every command's report has one table (``RENDERERS`` for audit, ``LINT_RENDERERS`` …) from a
:class:`Format` to the function that renders it; a format missing from a command's table is refused with
one ``error:`` line naming the ones it writes (:func:`renderer`, exit 2), before the command does any work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from importlib import import_module
from typing import Any, TypeVar

from dbtune.errors import UsageError
from dbtune.report.model import Report

R = TypeVar("R")


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"
    GITHUB = "github"
    HTML = "html"


def renderer(table: Mapping[Format, R], fmt: Format | str, command: str) -> R:
    """``table[fmt]``. Raises :class:`UsageError` naming the formats ``command`` writes when it has no
    renderer for ``fmt``."""
    try:
        return table[Format(fmt)]
    except (KeyError, ValueError):
        raise UsageError(f"--format {fmt}: {command} writes {', '.join(table)}") from None


def lazy(module: str, name: str) -> Callable[..., str]:
    """The renderer ``module.name``, imported when it is first called: a table names the HTML renderers
    this way, so that a CLI start does not import Jinja2 and plotly for a format it may not write."""

    def render_lazily(*args: Any) -> str:
        rendered: str = getattr(import_module(module), name)(*args)
        return rendered

    render_lazily.__name__ = render_lazily.__qualname__ = name
    return render_lazily


def _renderers() -> dict[Format, Callable[[Report], str]]:
    from dbtune.report.github import render_audit_github
    from dbtune.report.json import render_json
    from dbtune.report.markdown import render_markdown
    from dbtune.report.sarif import render_audit_sarif
    from dbtune.report.text import render_text

    return {Format.TEXT: render_text, Format.JSON: render_json, Format.MARKDOWN: render_markdown,
            Format.SARIF: render_audit_sarif, Format.GITHUB: render_audit_github,
            Format.HTML: lazy("dbtune.report.html", "render_audit_html")}


RENDERERS: dict[Format, Callable[[Report], str]] = _renderers()


def render(report: Report, fmt: Format) -> str:
    return renderer(RENDERERS, fmt, "dbtune audit")(report)
