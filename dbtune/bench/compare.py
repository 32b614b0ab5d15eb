"""Before/after comparison of two :class:`BenchResult`\\ s.

Queries are matched by pglast fingerprint (then by name). For each pair: p50, p95, p99 and mean before and
after; the speedup ``mean_before / mean_after`` and the median ratio, each with a 95 % bootstrap interval
over the raw samples (:mod:`dbtune.bench.stats`, fixed seed, so the same files always give the same
answer); a verdict; and the plan change, if any.

The verdict is ``faster`` when the intervals of both the mean speedup and the median ratio lie entirely
above 1 *and* both are at least ``1 + min_change`` (default 5 %), ``slower`` in the mirror case, ``no
significant change`` otherwise. The intervals guard against noise inside a run; asking the mean (which a
few slow outliers move) and the median (the bulk of executions) to agree, and the 5 % floor, guard
against drift between runs (caches, autovacuum, CPU frequency), which no within-run interval can see.

Results from different servers (``server_version_num``, database) or with different timing settings
(:data:`~dbtune.bench.result.TIMING_SETTINGS`) are refused with :class:`ResultsDiffer` unless
``force=True``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from dbtune.bench.plan import PlanShape
from dbtune.bench.result import BenchResult, BenchServer, QueryResult
from dbtune.bench.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, RatioEstimate, bootstrap_ratios
from dbtune.errors import UsageError

DEFAULT_MIN_CHANGE = 0.05


class ResultsDiffer(UsageError):
    """Two bench results that were measured on different servers or settings (exit 2 unless --force)."""


class Verdict(StrEnum):
    FASTER = "faster"
    SLOWER = "slower"
    NO_CHANGE = "no significant change"
    NO_DATA = "not enough data"


@dataclass(frozen=True)
class Latency:
    """One side of a query's comparison: percentiles and mean (ms), executions and errors."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    count: int
    errors: int

    @classmethod
    def of(cls, q: QueryResult) -> Latency:
        return cls(q.p50_ms, q.p95_ms, q.p99_ms, q.mean_ms, q.count, q.errors)


@dataclass(frozen=True)
class QueryComparison:
    """One query before and after. ``speedup`` is mean_before / mean_after (> 1: faster after),
    ``median_ratio`` median_before / median_after (of the raw samples), both with their 95 % interval, or
    ``None`` when a side has fewer than 2 samples. ``plan_change`` is e.g. ``Seq Scan on orders → Index Scan
    using idx_orders_status_created on orders``, or ``None`` when the plan's shape is the same."""

    name: str
    fingerprint: str
    before: Latency
    after: Latency
    speedup: RatioEstimate | None
    median_ratio: RatioEstimate | None
    verdict: Verdict
    plan_before: PlanShape | None
    plan_after: PlanShape | None
    plan_change: str | None


