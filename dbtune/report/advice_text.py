"""Plain-text rendering of ``dbtune advise``, readable at 100 columns (at the terminal's width, 80 and up,
when stdout is one: :mod:`dbtune.report.width`): the engine and how it ranked, the
run's figures (queries, candidates, what-if calls, budget), then each recommended index with its DDL as
the migration writes it (``CREATE INDEX CONCURRENTLY …``), its figures (engine, estimated and real size,
benefit and write cost, the tables whose writes it slows) and a table of the queries it serves (planner
cost before → after, and with ``--validate`` the measured median latency before → after); then the
candidates left out and why, the checklist's and the catalogue's proposals that are not needed, and the
workload statements that could not be used.

Every name, expression, query text and message comes from the catalog or the workload: each goes
through :mod:`dbtune.escape` (one line, control characters escaped) before it reaches the layout.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from dbtune.advisor.model import NO_CANDIDATE_FOR, Advice, Measured, QueryCost, Recommendation, Rejected
from dbtune.escape import clip, display_sql, one_line, printable
from dbtune.report.bench_text import ms
from dbtune.report.width import fit_lines, fit_table, line_width
from dbtune.units import size_pretty

WIDTH = 100
QUERY_WIDTH = 30
SQL_CHARS = 200


def _wrap(text: str, indent: str = "  ", more: str = "    ") -> list[str]:
    return textwrap.wrap(text, line_width(WIDTH), initial_indent=indent, subsequent_indent=more,
                         break_on_hyphens=False) or [indent]


def _cost(value: float) -> str:
    return f"{value:,.2f}"


def _query_label(name: str, sql: str) -> str:
    """A query's name, else the start of its text, on one line."""
    text = name or " ".join(sql.split())
    return printable(clip(text, SQL_CHARS))


def _measured(key: str, measured: Sequence[Measured]) -> str:
    m = next((m for m in measured if m.key == key), None)
    if m is None:
        return "—"
    return f"{ms(m.before_ms)} → {ms(m.after_ms)} ms {one_line(m.verdict)}"


def _queries_table(queries: Sequence[QueryCost], measured: Sequence[Measured], validated: bool) -> list[str]:
    headers = ["query", "weight", "cost before → after", "saved"]
    if validated:
        headers.append("measured")
    rows = []
    for q in queries:
        row: list[object] = [_query_label(q.name, q.sql), f"{q.weight:,.0f}",
                             f"{_cost(q.before)} → {_cost(q.after)}", f"{q.saved:.0%}"]
        if validated:
            row.append(_measured(q.key, measured))
        rows.append(row)
    table = fit_table(rows, headers, line_width(WIDTH) - 4,
                      maxcolwidths=[QUERY_WIDTH, None, None, None, 26][:len(headers)], disable_numparse=True)
    return ["    " + line for line in table.splitlines()]


def _recommendation(number: int, rec: Recommendation, validated: bool) -> list[str]:
    c = rec.candidate
    lines = ["", f"#{number} {printable(c.describe())}"]
    lines += _wrap(f"why: {printable(c.reason)}" + (f" (proposed by the {c.origin.value})"
                                                   if c.origin.value != "workload" else ""))
    ddl = [display_sql(ch.up) for ch in rec.changes] or [display_sql(c.create_sql(c.index_name()) + ";")]
    for statement in ddl:
        lines += ["    " + line for line in statement.split("\n") if line.strip()]
    size = f"estimated {size_pretty(rec.estimated_bytes)}"
    if rec.real_bytes is not None:
        size += f", real {size_pretty(rec.real_bytes)}"
    costed = (f"not costed: {one_line(rec.not_costed)}" if rec.not_costed
              else f"costed by {rec.engine.value}")
    lines += _wrap(f"{costed}; {size}; benefit {_cost(rec.benefit)}, write cost {_cost(rec.write_cost)} "
                   "(planner cost units, weighted by calls)")
    slows = ", ".join(printable(t) for t in rec.slows_writes_to) or "none"
    lines += _wrap(f"slows writes to: {slows}")
    if rec.queries:
        lines += [f"  serves {len(rec.queries)} quer{'y' if len(rec.queries) == 1 else 'ies'}:",
                  *_queries_table(rec.queries, rec.measured, validated)]
    elif rec.not_costed:
        lines.append("  serves: not costed by the planner (ranked by pg_stats selectivity)")
    if validated and rec.measured:
        lines += _wrap(f"measured: {rec.faster} of {len(rec.measured)} queries significantly faster")
    return lines


