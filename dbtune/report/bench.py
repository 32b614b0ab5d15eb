"""Renderers of ``dbtune bench`` output, chosen by :class:`~dbtune.report.render.Format`."""

from __future__ import annotations

from collections.abc import Callable

from dbtune.bench.compare import Comparison
from dbtune.bench.result import BenchResult
from dbtune.report.bench_json import render_comparison_json, render_result_json
from dbtune.report.bench_text import render_comparison_text, render_result_text
from dbtune.report.markdown import render_comparison_markdown
from dbtune.report.render import Format, lazy, renderer

COMPARISON_RENDERERS: dict[Format, Callable[[Comparison], str]] = {
    Format.TEXT: render_comparison_text,
    Format.JSON: render_comparison_json,
    Format.MARKDOWN: render_comparison_markdown,
    Format.HTML: lazy("dbtune.report.html", "render_comparison_html"),
}

RESULT_RENDERERS: dict[Format, Callable[[BenchResult], str]] = {
    Format.TEXT: render_result_text,
    Format.JSON: render_result_json,
}


def render_comparison(comparison: Comparison, fmt: Format = Format.TEXT) -> str:
    """The comparison table (text) or its JSON form."""
    return renderer(COMPARISON_RENDERERS, fmt, "dbtune bench compare")(comparison)


def render_result(result: BenchResult, fmt: Format = Format.TEXT) -> str:
    """A run's summary table (text) or its result file's JSON."""
    return renderer(RESULT_RENDERERS, fmt, "dbtune bench run")(result)
