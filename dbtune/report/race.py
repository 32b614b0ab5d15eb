"""Rendering ``dbtune probe race`` output (its table is in :data:`dbtune.report.render.REGISTRY`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbtune.report.render import REGISTRY, Format, render

if TYPE_CHECKING:
    from dbtune.probe.race import RaceResult

RACE_RENDERERS = REGISTRY["dbtune.probe.race.RaceResult"].renderers


def render_race(result: RaceResult, fmt: Format = Format.TEXT) -> str:
    """The race's result as text or JSON."""
    return render(result, fmt)
