"""Plain-text rendering of ``dbtune explain``, readable at 100 columns (at the terminal's width, 80 and up,
when stdout is one: :mod:`dbtune.report.width`): per query its text, how it was
planned, the plan tree (each node with its estimated and actual rows and its share of the cost, or of the
time with ANALYZE; its conditions and spill figures below it; ``◀ PL001`` where a check found something),
the findings, then what could not be judged and a summary line."""

from __future__ import annotations

import textwrap
from collections import defaultdict
from collections.abc import Iterable

from dbtune.catalog.model import Skip
from dbtune.escape import clip, display_sql, one_line, printable
from dbtune.model import Finding
from dbtune.plans.api import ExplainEntry, ExplainReport
from dbtune.plans.model import Plan, PlanNode
from dbtune.report.width import fit_lines, line_width
from dbtune.units import kb_pretty

WIDTH = 100
SQL_LINES = 4


def _num(value: float) -> str:
    """Rows as EXPLAIN would count them: ``1,234``; fractions below 10 keep two decimals (PG18 averages)."""
    return f"{value:,.2f}" if value != int(value) and value < 10 else f"{value:,.0f}"


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def node_figures(node: PlanNode, plan: Plan) -> str:
    """``est 12 rows, actual 10, 40% of time`` (or of cost, without ANALYZE)."""
    parts = [f"est {_num(node.plan_rows)} row{'' if node.plan_rows == 1 else 's'}"]
    if node.analyzed:
        if node.never_executed:
            parts.append("never executed")
        else:
            loops = f" × {_num(node.loops)} loops" if node.loops != 1 else ""
            parts.append(f"actual {_num(node.actual_rows or 0.0)}{loops}")
            share = plan.time_share(node)
            if share is not None:
                parts.append(f"{share:.0%} of time")
    elif (share := plan.cost_share(node)) is not None:
        parts.append(f"{share:.0%} of cost")
    return ", ".join(parts)


def node_details(node: PlanNode) -> list[str]:
    """A node's conditions, sort and hash figures, rows removed, as EXPLAIN's text format shows them."""
    raw = node.raw
    out = []
    for key in ("Index Cond", "Recheck Cond", "Hash Cond", "Merge Cond", "Join Filter", "Filter"):
        if raw.get(key):
            out.append(f"{key}: {raw[key]}")
    if node.sort_key:
        out.append(f"Sort Key: {', '.join(node.sort_key)}")
    if node.sort_method:
        space = kb_pretty(node.sort_space_kb or 0)
        out.append(f"Sort Method: {node.sort_method}  {node.sort_space_type or 'Space'}: {space}")
    for label, value in (("Rows Removed by Index Recheck", node.rows_removed_by_index_recheck),
                         ("Rows Removed by Join Filter", node.rows_removed_by_join_filter),
                         ("Rows Removed by Filter", node.rows_removed_by_filter)):
        if value:
            out.append(f"{label}: {_num(value)}")
    if node.exact_heap_blocks is not None or node.lossy_heap_blocks is not None:
        out.append(f"Heap Blocks: exact={node.exact_heap_blocks or 0:,} lossy={node.lossy_heap_blocks or 0:,}")
    if node.heap_fetches is not None:
        out.append(f"Heap Fetches: {_num(node.heap_fetches)}")
    if node.workers_planned is not None:
        launched = f"  Launched: {node.workers_launched}" if node.workers_launched is not None else ""
        out.append(f"Workers Planned: {node.workers_planned}{launched}")
    if node.hash_batches is not None:
        original = (f" (originally {node.original_hash_batches})"
                    if node.original_hash_batches not in (None, node.hash_batches) else "")
        out.append(f"Buckets: {node.hash_buckets or 0:,}  Batches: {node.hash_batches}{original}  "
                   f"Memory Usage: {kb_pretty(node.peak_memory_kb or 0)}")
    if node.hashagg_batches is not None:
        out.append(f"Batches: {node.hashagg_batches}  Memory Usage: {kb_pretty(node.peak_memory_kb or 0)}"
                   + (f"  Disk Usage: {kb_pretty(node.disk_usage_kb)}" if node.disk_usage_kb else ""))
    return out


def plan_tree(plan: Plan, marks: dict[str, list[str]]) -> list[str]:
    """The plan as an indented tree, a node a line (:func:`node_figures`, then ``◀`` and the check ids
    ``marks`` gives its label), its :func:`node_details` below it."""
    width = line_width(WIDTH)
    lines: list[str] = []

    def render(node: PlanNode, head: str, body: str) -> None:
        name = printable(node.label)
        if node.parent_relationship in ("InitPlan", "SubPlan") and node.subplan_name:
            name = f"{node.subplan_name}: {name}"
        header = f"{name}  ({node_figures(node, plan)})"
        if marks.get(node.label):
            header += "  ◀ " + " ".join(dict.fromkeys(marks[node.label]))
        room = width - len(head)
        wrapped = textwrap.wrap(header, room, subsequent_indent="    ", break_on_hyphens=False) or [header]
        detail = body + ("│  " if node.children else "   ")
        lines.append(head + wrapped[0])
        lines.extend(detail + w for w in wrapped[1:])
        for d in node_details(node):
            lines.append(detail + _clip(d, width - len(detail)))
        for i, child in enumerate(node.children):
            last = i == len(node.children) - 1
            render(child, body + ("└─ " if last else "├─ "), body + ("   " if last else "│  "))

    render(plan.root, "  ", "  ")
    return lines


