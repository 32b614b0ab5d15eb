"""Rendering ``dbtune explain`` output (its table is in :data:`dbtune.report.render.REGISTRY`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbtune.report.render import REGISTRY, Format, render

if TYPE_CHECKING:
    from dbtune.plans.api import ExplainReport

EXPLAIN_RENDERERS = REGISTRY["dbtune.plans.api.ExplainReport"].renderers


def render_explain(report: ExplainReport, fmt: Format = Format.TEXT) -> str:
    """The plans and findings of ``dbtune explain`` as text, JSON, Markdown or HTML."""
    return render(report, fmt)
