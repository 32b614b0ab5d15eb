"""Plain-text report: one tabulate table per severity (severity, check, object, message), then the fix
SQL of each numbered finding, then what was skipped and why."""

from __future__ import annotations

from tabulate import tabulate

from dbtune.model import Severity
from dbtune.report.model import Report

MESSAGE_WIDTH = 72


def render_text(report: Report) -> str:
    counts = report.counts()
    lines = [
        f"dbtune audit of {report.target} — PostgreSQL {report.server.short_version}"
        + (f" — profile {report.profile}" if report.profile else ""),
        f"{len(report.findings)} finding{'' if len(report.findings) == 1 else 's'}: {counts['error']} error, "
        f"{counts['warning']} warning, "
        f"{counts['info']} info",
    ]
    numbered = list(enumerate(report.findings, start=1))
    for severity in Severity:
        rows = [(n, f.severity.value, f.check_name, f.object, f.message)
                for n, f in numbered if f.severity is severity]
        if not rows:
            continue
        lines += ["", f"{severity.value.upper()} ({len(rows)})",
                  tabulate(rows, headers=["#", "severity", "check", "object", "message"],
                           maxcolwidths=[None, None, None, 40, MESSAGE_WIDTH], tablefmt="simple")]
    fixes = [(n, f) for n, f in numbered if f.changes]
    if fixes:
        lines += ["", "FIX SQL"]
        for n, f in fixes:
            lines.append(f"-- #{n} {f.check_name} {f.object}")
            lines += [c.up for c in f.changes]
    if report.skipped:
        lines += ["", "SKIPPED"]
        for s in report.skipped:
            need = f" (needs {s.privilege})" if s.privilege else ""
            lines.append(f"- {s.what}: {s.reason}{need}")
    return "\n".join(lines) + "\n"
