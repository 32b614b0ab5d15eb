"""The :class:`Report`: an audit's findings plus metadata, with the versioned JSON form that CI users
depend on (``report_version``)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from dbtune import __version__
from dbtune.appconfig.model import AppConfig
from dbtune.appconfig.plan import ConnectionBudget, PlannedValue
from dbtune.catalog.model import Server, Skip
from dbtune.checks.registry import AREAS, area_of
from dbtune.migrate.plan import PLANNABLE_KINDS, MigrationPlan, plan_migration
from dbtune.model import REPORT_VERSION, Change, CommandReport, Finding, Severity, report_header

__all__ = ["OTHER_AREA", "REPORT_VERSION", "CommandReport", "Report", "by_severity", "plan_json", "report_header"]

# The area of a finding whose check id has no area's prefix.
OTHER_AREA = "other"



@dataclass(frozen=True)
class Report:
    """Everything one audit produced. ``target`` is a password-free label of the database."""

    command: ClassVar[str] = "audit"

    target: str
    server: Server
    findings: tuple[Finding, ...]
    skipped: tuple[Skip, ...] = ()
    config_path: str | None = None
    profile: str | None = None
    targets: dict[str, Any] = field(default_factory=dict)
    statements_sent: int = 0
    duration_ms: float = 0.0
    generated_at: datetime | None = None
    index_names: tuple[str, ...] = ()
    app_config: AppConfig | None = None
    pool_values: tuple[PlannedValue, ...] = ()
    connection_budget: ConnectionBudget | None = None

    def counts(self) -> dict[str, int]:
        """Findings by severity: ``{"error": n, "warning": n, "info": n}``."""
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def areas(self) -> dict[str, int]:
        """Findings by the area of their check (:func:`~dbtune.checks.registry.area_of`; ``other`` for an id
        of no area), in the catalogue's order of areas: ``{"indexes": n, "settings": n, …}``."""
        found = Counter(area_of(f.check_id) or OTHER_AREA for f in self.findings)
        return {a: found[a] for a in (*AREAS, OTHER_AREA) if found[a]}

    def by_severity(self) -> list[tuple[int, tuple[int, Finding]]]:
        """The findings in the order every report shows them (:func:`by_severity`)."""
        return by_severity(self.findings)

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    @cached_property
    def fix_plan(self) -> MigrationPlan:
        """The fixes of all findings as one de-duplicated plan, in the order to run it: the plan
        ``dbtune migrate generate`` writes (:func:`~dbtune.migrate.plan.plan_migration`), with drops and
        role and database settings included. It is what the report shows as fix SQL, so that twins (the
        same index proposed by two findings) are built once, under the team's name."""
        return plan_migration(self.findings, include_drops=True, include_settings=True,
                              existing_index_names=set(self.index_names))

    def fixes_outside_plan(self, finding: int) -> tuple[Change, ...]:
        """The changes of the finding at position ``finding`` that no migration carries (``ALTER SYSTEM``,
        ``CREATE EXTENSION``): shown as they are, after the plan."""
        return tuple(c for c in self.findings[finding].changes if c.kind not in PLANNABLE_KINDS)

    def fix_sql_of(self, finding: int) -> list[str]:
        """The SQL the report gives as the fix of the finding at position ``finding``: its steps of the
        plan, then its changes outside any migration."""
        return [s.change.up for s in self.fix_plan.steps_of(finding)] + \
            [c.up for c in self.fixes_outside_plan(finding)]

    def _fix_json(self, n: int, finding: Finding) -> dict[str, Any]:
        plan = self.fix_plan
        out: dict[str, Any] = {"sql": self.fix_sql_of(n), "changes": [c.to_json() for c in finding.changes]}
        folded = [{"index": f.change.index, "built_as": f.by, "by_finding": f.by_finding}
                  for f in plan.folded_of(n)]
        if folded:
            out["same_as"] = folded
        left = [x.to_json() for x in plan.left_out if (x.check_name, x.object) == (finding.check_name, finding.object)]
        if left:
            out["left_out"] = left
        return out

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``report_version`` 1)."""
        return {
            **report_header(self),
            "dbtune_version": __version__,
            "generated_at": (self.generated_at or datetime.now().astimezone()).isoformat(),
            "target": self.target,
            "server": {"version": self.server.short_version, "version_num": self.server.version_num,
                       "database": self.server.database, "user": self.server.current_user},
            "config": {"path": self.config_path, "profile": self.profile, "targets": self.targets},
            "findings": [
                {"check_id": f.check_id, "check_name": f.check_name, "area": area_of(f.check_id) or OTHER_AREA,
                 "severity": f.severity.value,
                 "object": f.object, "message": f.message, "evidence": f.evidence,
                 "fix": self._fix_json(n, f)}
                for n, f in enumerate(self.findings)
            ],
            "fix_plan": plan_json(self.fix_plan),
            **({"app_config": {**self.app_config.to_json(),
                               "plan": [{"owner": v.owner, "setting": v.setting, "value": v.value,
                                         "source": v.source} for v in self.pool_values]}}
               if self.app_config is not None else {}),
            **({"connection_budget": self.connection_budget.to_json()} if self.connection_budget is not None else {}),
            "skipped": [{"what": s.what, "reason": s.reason, "privilege": s.privilege} for s in self.skipped],
            "summary": {**self.counts(), "total": len(self.findings)},
            "areas": self.areas(),
            "statements_sent": self.statements_sent,
            "duration_ms": round(self.duration_ms, 1),
        }


def plan_json(plan: MigrationPlan) -> dict[str, Any]:
    """A migration plan's JSON form: its ``steps`` (the finding each fixes, its SQL, kind, lock and whether
    it runs in a transaction), the ``ANALYZE`` statements after them, and what was ``left_out``."""
    return {"steps": [{"finding": s.finding, "check_name": s.check_name, "object": s.object,
                       "sql": s.change.up, "kind": s.change.kind.value, "lock": s.change.lock.value,
                       "transactional": s.change.transactional} for s in plan.steps],
            "analyze": [f"ANALYZE {t};" for t in plan.analyze],
            "left_out": [x.to_json() for x in plan.left_out]}


def by_severity(findings: Sequence[Finding]) -> list[tuple[int, tuple[int, Finding]]]:
    """``(number shown, (position, finding))``: errors first, then warnings, then information, each as the
    catalogue produced them; numbered from 1 in that order (the number every report gives a finding)."""
    return list(enumerate(sorted(enumerate(findings), key=lambda nf: -nf[1].severity.rank), start=1))
