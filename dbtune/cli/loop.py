"""Printing the stages of the loop (shared by ``dbtune demo`` and ``dbtune tune``), each as it ends."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path

from dbtune.advisor.model import Advice, Candidate, Measured, Recommendation, Rejected
from dbtune.bench import Comparison
from dbtune.cli.common import echo
from dbtune.cli.progress import ProgressDisplay
from dbtune.config.model import ExpectedIndex
from dbtune.escape import one_line, printable
from dbtune.loop import AfterMigration, LoopObserver, LoopResult
from dbtune.migrate.lint import LintResult
from dbtune.migrate.plan import MigrationPlan
from dbtune.probe.race import RaceResult
from dbtune.report import RENDERERS, Format, render
from dbtune.report.bench import render_comparison
from dbtune.report.model import Report
from dbtune.report.race import render_race
from dbtune.report.width import fit_lines, line_width
from dbtune.units import size_pretty

WIDTH = 120
# The formats the loop writes (its stages as text, or the audits' JSON, as each stage ends; or the review page,
# html, written whole at the end from the LoopResult: dbtune.report.html.render_loop_html): demo and tune
# refuse others.
LOOP_RENDERERS = {f: RENDERERS[f] for f in (Format.TEXT, Format.JSON, Format.HTML)}


class LoopPrinter(LoopObserver):
    """Prints each stage's result on stdout when the stage ends, flushed so that it lands between the
    progress lines on stderr: the audit report, the advisor's choice (what it kept, what it reverted and
    why, and its judgement of the checklist's ``expected`` indexes), the migration written, the lint
    verdict, the race probe before the migration, the revisions applied, the before/after table, the race
    probe after it, then the audit after the migration."""

    def __init__(self, fmt: Format = Format.TEXT, expected: Sequence[ExpectedIndex] = (),
                 display: ProgressDisplay | None = None) -> None:
        self.fmt = fmt
        self.expected = tuple(expected)
        self.display = display or ProgressDisplay(quiet=True)

    def _show(self, text: str | Callable[[], str], wrap: bool = True) -> None:
        """``text`` on stdout (a callable: what it renders, called only when shown), its lines fitted to the
        terminal's width (:mod:`dbtune.report.width`) unless it is JSON (``wrap=False``); nothing with html
        (the review page is written whole at the end, from the LoopResult). The progress bars are cleared
        for it (:meth:`ProgressDisplay.paused`)."""
        if self.fmt is Format.HTML:
            return
        text = text() if callable(text) else text
        with self.display.paused():
            echo("\n".join(fit_lines([text], line_width())) if wrap else text)
            sys.stdout.flush()

    def count(self, what: str, done: float, total: float | None) -> None:
        """The long steps' progress bars on stderr (:meth:`ProgressDisplay.count`)."""
        self.display.count(what, done, total)

    def audited(self, report: Report) -> None:
        self._show(lambda: render(report, self.fmt).rstrip("\n"), wrap=self.fmt is Format.TEXT)

    def advised(self, advice: Advice) -> None:
        self._show(render_advice_stage(advice, self.expected))

    def generated(self, plan: MigrationPlan, files: tuple[Path, ...]) -> None:
        if not files:
            self._show("\nMIGRATION\nnothing to generate: no finding has a schema fix")
            return
        self._show("\n".join([f"\nMIGRATION ({len(plan.steps)} steps, then ANALYZE of {len(plan.analyze)} tables)",
                              *(f"  {path.name}" for path in files)]))

    def linted(self, lint: LintResult) -> None:
        counts = lint.counts()
        squawk = "squawk ran" if lint.squawk.ran else f"squawk not run ({lint.squawk.detail})"
        self._show("\n".join([f"LINT: {len(lint.findings)} findings ({counts['error']} error, {counts['warning']} "
                              f"warning, {counts['info']} info); {squawk}",
                              *(f"  {f.location} {f.severity.value} {f.rule} ({f.source}): {f.message}"
                                for f in lint.findings)]))

    def raced(self, when: str, result: RaceResult) -> None:
        self._show(f"\nRACE {when.upper()} THE MIGRATION\n" + render_race(result, Format.TEXT).rstrip("\n"))

    def applied(self, revisions: tuple[str, ...]) -> None:
        self._show(f"\nAPPLIED: {', '.join(revisions) or 'nothing new'}")

    def compared(self, comparison: Comparison) -> None:
        self._show("\nBEFORE / AFTER\n" + render_comparison(comparison, Format.TEXT).rstrip("\n"))

    def audited_after(self, after: AfterMigration) -> None:
        self._show(render_after_migration(after))

    def finish(self, result: LoopResult) -> None:
        """Say why the loop stopped early, when it did."""
        if result.files and result.comparison is None:
            self._show("\nnothing applied: no before/after comparison")


def render_after_migration(after: AfterMigration) -> str:
    """The audit after the migration as text: what it fixed, then each warning and error left with why
    the migration did not fix it and its fix SQL, if it has one."""
    report = after.report
    lines = [f"\nAUDIT AFTER THE MIGRATION of {one_line(report.target)}"]
    fixed = ", ".join(f"{name} {n}" for name, n in after.fixed.items())
    lines.append(f"fixed by the migration: {sum(after.fixed.values())} finding(s)" + (f" ({fixed})" if fixed else ""))
    info = f"; {after.info} info finding(s) need nothing done" if after.info else ""
    if not after.left:
        lines.append(f"left: no warning or error{info}")
        return "\n".join(lines)
    lines.append(f"left: {len(after.left)} warning(s) and error(s), and why the migration did not fix them{info}")
    for n, item in enumerate(after.left, start=1):
        f = item.finding
        head = f"{n:>3}  {f.severity.value:<8} {printable(f.check_name)}  {printable(f.object)}: {one_line(f.message)}"
        lines += textwrap.wrap(head, line_width(), subsequent_indent=" " * 14)
        why = ("new since the migration; " if item.new else "") + item.reason
        lines += textwrap.wrap(f"why: {why}", line_width(), initial_indent=" " * 14, subsequent_indent=" " * 19)
        for i, sql in enumerate(f.fix_sql):
            for j, line in enumerate(sql.splitlines()):
                lines.append(" " * 14 + ("fix: " if i == j == 0 else " " * 5) + line)
    return "\n".join(lines)


