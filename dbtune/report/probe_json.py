"""JSON renderings of ``dbtune probe load|recovery|lag`` and the profile table: each result's
``to_json`` (``report_version``, ``command``, a ``kind``, the fields as they are: times in ms or s as
named, sizes in bytes)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbtune.probe.lag import LagResult
    from dbtune.probe.load import LoadResult
    from dbtune.probe.profile import ProfileTable
    from dbtune.probe.recovery import RecoveryReport


def _dump(body: dict[str, object]) -> str:
    return json.dumps(body, indent=2, default=str) + "\n"


def render_load_json(result: LoadResult) -> str:
    return _dump(result.to_json())


def render_recovery_report_json(report: RecoveryReport) -> str:
    return _dump(report.to_json())


def render_lag_json(result: LagResult) -> str:
    return _dump(result.to_json())


def render_profile_json(table: ProfileTable) -> str:
    return _dump(table.to_json())
