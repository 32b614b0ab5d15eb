"""Renderers of ``dbtune probe race`` output, chosen by :class:`~dbtune.report.render.Format`."""

from __future__ import annotations

from collections.abc import Callable

from dbtune.probe.race import RaceResult
from dbtune.report.race_json import render_race_json
from dbtune.report.race_text import render_race_text
from dbtune.report.render import Format, renderer

RACE_RENDERERS: dict[Format, Callable[[RaceResult], str]] = {
    Format.TEXT: render_race_text,
    Format.JSON: render_race_json,
}


def render_race(result: RaceResult, fmt: Format = Format.TEXT) -> str:
    """The race's result as text or JSON."""
    return renderer(RACE_RENDERERS, fmt, "dbtune probe race")(result)
