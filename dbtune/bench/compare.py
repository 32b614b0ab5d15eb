"""Before/after comparison of two :class:`BenchResult`\\ s.

Queries are matched by pglast fingerprint (then by name). For each pair: p50, p95, p99 and mean before and
after (over all executions, for reading); the *ratio* of the two runs' round statistics (each round's
median latency, :mod:`dbtune.bench.stats`): ``before / after`` as the geometric mean ratio with its 95 %
Welch t interval on the logarithms of the round medians; the *noise floor*; a verdict and its reason; and
the plan change, if any.

A query is ``faster`` when both of these hold, ``slower`` in the mirror case, ``no significant change``
otherwise:

- its whole interval lies above its *noise floor*. The interval is computed on round statistics, so the
  drift from round to round within each run (caches, CPU frequency, other load) is part of its width. The
  floor covers the drift between the two runs, which no query's own rounds can show: two reference
  statements run in every round beside the workload, which no schema change can make faster or slower
  (:class:`~dbtune.bench.stats.Drift`): a CPU-bound one gives the factor by which the machine's speed may
  have changed, the far end of its interval; a round trip (``SELECT 1``) the delay a busier machine may
  have added to every statement, which inflates a short latency far more than a long one. The floor is at
  least ``1 + min_change`` (5 %). The reference statements' intervals are 95 % ones unless the caller
  passes ``drift_confidence`` (0.80: :mod:`dbtune.advisor.validate`, which says why);
- the medians of the round medians differ by at least ``min_difference_ms`` (5 µs): below that a
  difference is the timer's and the network's, whatever its ratio.

``not enough data`` when a side has fewer than 2 rounds with a measured execution. The same two files
always give the same answer (nothing is random).

Results from different servers (``server_version_num``, database), with different timing settings
(:data:`~dbtune.bench.result.TIMING_SETTINGS`) or made differently (clients, iterations, duration,
rounds, warm-up, parameter samples, seed) are refused with :class:`ResultsDiffer` unless ``force=True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from dbtune.bench.plan import PlanShape
from dbtune.bench.result import CPU_BOUND, ROUND_TRIP, BenchResult, BenchServer, QueryResult, label
from dbtune.bench.stats import CONFIDENCE, Drift, RatioEstimate, median, round_difference, round_ratio
from dbtune.errors import UsageError
from dbtune.model import report_header

DEFAULT_MIN_CHANGE = 0.05
DEFAULT_MIN_DIFFERENCE_MS = 0.005
MIN_ROUNDS = 2

# Run parameters that change what is measured: two runs that differ in one are not compared unless forced.
COMPARED_RUN_PARAMETERS = ("clients", "iterations", "duration_s", "rounds", "warmup", "param_samples", "seed")


class ResultsDiffer(UsageError):
    """Two bench results that were measured on different servers, settings or run parameters (exit 2
    unless --force)."""


class Verdict(StrEnum):
    FASTER = "faster"
    SLOWER = "slower"
    NO_CHANGE = "no significant change"
    NO_DATA = "not enough data"


@dataclass(frozen=True)
class Latency:
    """One side of a query's comparison: percentiles and mean (ms) over all executions, executions,
    errors, the rounds with a measured execution, and the executions per second over the measured phase
    (all clients: :attr:`~dbtune.bench.result.QueryResult.throughput_qps`)."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    count: int
    errors: int
    rounds: int
    throughput_qps: float = 0.0

    @classmethod
    def of(cls, q: QueryResult) -> Latency:
        return cls(q.p50_ms, q.p95_ms, q.p99_ms, q.mean_ms, q.count, q.errors, len(q.round_medians()),
                   q.throughput_qps)


