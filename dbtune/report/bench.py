"""Rendering ``dbtune bench`` output (the tables are in :data:`dbtune.report.render.REGISTRY`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbtune.report.render import REGISTRY, Format, render

if TYPE_CHECKING:
    from dbtune.bench.compare import Comparison
    from dbtune.bench.result import BenchResult

COMPARISON_RENDERERS = REGISTRY["dbtune.bench.compare.Comparison"].renderers
RESULT_RENDERERS = REGISTRY["dbtune.bench.result.BenchResult"].renderers


def render_comparison(comparison: Comparison, fmt: Format = Format.TEXT) -> str:
    """The comparison as text, JSON, Markdown or HTML."""
    return render(comparison, fmt)


def render_result(result: BenchResult, fmt: Format = Format.TEXT) -> str:
    """A run's summary table (text) or its result file's JSON."""
    return render(result, fmt)