def how_text(entry: ExplainEntry) -> str:
    """How the query was explained: ``generic plan, not run; total cost …`` or ANALYZE's timings."""
    q = entry.explained
    if q.plan is None:
        return ""
    if q.kind == "analyzed":
        timing = f"execution {q.plan.execution_ms or 0:,.2f} ms, planning {q.plan.planning_ms or 0:,.2f} ms"
        if q.plan.jit and q.plan.jit.total_ms is not None:
            timing += f", JIT {q.plan.jit.total_ms:,.2f} ms"
        return f"EXPLAIN ANALYZE: {timing}"
    kind = "generic plan" if q.kind == "generic" else "plan"
    return f"{kind}, not run; total cost {q.plan.total_cost:,.2f}"


def _finding_lines(findings: tuple[Finding, ...]) -> list[str]:
    width = line_width(WIDTH)
    lines = [f"  findings ({len(findings)})"]
    for f in findings:
        lines.append(f"  {f.severity.value:<8} {f.check_id} {f.check_name} — "
                     f"{printable(str(f.evidence.get('node', f.object)))}")
        lines += textwrap.wrap(one_line(clip(f.message)), width, initial_indent=" " * 11, subsequent_indent=" " * 11,
                               break_on_hyphens=False)
        for change in f.changes:
            lines.append(" " * 11 + f"fix: {display_sql(change.up)}")
    return lines


def _entry(number: int, total: int, entry: ExplainEntry) -> list[str]:
    width = line_width(WIDTH)
    q = entry.explained
    title = f"── {number}/{total} {one_line(q.label)} "
    lines = ["", title + "─" * max(3, width - len(title))]
    sql = [line for line in display_sql(q.query.sql.strip()).split("\n") if line.strip()]
    for line in sql[:SQL_LINES]:
        lines.append("  " + _clip(line.rstrip(), width - 2))
    if len(sql) > SQL_LINES:
        lines.append(f"  … ({len(sql) - SQL_LINES} more lines)")
    lines.append("")
    if q.skipped is not None:
        lines += textwrap.wrap(f"skipped: {one_line(q.skipped)}", width, initial_indent="  ", subsequent_indent="    ",
                               break_on_hyphens=False)
    elif q.error is not None:
        lines.append(f"  error: {one_line(q.error)}" + (f" (SQLSTATE {q.sqlstate})" if q.sqlstate else ""))
    else:
        lines.append(f"  {how_text(entry)}")
        if q.parameters:
            values = ", ".join(f"${i} = {_clip(repr(v), 30)}" for i, v in enumerate(q.parameters, start=1))
            lines += textwrap.wrap(f"parameters: {values}", width, initial_indent="  ", subsequent_indent="    ")
    for note in q.notes:
        lines += textwrap.wrap(f"note: {note}", width, initial_indent="  ", subsequent_indent="    ",
                               break_on_hyphens=False)
    for reason, names in skipped_by_reason(entry.not_judged).items():
        lines += textwrap.wrap(f"not judged for this query: {', '.join(names)}: {reason}", width,
                               initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
    if q.plan is not None:
        lines += ["", *plan_tree(q.plan, node_marks(entry))]
        if entry.findings:
            lines += ["", *_finding_lines(entry.findings)]
    return lines


def node_marks(entry: ExplainEntry) -> dict[str, list[str]]:
    """The check ids of the findings on each plan node, by the node's label (a partitioned scan: each
    node the finding names)."""
    marks: dict[str, list[str]] = defaultdict(list)
    for f in entry.findings:
        for node in f.evidence.get("nodes") or [f.evidence.get("node", "")]:
            marks[str(node)].append(f.check_id)
    return marks


def skipped_by_reason(skipped: Iterable[Skip]) -> dict[str, list[str]]:
    """The names of the skipped checks per reason, each name once, in order."""
    by_reason: dict[str, list[str]] = defaultdict(list)
    for s in skipped:
        if s.what not in by_reason[s.reason]:
            by_reason[s.reason].append(s.what)
    return by_reason


def render_explain_text(report: ExplainReport) -> str:
    width = line_width(WIDTH)
    version = report.server.version.split()[0]
    mode = "EXPLAIN ANALYZE, rolled back" if report.analyze else "plans only, nothing run"
    lines = [f"dbtune explain of {one_line(report.target)}", f"PostgreSQL {version} — {mode}"]
    total = len(report.entries)
    for number, entry in enumerate(report.entries, start=1):
        lines += _entry(number, total, entry)
    by_reason = skipped_by_reason(report.skipped)
    if by_reason:
        lines += ["", "NOT JUDGED"]
        for reason, names in by_reason.items():
            lines += textwrap.wrap(f"- {', '.join(names)}: {reason}", width, subsequent_indent="  ",
                                   break_on_hyphens=False)
    counts = report.counts()
    failed = len(report.failed)
    passed = len(report.passed)
    lines += ["", f"{total} quer{'y' if total == 1 else 'ies'}: {total - failed - passed} explained, {failed} failed"
                  f"{f', {passed} skipped' if passed else ''}; "
                  f"{len(report.findings)} finding{'' if len(report.findings) == 1 else 's'}: "
                  f"{counts['error']} error, {counts['warning']} warning, {counts['info']} info"]
    return "\n".join(fit_lines(lines, width)) + "\n"
