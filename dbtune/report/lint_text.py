"""Plain-text migration lint report: a summary line, one tabulate table of findings (location, severity,
rule, source, message), the suggested fix SQL of each numbered finding, then notes (squawk's status,
what could not be read)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbtune.escape import display_sql, one_line, sql_comment
from dbtune.report.width import fit_lines, fit_table, line_width

if TYPE_CHECKING:
    from dbtune.migrate.lint import LintFinding, LintResult

MESSAGE_WIDTH = 72


def _source(f: LintFinding) -> str:
    return f"{f.source}+squawk" if f.also else f.source


def _squawk_line(result: LintResult) -> str:
    s = result.squawk
    if not s.ran:
        return f"squawk not run ({s.detail})"
    folded = sum(len(f.also) for f in result.findings)
    own = sum(1 for f in result.findings if f.source == "squawk")
    return f"squawk {s.version or ''} ran: {own} finding(s) of its own, {folded} matching dbtune's".replace("  ", " ")


def render_lint_text(result: LintResult) -> str:
    counts = result.counts()
    width = line_width()
    n_files = len(result.files)
    n = len(result.findings)
    lines = [f"dbtune migrate lint: {n_files} file{'s' if n_files != 1 else ''}, {n} finding{'s' if n != 1 else ''}: "
             f"{counts['error']} error, {counts['warning']} warning, {counts['info']} info",
             _squawk_line(result)]
    numbered = list(enumerate(result.findings, start=1))
    if numbered:
        rows = [(n, one_line(f.location), f.severity.value, f"{f.rule_id} {f.rule}" if f.rule_id else f.rule,
                 _source(f), one_line(f.full_message())) for n, f in numbered]
        lines += ["", fit_table(rows, ["#", "location", "severity", "rule", "source", "message"], width,
                                maxcolwidths=[None, 40, None, None, None, MESSAGE_WIDTH], wrap=[1, 3, 5])]
    fixes = [(n, f) for n, f in numbered if f.changes]
    if fixes:
        lines += ["", "FIX SQL"]
        for n, f in fixes:
            lines.append(sql_comment(f"#{n} {f.rule} {f.location}"))
            lines += [display_sql(c.up) for c in f.changes]
    if result.notes:
        lines += ["", "NOTES"] + [one_line(f"- {n}") for n in result.notes]
    return "\n".join(fit_lines(lines, width)) + "\n"
