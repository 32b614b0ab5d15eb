"""JSON migration lint report (``lint_version`` 1), indented, keys in a stable order: ``files``,
``summary`` (counts by severity), ``squawk`` (``ran``, ``version``, ``detail``), ``rules`` (the ids run),
``findings`` (``file``, ``line``, ``rule_id`` — null for squawk —, ``rule``, ``severity``, ``source``,
``message``, ``help``, ``statement``, ``also_squawk``, ``fix``) and ``notes``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dbtune.migrate.lint import LintResult


def render_lint_json(result: LintResult) -> str:
    return json.dumps(result.to_json(), indent=2, default=str) + "\n"
