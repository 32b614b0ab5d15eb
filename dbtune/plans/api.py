"""Plans as a plain Python API: what ``dbtune explain`` and ``dbtune audit`` call.

::

    report = explain(resolve(dsn), [PlanQuery("SELECT * FROM orders WHERE status = $1")], Config())
    for entry in report.entries:
        print(entry.explained.label, entry.explained.error or entry.explained.kind, len(entry.findings))

:func:`audit_plans` gives the audit its plan findings: the plans of the top pg_stat_statements
statements (``audit.plan_queries`` of them) or of a workload file, planned without ANALYZE in a read-only
session of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dbtune.catalog.model import Skip
from dbtune.catalog.privileges import lacked_privilege
from dbtune.checks.registry import Catalogue, load_catalogue
from dbtune.checks.runner import AuditResult
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings, describe
from dbtune.errors import DbtuneError
from dbtune.model import Finding, Severity, report_header
from dbtune.plans.collect import ExplainedQuery, ExplainOptions, PlanQuery, PlanServer, collect_plans
from dbtune.plans.runner import run_plan_checks
from dbtune.plans.source import workload_queries


@dataclass(frozen=True)
class ExplainEntry:
    """One query: how it was explained (plan or error), the plan checks' findings, and the checks that
    judged other queries of the run but not this one (``not_judged``: a check that needs EXPLAIN ANALYZE,
    on a query that was planned only)."""

    explained: ExplainedQuery
    findings: tuple[Finding, ...] = ()
    not_judged: tuple[Skip, ...] = ()

    def to_json(self) -> dict[str, Any]:
        q = self.explained
        return {
            "name": q.query.name, "text": q.query.sql, "fingerprint": q.fingerprint, "kind": q.kind,
            "analyzed": q.analyzed, "parameters": list(q.parameters), "notes": list(q.notes),
            "error": None if q.error is None else {"message": q.error, "sqlstate": q.sqlstate},
            "skipped": q.skipped,
            "plan": q.plan.raw if q.plan is not None else None,
            "findings": [finding_json(f) for f in self.findings],
            "not_judged": [{"check": s.what, "reason": s.reason} for s in self.not_judged],
        }


def finding_json(f: Finding) -> dict[str, Any]:
    """A finding as the audit report writes it (``report_version`` 1)."""
    return {"check_id": f.check_id, "check_name": f.check_name, "severity": f.severity.value, "object": f.object,
            "message": f.message, "evidence": f.evidence,
            "fix": {"sql": f.fix_sql, "changes": [c.to_json() for c in f.changes]}}


@dataclass(frozen=True)
class ExplainReport:
    """Everything one ``dbtune explain`` produced: the target (password-free), the server, whether ANALYZE
    was asked for, one entry per query in the order given, the checks that could not judge, and the
    run's duration (ms)."""

    command: ClassVar[str] = "explain"

    target: str
    server: PlanServer
    analyze: bool
    entries: tuple[ExplainEntry, ...]
    skipped: tuple[Skip, ...] = ()
    duration_ms: float = 0.0

    @property
    def findings(self) -> list[Finding]:
        return [f for e in self.entries for f in e.findings]

    @property
    def failed(self) -> list[ExplainedQuery]:
        """The queries the server could not plan or run."""
        return [e.explained for e in self.entries if e.explained.error is not None]

    @property
    def passed(self) -> list[ExplainedQuery]:
        """The queries not explained on purpose (``skipped``: a statement EXPLAIN cannot take, …)."""
        return [e.explained for e in self.entries if e.explained.skipped is not None]

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``report_version``, ``command`` ``"explain"``, the target, the server (version,
        database, the settings recorded), whether ANALYZE ran, ``summary`` (findings by severity),
        ``queries`` (one object per query in the order given: :meth:`ExplainEntry.to_json`), ``skipped``
        (the checks that could not judge the run) and ``duration_ms``."""
        return {**report_header(self), "target": self.target, "server": self.server.to_json(),
                "analyze": self.analyze, "summary": {**self.counts(), "total": len(self.findings)},
                "queries": [e.to_json() for e in self.entries],
                "skipped": [{"check": s.what, "reason": s.reason, "privilege": s.privilege} for s in self.skipped],
                "duration_ms": round(self.duration_ms, 1)}


def explain(settings: ConnectionSettings, queries: Sequence[PlanQuery], config: Config, *,
            options: ExplainOptions | None = None, catalogue: Catalogue | None = None,
            select: Iterable[str] = (), ignore: Iterable[str] = (),
            progress: Callable[[str], None] = lambda _: None) -> ExplainReport:
    """Explain ``queries`` (see :mod:`dbtune.plans.collect`) and run the plan checks on their plans.

    Raises :class:`~dbtune.errors.ConnectionFailed`/:class:`~dbtune.errors.ServerRefused` (exit 3),
    :class:`~dbtune.errors.ConfigError` for unknown check names or options; a query that fails is an
    entry with its error.
    """
    started = time.perf_counter()
    options = options or ExplainOptions()
    catalogue = catalogue or load_catalogue(config.audit.checks_paths)
    run_plan_checks(catalogue, [], config, select=select, ignore=ignore)  # bad names or options fail first
    collection = collect_plans(settings, queries, options, progress=progress)
    results = [(explained, run_plan_checks(catalogue, [explained], config, select=select, ignore=ignore))
               for explained in collection.queries]
    # A check judged the run when it ran on some plan without saying it could not judge it. A check that
    # judged nothing is reported once for the run; one that judged some plans, under each query it skipped.
    judged: set[str] = set()
    for explained, checked in results:
        if explained.plan is None:
            continue
        passed = {s.what for s in checked.skipped}
        judged |= {name for name in (catalogue.get(i).meta.name for i in checked.checks_run)  # type: ignore[union-attr]
                   if name not in passed}
    entries = [ExplainEntry(explained, tuple(checked.findings),
                            tuple(s for s in checked.skipped if s.what in judged))
               for explained, checked in results]
    skipped = [s for _, checked in results for s in checked.skipped if s.what not in judged]
    return ExplainReport(target=describe(settings), server=collection.server, analyze=options.analyze,
                         entries=tuple(entries), skipped=tuple(dict.fromkeys(skipped)),
                         duration_ms=(time.perf_counter() - started) * 1000)


def audit_plans(settings: ConnectionSettings, config: Config, catalogue: Catalogue, *,
                queries: Sequence[PlanQuery] | None, pg_stat_statements: bool, select: Iterable[str] = (),
                ignore: Iterable[str] = ()) -> AuditResult:
    """The audit's plan findings: the plans of ``queries`` (a workload file) or, without them and when
    ``pg_stat_statements`` is created in the database, of its top ``config.audit.plan_queries``
    statements on user tables; planned without ANALYZE in a read-only session.

    Nothing is explained when no plan check is selected, ``plan_queries`` is 0, or there is no workload.
    pg_stat_statements that cannot be read, and queries that cannot be planned, are recorded as skipped.
    """
    result = AuditResult()
    # Validates the plan checks' options even when nothing is planned, as the snapshot runner does its own.
    if not run_plan_checks(catalogue, [], config, select=select, ignore=ignore).checks_run:
        return result
    if queries is None:
        if not pg_stat_statements or config.audit.plan_queries == 0:
            return result
        try:
            queries = workload_queries(settings, top=config.audit.plan_queries)
        except DbtuneError as exc:
            result.skipped.append(Skip("plans", f"the workload in pg_stat_statements could not be read: {exc}"))
            return result
    if not queries:
        return result
    collection = collect_plans(settings, queries)
    checked = run_plan_checks(catalogue, collection.queries, config, select=select, ignore=ignore)
    result.findings = checked.findings
    result.checks_run = checked.checks_run
    result.skipped = [*(Skip(f"plans: {q.label}", f"EXPLAIN failed: {q.error}",
                             lacked_privilege(q.error) if q.sqlstate == "42501" else None)
                        for q in collection.queries if q.error is not None),
                      *(Skip(f"plans: {q.label}", q.skipped) for q in collection.queries if q.skipped),
                      *(Skip(f"plans: {q.label}", f"read with a warning: {n}") for q in collection.queries
                        for n in q.query.notes),
                      *checked.skipped]
    return result
