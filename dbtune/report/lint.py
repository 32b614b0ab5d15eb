"""The lookup table that picks a migration lint renderer for an output format."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from dbtune.report.github import render_lint_github
from dbtune.report.lint_json import render_lint_json
from dbtune.report.lint_text import render_lint_text
from dbtune.report.markdown import render_lint_markdown
from dbtune.report.render import Format, renderer
from dbtune.report.sarif import render_lint_sarif

if TYPE_CHECKING:
    from dbtune.migrate.lint import LintResult

LINT_RENDERERS: dict[Format, Callable[[LintResult], str]] = {
    Format.TEXT: render_lint_text,
    Format.JSON: render_lint_json,
    Format.MARKDOWN: render_lint_markdown,
    Format.SARIF: render_lint_sarif,
    Format.GITHUB: render_lint_github,
}


def render_lint(result: LintResult, fmt: Format) -> str:
    return renderer(LINT_RENDERERS, fmt, "dbtune migrate lint")(result)
