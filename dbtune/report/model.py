"""The :class:`Report`: an audit's findings plus metadata, with the versioned JSON form that CI users
depend on (``report_version``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbtune import __version__
from dbtune.catalog.model import Server, Skip
from dbtune.model import Finding, Severity

REPORT_VERSION = 1


@dataclass(frozen=True)
class Report:
    """Everything one audit produced. ``target`` is a password-free label of the database."""

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

    def counts(self) -> dict[str, int]:
        """Findings by severity: ``{"error": n, "warning": n, "info": n}``."""
        out = {s.value: 0 for s in Severity}
        for f in self.findings:
            out[f.severity.value] += 1
        return out

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``report_version`` 1)."""
        return {
            "report_version": REPORT_VERSION,
            "dbtune_version": __version__,
            "generated_at": (self.generated_at or datetime.now().astimezone()).isoformat(),
            "target": self.target,
            "server": {"version": self.server.short_version, "version_num": self.server.version_num,
                       "database": self.server.database, "user": self.server.current_user},
            "config": {"path": self.config_path, "profile": self.profile, "targets": self.targets},
            "findings": [
                {"check_id": f.check_id, "check_name": f.check_name, "severity": f.severity.value,
                 "object": f.object, "message": f.message, "evidence": f.evidence,
                 "fix": {"sql": f.fix_sql, "changes": [c.to_json() for c in f.changes]}}
                for f in self.findings
            ],
            "skipped": [{"what": s.what, "reason": s.reason, "privilege": s.privilege} for s in self.skipped],
            "summary": {**self.counts(), "total": len(self.findings)},
            "statements_sent": self.statements_sent,
            "duration_ms": round(self.duration_ms, 1),
        }
