"""JSON rendering of ``dbtune probe race`` (``version`` 1: :meth:`dbtune.probe.race.RaceResult.to_json`)."""

from __future__ import annotations

import json

from dbtune.probe.race import RaceResult


def render_race_json(result: RaceResult) -> str:
    return json.dumps(result.to_json(), indent=2) + "\n"
