"""JSON renderings of ``dbtune probe load|recovery|lag`` and the profile table: the results' fields as
they are (times in ms or s as named, sizes in bytes), under a ``kind``."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from dbtune.probe.lag import LagResult
from dbtune.probe.load import LoadResult
from dbtune.probe.profile import ProfileTable
from dbtune.probe.recovery import RecoveryEstimate, RecoveryMeasurement


def _dump(kind: str, body: dict[str, Any]) -> str:
    return json.dumps({"kind": kind, **body}, indent=2, default=str) + "\n"


def render_load_json(result: LoadResult) -> str:
    return _dump("dbtune-probe-load", {**dataclasses.asdict(result), "error_rate_pct": result.error_rate_pct})


def render_recovery_json(measured: RecoveryMeasurement | None, estimate: RecoveryEstimate | None) -> str:
    return _dump("dbtune-probe-recovery", {
        "measured": dataclasses.asdict(measured) if measured else None,
        "estimate": {**dataclasses.asdict(estimate), "how": estimate.how} if estimate else None})


def render_lag_json(result: LagResult) -> str:
    return _dump("dbtune-probe-lag", {**dataclasses.asdict(result), "worst_s": result.worst_s})


def render_profile_json(table: ProfileTable) -> str:
    return _dump("dbtune-profile", dataclasses.asdict(table))
