"""Rendering ``dbtune probe`` output and the profile table (their tables are in
:data:`dbtune.report.render.REGISTRY`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from dbtune.report.render import REGISTRY, Format, render

if TYPE_CHECKING:
    from dbtune.probe.lag import LagResult
    from dbtune.probe.load import LoadResult
    from dbtune.probe.profile import ProfileTable
    from dbtune.probe.recovery import RecoveryEstimate, RecoveryMeasurement, RecoveryReport

LOAD_RENDERERS = REGISTRY["dbtune.probe.load.LoadResult"].renderers
RECOVERY_RENDERERS = REGISTRY["dbtune.probe.recovery.RecoveryReport"].renderers
LAG_RENDERERS = REGISTRY["dbtune.probe.lag.LagResult"].renderers
PROFILE_RENDERERS = REGISTRY["dbtune.probe.profile.ProfileTable"].renderers


def render_load(result: LoadResult, fmt: Format = Format.TEXT) -> str:
    return render(result, fmt)


def render_recovery(measured: RecoveryMeasurement | None, estimate: RecoveryEstimate | None,
                    fmt: Format = Format.TEXT) -> str:
    from dbtune.probe.recovery import RecoveryReport

    return render(RecoveryReport(measured, estimate), fmt)


def render_recovery_report_text(report: RecoveryReport) -> str:
    from dbtune.report.probe_text import render_recovery_text

    return render_recovery_text(report.measured, report.estimate)


def render_lag(result: LagResult, fmt: Format = Format.TEXT) -> str:
    return render(result, fmt)


def render_profile(table: ProfileTable, fmt: Format = Format.TEXT) -> str:
    return render(table, fmt)


def with_profile(body: str, table: ProfileTable, fmt: Format = Format.TEXT) -> str:
    """A probe's rendered ``body`` followed by its profile rows: the table under the text, or JSON
    ``{"result": …, "profile": …}``."""
    if fmt == Format.JSON:
        return json.dumps({"result": json.loads(body), "profile": json.loads(render_profile(table, fmt))},
                          indent=2) + "\n"
    return body + "\n" + render_profile(table, fmt)
