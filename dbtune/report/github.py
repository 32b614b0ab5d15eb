"""GitHub Actions workflow commands (annotations): ``::error file=…,line=…,title=…::message``, one line
a finding, for ``migrate lint`` (at the file and line) and ``audit`` (at the database object, named in
the title, with no file). Levels: error → ``error``, warning → ``warning``, info → ``notice``.

Values are escaped as the Actions toolkit does (``%`` ``\\r`` ``\\n`` in the message; also ``:`` and
``,`` in a property), so a name from the catalog cannot end an annotation or start another command.
See https://docs.github.com/en/actions/reference/workflow-commands-for-github-actions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbtune.model import Severity

if TYPE_CHECKING:
    from dbtune.migrate.lint import LintResult
    from dbtune.report.model import Report

COMMANDS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    """A message: ``%`` → ``%25``, CR → ``%0D``, LF → ``%0A``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A property value (``file``, ``title``): as :func:`escape_data`, and ``:`` → ``%3A``, ``,`` → ``%2C``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(severity: Severity, message: str, **properties: str | int) -> str:
    """One workflow command line: ``::warning file=a.sql,line=3,title=MG001 …::message``."""
    props = ",".join(f"{k}={escape_property(str(v))}" for k, v in properties.items())
    return f"::{COMMANDS[severity]} {props}::{escape_data(message)}" if props else \
        f"::{COMMANDS[severity]}::{escape_data(message)}"


def render_lint_github(result: LintResult) -> str:
    """``migrate lint`` as annotations on the migration files' lines, then a summary notice."""
    lines = []
    for f in result.findings:
        title = f"{f.rule_id} {f.rule}" if f.rule_id else f"squawk {f.rule}"
        message = f.full_message(squawk=False)
        if f.changes:
            message += "\nFix:\n" + "\n".join(c.up for c in f.changes)
        lines.append(annotation(f.severity, message, file=f.file, line=max(1, f.line), title=title))
    counts = result.counts()
    lines.append(annotation(Severity.INFO, f"dbtune migrate lint: {len(result.files)} file(s), "
                            f"{len(result.findings)} finding(s): {counts['error']} error, {counts['warning']} "
                            f"warning, {counts['info']} info", title="dbtune migrate lint"))
    return "\n".join(lines) + "\n"


def render_audit_github(report: Report) -> str:
    """``audit`` as annotations (no file: a finding is about a database object, named in the title), the
    fix SQL under the message, then a summary notice."""
    lines = []
    for n, f in enumerate(report.findings):
        fix = report.fix_sql_of(n)
        message = f.message + ("\nFix:\n" + "\n".join(fix) if fix else "")
        lines.append(annotation(f.severity, message, title=f"{f.check_id} {f.check_name}: {f.object}"))
    counts = report.counts()
    lines.append(annotation(Severity.INFO, f"dbtune audit of {report.target}: {len(report.findings)} finding(s): "
                            f"{counts['error']} error, {counts['warning']} warning, {counts['info']} info",
                            title="dbtune audit"))
    return "\n".join(lines) + "\n"
