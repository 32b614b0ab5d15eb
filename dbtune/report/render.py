"""Output formats and the lookup table that picks a renderer."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from dbtune.report.json import render_json
from dbtune.report.model import Report
from dbtune.report.text import render_text


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


RENDERERS: dict[Format, Callable[[Report], str]] = {
    Format.TEXT: render_text,
    Format.JSON: render_json,
}


def render(report: Report, fmt: Format) -> str:
    return RENDERERS[fmt](report)
