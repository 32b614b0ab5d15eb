"""Latency statistics: HdrHistogram recording and percentiles, and the round-level comparison of two runs.

A run is made of rounds (:mod:`dbtune.bench.runner`); each round measures every query once more, so each
query has one *round statistic* per round: the median latency of that round's executions. A comparison
works on those round statistics, never on the pooled executions, because executions within one round are
not independent: a cache that is cold, a CPU whose frequency dropped or another session's load slows a
whole stretch of them together. Pooled, thousands of executions give a tight interval around a difference
that is only the drift between two moments; per round, that drift is part of the spread and widens the
interval.

- :func:`round_ratio`: the ratio of the two runs' round medians, ``before / after`` (> 1: the after run
  is faster), as the geometric mean ratio with a 95 % Welch *t* interval computed on the logarithms of the
  round statistics (Welch, 1947, "The generalization of 'Student's' problem when several different
  population variances are involved"; the Welch–Satterthwaite degrees of freedom, rounded down, so the
  interval is never narrower than the exact one). Latencies are skewed and compared as ratios, so their
  logarithms are what is averaged.
- :class:`Drift` and its noise floors: how far the machine itself moved between the two runs, measured on
  two reference statements that run in every round beside the workload and that no schema change can make
  faster or slower (a round trip, ``SELECT 1``, and a CPU-bound ``count(*)`` over ``generate_series``).
  Drift between rounds is already in each query's interval; drift between the two runs (the second run
  on a busier machine, a CPU that clocked down) moves every statement at once, and no query's own rounds
  can show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

# HdrHistogram range in microseconds: 1 µs to 1 hour, 3 significant digits (0.1 % resolution).
HIST_LOWEST_US = 1
HIST_HIGHEST_US = 3_600_000_000
HIST_DIGITS = 3

CONFIDENCE = 0.95

# The 97.5th percentile of Student's t distribution (two-sided 95 %) for 1–30 degrees of freedom, then
# for 40, 60 and 120; the normal quantile beyond (any table of the t distribution, e.g. NIST/SEMATECH
# e-Handbook of Statistical Methods, 1.3.6.7.2).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
_T975_LARGE = ((40, 2.021), (60, 2.000), (120, 1.980))
# The 90th percentile (two-sided 80 %), from the same table: the confidence of the machine-drift bound that
# validation uses (dbtune.advisor.validate, dbtune.bench.compare's ``drift_confidence``).
_T90 = (3.078, 1.886, 1.638, 1.533, 1.476, 1.440, 1.415, 1.397, 1.383, 1.372, 1.363, 1.356, 1.350, 1.345,
        1.341, 1.337, 1.333, 1.330, 1.328, 1.325, 1.323, 1.321, 1.319, 1.318, 1.316, 1.315, 1.314, 1.313,
        1.311, 1.310)
_T90_LARGE = ((40, 1.303), (60, 1.296), (120, 1.289))
_TABLES = {0.95: (_T975, _T975_LARGE, 1.960), 0.80: (_T90, _T90_LARGE, 1.282)}


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in µs (1 µs – 1 h, 3 significant digits)."""
    return HdrHistogram(HIST_LOWEST_US, HIST_HIGHEST_US, HIST_DIGITS)


def record(histogram: HdrHistogram, latency_ms: float) -> None:
    """Record one latency (ms) in a µs histogram, clamped to its range."""
    us = int(round(latency_ms * 1000.0))
    histogram.record_value(min(max(us, HIST_LOWEST_US), HIST_HIGHEST_US))


def encode(histogram: HdrHistogram) -> str:
    """The histogram's compressed base64 form (HdrHistogram's standard V2 encoding)."""
    return histogram.encode().decode("ascii")


def decode(encoded: str) -> HdrHistogram:
    """A histogram from :func:`encode`'s output."""
    return HdrHistogram.decode(encoded.encode("ascii"))


def percentile_ms(histogram: HdrHistogram, pct: float) -> float:
    """The latency (ms) at percentile ``pct`` (0–100) of a µs histogram; 0.0 when it is empty."""
    if histogram.get_total_count() == 0:
        return 0.0
    return histogram.get_value_at_percentile(pct) / 1000.0


def mean(xs: Sequence[float]) -> float:
    """The arithmetic mean of a non-empty sequence."""
    return math.fsum(xs) / len(xs)


def median(xs: Sequence[float]) -> float:
    """The median of a non-empty sequence (the mean of the two middle values for an even length)."""
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def t_quantile_975(df: float) -> float:
    """Student's t at 97.5 % for ``df`` degrees of freedom (at least 1), ``df`` rounded down: the
    conservative (wider) value for a fractional Welch–Satterthwaite ``df``."""
    return t_quantile(df, CONFIDENCE)


def t_quantile(df: float, confidence: float = CONFIDENCE) -> float:
    """Student's t for a two-sided ``confidence`` interval (0.95 or 0.80: the 97.5th or the 90th
    percentile) with ``df`` degrees of freedom (at least 1; rounded down, the wider value; infinite: the
    normal quantile). Raises ``ValueError`` for another confidence."""
    if confidence not in _TABLES:
        raise ValueError(f"no t table for confidence {confidence} (have {', '.join(map(str, _TABLES))})")
    table, large, normal = _TABLES[confidence]
    if math.isinf(df):
        return normal
    whole = max(1, int(math.floor(df)))
    if whole <= len(table):
        return table[whole - 1]
    for limit, value in reversed(large):
        if whole >= limit:
            return value
    return table[-1]


