"""Markdown reports that fit a pull-request comment (GitHub-flavoured), for ``audit``, ``migrate lint``,
``bench compare``, ``advise`` and ``explain``: a summary table, the findings by severity (a table each),
the fix SQL in ``sql`` blocks, what was skipped; the advisor's recommendations with their DDL and the
queries each serves; each explained query's problems with its plan in a ``<details>`` block. A section longer than
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

from dbtune.escape import clip, display_sql, printable, sql_comment
from dbtune.model import Severity

if TYPE_CHECKING:
    from dbtune.advisor.model import Advice, Rejected
    from dbtune.bench.compare import Comparison
    from dbtune.migrate.lint import LintResult
    from dbtune.plans.api import ExplainEntry, ExplainReport
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
    numbered = report.by_severity()
    ordered = [nf for _, nf in numbered]
    number = {n: shown for shown, (n, _) in numbered}
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


def _cost(value: float) -> str:
    return f"{value:,.2f}"


def _left_out_rows(entries: Sequence[Rejected]) -> list[list[str]]:
    return [[cell(r.candidate.describe()), cell(r.stage), cell(r.reason), _cost(r.benefit),
             _cost(r.write_cost)] for r in entries]


def render_advice_markdown(advice: Advice) -> str:
    """``advise`` as Markdown: how it ranked and the run's figures, the recommendations table (index, size,
    benefit and write cost in planner units, the queries served), then per recommendation its DDL in an
    ``sql`` block and the queries it serves (planner cost before → after, the share saved, and with
    ``--validate`` the median latency measured before → after, ms); the candidates left out, the proposals
    not needed and the statements not used, each folded past :data:`OPEN_ROWS` rows."""
    from dbtune.report.bench_text import ms
    from dbtune.units import size_pretty

    share = advice.budget_share
    recs = advice.recommendations
    lines = [f"### dbtune advise on `{cell(advice.target)}` (PostgreSQL {cell(advice.server_version)})", "",
             f"Ranked by **{advice.engine.value}**: {cell(advice.engine_note)}", "",
             *table(["recommended", "estimated size", "statements", "candidates", "what-if calls", "budget",
                     "validated"],
                    [[str(len(recs)), size_pretty(advice.recommended_bytes), str(advice.queries),
                      str(advice.candidates), f"{advice.whatif_calls:,}",
                      size_pretty(advice.budget_bytes) + (f" ({share:.0%} of the database)" if share is not None
                                                          else ""),
                      "yes" if advice.validated else "no (planner estimates only)"]]), ""]
    if recs:
        rows = [[str(n), cell(r.candidate.describe()), size_pretty(r.estimated_bytes), _cost(r.benefit),
                 _cost(r.write_cost), cell(", ".join(q.name or clip(q.sql, 40) for q in r.queries)
                                           or (r.not_costed or ""))]
                for n, r in enumerate(recs, start=1)]
        lines += folded(f"recommendations ({len(recs)})",
                        table(["#", "index", "estimated", "benefit", "write cost", "serves"], rows),
                        len(rows) > OPEN_ROWS)
    else:
        lines += ["No index is recommended.", ""]
    for n, r in enumerate(recs, start=1):
        ddl = [display_sql(ch.up) for ch in r.changes] or [display_sql(r.candidate.create_sql(
            r.candidate.index_name()) + ";")]
        body = [f"{cell(r.candidate.reason)}", "", *code_block(ddl)]
        if r.queries:
            headers = ["query", "weight", "cost before → after", "saved"] + (["measured"] if advice.validated else [])
            measured = {m.key: m for m in r.measured}
            qrows = []
            for q in r.queries:
                row = [cell(q.name or clip(q.sql, 80)), f"{q.weight:,.0f}", f"{_cost(q.before)} → {_cost(q.after)}",
                       f"{q.saved:.0%}"]
                if advice.validated:
                    m = measured.get(q.key)
                    row.append(f"{ms(m.before_ms)} → {ms(m.after_ms)} ms {cell(m.verdict)}" if m else "—")
                qrows.append(row)
            body += ["", *table(headers, qrows)]
        lines += folded(f"#{n} {cell(r.candidate.describe())}", body, False)
    for title, entries in (("left out", advice.rejected), ("not needed", advice.not_needed)):
        if entries:
            lines += folded(f"{title} ({len(entries)})",
                            table(["index", "stage", "why", "benefit", "write cost"], _left_out_rows(entries)),
                            len(entries) > OPEN_ROWS)
    if advice.problems:
        rows = [[cell(p.name or clip(p.sql, 80)), cell(p.message)] for p in advice.problems]
        lines += folded(f"statements not used ({len(rows)})", table(["statement", "why"], rows),
                        len(rows) > OPEN_ROWS)
    return "\n".join(lines).rstrip("\n") + "\n"


def _explain_entry(number: int, total: int, entry: ExplainEntry) -> list[str]:
    from dbtune.report.explain_text import how_text, node_marks, plan_tree, skipped_by_reason

    q = entry.explained
    lines = [f"#### {number}/{total} {cell(q.label)}", "", *code_block([display_sql(q.query.sql.strip())]), ""]
    if q.skipped is not None:
        lines += [f"Skipped: {cell(q.skipped)}", ""]
    elif q.error is not None:
        lines += [f"Error: {cell(q.error)}" + (f" (SQLSTATE `{cell(q.sqlstate)}`)" if q.sqlstate else ""), ""]
    else:
        lines += [cell(how_text(entry)), ""]
    lines += [f"- note: {cell(n)}" for n in q.notes]
    lines += [f"- not judged for this query: {cell(', '.join(names))}: {cell(reason)}"
              for reason, names in skipped_by_reason(entry.not_judged).items()]
    if q.notes or entry.not_judged:
        lines.append("")
    if entry.findings:
        rows = [[f"`{f.check_id}` {cell(f.check_name)}", f.severity.value,
                 cell(str(f.evidence.get("node", f.object))), cell(f.message)] for f in entry.findings]
        lines += [*table(["check", "severity", "node", "problem"], rows), ""]
        sql = [display_sql(c.up) for f in entry.findings for c in f.changes]
        if sql:
            lines += [*code_block(sql), ""]
    elif q.plan is not None:
        lines += ["No problem found in this plan.", ""]
    if q.plan is not None:
        lines += ["<details>", "<summary>plan</summary>", "",
                  *code_block([line.rstrip() for line in plan_tree(q.plan, node_marks(entry))], "text"), "",
                  "</details>", ""]
    return lines


def render_explain_markdown(report: ExplainReport) -> str:
    """``explain`` as Markdown: a summary table (queries explained, failed, skipped; findings by
    severity), then per query its SQL in a block, how it was planned (or its error), the plan's problems
    (a table, their fix SQL in a block) and the plan tree in a ``<details>`` block; then the checks that
    could not judge the run."""
    from dbtune.report.explain_text import skipped_by_reason

    mode = "EXPLAIN ANALYZE, rolled back" if report.analyze else "plans only, nothing run"
    counts, total = report.counts(), len(report.entries)
    failed, passed = len(report.failed), len(report.passed)
    lines = [f"### dbtune explain of `{cell(report.target)}` (PostgreSQL {cell(report.server.version.split()[0])}, "
             f"{mode})", "",
             *table(["queries", "explained", "failed", "skipped", "findings", "error", "warning", "info"],
                    [[str(total), str(total - failed - passed), str(failed), str(passed), str(len(report.findings)),
                      str(counts["error"]), str(counts["warning"]), str(counts["info"])]]), ""]
    for number, entry in enumerate(report.entries, start=1):
        lines += _explain_entry(number, total, entry)
    by_reason = skipped_by_reason(report.skipped)
    if by_reason:
        lines += ["#### not judged", "", *(f"- {cell(', '.join(names))}: {cell(reason)}"
                                          for reason, names in by_reason.items()), ""]
    return "\n".join(lines).rstrip("\n") + "\n"