@dataclass(frozen=True)
class QueryComparison:
    """One query before and after. ``ratio`` is round-median before / after (> 1: faster after) with its
    95 % interval, and ``noise_floor`` the ratio its interval had to clear in the direction of the
    change (:meth:`~dbtune.bench.stats.Drift.floors`), both ``None`` when a side has fewer than 2 rounds;
    ``reason`` says in words why the verdict is what it is. ``plan_change`` is e.g. ``Seq Scan on orders →
    Index Scan using idx_orders_status_created on orders``, or ``None`` when the plan's shape is the same.
    ``label`` is the name as shown (with the SQL's first line for a pg_stat_statements query)."""

    name: str
    label: str
    fingerprint: str
    before: Latency
    after: Latency
    ratio: RatioEstimate | None
    noise_floor: float | None
    verdict: Verdict
    reason: str
    plan_before: PlanShape | None
    plan_after: PlanShape | None
    plan_change: str | None


@dataclass(frozen=True)
class Comparison:
    """The comparison of two runs: per matched query, the queries found in one run only, the differences
    that were overridden by ``force`` (empty otherwise), and notes (skipped queries, differing write
    mode). ``drift`` is how the reference statements moved between the runs, from which each query's
    noise floor comes, with ``min_change``; ``min_difference_ms`` the smallest difference of medians ever
    called a change; ``rounds`` the rounds of each run; ``drift_confidence`` the confidence of the
    reference statements' intervals the noise floors come from."""

    command: ClassVar[str] = "bench compare"
    before_server: BenchServer
    after_server: BenchServer
    queries: tuple[QueryComparison, ...]
    only_before: tuple[str, ...]
    only_after: tuple[str, ...]
    forced: tuple[str, ...]
    notes: tuple[str, ...]
    drift: Drift
    min_change: float
    min_difference_ms: float
    rounds: tuple[int, int] = (0, 0)
    drift_confidence: float = CONFIDENCE

    def verdicts(self) -> dict[str, Verdict]:
        """Each matched query's verdict by name."""
        return {q.name: q.verdict for q in self.queries}

    def to_json(self) -> dict[str, Any]:
        """The JSON form of ``dbtune bench compare --format json``."""
        def ratio(r: RatioEstimate | None) -> dict[str, float] | None:
            return None if r is None else {"point": r.point, "ci_low": r.low, "ci_high": r.high,
                                           "confidence": r.confidence, "df": r.df}

        return {
            **report_header(self),
            "before": {"server": vars(self.before_server).copy(), "rounds": self.rounds[0]},
            "after": {"server": vars(self.after_server).copy(), "rounds": self.rounds[1]},
            "method": {"statistic": "median latency of each round",
                       "ratio": "geometric mean of the round medians, before / after",
                       "ci": "Welch t on the logarithms of the round medians",
                       "noise_floor": "the reference statements' drift between the runs, at least 1 + min_change",
                       "drift_confidence": self.drift_confidence,
                       "min_change": self.min_change, "min_difference_ms": self.min_difference_ms},
            "drift": {"factor": ratio(self.drift.factor),
                      "delay_ms": None if self.drift.delay_ms is None else {
                          "point": self.drift.delay_ms.point, "ci_low": self.drift.delay_ms.low,
                          "ci_high": self.drift.delay_ms.high, "confidence": self.drift.delay_ms.confidence}},
            "queries": [{
                "name": q.name, "label": q.label, "fingerprint": q.fingerprint,
                "before": vars(q.before).copy(), "after": vars(q.after).copy(),
                "ratio": ratio(q.ratio), "noise_floor": q.noise_floor, "verdict": q.verdict.value,
                "reason": q.reason,
                "plan_before": q.plan_before.to_json() if q.plan_before else None,
                "plan_after": q.plan_after.to_json() if q.plan_after else None,
                "plan_change": q.plan_change,
            } for q in self.queries],
            "only_before": list(self.only_before),
            "only_after": list(self.only_after),
            "forced": list(self.forced),
            "notes": list(self.notes),
        }


