"""JSON rendering of ``dbtune advise``: :meth:`dbtune.advisor.model.Advice.to_json` (``advice_version`` 1),
indented, keys in a stable order; ``dbtune migrate generate --from`` reads it back as untrusted input."""

from __future__ import annotations

import json

from dbtune.advisor.model import Advice


def render_advice_json(advice: Advice) -> str:
    return json.dumps(advice.to_json(), indent=2) + "\n"
