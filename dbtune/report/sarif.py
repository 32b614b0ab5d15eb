"""SARIF 2.1.0 logs for code-scanning dashboards: ``migrate lint`` (a result per finding, at its file and
line) and ``audit`` (a result per finding, at the database object, as a logical location).

One run per log, its tool ``dbtune`` with a rule per catalogue check that ran (``MG001`` …) and per
squawk rule that reported (``squawk/<rule>``). A rule's ``help`` is the check's page (``dbtune checks
show``) and its ``helpUri`` the first documentation page the page cites (squawk's rule page for squawk's).
Levels: error → ``error``, warning → ``warning``, info → ``note``. Follows the OASIS standard,
https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html (sections 3.13 run, 3.27 result,
3.49 reportingDescriptor, 3.28 location).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dbtune import __version__
from dbtune.model import Severity

if TYPE_CHECKING:
    from dbtune.checks.registry import Check
    from dbtune.migrate.lint import LintResult
    from dbtune.report.model import Report

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
SQUAWK_RULE_PAGE = "https://squawkhq.com/docs/{rule}"
_URL = re.compile(r"https://[^\s)>\]]+")


@dataclass(frozen=True)
class SarifRule:
    """A ``reportingDescriptor``: ``id`` as results name it, ``name`` the check's name, ``summary`` one
    sentence, ``page`` the whole page in Markdown, ``help_uri`` a page to read more."""

    id: str
    name: str
    summary: str
    page: str
    help_uri: str | None
    level: str

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "name": self.name, "shortDescription": {"text": self.summary},
                               "help": {"text": self.page, "markdown": self.page},
                               "defaultConfiguration": {"level": self.level}}
        if self.help_uri:
            out["helpUri"] = self.help_uri
        return out


@cache
def _catalogue() -> dict[str, Check]:
    from dbtune.checks import load_catalogue

    return {c.meta.id: c for c in load_catalogue()}


def check_rule(check: Check) -> SarifRule:
    """The rule of a catalogue check: its page as help, its first cited page as ``helpUri``."""
    page = "\n\n".join(f"## {section}\n{text}" for section, text in check.doc.items())
    link = _URL.search(check.doc.get("References", ""))
    return SarifRule(check.meta.id, check.meta.name, check.summary, page, link.group(0) if link else None,
                     LEVELS[check.meta.severity])


def squawk_rule(rule: str) -> SarifRule:
    page = f"squawk's rule `{rule}`: {SQUAWK_RULE_PAGE.format(rule=rule)}"
    return SarifRule(f"squawk/{rule}", rule, f"squawk rule {rule}.", page, SQUAWK_RULE_PAGE.format(rule=rule),
                     "warning")


def artifact_uri(path: str) -> str:
    """A file path as a SARIF ``artifactLocation.uri``: a relative URI reference with ``/`` separators,
    percent-encoded (``migrations/0001 add index.sql`` → ``migrations/0001%20add%20index.sql``)."""
    return quote(PurePath(path).as_posix(), safe="/:")


def sarif_log(rules: Iterable[SarifRule], results: Sequence[dict[str, Any]], *, notes: Sequence[str] = ()) -> str:
    """The log as indented JSON text. ``results`` name their rule by ``ruleId``; ``ruleIndex`` is filled in
    from ``rules`` (de-duplicated by id, in order). ``notes`` become the invocation's notifications."""
    unique: dict[str, SarifRule] = {}
    for r in rules:
        unique.setdefault(r.id, r)
    index = {rule_id: n for n, rule_id in enumerate(unique)}
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "dbtune", "version": __version__, "semanticVersion": __version__,
                            "informationUri": "https://www.postgresql.org/docs/current/",
                            "rules": [r.to_json() for r in unique.values()]}},
        "results": [{**r, "ruleIndex": index[r["ruleId"]]} for r in results],
        "invocations": [{"executionSuccessful": True,
                         "toolExecutionNotifications": [{"level": "note", "message": {"text": n}} for n in notes]}],
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}, indent=2, default=str) + "\n"


def render_lint_sarif(result: LintResult) -> str:
    """``migrate lint`` as SARIF: a result per finding at its file and line (``region.startLine``), the
    statement at fault as the region's snippet, the suggested fix SQL in the message."""
    catalogue = _catalogue()
    rules = [check_rule(catalogue[r]) for r in result.rules_run if r in catalogue]
    results = []
    for f in result.findings:
        if f.rule_id is not None and f.rule_id in catalogue:
            rule_id = f.rule_id
        else:
            rule_id = f"squawk/{f.rule}"
            rules.append(squawk_rule(f.rule))
        text = f.full_message()
        if f.changes:
            text += " Fix: " + " ".join(c.up for c in f.changes)
        region: dict[str, Any] = {"startLine": max(1, f.line)}
        if f.statement:
            region["snippet"] = {"text": f.statement}
        results.append({"ruleId": rule_id, "level": LEVELS[f.severity], "message": {"text": text},
                        "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact_uri(f.file)},
                                                            "region": region}}]})
    return sarif_log(rules, results, notes=result.notes)


def render_audit_sarif(report: Report) -> str:
    """``audit`` as SARIF: a result per finding at the database object (a ``logicalLocation`` whose
    ``fullyQualifiedName`` is the object as PostgreSQL quotes it), the evidence as the result's
    properties, the fix SQL in the message; what was skipped, as notifications."""
    catalogue = _catalogue()
    rules = []
    results = []
    for n, f in enumerate(report.findings):
        if f.check_id in catalogue:
            rules.append(check_rule(catalogue[f.check_id]))
        else:  # a check from a user's folder the built-in catalogue does not hold
            rules.append(SarifRule(f.check_id, f.check_name, f.check_name, f.check_name, None, LEVELS[f.severity]))
        fix = report.fix_sql_of(n)
        text = f.message + (" Fix: " + " ".join(fix) if fix else "")
        results.append({"ruleId": f.check_id, "level": LEVELS[f.severity], "message": {"text": text},
                        "locations": [{"logicalLocations": [{"fullyQualifiedName": f.object, "kind": "object"}]}],
                        "properties": {"database": report.server.database, "evidence": f.evidence}})
    notes = [f"skipped {s.what}: {s.reason}" + (f" (needs {s.privilege})" if s.privilege else "")
             for s in report.skipped]
    return sarif_log(rules, results, notes=notes)