def differences(before: BenchResult, after: BenchResult) -> list[str]:
    """What makes two results incomparable: server version, database, timing settings, and the run
    parameters of :data:`COMPARED_RUN_PARAMETERS`."""
    found = []
    if before.server.version_num != after.server.version_num:
        found.append(f"server_version_num {before.server.version_num} before, {after.server.version_num} after")
    if before.server.database != after.server.database:
        found.append(f"database {before.server.database!r} before, {after.server.database!r} after")
    for name in sorted(set(before.settings) | set(after.settings)):
        b, a = before.settings.get(name), after.settings.get(name)
        if b != a:
            found.append(f"setting {name} {b!r} before, {a!r} after")
    for attr in COMPARED_RUN_PARAMETERS:
        b, a = getattr(before.run, attr), getattr(after.run, attr)
        if b != a:
            found.append(f"{attr} {b} before, {a} after")
    return found


def _run_notes(before: BenchResult, after: BenchResult) -> list[str]:
    notes = []
    if before.run.allow_writes != after.run.allow_writes:
        notes.append(f"allow_writes {before.run.allow_writes} before, {after.run.allow_writes} after: "
                     "DML ran on one side only")
    skipped_after = {(s.name, s.reason) for s in after.skipped}
    for s in before.skipped:
        both = (s.name, s.reason) in skipped_after
        notes.append(f"{label(s.name, s.sql)} was skipped {'in both runs' if both else 'before'}: {s.reason}")
    skipped_before = {(s.name, s.reason) for s in before.skipped}
    notes += [f"{label(s.name, s.sql)} was skipped after: {s.reason}" for s in after.skipped
              if (s.name, s.reason) not in skipped_before]
    return notes


def _match(before: BenchResult, after: BenchResult) -> tuple[list[tuple[QueryResult, QueryResult]],
                                                             list[QueryResult], list[QueryResult]]:
    left, right = list(before.queries), list(after.queries)
    pairs: list[tuple[QueryResult, QueryResult]] = []
    for key in (lambda q: (q.fingerprint, q.name), lambda q: q.fingerprint, lambda q: q.name):
        for b in list(left):
            a = next((r for r in right if key(r) == key(b)), None)
            if a is not None:
                pairs.append((b, a))
                left.remove(b)
                right.remove(a)
    order = {q.name: i for i, q in enumerate(before.queries)}
    pairs.sort(key=lambda p: order[p[0].name])
    return pairs, left, right


def plan_change(before: PlanShape | None, after: PlanShape | None) -> str | None:
    """``removed scans → added scans`` when the scans differ, ``shape → shape`` when only the shape does,
    ``None`` when the plan is the same (or unknown on a side)."""
    if before is None or after is None or before.shape == after.shape:
        return None
    removed = [s for s in before.scans if s not in after.scans]
    added = [s for s in after.scans if s not in before.scans]
    if removed and added:
        return f"{', '.join(removed)} → {', '.join(added)}"
    if added:
        return "+ " + ", ".join(added)
    if removed:
        return "- " + ", ".join(removed)
    return f"{before.shape} → {after.shape}"


def drift(before: BenchResult, after: BenchResult, confidence: float = CONFIDENCE) -> Drift:
    """How the reference statements moved between the runs (:class:`~dbtune.bench.stats.Drift`), with
    intervals at ``confidence`` (0.95 or 0.80); a part is ``None`` when a side did not measure that
    statement in at least 2 rounds."""
    def rounds(result: BenchResult, name: str) -> list[float]:
        q = result.reference(name)
        return q.round_medians() if q is not None else []

    factor = delay = None
    b, a = rounds(before, CPU_BOUND), rounds(after, CPU_BOUND)
    if len(b) >= MIN_ROUNDS and len(a) >= MIN_ROUNDS:
        factor = round_ratio(b, a, confidence)
    b, a = rounds(before, ROUND_TRIP), rounds(after, ROUND_TRIP)
    if len(b) >= MIN_ROUNDS and len(a) >= MIN_ROUNDS:
        delay = round_difference(b, a, confidence)
    return Drift(factor, delay)


