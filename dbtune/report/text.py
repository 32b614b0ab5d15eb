"""Plain-text report: one tabulate table per severity (severity, check, object, message), then the fix
SQL: the findings' fixes as the one de-duplicated plan that ``dbtune migrate generate`` writes
(:attr:`Report.fix_plan`), in the order to run it, each step under the number of its finding, a twin noted
under the step that builds it, a build known to fail left out with the query that lists its duplicate
keys; then what was skipped and why."""

from __future__ import annotations

from dbtune.escape import clip, display_sql, one_line, printable, sql_comment
from dbtune.model import Severity
from dbtune.report.model import Report
from dbtune.report.width import fit_lines, fit_table, line_width

OBJECT_WIDTH = 32


def _message_width(width: int) -> int:
    """What is left of a ``width``-column line for the message column."""
    return max(30, width - 44 - OBJECT_WIDTH)


def _fix_sql(report: Report, number: dict[int, int]) -> list[str]:
    """The FIX SQL section (``number``: display number by ``id()`` of the finding)."""
    plan = report.fix_plan

    def label(position: int) -> str:
        f = report.findings[position]
        return f"#{number[id(f)]} {f.check_name} {f.object}"

    outside = [(n, report.fixes_outside_plan(n)) for n in range(len(report.findings))]
    outside = [(n, changes) for n, changes in outside if changes]
    if plan.empty and not plan.left_out and not outside:
        return []
    lines = ["", "FIX SQL (the plan `dbtune migrate generate` writes, in the order to run it; drops and settings "
             "included)"]
    positions = {(f.check_name, f.object): n for n, f in enumerate(report.findings)}
    for left in plan.left_out:
        where = positions.get((left.check_name, left.object))
        lines.append(sql_comment(f"{label(where) if where is not None else left.object}: left out: {left.reason}; "
                                 f"the duplicate keys:"))
        lines += [sql_comment("  " + line) for line in left.query.splitlines()]
    previous = None
    also: dict[tuple[str | None, int], list[int]] = {}  # (index built, its finding) -> the findings it also fixes
    for f in plan.folded:
        if f.by is not None:
            also.setdefault((f.by, f.by_finding), []).append(f.finding)
    for step in plan.steps:
        if step.finding != previous:
            lines.append(sql_comment(label(step.finding)))
            previous = step.finding
        lines.append(display_sql(step.change.up))
        for position in also.get((step.change.index, step.finding), []):
            lines.append(sql_comment(f"(this index is also the fix of {label(position)})"))
    for n, changes in outside:
        lines.append(sql_comment(label(n)))
        lines += [display_sql(c.up) for c in changes]
    if plan.analyze:
        lines += ["-- then fresh planner statistics for the tables whose indexes changed",
                  *(display_sql(f"ANALYZE {table};") for table in plan.analyze)]
    return lines


# SHOW POOLS columns shown for a live PgBouncer: clients active and waiting, server connections by state,
# and the oldest client's wait (seconds). https://www.pgbouncer.org/usage.html#show-pools
LIVE_POOL_COLUMNS = ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "maxwait")


def _app_config(report: Report) -> list[str]:
    """The APPLICATION CONFIG section: the sources read (or skipped), then every pool and PgBouncer value
    the pool checks used, with where it came from."""
    app = report.app_config
    budget = report.connection_budget
    if app is None and budget is None:
        return []
    lines = ["", "APPLICATION CONFIG" if app is not None else "CONNECTION POOLS"]
    if budget is not None:
        lines.append(one_line(f"- connection budget: {budget.summary()}"))
    if app is None:
        return lines
    for s in app.sources:
        status = s.format if s.status == "read" else f"{s.format}, skipped: {s.reason}"
        lines.append(one_line(f"- {s.path} ({status})"))
    for p in app.pools:
        if p.target is not None:
            lines.append(one_line(f"- pool {p.name}: {p.target.url} ({p.driver}, {p.via})"))
    for b in app.poolers:
        for row in b.pools if b.live else ():
            counts = ", ".join(f"{k} {row[k]}" for k in LIVE_POOL_COLUMNS if k in row)
            lines.append(one_line(f"- live {b.origin}: pool {row.get('database')}/{row.get('user')} "
                                  f"({row.get('pool_mode', b.pool_mode)}): {counts} (SHOW POOLS)"))
    for r in app.replicas:
        weight = f", weight {r.weight}" if r.weight is not None else ""
        lines.append(one_line(f"- replica {r.target.url}{weight} ({r.origin})"))
    if report.pool_values:
        rows = [(printable(v.owner), v.setting, printable(str(v.value)), clip(printable(v.source)))
                for v in report.pool_values]
        lines += ["", fit_table(rows, ["pool", "setting", "value", "from"], line_width())]
    return lines


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
    numbered = [(shown, f) for shown, (_, f) in report.by_severity()]
    width = line_width()
    message_width = _message_width(width)
    for severity in Severity:
        rows = [(n, f.severity.value, printable(f.check_name), clip(printable(f.object)), one_line(clip(f.message)))
                for n, f in numbered if f.severity is severity]
        if not rows:
            continue
        lines += ["", f"{severity.value.upper()} ({len(rows)})",
                  fit_table(rows, ["#", "severity", "check", "object", "message"], width,
                            maxcolwidths=[None, None, None, OBJECT_WIDTH, message_width], wrap=[2, 3, 4])]
    lines += _fix_sql(report, {id(f): n for n, f in numbered})
    lines += _app_config(report)
    if report.skipped:
        lines += ["", "SKIPPED"]
        for s in report.skipped:
            need = f" (needs {s.privilege})" if s.privilege else ""
            lines.append(one_line(f"- {s.what}: {s.reason}{need}"))
    return "\n".join(fit_lines(lines, width)) + "\n"
