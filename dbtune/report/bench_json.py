"""JSON renderings of ``dbtune bench``: the comparison, and a run's result file (``result_version`` 1)."""

from __future__ import annotations

import json

from dbtune.bench.compare import Comparison
from dbtune.bench.result import BenchResult


def render_comparison_json(c: Comparison) -> str:
    return json.dumps(c.to_json(), indent=2) + "\n"


def render_result_json(r: BenchResult) -> str:
    return json.dumps(r.to_json(), indent=1) + "\n"
