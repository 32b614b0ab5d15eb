"""Printing the stages of the loop (shared by ``dbtune demo`` and ``dbtune tune``)."""

from __future__ import annotations

from dbtune.cli.common import echo
from dbtune.loop import LoopResult
from dbtune.report import Format, render
from dbtune.report.bench import render_comparison


def print_loop(result: LoopResult, fmt: Format = Format.TEXT) -> None:
    """The audit report, the migration written, the lint verdict, then the before/after table."""
    echo(render(result.report, fmt), nl=False)
    echo("")
    if not result.files:
        echo("MIGRATION\nnothing to generate: no finding has a schema fix")
        return
    echo(f"MIGRATION ({len(result.plan.steps)} steps, then ANALYZE of {len(result.plan.analyze)} tables)")
    for path in result.files:
        echo(f"  {path.name}")
    if result.lint is not None:
        counts = result.lint.counts()
        squawk = "squawk ran" if result.lint.squawk.ran else f"squawk not run ({result.lint.squawk.detail})"
        echo(f"LINT: {len(result.lint.findings)} findings ({counts['error']} error, {counts['warning']} "
                   f"warning, {counts['info']} info); {squawk}")
        for f in result.lint.findings:
            echo(f"  {f.location} {f.severity.value} {f.rule} ({f.source}): {f.message}")
    if result.comparison is None:
        echo("\nnothing applied: no before/after comparison")
        return
    echo(f"\nAPPLIED: {', '.join(result.applied) or 'nothing new'}\n")
    echo("BEFORE / AFTER")
    echo(render_comparison(result.comparison, Format.TEXT), nl=False)