@dataclass(frozen=True)
class Comparison:
    """The comparison of two runs: per matched query, the queries found in one run only, the differences
    that were overridden by ``force`` (empty otherwise), and notes (differing run parameters, skipped
    queries)."""

    before_server: BenchServer
    after_server: BenchServer
    queries: tuple[QueryComparison, ...]
    only_before: tuple[str, ...]
    only_after: tuple[str, ...]
    forced: tuple[str, ...]
    notes: tuple[str, ...]
    seed: int
    resamples: int
    min_change: float

    def to_json(self) -> dict[str, Any]:
        """The JSON form of ``dbtune bench compare --format json``."""
        def ratio(r: RatioEstimate | None) -> dict[str, float] | None:
            return None if r is None else {"point": r.point, "ci_low": r.low, "ci_high": r.high,
                                           "confidence": r.confidence}

        return {
            "before": {"server": vars(self.before_server).copy()},
            "after": {"server": vars(self.after_server).copy()},
            "method": {"ci": "percentile bootstrap", "seed": self.seed, "resamples": self.resamples,
                       "min_change": self.min_change},
            "queries": [{
                "name": q.name, "fingerprint": q.fingerprint,
                "before": vars(q.before).copy(), "after": vars(q.after).copy(),
                "speedup": ratio(q.speedup), "median_ratio": ratio(q.median_ratio), "verdict": q.verdict.value,
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
    """What makes two results incomparable: server version, database, timing settings."""
    found = []
    if before.server.version_num != after.server.version_num:
        found.append(f"server_version_num {before.server.version_num} before, {after.server.version_num} after")
    if before.server.database != after.server.database:
        found.append(f"database {before.server.database!r} before, {after.server.database!r} after")
    for name in sorted(set(before.settings) | set(after.settings)):
        b, a = before.settings.get(name), after.settings.get(name)
        if b != a:
            found.append(f"setting {name} {b!r} before, {a!r} after")
    return found


def _run_notes(before: BenchResult, after: BenchResult) -> list[str]:
    notes = []
    for attr in ("clients", "iterations", "duration_s", "warmup", "allow_writes"):
        b, a = getattr(before.run, attr), getattr(after.run, attr)
        if b != a:
            notes.append(f"run parameter {attr} differs: {b} before, {a} after")
    skipped_after = {(s.name, s.reason) for s in after.skipped}
    for s in before.skipped:
        both = (s.name, s.reason) in skipped_after
        notes.append(f"{s.name} was skipped {'in both runs' if both else 'before'}: {s.reason}")
    skipped_before = {(s.name, s.reason) for s in before.skipped}
    notes += [f"{s.name} was skipped after: {s.reason}" for s in after.skipped
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


def verdict(speedup: RatioEstimate | None, median_ratio: RatioEstimate | None,
            min_change: float = DEFAULT_MIN_CHANGE) -> Verdict:
    """``faster`` when both intervals are above 1 and both ratios at least ``1 + min_change``; ``slower``
    in the mirror case; ``no significant change`` otherwise; ``not enough data`` without estimates."""
    if speedup is None or median_ratio is None:
        return Verdict.NO_DATA
    both = (speedup, median_ratio)
    if all(r.low > 1.0 and r.point >= 1.0 + min_change for r in both):
        return Verdict.FASTER
    if all(r.high < 1.0 and r.point <= 1.0 / (1.0 + min_change) for r in both):
        return Verdict.SLOWER
    return Verdict.NO_CHANGE


def compare(before: BenchResult, after: BenchResult, force: bool = False, *, seed: int = DEFAULT_SEED,
            resamples: int = DEFAULT_RESAMPLES, min_change: float = DEFAULT_MIN_CHANGE) -> Comparison:
    """Compare two runs query by query (see the module docstring).

    Raises :class:`ResultsDiffer` (exit 2) naming every difference when the servers (version_num, database)
    or timing settings differ, unless ``force``; then the differences are listed in ``Comparison.forced``.
    """
    found = differences(before, after)
    if found and not force:
        raise ResultsDiffer("refusing to compare runs measured differently: " + "; ".join(found)
                            + " (pass --force to compare anyway)")
    pairs, only_before, only_after = _match(before, after)
    rows = []
    for b, a in pairs:
        speedup = median_ratio = None
        if len(b.samples) >= 2 and len(a.samples) >= 2:
            speedup, median_ratio = bootstrap_ratios(b.samples, a.samples, key=b.fingerprint, seed=seed,
                                                     resamples=resamples)
        rows.append(QueryComparison(
            name=b.name if b.name == a.name else f"{b.name} / {a.name}", fingerprint=b.fingerprint,
            before=Latency.of(b), after=Latency.of(a), speedup=speedup, median_ratio=median_ratio,
            verdict=verdict(speedup, median_ratio, min_change), plan_before=b.plan, plan_after=a.plan,
            plan_change=plan_change(b.plan, a.plan)))
    return Comparison(before.server, after.server, tuple(rows), tuple(q.name for q in only_before),
                      tuple(q.name for q in only_after), tuple(found), tuple(_run_notes(before, after)),
                      seed, resamples, min_change)
