"""JSON report (``report_version`` 1), indented, keys in a stable order."""

from __future__ import annotations

import json

from dbtune.report.model import Report


def render_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2, default=str) + "\n"
