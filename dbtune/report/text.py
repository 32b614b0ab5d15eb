"""Plain-text report: one tabulate table per severity (severity, check, object, message), then the fix
SQL of each numbered finding, then what was skipped and why."""

from __future__ import annotations

import shutil
import sys

from tabulate import tabulate

from dbtune.escape import display_sql, one_line, printable, sql_comment
from dbtune.model import Severity
from dbtune.report.model import Report

OBJECT_WIDTH = 32
WIDTH = 120  # when stdout is not a terminal (a file, a CI log)


def _message_width() -> int:
    """What is left of the line for the message column: the terminal's width, else 120 columns."""
    width = shutil.get_terminal_size((WIDTH, 24)).columns if sys.stdout.isatty() else WIDTH
    return max(30, width - 44 - OBJECT_WIDTH)


def render_text(report: Report) -> str:
    counts = report.counts()
    lines = [
        f"dbtune audit of {one_line(report.target)} — PostgreSQL {report.server.short_version}"
        + (f" — profile {report.profile}" if report.profile else ""),
        f"{len(report.findings)} finding{'' if len(report.findings) == 1 else 's'}: {counts['error']} error, "
        f"{counts['warning']} warning, "
        f"{counts['info']} info",
    ]
    # Numbered in the order shown: by severity, then as the catalogue produced them.
    ordered = sorted(report.findings, key=lambda f: -f.severity.rank)
    numbered = list(enumerate(ordered, start=1))
    message_width = _message_width()
    for severity in Severity:
        rows = [(n, f.severity.value, printable(f.check_name), printable(f.object), one_line(f.message))
                for n, f in numbered if f.severity is severity]
        if not rows:
            continue
        lines += ["", f"{severity.value.upper()} ({len(rows)})",
                  tabulate(rows, headers=["#", "severity", "check", "object", "message"],
                           maxcolwidths=[None, None, None, OBJECT_WIDTH, message_width], tablefmt="simple")]
    fixes = [(n, f) for n, f in numbered if f.changes]
    if fixes:
        lines += ["", "FIX SQL"]
        for n, f in fixes:
            lines.append(sql_comment(f"#{n} {f.check_name} {f.object}"))
            lines += [display_sql(c.up) for c in f.changes]
    if report.skipped:
        lines += ["", "SKIPPED"]
        for s in report.skipped:
            need = f" (needs {s.privilege})" if s.privilege else ""
            lines.append(one_line(f"- {s.what}: {s.reason}{need}"))
    return "\n".join(lines) + "\n"
