"""Plain-text renderings of ``dbtune probe load|recovery|lag`` and the profile table; on a terminal no line is
wider than it (80 columns and up: tables fitted, long lines wrapped by :mod:`dbtune.report.width`)."""

from __future__ import annotations

from dbtune.bench.result import label
from dbtune.probe.lag import LagResult
from dbtune.probe.load import LoadResult
from dbtune.probe.profile import ProfileTable, TargetRow
from dbtune.probe.recovery import RecoveryEstimate, RecoveryMeasurement
from dbtune.report.bench_text import ms
from dbtune.report.width import fit_lines, fit_table, line_width


def _mb(n: float | None) -> str:
    return "—" if n is None else f"{n / 1024 / 1024:.1f} MB"


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g} s"


def render_load_text(result: LoadResult) -> str:
    """The load's totals, the engine and why, one row per statement, and the statements skipped."""
    clients = f"{result.clients} client{'s' if result.clients != 1 else ''}"
    lines = [f"load on {result.target}: {clients} x {result.duration_s} s "
             f"(measured {result.elapsed_s:.1f} s)",
             f"engine: {result.engine.value} ({result.engine_reason})",
             f"throughput: {result.tps:.1f} tps, {result.transactions} transactions, {result.errors} errors "
             f"({result.error_rate_pct:.2f} %)",
             f"latency: p50 {ms(result.p50_ms)} ms, p95 {ms(result.p95_ms)} ms, p99 {ms(result.p99_ms)} ms", ""]
    rows = [[label(s.name, s.sql), s.kind, s.count, s.errors, ms(s.p50_ms), ms(s.p95_ms), ms(s.p99_ms),
             s.first_error or ""] for s in result.statements]
    width = line_width()
    lines.append(fit_table(rows, ["statement", "kind", "runs", "errors", "p50 ms", "p95 ms", "p99 ms", "first error"],
                           width, wrap=[0, 7]))
    for s in result.skipped:
        lines.append(f"skipped {label(s.name, s.sql)}: {s.reason}")
    return _fitted(lines, width)


def _fitted(lines: list[str], width: int) -> str:
    """The report's lines, each wrapped to ``width`` on a terminal (:func:`dbtune.report.width.fit_lines`)."""
    return "\n".join(fit_lines(lines, width)) + "\n"


def render_recovery_text(measured: RecoveryMeasurement | None, estimate: RecoveryEstimate | None) -> str:
    """The crash and restart (when measured) and the estimate from the checkpoint settings."""
    lines = []
    if measured is not None:
        lines += [f"measured: crash (pg_ctl stop -m immediate) under writes from {measured.writers} session"
                  f"{'s' if measured.writers != 1 else ''} after "
                  f"{measured.load_s:g} s ({measured.transactions} inserts, {_mb(measured.wal_to_replay_bytes)} "
                  "of WAL since the last checkpoint)",
                  f"  recovery: {_s(measured.recovery_s)} from pg_ctl start to the first query (redo "
                  f"{_s(measured.redo_s)} as logged; the stop took {_s(measured.stop_s)})"]
    if estimate is not None:
        lines += [f"estimate: {_s(estimate.estimate_s)} at worst",
                  f"  {estimate.how}",
                  f"  WAL rate from {estimate.wal_rate_source}; WAL since the last checkpoint now: "
                  f"{_mb(estimate.since_redo_bytes)}",
                  f"  see {estimate.docs}"]
    return _fitted(lines, line_width())


def render_lag_text(result: LagResult) -> str:
    """The standbys the primary reports and each replica's own replay lag."""
    lines = []
    if result.primary is not None:
        lines.append(f"primary {result.primary}: {len(result.standbys)} standby(s) in pg_stat_replication")
        for s in result.standbys:
            lines.append(f"  {s.application_name} ({s.client_addr or 'local'}, {s.state}): write {_s(s.write_lag_s)}, "
                         f"flush {_s(s.flush_lag_s)}, replay {_s(s.replay_lag_s)}, replay gap "
                         f"{'—' if s.replay_gap_bytes is None else f'{s.replay_gap_bytes} bytes'}")
    for r in result.replicas:
        if r.error is not None:
            lines.append(f"replica {r.target} ({r.source}): not measured: {r.error}")
        else:
            lines.append(f"replica {r.target} ({r.source}): replay lag {_s(r.lag_s)}"
                         + (" (caught up)" if r.caught_up else ""))
    lines.append(f"worst lag: {_s(result.worst_s)}")
    return _fitted(lines, line_width())


def bound_text(row: TargetRow) -> str:
    """A target's bound as shown: ``≥ 250 transactions/s``, ``required + sentinel``, ``—``."""
    if row.bound is None:
        return "—"
    if isinstance(row.bound, str):
        return row.bound
    return f"{'≥' if row.minimum else '≤'} {_number(row.bound)} {row.unit}".rstrip()


def _number(value: float) -> str:
    """``16,711``, ``2.15``, ``0.0803``: whole numbers from 1,000 on, else three significant digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def value_text(row: TargetRow) -> str:
    """A target's measured value as shown: ``16,711 transactions/s``, ``—`` when not measured."""
    if row.measured is None:
        return "—"
    return f"{_number(row.measured)} {row.unit}".rstrip()


def render_profile_text(table: ProfileTable) -> str:
    """The profile's targets, each with its measured value, met/missed and how it was measured."""
    title = f"profile {table.profile}" if table.profile else "targets"
    rows = [[r.label, bound_text(r), value_text(r), r.status.value, r.how] for r in table.rows]
    width = line_width()
    return _fitted([f"{title}: {sum(r.status == 'met' for r in table.rows)} met, {len(table.missed)} missed",
                    fit_table(rows, ["target", "profile", "measured", "status", "how"], width, wrap=[0, 4])], width)