@dataclass(frozen=True)
class RatioEstimate:
    """``point`` = before / after of the round statistics (> 1: the after run is faster), with the
    ``low``–``high`` interval at ``confidence``; ``df`` its Welch–Satterthwaite degrees of freedom."""

    point: float
    low: float
    high: float
    confidence: float = CONFIDENCE
    df: float = math.inf

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class Difference:
    """``point`` = before − after of the round statistics (ms; > 0: the before run was slower), with the
    ``low``–``high`` interval at ``confidence``."""

    point: float
    low: float
    high: float
    confidence: float = CONFIDENCE


def _checked(xs: Sequence[float]) -> Sequence[float]:
    if len(xs) < 2:
        raise ValueError("a round-level interval needs at least 2 rounds on each side")
    if min(xs) <= 0:
        raise ValueError("round statistics must be positive latencies")
    return xs


def _variance(xs: Sequence[float]) -> float:
    m = mean(xs)
    return math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1)


def _welch(xs: Sequence[float], ys: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Welch's interval for mean(xs) - mean(ys): (difference, half-width at ``confidence``, degrees of
    freedom)."""
    diff = mean(xs) - mean(ys)
    vx, vy = _variance(xs) / len(xs), _variance(ys) / len(ys)
    if vx + vy == 0.0:
        return diff, 0.0, math.inf
    df = (vx + vy) ** 2 / (vx ** 2 / (len(xs) - 1) + vy ** 2 / (len(ys) - 1))
    return diff, t_quantile(df, confidence) * math.sqrt(vx + vy), df


def round_ratio(before: Sequence[float], after: Sequence[float], confidence: float = CONFIDENCE) -> RatioEstimate:
    """The ratio of the round statistics ``before / after`` (each a sequence of per-round median latencies,
    any unit, all positive, at least 2 per side; ``ValueError`` otherwise): the geometric mean ratio
    ``exp(mean(ln before) - mean(ln after))`` with its 95 % Welch t interval on the logarithms. Rounds that
    disagree within a run widen it; identical rounds on both sides give a zero-width interval. ``confidence``
    (0.95, or 0.80: :func:`t_quantile`) is the interval's."""
    diff, half, df = _welch([math.log(x) for x in _checked(before)], [math.log(x) for x in _checked(after)],
                            confidence)
    return RatioEstimate(math.exp(diff), math.exp(diff - half), math.exp(diff + half), confidence, df)


def round_difference(before: Sequence[float], after: Sequence[float], confidence: float = CONFIDENCE
                     ) -> Difference:
    """The difference of the mean round statistics ``before - after`` (ms, same conditions as
    :func:`round_ratio`) with its Welch t interval at ``confidence`` (95 % by default)."""
    diff, half, _ = _welch(_checked(before), _checked(after), confidence)
    return Difference(diff, diff - half, diff + half, confidence)


def _inflation(observed_ms: float, delay_ms: float) -> float:
    """How much a delay of ``delay_ms`` added to every execution inflates a latency observed as
    ``observed_ms``: observed / (observed - delay); infinite when the delay could be all of it."""
    return observed_ms / (observed_ms - delay_ms) if observed_ms > delay_ms else math.inf


@dataclass(frozen=True)
class Drift:
    """How the machine itself moved between two runs, measured on the reference statements that ran in
    every round beside the workload: ``factor`` is the CPU-bound statement's :func:`round_ratio` (a CPU
    that clocked down or is shared scales every statement's work), ``delay_ms`` the round-trip statement's
    :func:`round_difference` (a busy machine adds a wait to every statement, the same few hundred µs to a
    0.1 ms lookup and to a 20 ms scan). Either is ``None`` when a run lacks it."""

    factor: RatioEstimate | None = None
    delay_ms: Difference | None = None

    def floors(self, before_ms: float, after_ms: float, min_change: float) -> tuple[float, float]:
        """The noise floors of a query whose round medians are ``before_ms`` and ``after_ms`` (ms):
        ``(up, down)``, each at least ``1 + min_change``. Its ratio's interval must lie above ``up`` for
        ``faster`` and below ``1 / down`` for ``slower``. ``up`` is the far end of the factor's interval
        times the inflation of the before side by the largest delay the before run may have had over the
        after run; ``down`` the mirror. A delay inflates a short latency much more than a long one, so a
        busy before run may explain 0.1 → 0.05 ms but not 20 → 0.05 ms."""
        up = down = 1.0 + min_change
        if self.factor is not None:
            up, down = max(up, self.factor.high), max(down, 1.0 / self.factor.low)
        if self.delay_ms is not None:
            if self.delay_ms.high > 0:
                up *= _inflation(before_ms, self.delay_ms.high)
            if self.delay_ms.low < 0:
                down *= _inflation(after_ms, -self.delay_ms.low)
        return up, down
