"""Plain-text rendering of ``dbtune probe race``: the win rate, the winners per round, the errors the accepts
met, and the constraint that made it one winner a round, or the partial unique index that would; on a terminal
no line is wider than it (80 columns and up: long lines and SQL wrapped by :mod:`dbtune.report.width`)."""

from __future__ import annotations

from tabulate import tabulate

from dbtune.escape import display_sql, one_line, printable
from dbtune.probe.race import RaceResult
from dbtune.report.width import fit_lines, line_width


def _pct(value: float) -> str:
    """``100 %``, ``37.5 %``, ``99.75 %``: no trailing zeros, never rounded up to 100."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{'99.99' if text == '100' and value < 100 else text} %"


def win_rate_line(result: RaceResult) -> str:
    """``vendor win rate 37.5 % (75 of 200 rounds with exactly one winner)``."""
    return (f"vendor win rate {_pct(result.win_rate_pct)} ({result.one} of {result.rounds} rounds with exactly "
            "one winner)")


def render_race_text(result: RaceResult) -> str:
    lines = [f"probe race on {printable(result.table)}: {result.sessions} sessions × {result.rounds} rounds in "
             f"{result.elapsed_s:.1f} s (read, then insert, in one READ COMMITTED transaction)",
             win_rate_line(result), ""]
    if result.accept:
        lines += [f"each session, each round: {display_sql(result.accept[0])};",
                  f"  then, when it read no row: {display_sql(result.accept[1])}; COMMIT", ""]
    lines += tabulate([["rounds", result.zero, result.one, result.many, result.most]],
                      headers=["winners", "0", "1", ">1", "most in a round"], tablefmt="simple").splitlines()
    lines.append("")
    if result.errors:
        lines.append("errors the accepts met:")
        for e in result.errors:
            on = f" on {printable(e.constraint)}" if e.constraint else ""
            why = " (the constraint working)" if e.unique_violation else ""
            lines.append(f"  {e.count:>6}  {e.sqlstate} {e.condition}{on}{why}")
    else:
        lines.append("errors the accepts met: none")
    if result.enforced_by:
        lines.append(f"one winner per round enforced by {printable(result.enforced_by)}:")
        lines += [f"  {line}" for line in display_sql(result.enforced_definition or "").splitlines()]
    else:
        lines.append("no unique index or constraint stopped a second accepted response for a routing (no unique "
                     "violation seen); the partial unique index that makes it one winner a round:")
        lines += [f"  {line}" for line in display_sql(result.suggestion or "").splitlines()]
    lines += [f"note: {one_line(n)}" for n in result.notes]
    lines.append(f"scratch schema {printable(result.scratch_schema)} dropped")
    return "\n".join(fit_lines(lines, line_width())) + "\n"
