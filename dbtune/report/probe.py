"""Renderers of ``dbtune probe`` output and the profile table, chosen by :class:`~dbtune.report.render.Format`."""

from __future__ import annotations

import json
from collections.abc import Callable

from dbtune.probe.lag import LagResult
from dbtune.probe.load import LoadResult
from dbtune.probe.profile import ProfileTable
from dbtune.probe.recovery import RecoveryEstimate, RecoveryMeasurement
from dbtune.report.probe_json import render_lag_json, render_load_json, render_profile_json, render_recovery_json
from dbtune.report.probe_text import render_lag_text, render_load_text, render_profile_text, render_recovery_text
from dbtune.report.render import Format, renderer

LOAD_RENDERERS: dict[Format, Callable[[LoadResult], str]] = {Format.TEXT: render_load_text,
                                                             Format.JSON: render_load_json}
RECOVERY_RENDERERS: dict[Format, Callable[[RecoveryMeasurement | None, RecoveryEstimate | None], str]] = {
    Format.TEXT: render_recovery_text, Format.JSON: render_recovery_json}
LAG_RENDERERS: dict[Format, Callable[[LagResult], str]] = {Format.TEXT: render_lag_text, Format.JSON: render_lag_json}
PROFILE_RENDERERS: dict[Format, Callable[[ProfileTable], str]] = {Format.TEXT: render_profile_text,
                                                                  Format.JSON: render_profile_json}


def render_load(result: LoadResult, fmt: Format = Format.TEXT) -> str:
    return renderer(LOAD_RENDERERS, fmt, "dbtune probe load")(result)


def render_recovery(measured: RecoveryMeasurement | None, estimate: RecoveryEstimate | None,
                    fmt: Format = Format.TEXT) -> str:
    return renderer(RECOVERY_RENDERERS, fmt, "dbtune probe recovery")(measured, estimate)


def render_lag(result: LagResult, fmt: Format = Format.TEXT) -> str:
    return renderer(LAG_RENDERERS, fmt, "dbtune probe lag")(result)


def render_profile(table: ProfileTable, fmt: Format = Format.TEXT) -> str:
    return renderer(PROFILE_RENDERERS, fmt, "the profile table")(table)


def with_profile(body: str, table: ProfileTable, fmt: Format = Format.TEXT) -> str:
    """A probe's rendered ``body`` followed by its profile rows: the table under the text, or JSON
    ``{"result": …, "profile": …}``."""
    if fmt == Format.JSON:
        return json.dumps({"result": json.loads(body), "profile": json.loads(render_profile(table, fmt))},
                          indent=2) + "\n"
    return body + "\n" + render_profile(table, fmt)
