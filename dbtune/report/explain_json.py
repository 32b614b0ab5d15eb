"""JSON rendering of ``dbtune explain`` (:meth:`dbtune.plans.api.ExplainReport.to_json`): the report's
header and server, then ``queries``, one object per query in the order given (name, text, fingerprint,
kind, analyzed, parameters, notes, error, plan as the server returned it, findings in the audit report's
shape)."""

from __future__ import annotations

import json

from dbtune.plans.api import ExplainReport


def render_explain_json(report: ExplainReport) -> str:
    return json.dumps(report.to_json(), indent=2, default=str) + "\n"