def render_advice_stage(advice: Advice, expected: Sequence[ExpectedIndex] = ()) -> str:
    """The advisor's stage as text: how it ranked, each recommendation kept (with what was measured when
    validated), each one reverted by validation and why, how many the selection left out, and, when the
    config expects indexes (``[[expect.index]]``), which of them the workload needs and which not
    (``Advice.not_needed``), and what the advisor adds beside them."""
    lines = [f"\nADVISOR: ranked by {advice.engine.value}: {one_line(advice.engine_note)}",
             f"  {advice.queries} statement(s), {advice.candidates} candidate(s), {advice.whatif_calls} planner "
             f"request(s); budget {size_pretty(advice.budget_bytes)} of a {size_pretty(advice.database_bytes)} "
             "database"]
    proof = "measured faster on the server; the migration builds them" if advice.validated else "not validated"
    lines.append(f"  kept {len(advice.recommendations)} ({proof}):" if advice.recommendations
                 else "  kept: nothing" + (" (validation reverted every index it built)" if _reverted(advice)
                                           else ""))
    for rec in advice.recommendations:
        lines += _recommendation_lines(rec)
    reverted = _reverted(advice)
    if reverted:
        lines.append(f"  reverted {len(reverted)} (built, measured, dropped again):")
        for r in reverted:
            lines += _wrap(f"{printable(r.candidate.describe())}: {one_line(r.reason)}", 4)
            lines += [f"      {_measured(m)}" for m in r.measured]
    left_out = [r for r in advice.rejected if r.stage != "validation"]
    if left_out:
        lines.append(f"  left out by the selection: {len(left_out)} candidate(s)" +
                     (f", e.g. {printable(left_out[0].candidate.describe())}: {one_line(left_out[0].reason)}"))
    for p in advice.problems:
        lines += _wrap(f"problem: {printable(p.name)}: {one_line(p.message)}", 2)
    if expected:
        lines += _checklist_lines(advice, expected)
    return "\n".join(lines)


def _reverted(advice: Advice) -> list[Rejected]:
    return [r for r in advice.rejected if r.stage == "validation"]


def _wrap(text: str, indent: int) -> list[str]:
    return textwrap.wrap(text, line_width(), initial_indent=" " * indent, subsequent_indent=" " * (indent + 4))


def _measured(m: Measured) -> str:
    return (f"{printable(m.name)}: {m.before_ms:.3f} ms → {m.after_ms:.3f} ms ({m.verdict}: "
            f"{one_line(m.reason)})")


def _recommendation_lines(rec: Recommendation) -> list[str]:
    size = f"estimated {size_pretty(rec.estimated_bytes)}" + (
        f", built {size_pretty(rec.real_bytes)}" if rec.real_bytes is not None else "")
    served = ", ".join(printable(q.name) for q in rec.queries)
    lines = _wrap(f"{printable(rec.candidate.describe())} ({size}; serves {served or 'the workload'})", 4)
    return lines + [f"      {_measured(m)}" for m in rec.measured]


def _normal(text: str) -> str:
    return " ".join(text.replace('"', "").lower().split())


def _same_index(expect: ExpectedIndex, candidate: Candidate) -> bool:
    """Whether a candidate is the expected index (table, key columns with direction, predicate), compared
    as written with case and quotes folded: enough to tell the checklist's entries apart for display."""
    table = _normal(expect.table).rsplit(".", 1)[-1]
    return (table == _normal(candidate.table)
            and [_normal(c) for c in expect.columns] == [_normal(c) for c in candidate.columns]
            and _normal(expect.where or "") == _normal(candidate.predicate or ""))


def _checklist_lines(advice: Advice, expected: Sequence[ExpectedIndex]) -> list[str]:
    """The checklist's expected indexes beside the advisor's judgement, then what it would add."""
    lines = [f"  the checklist's {len(expected)} expected index(es), judged against the workload:"]
    for expect in expected:
        what = f"{printable(expect.table)} ({', '.join(printable(c) for c in expect.columns)})" + (
            f" WHERE {printable(expect.where)}" if expect.where else "")
        judged = next((r for r in advice.not_needed if _same_index(expect, r.candidate)), None)
        if judged is None:
            lines += _wrap(f"needed      {what}", 4)
        else:
            cost = f"; write cost {judged.write_cost:,.0f}" if judged.write_cost else ""
            lines += _wrap(f"not needed  {what}: {one_line(judged.reason)}{cost}", 4)
    others = [r for r in advice.not_needed if not any(_same_index(e, r.candidate) for e in expected)]
    for r in others:
        lines += _wrap(f"not needed  {printable(r.candidate.describe())}: {one_line(r.reason)}", 4)
    added = [r for r in advice.recommendations if not any(_same_index(e, r.candidate) for e in expected)]
    lines.append("  the advisor would add: " + (", ".join(printable(r.candidate.describe()) for r in added)
                                                 if added else "nothing beyond the checklist"))
    left = len(advice.not_needed)
    lines.append(f"  and leave out: {left} of the checklist's and the catalogue's proposals (not needed above)"
                 if left else "  and leave out: none of the checklist's proposals")
    return lines
