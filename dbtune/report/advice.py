"""Rendering ``dbtune advise`` output (its table is in :data:`dbtune.report.render.REGISTRY`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbtune.report.render import REGISTRY, Format, render

if TYPE_CHECKING:
    from dbtune.advisor.model import Advice

ADVICE_RENDERERS = REGISTRY["dbtune.advisor.model.Advice"].renderers


def render_advice(advice: Advice, fmt: Format = Format.TEXT) -> str:
    """The advice of ``dbtune advise`` as text, JSON, Markdown or HTML."""
    return render(advice, fmt)
