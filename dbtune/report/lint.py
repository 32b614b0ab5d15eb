"""The lookup table that picks a migration lint renderer for an output format."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dbtune.report.lint_json import render_lint_json
from dbtune.report.lint_text import render_lint_text
from dbtune.report.render import Format

if TYPE_CHECKING:
    from dbtune.migrate.lint import LintResult

LINT_RENDERERS: dict[Format, Callable[[LintResult], str]] = {
    Format.TEXT: render_lint_text,
    Format.JSON: render_lint_json,
}


def render_lint(result: LintResult, fmt: Format) -> str:
    return LINT_RENDERERS[fmt](result)
