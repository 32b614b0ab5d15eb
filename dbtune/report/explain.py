"""Renderers of ``dbtune explain`` output, chosen by :class:`~dbtune.report.render.Format`."""

from __future__ import annotations

from collections.abc import Callable

from dbtune.plans.api import ExplainReport
from dbtune.report.explain_json import render_explain_json
from dbtune.report.explain_text import render_explain_text
from dbtune.report.render import Format, lazy, renderer

EXPLAIN_RENDERERS: dict[Format, Callable[[ExplainReport], str]] = {
    Format.TEXT: render_explain_text,
    Format.JSON: render_explain_json,
    Format.HTML: lazy("dbtune.report.html", "render_explain_html"),
}


def render_explain(report: ExplainReport, fmt: Format = Format.TEXT) -> str:
    """The plans and findings of ``dbtune explain`` as text, JSON or HTML."""
    return renderer(EXPLAIN_RENDERERS, fmt, "dbtune explain")(report)