def judge(before: QueryResult, after: QueryResult, machine: Drift, *, min_change: float = DEFAULT_MIN_CHANGE,
          min_difference_ms: float = DEFAULT_MIN_DIFFERENCE_MS
          ) -> tuple[RatioEstimate | None, float | None, Verdict, str]:
    """The ratio, noise floor, verdict and reason for one query, given how the ``machine`` drifted between
    the runs (see the module docstring)."""
    b, a = before.round_medians(), after.round_medians()
    if len(b) < MIN_ROUNDS or len(a) < MIN_ROUNDS:
        return None, None, Verdict.NO_DATA, (f"a verdict needs at least {MIN_ROUNDS} rounds with a measured "
                                             f"execution on each side ({len(b)} before, {len(a)} after)")
    ratio = round_ratio(b, a)
    up, down = machine.floors(median(b), median(a), min_change)
    floor = up if ratio.point >= 1.0 else down
    interval = f"{ratio.point:.2f}× [{ratio.low:.2f}, {ratio.high:.2f}]"
    shown = f"{floor:.2f}×" if math.isfinite(floor) else "∞ (the machine's drift could be all of it)"
    if ratio.low <= up and ratio.high * down >= 1.0:
        where = "includes 1" if ratio.contains(1.0) else f"reaches into the noise floor {shown}"
        return ratio, floor, Verdict.NO_CHANGE, f"{interval} {where}"
    difference = abs(median(b) - median(a))
    if difference < min_difference_ms:
        return ratio, floor, Verdict.NO_CHANGE, (f"the medians differ by {difference * 1000:.1f} µs, under "
                                                 f"{min_difference_ms * 1000:g} µs")
    outcome = Verdict.FASTER if ratio.low > up else Verdict.SLOWER
    return ratio, floor, outcome, f"{interval} clear of the noise floor {shown}"


def compare(before: BenchResult, after: BenchResult, force: bool = False, *,
            min_change: float = DEFAULT_MIN_CHANGE,
            min_difference_ms: float = DEFAULT_MIN_DIFFERENCE_MS, drift_confidence: float = CONFIDENCE
            ) -> Comparison:
    """Compare two runs query by query (see the module docstring): a :class:`Comparison` whose
    ``queries`` each carry a :class:`Verdict` (``faster``, ``slower``, ``no significant change``, ``not
    enough data``), the ratio of the round medians with its 95 % interval, and the noise floor.

    ``drift_confidence`` (0.95 by default, or 0.80) is the confidence of the reference statements' intervals
    whose far ends make the noise floors; ``bench compare`` keeps 0.95. A lower one is for a caller that
    knows the cost of each error, as validation does (:mod:`dbtune.advisor.validate`).

    Raises :class:`ResultsDiffer` (exit 2) naming every difference when the servers (version_num,
    database), timing settings or run parameters differ, unless ``force``; then the differences are
    listed in ``Comparison.forced``.
    """
    found = differences(before, after)
    if found and not force:
        raise ResultsDiffer("refusing to compare runs measured differently: " + "; ".join(found)
                            + " (pass --force to compare anyway)")
    pairs, only_before, only_after = _match(before, after)
    machine = drift(before, after, drift_confidence)
    rows = []
    for b, a in pairs:
        ratio, floor, outcome, reason = judge(b, a, machine, min_change=min_change,
                                              min_difference_ms=min_difference_ms)
        name = b.name if b.name == a.name else f"{b.name} / {a.name}"
        rows.append(QueryComparison(
            name=name, label=b.label if b.name == a.name else name, fingerprint=b.fingerprint,
            before=Latency.of(b), after=Latency.of(a), ratio=ratio, noise_floor=floor, verdict=outcome,
            reason=reason,
            plan_before=b.plan, plan_after=a.plan, plan_change=plan_change(b.plan, a.plan)))
    return Comparison(before.server, after.server, tuple(rows), tuple(q.label for q in only_before),
                      tuple(q.label for q in only_after), tuple(found), tuple(_run_notes(before, after)),
                      machine, min_change, min_difference_ms, (before.run.rounds, after.run.rounds),
                      drift_confidence)
