"""Plain-text renderings of ``dbtune bench``: the summary of one run and the before/after comparison
table (query, p50/p95/p99/mean before → after, the ratio of the round medians with its interval, the
noise floor, verdict, plan change)."""

from __future__ import annotations

import math

from dbtune.bench.compare import Comparison
from dbtune.bench.result import BenchResult, label
from dbtune.bench.stats import RatioEstimate
from dbtune.report.width import fit_lines, fit_table, line_width

NAME_WIDTH = 40
PLAN_WIDTH = 60


def ms(value: float) -> str:
    """A latency in ms with about three significant digits: ``0.052``, ``1.23``, ``12.3``, ``1234``."""
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def arrow(before: float, after: float) -> str:
    """``1.23 → 0.456``: a latency before and after, in ms."""
    return f"{ms(before)} → {ms(after)}"


def ratio_text(r: RatioEstimate | None) -> str:
    if r is None:
        return "—"
    return f"{r.point:.2f}× [{r.low:.2f}, {r.high:.2f}]"


def floor_text(floor: float | None) -> str:
    if floor is None:
        return "—"
    return f"{floor:.2f}×" if math.isfinite(floor) else "∞"


def _drift(c: Comparison) -> str:
    parts = []
    if c.drift.factor is not None:
        parts.append(f"CPU-bound reference {ratio_text(c.drift.factor)}")
    if c.drift.delay_ms is not None:
        d = c.drift.delay_ms
        parts.append(f"round-trip reference {d.point * 1000:+.0f} µs [{d.low * 1000:+.0f}, {d.high * 1000:+.0f}]")
    return "; ".join(parts) if parts else "no reference statements (an empty run)"


def render_comparison_text(c: Comparison) -> str:
    b, a = c.before_server, c.after_server
    width = line_width()
    lines = [f"dbtune bench compare — before: PostgreSQL {b.version} {b.target or b.database}; "
             f"after: PostgreSQL {a.version} {a.target or a.database}; {c.rounds[0]} and {c.rounds[1]} rounds",
             "latencies in ms over all executions; ratio = before / after of each round's median latency, with "
             "its 95% interval (Welch t over the rounds)",
             f"a change is called only when the whole interval clears the noise floor: the machine's drift "
             f"between the runs (at least {c.min_change:.0%}) and a difference of at least "
             f"{c.min_difference_ms * 1000:g} µs",
             f"machine drift, before / after: {_drift(c)}"]
    rows = [(q.label, arrow(q.before.p50_ms, q.after.p50_ms), arrow(q.before.p95_ms, q.after.p95_ms),
             arrow(q.before.p99_ms, q.after.p99_ms), arrow(q.before.mean_ms, q.after.mean_ms),
             ratio_text(q.ratio), floor_text(q.noise_floor), q.verdict.value, q.plan_change or "")
            for q in c.queries]
    if rows:
        lines += ["", fit_table(rows, ["query", "p50", "p95", "p99", "mean", "ratio [95% CI]", "noise floor",
                                       "verdict", "plan change"], width,
                                maxcolwidths=[NAME_WIDTH, None, None, None, None, None, None, None, PLAN_WIDTH])]
    else:
        lines += ["", "no query appears in both runs"]
    if c.only_before:
        lines.append(f"only before: {', '.join(c.only_before)}")
    if c.only_after:
        lines.append(f"only after: {', '.join(c.only_after)}")
    if c.forced:
        lines += ["", "COMPARED DESPITE (--force)"] + [f"  {d}" for d in c.forced]
    if c.notes:
        lines += ["", "NOTES"] + [f"  {n}" for n in c.notes]
    return "\n".join(fit_lines(lines, width)) + "\n"


def _round_range(medians: list[float]) -> str:
    if not medians:
        return "—"
    return f"{ms(min(medians))}–{ms(max(medians))}"


def render_result_text(r: BenchResult) -> str:
    run = r.run
    width = line_width()
    how = (f"{run.duration_s:g} s per query" if run.duration_s else
           f"{run.iterations} iterations per query and client")
    lines = [f"dbtune bench run — PostgreSQL {r.server.version} {r.server.target or r.server.database} — "
             f"{run.rounds} round{'s' if run.rounds != 1 else ''}, {how}, {run.clients} "
             f"client{'s' if run.clients != 1 else ''}, warm-up {run.warmup}"
             + (", writes rolled back" if run.allow_writes else ""),
             "latencies in ms; round p50 = the lowest and highest of the rounds' medians (what `bench compare` "
             "compares)"]
    rows = [(q.label, q.count, q.errors, ms(q.p50_ms), _round_range(q.round_medians()), ms(q.p95_ms),
             ms(q.p99_ms), ms(q.mean_ms), f"{q.throughput_qps:.0f}", f"{q.rows:.1f}", q.plan.shape if q.plan else "")
            for q in r.queries]
    if rows:
        lines += ["", fit_table(rows, ["query", "runs", "errors", "p50", "round p50", "p95", "p99", "mean",
                                       "q/s", "rows", "plan"], width,
                                maxcolwidths=[NAME_WIDTH, None, None, None, None, None, None, None, None, None,
                                              PLAN_WIDTH])]
    failing = [q for q in r.queries if q.errors]
    if failing:
        lines += ["", "ERRORS"] + [f"  {q.label}: {q.errors} failed: {q.first_error}" for q in failing]
    if r.skipped:
        lines += ["", "SKIPPED"] + [f"  {label(s.name, s.sql)}: {s.reason}" for s in r.skipped]
    return "\n".join(fit_lines(lines, width)) + "\n"
