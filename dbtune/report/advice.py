"""Renderers of ``dbtune advise`` output, chosen by :class:`~dbtune.report.render.Format`."""

from __future__ import annotations

from collections.abc import Callable

from dbtune.advisor.model import Advice
from dbtune.report.advice_json import render_advice_json
from dbtune.report.advice_text import render_advice_text
from dbtune.report.render import Format, lazy, renderer

ADVICE_RENDERERS: dict[Format, Callable[[Advice], str]] = {
    Format.TEXT: render_advice_text,
    Format.JSON: render_advice_json,
    Format.HTML: lazy("dbtune.report.html", "render_advice_html"),
}


def render_advice(advice: Advice, fmt: Format = Format.TEXT) -> str:
    """The advice of ``dbtune advise`` as text, JSON or HTML."""
    return renderer(ADVICE_RENDERERS, fmt, "dbtune advise")(advice)
