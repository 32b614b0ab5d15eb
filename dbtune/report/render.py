"""Output formats and the one registry that picks a renderer for a report.

Every command's report satisfies :class:`~dbtune.model.CommandReport`; :data:`REGISTRY` maps each report
type to its :class:`Table`, the command that writes it and, per :class:`Format`, its renderer, and
:func:`render` chooses by the report's type and the format. A format missing from a command's table is
refused with one ``error:`` line naming the ones it writes (:func:`renderer`, exit 2), as the command
line is read (:func:`dbtune.cli.common.format_option` asks the table before the command does any work).

The renderers are named by import path (``module:function``) and imported when first used, so that
reading the registry (a CLI start, ``--help``) imports neither Jinja2 and plotly (``dbtune.report.html``)
nor any other renderer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from dbtune.errors import UsageError
from dbtune.lazy import imported

if TYPE_CHECKING:
    from dbtune.model import CommandReport

R = TypeVar("R")


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MARKDOWN = "markdown"
    SARIF = "sarif"
    GITHUB = "github"
    HTML = "html"


# The file name extension of each format (the golden files', and what a user would name the output).
EXTENSIONS = {Format.TEXT: "txt", Format.JSON: "json", Format.MARKDOWN: "md", Format.SARIF: "sarif",
              Format.GITHUB: "github.txt", Format.HTML: "html"}


@dataclass(frozen=True)
class Table:
    """One report type's renderers: ``command`` as the user types it (``"dbtune migrate lint"``), and per
    format the function that renders the report as ``"module:function"``."""

    command: str
    renderers: Mapping[Format, str]


def _table(command: str, **renderers: str) -> Table:
    return Table(f"dbtune {command}", {Format(fmt.lower()): path for fmt, path in renderers.items()})


_R = "dbtune.report."
# The report types by their import path (``module.Class``), each with its table.
REGISTRY: dict[str, Table] = {
    "dbtune.report.model.Report": _table(
        "audit", TEXT=_R + "text:render_text", JSON=_R + "json:render_json", MARKDOWN=_R + "markdown:render_markdown",
        SARIF=_R + "sarif:render_audit_sarif", GITHUB=_R + "github:render_audit_github",
        HTML=_R + "html:render_audit_html"),
    "dbtune.migrate.lint.LintResult": _table(
        "migrate lint", TEXT=_R + "lint_text:render_lint_text", JSON=_R + "lint_json:render_lint_json",
        MARKDOWN=_R + "markdown:render_lint_markdown", SARIF=_R + "sarif:render_lint_sarif",
        GITHUB=_R + "github:render_lint_github"),
    "dbtune.advisor.model.Advice": _table(
        "advise", TEXT=_R + "advice_text:render_advice_text", JSON=_R + "advice_json:render_advice_json",
        MARKDOWN=_R + "markdown:render_advice_markdown", HTML=_R + "html:render_advice_html"),
    "dbtune.plans.api.ExplainReport": _table(
        "explain", TEXT=_R + "explain_text:render_explain_text", JSON=_R + "explain_json:render_explain_json",
        MARKDOWN=_R + "markdown:render_explain_markdown", HTML=_R + "html:render_explain_html"),
    "dbtune.bench.compare.Comparison": _table(
        "bench compare", TEXT=_R + "bench_text:render_comparison_text", JSON=_R + "bench_json:render_comparison_json",
        MARKDOWN=_R + "markdown:render_comparison_markdown", HTML=_R + "html:render_comparison_html"),
    "dbtune.bench.result.BenchResult": _table(
        "bench run", TEXT=_R + "bench_text:render_result_text", JSON=_R + "bench_json:render_result_json"),
    "dbtune.probe.race.RaceResult": _table(
        "probe race", TEXT=_R + "race_text:render_race_text", JSON=_R + "race_json:render_race_json"),
    "dbtune.probe.load.LoadResult": _table(
        "probe load", TEXT=_R + "probe_text:render_load_text", JSON=_R + "probe_json:render_load_json"),
    "dbtune.probe.lag.LagResult": _table(
        "probe lag", TEXT=_R + "probe_text:render_lag_text", JSON=_R + "probe_json:render_lag_json"),
    "dbtune.probe.recovery.RecoveryReport": _table(
        "probe recovery", TEXT=_R + "probe:render_recovery_report_text",
        JSON=_R + "probe_json:render_recovery_report_json"),
    "dbtune.probe.profile.ProfileTable": Table("the profile table", {
        Format.TEXT: _R + "probe_text:render_profile_text", Format.JSON: _R + "probe_json:render_profile_json"}),
    # demo and tune stream their stages as text or JSON while they run (dbtune.cli.loop.LoopPrinter); the
    # LoopResult they end with is written whole as the review page.
    "dbtune.loop.LoopResult": _table("tune", HTML=_R + "html:render_loop_html"),
}


def type_name(report_type: type) -> str:
    """A report type's key in :data:`REGISTRY`: ``"module.Class"``."""
    return f"{report_type.__module__}.{report_type.__qualname__}"


def renderer(table: Mapping[Format, R], fmt: Format | str, command: str) -> R:
    """``table[fmt]``. Raises :class:`UsageError` naming the formats ``command`` writes when it has no
    renderer for ``fmt``."""
    try:
        return table[Format(fmt)]
    except (KeyError, ValueError):
        raise UsageError(f"--format {fmt}: {command} writes {', '.join(table)}") from None


def table_of(report: CommandReport | type) -> Table:
    """The table of a report (or a report type). Raises :class:`KeyError` for a type no table has."""
    return REGISTRY[type_name(report if isinstance(report, type) else type(report))]


@cache
def load(path: str) -> Callable[..., str]:
    """The renderer at ``"module:function"``, imported on first use."""
    module, _, name = path.partition(":")
    found: Callable[..., str] = imported(module, name)
    return found


def render(report: CommandReport, fmt: Format | str, **context: Any) -> str:
    """``report`` rendered as ``fmt`` by the renderer its type's table names (``context`` is passed on:
    the demo's profile table to the review page). Raises :class:`UsageError` (exit 2) naming the formats
    the command writes when its table has no ``fmt``."""
    table = table_of(report)
    return load(renderer(table.renderers, fmt, table.command))(report, **context)


# The audit's table, as the audit command and the loop name it.
RENDERERS: Mapping[Format, str] = REGISTRY["dbtune.report.model.Report"].renderers
