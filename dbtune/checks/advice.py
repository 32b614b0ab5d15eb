"""Run the catalogue's advice checks (``index-recommended``) against the advisor's :class:`Advice`.

An advice check is a function of an :class:`AdviceContext` (one run's advice) that yields findings, as a
snapshot check is a function of a :class:`~dbtune.checks.runner.CheckContext`; the snapshot runner leaves
them out (:data:`~dbtune.checks.runner.ADVICE_CHECKS`) and :func:`run_advice_checks` runs them once the
audit has its advice (:func:`dbtune.audit.audit`).

:func:`recommendation_finding` is the one way a :class:`Recommendation` becomes a :class:`Finding`
(check ``IX008 index-recommended``): the audit's findings, the findings ``migrate generate --from
advice.json`` plans, and the loop's kept recommendations all take it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dbtune.advisor.model import Advice, Recommendation
from dbtune.checks.registry import Catalogue, CheckMeta
from dbtune.checks.runner import ADVICE_CHECKS, AuditResult, _options, _selected
from dbtune.config.model import Config
from dbtune.model import Change, Finding, Severity
from dbtune.units import size_pretty

CHECK_ID = "IX008"
CHECK_NAME = "index-recommended"


def recommendation_message(rec: Recommendation) -> str:
    """One sentence: the index, the queries it serves, their weighted planner cost before → after, its
    estimated size and the engine that costed it (or why it is not costed)."""
    c = rec.candidate
    n = len(rec.queries)
    before = sum(q.weight * q.before for q in rec.queries)
    after = sum(q.weight * q.after for q in rec.queries)
    served = (f"serves {n} quer{'y' if n == 1 else 'ies'} of the workload: weighted planner cost "
              f"{before:,.0f} → {after:,.0f}" + (f" ({1 - after / before:.0%} less)" if before > 0 else ""))
    how = f"not costed ({rec.not_costed})" if rec.not_costed else f"costed by {rec.engine.value}"
    slows = f"; slows writes to {', '.join(rec.slows_writes_to)}" if rec.slows_writes_to else ""
    return (f"index {c.describe()} {served if n else 'is suggested by the workload'}; estimated "
            f"{size_pretty(rec.estimated_bytes)}, {how}{slows}")


def recommendation_evidence(rec: Recommendation) -> dict[str, Any]:
    """The figures behind a recommendation: benefit and write cost (planner cost units, weighted by
    calls), the queries served (name, weight, cost before and after), estimated (and real) size in bytes,
    the engine, and the measured latencies after validation."""
    out: dict[str, Any] = {
        "index": rec.candidate.describe(), "benefit": round(rec.benefit, 2), "write_cost": round(rec.write_cost, 2),
        "queries_served": [{"name": q.name, "weight": q.weight, "cost_before": round(q.before, 2),
                            "cost_after": round(q.after, 2)} for q in rec.queries],
        "estimated_bytes": rec.estimated_bytes, "engine": rec.engine.value,
        "slows_writes_to": list(rec.slows_writes_to),
    }
    if rec.not_costed:
        out["not_costed"] = rec.not_costed
    if rec.real_bytes is not None:
        out["real_bytes"] = rec.real_bytes
    if rec.measured:
        out["measured"] = [{"name": m.name, "before_ms": round(m.before_ms, 4), "after_ms": round(m.after_ms, 4),
                            "verdict": m.verdict} for m in rec.measured]
    return out


def recommendation_finding(rec: Recommendation, severity: Severity = Severity.INFO) -> Finding:
    """``rec`` as a finding of ``IX008 index-recommended`` on its table, its fix the recommendation's
    changes (``CREATE INDEX CONCURRENTLY …``, or the steps of a partitioned table's index)."""
    return Finding(check_id=CHECK_ID, check_name=CHECK_NAME, severity=severity,
                   object=rec.candidate.qualified_table, message=recommendation_message(rec),
                   evidence=recommendation_evidence(rec), changes=tuple(rec.changes))


@dataclass(frozen=True)
class AdviceContext:
    """What an advice check receives: the advice, the config, the check's metadata, options and configured
    severity, and how many recommendations the audit shows (``limit``: ``[audit] recommendations``)."""

    advice: Advice
    config: Config
    meta: CheckMeta
    options: dict[str, Any]
    severity: Severity
    limit: int

    def finding(self, object: str, message: str, *, evidence: dict[str, Any] | None = None,
                changes: Iterable[Change] = ()) -> Finding:
        """A :class:`Finding` carrying this check's id, name and (configured) severity."""
        return Finding(check_id=self.meta.id, check_name=self.meta.name, severity=self.severity, object=object,
                       message=message, evidence=dict(evidence or {}), changes=tuple(changes))


def advice_checks_selected(catalogue: Catalogue, config: Config, select: Iterable[str] = (),
                           ignore: Iterable[str] = ()) -> bool:
    """Whether any advice check is selected (so the audit runs the advisor at all)."""
    return bool(_selected(catalogue, config, select, ignore, keep=lambda c: c.meta.name in ADVICE_CHECKS))


def run_advice_checks(catalogue: Catalogue, advice: Advice, config: Config, *, select: Iterable[str] = (),
                      ignore: Iterable[str] = ()) -> AuditResult:
    """Run every selected advice check on ``advice``; findings in check-id order. Raises
    :class:`~dbtune.errors.ConfigError` for unknown check names or options."""
    result = AuditResult()
    for check in _selected(catalogue, config, select, ignore, keep=lambda c: c.meta.name in ADVICE_CHECKS):
        options, severity = _options(check, config)
        ctx = AdviceContext(advice, config, check.meta, options, severity, config.audit.recommendations)
        result.findings.extend(check.run(ctx))
        result.checks_run.append(check.meta.id)
    return result