def _left_out(entries: Sequence[Rejected], stage: bool) -> list[str]:
    """One wrapped entry per candidate left out: the index, (its stage,) why, and its figures."""
    lines = []
    for r in entries:
        why = r.reason + (f"; measured {_measured(r.measured[0].key, r.measured)}" if r.measured else "")
        size = f", estimated {size_pretty(r.estimated_bytes)}" if r.estimated_bytes else ""
        lines += _wrap(f"- {printable(r.candidate.describe())}{f' [{r.stage}]' if stage else ''}: "
                       f"{printable(clip(why))}; benefit {_cost(r.benefit)}, write cost {_cost(r.write_cost)}{size}")
    return lines


def _why_none(advice: Advice) -> str:
    """Why nothing is recommended, from the advice's own counts and rejections."""
    if advice.queries == 0:
        return ("no statement of the workload could be used (see PROBLEMS)" if advice.problems else
                "the workload holds no statement an index could serve (utility statements such as DDL, SET or "
                "VACUUM are left out)")
    if advice.candidates == 0:
        if NO_CANDIDATE_FOR in advice.engine_note:
            return "the statements suggested no index dbtune could propose (the engine line says why)"
        return "no statement of the workload suggested an index"
    if any(r.reason.startswith(("over budget", "beyond --max-indexes")) for r in advice.rejected):
        return "the candidates that make a query cheaper do not fit --budget or --max-indexes (see REJECTED)"
    if not advice.rejected and advice.problems:
        return "the statements that suggested candidates could not be planned (see PROBLEMS)"
    return "no candidate paid for its size and write cost"


def render_advice_text(advice: Advice) -> str:
    budget = size_pretty(advice.budget_bytes)
    share = advice.budget_share
    of = f" of {size_pretty(advice.database_bytes)} ({share:.0%})" if share is not None else ""
    lines = [f"dbtune advise of {one_line(advice.target)} — PostgreSQL {one_line(advice.server_version)}",
             *_wrap(f"engine: {advice.engine.value} — {one_line(advice.engine_note)}", "", "  "),
             *_wrap(f"{advice.queries} quer{'y' if advice.queries == 1 else 'ies'}, {advice.candidates} candidate"
                    f"{'' if advice.candidates == 1 else 's'}, {advice.whatif_calls:,} what-if call"
                    f"{'' if advice.whatif_calls == 1 else 's'}; budget {budget}{of}"
                    + (f", at most {advice.max_indexes} index(es)" if advice.max_indexes is not None else "")
                    + f"; {advice.duration_ms / 1000:.1f} s", "", "  "),
             *(_wrap("validated on the server: indexes built, queries measured before and after; kept only where "
                     "the queries using them got faster and saved time in all (an index whose queries could not be "
                     "measured is not kept: see REJECTED)", "", "  ") if advice.validated else ()),
             *(() if advice.validated
               else ("not validated (planner estimates only; --validate measures them on a non-production server)",))]
    lines += ["", f"RECOMMENDED ({len(advice.recommendations)}, estimated {size_pretty(advice.recommended_bytes)})"]
    if not advice.recommendations:
        lines.append(f"  none: {_why_none(advice)}")
    for number, rec in enumerate(advice.recommendations, start=1):
        lines += _recommendation(number, rec, advice.validated)
    if advice.rejected:
        lines += ["", f"REJECTED ({len(advice.rejected)})", *_left_out(advice.rejected, True)]
    if advice.not_needed:
        lines += ["", f"NOT NEEDED ({len(advice.not_needed)}: the checklist's and the catalogue's proposals that "
                      "the workload does not need)", *_left_out(advice.not_needed, False)]
    if advice.problems:
        lines += ["", f"PROBLEMS ({len(advice.problems)} workload statement"
                      f"{'' if len(advice.problems) == 1 else 's'} not used; the rest went on)"]
        for p in advice.problems:
            lines += _wrap(f"- {_query_label(p.name, p.sql)}: {one_line(clip(p.message))}", "  ", "    ")
            if p.name and p.sql.strip():
                lines += _wrap(_query_label("", p.sql), "    ", "    ")
    return "\n".join(fit_lines(lines, line_width(WIDTH))) + "\n"
