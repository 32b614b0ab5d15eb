"""Markdown reports that fit a pull-request comment (GitHub-flavoured): a summary table, the findings by
severity (a table each), the fix SQL in ``sql`` blocks, what was skipped. A section longer than
:data:`OPEN_ROWS` rows, and the fix SQL past :data:`OPEN_SQL_LINES` lines, is folded in a
``<details>`` block, so that a long audit still reads from its summary down.

Text from the catalog is escaped for a table cell (``|``, line breaks, HTML's ``<`` ``>`` ``&``) and a
code block's fence is longer than any run of backticks inside it, so a name cannot break out of either.
See https://github.github.com/gfm/ (tables, fenced code blocks, HTML blocks).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dbtune.escape import display_sql, printable, sql_comment
from dbtune.model import Severity

if TYPE_CHECKING:
    from dbtune.bench.compare import Comparison
    from dbtune.migrate.lint import LintResult
    from dbtune.report.model import Report

OPEN_ROWS = 10
OPEN_SQL_LINES = 40


def cell(text: str) -> str:
    """``text`` fit for one table cell: one line, ``|`` and HTML's special characters escaped."""
    text = " ".join(printable(text).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")


def code_block(lines: Sequence[str], lang: str = "sql") -> list[str]:
    """A fenced block of ``lines`` (already escaped: :func:`~dbtune.escape.display_sql`,
    :func:`~dbtune.escape.sql_comment`) whose fence is longer than every run of backticks in them."""
    longest = max((len(m) for line in lines for m in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}{lang}", *lines, fence]


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|",
            *("| " + " | ".join(row) + " |" for row in rows)]


def folded(summary: str, body: list[str], fold: bool) -> list[str]:
    """``body`` under a heading, or in a ``<details>`` block titled ``summary`` when ``fold``."""
    if not fold:
        return [f"#### {summary}", "", *body, ""]
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def _summary(counts: dict[str, int], total: int) -> list[str]:
    return table(["findings", "error", "warning", "info"],
                 [[str(total), str(counts["error"]), str(counts["warning"]), str(counts["info"])]])


def render_markdown(report: Report) -> str:
    """``audit`` as Markdown."""
    lines = [f"### dbtune audit of `{cell(report.target)}` (PostgreSQL {report.server.short_version})", "",
             *_summary(report.counts(), len(report.findings)), ""]
    ordered = sorted(enumerate(report.findings), key=lambda nf: -nf[1].severity.rank)
    number = {n: shown for shown, (n, _) in enumerate(ordered, start=1)}
    for severity in Severity:
        rows = [[str(number[n]), f"`{f.check_id}` {cell(f.check_name)}", cell(f.object), cell(f.message)]
                for n, f in ordered if f.severity is severity]
        if rows:
            lines += folded(f"{severity.value} ({len(rows)})", table(["#", "check", "object", "message"], rows),
                            len(rows) > OPEN_ROWS)
    sql: list[str] = []
    for n, f in ordered:
        fix = report.fix_sql_of(n)
        if fix:
            sql += [sql_comment(f"#{number[n]} {f.check_name} {f.object}"), *(display_sql(s) for s in fix)]
    if sql:
        lines += folded("fix SQL (the plan `dbtune migrate generate` writes)", code_block(sql),
                        len("\n".join(sql).splitlines()) > OPEN_SQL_LINES)
    if report.skipped:
        rows = [[cell(s.what), cell(s.reason), cell(s.privilege or "")] for s in report.skipped]
        lines += folded(f"skipped ({len(rows)})", table(["what", "why", "needs"], rows), len(rows) > OPEN_ROWS)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_lint_markdown(result: LintResult) -> str:
    """``migrate lint`` as Markdown."""
    n_files = len(result.files)
    lines = [f"### dbtune migrate lint: {n_files} file{'s' if n_files != 1 else ''}", "",
             *_summary(result.counts(), len(result.findings)), ""]
    for severity in Severity:
        rows = [[str(n), f"`{cell(f.location)}`", cell(f"{f.rule_id} {f.rule}" if f.rule_id else f"squawk {f.rule}"),
                 cell(f.full_message(squawk=False))]
                for n, f in enumerate(result.findings, start=1) if f.severity is severity]
        if rows:
            lines += folded(f"{severity.value} ({len(rows)})", table(["#", "location", "rule", "message"], rows),
                            len(rows) > OPEN_ROWS)
    sql: list[str] = []
    for n, f in enumerate(result.findings, start=1):
        if f.changes:
            sql += [sql_comment(f"#{n} {f.rule} {f.location}"), *(display_sql(c.up) for c in f.changes)]
    if sql:
        lines += folded("suggested fix SQL", code_block(sql), len("\n".join(sql).splitlines()) > OPEN_SQL_LINES)
    if result.notes:
        lines += ["#### notes", "", *(f"- {cell(n)}" for n in result.notes), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def render_comparison_markdown(c: Comparison) -> str:
    """``bench compare`` as Markdown: the before/after table (p50, p95, p99 and mean in ms, before → after;
    the ratio of the round medians with its 95 % interval; the verdict; a plan change), then the queries
    only one run has and the notes. The numbers are the text table's (:mod:`dbtune.report.bench_text`)."""
    from dbtune.bench.compare import Verdict
    from dbtune.report.bench_text import arrow, floor_text, ratio_text

    b, a = c.before_server, c.after_server
    lines = [f"### dbtune bench compare: PostgreSQL {cell(b.version)} `{cell(b.target or b.database)}` → "
             f"PostgreSQL {cell(a.version)} `{cell(a.target or a.database)}`", "",
             f"Latencies in ms, before → after; ratio = before / after of the round medians, 95 % interval; "
             f"a change is called only past the noise floor (at least {c.min_change:.0%}).", ""]
    called = (Verdict.FASTER, Verdict.SLOWER)
    rows = [[cell(q.label), arrow(q.before.p50_ms, q.after.p50_ms), arrow(q.before.p95_ms, q.after.p95_ms),
             arrow(q.before.p99_ms, q.after.p99_ms), arrow(q.before.mean_ms, q.after.mean_ms), ratio_text(q.ratio),
             floor_text(q.noise_floor), f"**{q.verdict.value}**" if q.verdict in called else q.verdict.value,
             cell(q.plan_change or "")]
            for q in c.queries]
    if rows:
        lines += folded(f"queries ({len(rows)})",
                        table(["query", "p50", "p95", "p99", "mean", "ratio [95% CI]", "noise floor", "verdict",
                               "plan change"], rows), len(rows) > OPEN_ROWS)
    else:
        lines += ["No query appears in both runs.", ""]
    for title, names in (("only before", c.only_before), ("only after", c.only_after)):
        if names:
            lines += [f"{title}: " + ", ".join(f"`{cell(n)}`" for n in names), ""]
    notes = [*(f"compared despite (--force): {d}" for d in c.forced), *c.notes]
    if notes:
        lines += ["#### notes", "", *(f"- {cell(n)}" for n in notes), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
