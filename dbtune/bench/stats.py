"""Latency statistics: HdrHistogram recording, percentiles, and bootstrap confidence intervals for the
ratio of two latency samples.

The interval is a percentile bootstrap (Efron & Tibshirani, *An Introduction to the Bootstrap*, ch. 13):
both samples are resampled with replacement ``resamples`` times, the statistic's ratio is taken each
time, and the 2.5th and 97.5th percentiles of those ratios bound the 95 % interval. The random generator
is seeded from a fixed seed and the query's key, so the same two results always give the same interval.

For the mean, samples longer than ``max_samples`` are first reduced to a seeded uniform subsample, which
keeps the cost bounded in pure Python and only widens the interval, never narrows it; the interval is then
scaled to centre on the full samples' ratio. For the median no resample is built: the k-th smallest of n
values drawn with replacement from the sorted sample ``x`` is ``x[floor(n * U)]`` with
``U ~ Beta(k, n + 1 - k)`` (the k-th order statistic of n uniforms), so each bootstrap median costs one
Beta draw and uses every sample.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from hdrh.histogram import HdrHistogram

# HdrHistogram range in microseconds: 1 µs to 1 hour, 3 significant digits (0.1 % resolution).
HIST_LOWEST_US = 1
HIST_HIGHEST_US = 3_600_000_000
HIST_DIGITS = 3

DEFAULT_SEED = 20240607
DEFAULT_RESAMPLES = 1000
DEFAULT_MAX_SAMPLES = 1000
CONFIDENCE = 0.95


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
    return math.fsum(xs) / len(xs)


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


@dataclass(frozen=True)
class RatioEstimate:
    """``point`` = statistic(before) / statistic(after) (> 1: the after run is faster), with the
    ``low``–``high`` bootstrap interval at ``confidence``."""

    point: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def _subsample(xs: Sequence[float], limit: int, rng: random.Random) -> list[float]:
    return list(xs) if len(xs) <= limit else rng.sample(list(xs), limit)


def bootstrap_ratios(before: Sequence[float], after: Sequence[float], *, key: str = "",
                     seed: int = DEFAULT_SEED, resamples: int = DEFAULT_RESAMPLES,
                     max_samples: int = DEFAULT_MAX_SAMPLES,
                     confidence: float = CONFIDENCE) -> tuple[RatioEstimate, RatioEstimate]:
    """Mean ratio and median ratio of ``before`` over ``after`` (latencies, any unit), each with a
    percentile-bootstrap interval. Deterministic for a given ``seed`` and ``key``. Both samples need at
    least 2 values (``ValueError`` otherwise)."""
    if len(before) < 2 or len(after) < 2:
        raise ValueError("a bootstrap interval needs at least 2 samples on each side")
    rng = random.Random(f"{seed}:{key}")
    b = _subsample(before, max_samples, rng)
    a = _subsample(after, max_samples, rng)
    nb, na = len(b), len(a)
    mean_ratios = [_ratio(math.fsum(rng.choices(b, k=nb)) / nb, math.fsum(rng.choices(a, k=na)) / na)
                   for _ in range(resamples)]
    sb, sa = sorted(before), sorted(after)
    median_ratios = [_ratio(_bootstrap_median(sb, rng), _bootstrap_median(sa, rng)) for _ in range(resamples)]
    mean_ci = _estimate(_ratio(mean(b), mean(a)), mean_ratios, confidence)
    point = _ratio(mean(before), mean(after))
    if (nb, na) != (len(before), len(after)) and mean_ci.point > 0 and math.isfinite(point):
        # Subsampled: keep the subsample's spread around the full data's ratio.
        shift = point / mean_ci.point
        mean_ci = RatioEstimate(point, mean_ci.low * shift, mean_ci.high * shift, confidence)
    return mean_ci, _estimate(_ratio(median(before), median(after)), median_ratios, confidence)


def _bootstrap_median(ordered: list[float], rng: random.Random) -> float:
    """The (lower) median of one bootstrap resample of the sorted sample ``ordered``."""
    n = len(ordered)
    k = (n + 1) // 2
    return ordered[min(n - 1, int(n * rng.betavariate(k, n + 1 - k)))]


def _ratio(x: float, y: float) -> float:
    if y <= 0:
        return math.inf if x > 0 else 1.0
    return x / y


def _estimate(point: float, ratios: list[float], confidence: float) -> RatioEstimate:
    ratios.sort()
    tail = (1.0 - confidence) / 2.0
    low = ratios[int(math.floor(tail * (len(ratios) - 1)))]
    high = ratios[int(math.ceil((1.0 - tail) * (len(ratios) - 1)))]
    return RatioEstimate(point, low, high, confidence)

