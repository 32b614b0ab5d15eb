"""Rendering a migration lint result (its table is in :data:`dbtune.report.render.REGISTRY`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbtune.report.render import REGISTRY, Format, render

if TYPE_CHECKING:
    from dbtune.migrate.lint import LintResult

LINT_RENDERERS = REGISTRY["dbtune.migrate.lint.LintResult"].renderers


def render_lint(result: LintResult, fmt: Format) -> str:
    return render(result, fmt)
