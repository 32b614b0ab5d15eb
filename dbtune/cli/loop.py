"""Printing the stages of the loop (shared by ``dbtune demo`` and ``dbtune tune``), each as it ends."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from dbtune.bench import Comparison
from dbtune.cli.common import echo
from dbtune.escape import one_line, printable
from dbtune.loop import AfterMigration, LoopObserver, LoopResult
from dbtune.migrate.lint import LintResult
from dbtune.migrate.plan import MigrationPlan
from dbtune.report import Format, render
from dbtune.report.bench import render_comparison
from dbtune.report.model import Report

WIDTH = 120


class LoopPrinter(LoopObserver):
    """Prints each stage's result on stdout when the stage ends, flushed so that it lands between the
    progress lines on stderr: the audit report, the migration written, the lint verdict, the revisions
    applied, the before/after table, then the audit after the migration."""

    def __init__(self, fmt: Format = Format.TEXT) -> None:
        self.fmt = fmt

    def _show(self, text: str) -> None:
        echo(text)
        sys.stdout.flush()

    def audited(self, report: Report) -> None:
        self._show(render(report, self.fmt).rstrip("\n"))

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
        lines += textwrap.wrap(head, WIDTH, subsequent_indent=" " * 14)
        why = ("new since the migration; " if item.new else "") + item.reason
        lines += textwrap.wrap(f"why: {why}", WIDTH, initial_indent=" " * 14, subsequent_indent=" " * 19)
        for i, sql in enumerate(f.fix_sql):
            for j, line in enumerate(sql.splitlines()):
                lines.append(" " * 14 + ("fix: " if i == j == 0 else " " * 5) + line)
    return "\n".join(lines)
