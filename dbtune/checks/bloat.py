"""The judgement the bloat checks share (IX009 index-bloat, MT001 table-bloat): the size floor, the
relations the estimate does not apply to, and the exact figures (pgstattuple) preferred to the estimate.

Pages followed: https://www.postgresql.org/docs/current/pgstattuple.html,
https://www.postgresql.org/docs/current/view-pg-stats.html
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from dbtune.checks.runner import CheckContext
from dbtune.model import Severity


class BloatEstimate(Protocol):
    """What both catalog estimates hold (:class:`~dbtune.catalog.maintenance.HeapBloat`,
    :class:`~dbtune.catalog.index_health.IndexBloat`); sizes in bytes, ``fillfactor`` in percent."""

    @property
    def real_size_bytes(self) -> int: ...
    @property
    def bloat_bytes(self) -> int: ...
    @property
    def fillfactor(self) -> int: ...
    @property
    def not_applicable(self) -> bool: ...
    @property
    def exact_reclaimable_bytes(self) -> int | None: ...


S = TypeVar("S")
E = TypeVar("E", bound=BloatEstimate)


@dataclass(frozen=True)
class Bloat(Generic[S, E]):
    """One relation judged bloated: ``size_bytes`` and ``bloat_bytes`` are the exact figures where they
    were measured (``exact``), else the estimate's; ``ratio`` is their quotient (0–1); ``severity`` is
    ``ERROR`` from the check's ``error_ratio``, else ``None`` (the check's own)."""

    subject: S
    estimate: E
    size_bytes: int
    bloat_bytes: int
    ratio: float
    exact: bool
    method: str
    severity: Severity | None

    def evidence(self) -> dict[str, Any]:
        """The finding's evidence: sizes in bytes, the ratio, the fillfactor (percent), the method and
        the estimate's own bloat (bytes), whichever figures were judged."""
        return {"real_size_bytes": self.size_bytes, "bloat_bytes": self.bloat_bytes,
                "bloat_ratio": round(self.ratio, 4), "fillfactor": self.estimate.fillfactor,
                "method": self.method, "estimated_bloat_bytes": self.estimate.bloat_bytes}


def bloated(ctx: CheckContext, subjects: Iterable[tuple[S, str, int]], estimates: Mapping[int, E], *,
            exact_size: Callable[[E], int | None], exact_method: str, plural: str) -> Iterator[Bloat[S, E]]:
    """The ``subjects`` (``(subject, qualified name, oid)``, in report order) whose bloat reaches the
    check's ``max_ratio`` option, judged on the exact figures where ``exact_size`` (bytes) and
    ``exact_reclaimable_bytes`` were measured (by ``exact_method``), else on the estimate. Subjects
    without an estimate or under ``min_size_bytes`` are left alone; those where the estimate does not
    apply (``pg_stats`` incomplete) are counted in one skip, worded with ``plural`` (``"table(s)"``),
    recorded once the iterator is exhausted. Raises nothing."""
    not_applicable = []
    for subject, name, oid in subjects:
        est = estimates.get(oid)
        if est is None or est.real_size_bytes < ctx.options["min_size_bytes"]:
            continue
        if est.not_applicable:
            not_applicable.append(name)
            continue
        exact = exact_size(est)
        if exact and est.exact_reclaimable_bytes is not None:
            size, bloat, method, measured = exact, est.exact_reclaimable_bytes, exact_method, True
        else:
            size, bloat, method, measured = est.real_size_bytes, est.bloat_bytes, "statistical estimate", False
        ratio = bloat / size
        if ratio >= ctx.options["max_ratio"]:
            yield Bloat(subject, est, size, bloat, ratio, measured, method,
                        Severity.ERROR if ratio >= ctx.options["error_ratio"] else None)
    if not_applicable:
        ctx.skip(f"{len(not_applicable)} {plural} without full pg_stats (never analyzed, or columns this role "
                 f"may not SELECT), such as {not_applicable[0]}", "SELECT on the tables (pg_stats)")
