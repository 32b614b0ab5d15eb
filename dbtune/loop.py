"""The whole loop as a plain Python API: audit, advise (the index advisor, its choice proven on the server:
:mod:`dbtune.advisor.validate`), generate the migration from the audit's findings and the kept
recommendations, lint it, benchmark before, apply, benchmark after, compare, audit again. ``dbtune demo``
runs it on the embedded database; ``dbtune tune`` on a user's database (meant for staging), after
confirmation.

The advisor's stage: :func:`dbtune.advisor.api.advise` (trial builds where hypopg is missing), then
:func:`dbtune.advisor.validate.validated_advice` with ``keep=False``: every recommended index is built,
the queries it serves measured before and after, and every index dropped again, those that did not help
for good and the kept ones to be built by the migration, so that the loop's own "benchmark before" runs
without them. The audits of the loop run with ``[audit] recommendations = 0``: the advisor runs once, in
its own stage, and only its validated choice reaches the migration (as ``index-recommended`` findings).

With a :class:`RaceStage` (the demo), ``probe race`` runs after the benchmark before the migration and
again after the benchmark after it (:func:`dbtune.probe.race.run_race`): the guide's vendor win rate before
and after the migration that adds the partial unique index.

Each stage's result goes to a :class:`LoopObserver` as soon as the stage ends, so a command can show it
then (the audit report before the benchmarks run, not after them); :class:`LoopResult` holds them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dbtune.audit import audit
from dbtune.bench import BenchOptions, BenchResult, Comparison, WorkloadQuery, compare, run_bench
from dbtune.checks import Catalogue, load_catalogue
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings
from dbtune.migrate import api as migrate_api
from dbtune.migrate.lint import LintResult, lint_paths
from dbtune.migrate.plan import MigrationPlan
from dbtune.migrate.runtime import ApplyOptions
from dbtune.model import ChangeKind, Finding, Severity, report_header
from dbtune.progress import Count, no_count
from dbtune.report.model import Report, plan_json
from dbtune.workload.model import Query

if TYPE_CHECKING:
    from dbtune.advisor.api import AdviseOptions
    from dbtune.advisor.model import Advice
    from dbtune.appconfig.model import AppConfig
    from dbtune.probe.race import RaceOptions, RaceResult

INDEX_RECOMMENDED = "index-recommended"


@dataclass(frozen=True)
class AdvisorStage:
    """How the loop runs the advisor: ``options`` (``validate`` proves the choice on the server with the
    loop's bench options and ``timeout_ms`` per execution; ``yes`` the user's confirmation that the target
    is not production), ``queries`` the workload as the advisor reads it (None: pg_stat_statements' top
    ``options.top``)."""

    options: AdviseOptions
    queries: Sequence[Query] | None = None
    timeout_ms: int = 10_000


@dataclass(frozen=True)
class RaceStage:
    """How the loop runs ``probe race`` before and after the migration: ``options``, and ``yes``, the user's
    confirmation that the target is not production (the race writes a scratch schema)."""

    options: RaceOptions
    yes: bool = False


@dataclass(frozen=True)
class Left:
    """A warning or error still reported after the migration, and why the migration did not fix it."""

    finding: Finding
    reason: str
    new: bool = False  # not reported on that object by the audit before the migration


@dataclass(frozen=True)
class AfterMigration:
    """The audit after the migration against the one before it: ``fixed`` counts, by check name, the
    warnings and errors that are gone; ``left`` holds those still reported (errors first), each with its
    reason; ``info`` counts the information-only findings, which need nothing done."""

    report: Report
    fixed: dict[str, int]
    left: tuple[Left, ...]
    info: int


@dataclass(frozen=True)
class LoopResult:
    """What each stage produced; ``applied`` is empty when there was nothing to apply, and ``after_audit``
    is None unless a migration was applied. ``command`` is ``tune`` (``demo`` runs the same loop on its own
    server)."""

    command: ClassVar[str] = "tune"

    report: Report
    plan: MigrationPlan
    files: tuple[Path, ...]
    lint: LintResult | None
    before: BenchResult | None
    applied: tuple[str, ...]
    after: BenchResult | None
    comparison: Comparison | None
    after_audit: AfterMigration | None = None
    advice: Advice | None = None
    race_before: RaceResult | None = None
    race_after: RaceResult | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``report_version``, ``command``, then each stage's own JSON form (None for a stage
        that did not run): ``audit``, ``advice``, ``migration`` (the files' names and the plan),
        ``lint``, ``race_before``, ``before``, ``applied``, ``after``, ``comparison``, ``race_after`` and
        ``after_audit`` (its report, the warnings and errors fixed by check name, those left with why)."""
        after = self.after_audit
        return {**report_header(self), "audit": self.report.to_json(),
                "advice": self.advice.to_json() if self.advice else None,
                "migration": {"files": [p.name for p in self.files], "plan": plan_json(self.plan)},
                "lint": self.lint.to_json() if self.lint else None,
                "race_before": self.race_before.to_json() if self.race_before else None,
                "before": self.before.to_json() if self.before else None,
                "applied": list(self.applied),
                "after": self.after.to_json() if self.after else None,
                "comparison": self.comparison.to_json() if self.comparison else None,
                "race_after": self.race_after.to_json() if self.race_after else None,
                "after_audit": None if after is None else {
                    "report": after.report.to_json(), "fixed": dict(after.fixed), "info": after.info,
                    "left": [{"check_id": x.finding.check_id, "check_name": x.finding.check_name,
                              "object": x.finding.object, "severity": x.finding.severity.value,
                              "reason": x.reason, "new": x.new} for x in after.left]}}


class LoopObserver:
    """Told each stage's result as the stage ends; this base class ignores them all."""

    def audited(self, report: Report) -> None:
        """The audit's report, before anything is generated."""

    def advised(self, advice: Advice) -> None:
        """The advisor's choice: kept (validated) recommendations, the rejected ones with why, and its
        judgement of the checklist's own proposals (``not_needed``)."""

    def generated(self, plan: MigrationPlan, files: tuple[Path, ...]) -> None:
        """The migration planned and the files written (none when no finding has a schema fix)."""

    def linted(self, lint: LintResult) -> None:
        """The lint verdict on the files written (only when files were written)."""

    def raced(self, when: str, result: RaceResult) -> None:
        """The race probe's result, ``when`` ``"before"`` or ``"after"`` the migration."""

    def applied(self, revisions: tuple[str, ...]) -> None:
        """The revisions applied to the target."""

    def compared(self, comparison: Comparison) -> None:
        """The benchmark before against the one after."""

    def audited_after(self, after: AfterMigration) -> None:
        """The audit after the migration: what it fixed and what is left."""

    def count(self, what: str, done: float, total: float | None) -> None:
        """The progress of a long step inside a stage (a :data:`~dbtune.progress.Count`: rows, statements
        planned or run, indexes built, steps, rounds; ``total`` None when not known beforehand)."""


def run_loop(settings: ConnectionSettings, config: Config, workload: list[WorkloadQuery], directory: Path, *,
             bench: BenchOptions, apply_options: ApplyOptions, include_drops: bool = False,
             confirm: Callable[[MigrationPlan], bool] = lambda _: True,
             stage: Callable[[str], None] = lambda _: None,
             progress: Callable[[str], None] = lambda _: None,
             observer: LoopObserver | None = None, advisor: AdvisorStage | None = None,
             race: RaceStage | None = None, app_config: AppConfig | None = None,
             statements: Path | None = None) -> LoopResult:
    """Run the loop. ``confirm`` is asked before the migration is applied; when it says no, the loop
    stops after the before-benchmark (and the race before it, with ``race``: None runs no race).
    ``advisor`` (None: no advisor stage) runs after the audit; with
    ``advisor.options.validate`` it builds and drops indexes on the target, which its ``yes`` must allow
    (:func:`~dbtune.advisor.validate.refuse_production`). ``stage`` is told each stage's name as it
    starts, ``observer`` each stage's result as it ends and the progress of its long steps
    (:meth:`LoopObserver.count`: the advisor's planning and builds, the benchmarks' statements, the
    migration's steps and index builds, the race's rounds). Both audits read ``app_config`` (the application's
    own pool and PgBouncer files, :func:`dbtune.appconfig.read_app_config`) and ``statements`` (a file of
    the application's statements in order, for the concurrency and session checks; see
    :func:`dbtune.audit.audit`). Raises what each stage raises (DbtuneError
    subclasses)."""
    observer = observer or LoopObserver()
    catalogue = load_catalogue(config.audit.checks_paths)
    config = without_audit_advice(config)
    stage("audit")
    report = audit(settings, config, catalogue=catalogue, app_config=app_config, statements=statements)
    observer.audited(report)
    findings = list(report.findings)
    advice = None
    if advisor is not None:
        stage("advise")
        advice = run_advisor(settings, config, advisor, workload, bench, findings=findings, progress=progress,
                             count=observer.count)
        observer.advised(advice)
        findings = with_recommendations(findings, advice)
    stage("generate")
    generated = migrate_api.generate(findings, directory, include_drops=include_drops,
                                     existing_index_names=set(report.index_names))
    plan = generated.plan
    files = tuple(generated.generated.files) if generated.generated else ()
    observer.generated(plan, files)
    lint = None
    if files:
        stage("lint")
        lint = lint_paths(list(files), config=config)
        observer.linted(lint)
    stage("benchmark before")
    before = run_bench(settings, workload, bench, source="workload", progress=progress, count=observer.count)
    race_before = _race(settings, race, "before", stage, progress, observer)
    if plan.empty or not confirm(plan):
        return LoopResult(report, plan, files, lint, before, (), None, None, advice=advice, race_before=race_before)
    stage("apply")
    applied = tuple(migrate_api.apply(directory, settings, replace(apply_options, count=observer.count),
                                      version_table=config.migrate.version_table))
    observer.applied(applied)
    stage("benchmark after")
    after = run_bench(settings, workload, bench, source="workload", progress=progress, count=observer.count)
    race_after = _race(settings, race, "after", stage, progress, observer)
    stage("compare")
    comparison = compare(before, after)
    observer.compared(comparison)
    stage("audit after the migration")
    after_audit = after_migration(report, audit(settings, config, catalogue=catalogue, app_config=app_config,
                                                statements=statements), catalogue,
                                  include_drops=include_drops)
    observer.audited_after(after_audit)
    return LoopResult(report, plan, files, lint, before, applied, after, comparison, after_audit, advice,
                      race_before, race_after)


def _race(settings: ConnectionSettings, race: RaceStage | None, when: str, stage: Callable[[str], None],
          progress: Callable[[str], None], observer: LoopObserver) -> RaceResult | None:
    """The race stage ``when`` (``"before"``/``"after"``) the migration, or None without ``race``."""
    if race is None:
        return None
    from dbtune.probe.race import run_race

    stage(f"race {when}")
    result = run_race(settings, race.options, yes=race.yes, progress=progress, count=observer.count)
    observer.raced(when, result)
    return result


def without_audit_advice(config: Config) -> Config:
    """``config`` with ``[audit] recommendations = 0``: the loop's audits leave the advisor to its own stage."""
    if getattr(config.audit, "recommendations", 0) == 0:
        return config
    return config.model_copy(update={"audit": config.audit.model_copy(update={"recommendations": 0})})


def run_advisor(settings: ConnectionSettings, config: Config, advisor: AdvisorStage,
                workload: Sequence[WorkloadQuery], bench: BenchOptions, *, findings: Sequence[Finding] = (),
                progress: Callable[[str], None] = lambda _: None, count: Count = no_count) -> Advice:
    """The loop's advisor stage: :func:`dbtune.advisor.api.advise` on ``advisor.queries`` (the audit's
    ``findings`` judged), then, with ``advisor.options.validate``, the proof on the server with ``bench``
    (:func:`~dbtune.advisor.validate.validated_advice`, ``keep=False``: every index it built is dropped
    again; the migration builds the kept ones). Raises :class:`~dbtune.errors.UsageError` when validation
    or trial builds are asked for without ``yes`` or on a target that looks like production, and what
    ``advise`` and ``validate`` raise. ``count`` is told what they count (statements planned, indexes
    built, statements run)."""
    from dbtune.advisor.api import advise
    from dbtune.advisor.validate import refuse_production, validated_advice

    options = advisor.options
    if options.validate:
        refuse_production(settings, yes=options.yes, what="the advisor's validation")
    advice = advise(settings, config, advisor.queries, replace(options, validate=False), findings=findings,
                    progress=progress, count=count)
    if not options.validate:
        return advice
    return validated_advice(settings, advice, workload, bench, keep=False, timeout_ms=advisor.timeout_ms,
                            progress=progress, count=count)


def with_recommendations(findings: Sequence[Finding], advice: Advice) -> list[Finding]:
    """The findings the migration is generated from: the audit's, less any ``index-recommended`` finding
    (unproven), plus one per recommendation the advisor kept
    (:func:`dbtune.checks.advice.recommendation_finding`)."""
    from dbtune.checks.advice import recommendation_finding

    return [*(f for f in findings if f.check_name != INDEX_RECOMMENDED),
            *(recommendation_finding(r) for r in advice.recommendations)]


def after_migration(before: Report, after: Report, catalogue: Catalogue, *,
                    include_drops: bool = False) -> AfterMigration:
    """Compare the audit after a migration with the one before it, and say for each warning or error
    still reported why the migration did not fix it (:func:`why_left`)."""
    problems = [f for f in before.findings if f.severity is not Severity.INFO]
    left = [f for f in after.findings if f.severity is not Severity.INFO]
    gone = Counter(f.check_name for f in problems) - Counter(f.check_name for f in left)
    seen = {(f.check_id, f.object) for f in before.findings}
    ordered = sorted(left, key=lambda f: -f.severity.rank)
    return AfterMigration(
        report=after, fixed=dict(sorted(gone.items())),
        left=tuple(Left(f, why_left(f, before, catalogue, include_drops=include_drops),
                        new=(f.check_id, f.object) not in seen) for f in ordered),
        info=len(after.findings) - len(left))


# Fixes that are not schema changes, so a migration never carries them (dbtune.migrate.plan.SCHEMA_KINDS).
NOT_SCHEMA = {ChangeKind.SET_PARAMETER: "a setting for new sessions (ALTER ROLE … SET)",
              ChangeKind.SERVER: "a server-level change (ALTER SYSTEM, CREATE EXTENSION)",
              ChangeKind.OTHER: "a maintenance statement (VACUUM and the like)"}


def why_left(finding: Finding, before: Report, catalogue: Catalogue, *, include_drops: bool = False) -> str:
    """Why a migration generated from ``before`` leaves ``finding`` in place, in a sentence:

    * a fix made only of settings (``ALTER ROLE … SET``) or server changes: a migration carries schema
      changes only;
    * a ``DROP INDEX`` fix without ``include_drops``;
    * no fix, from cumulative statistics (``stats_since`` in the evidence) that started before that
      audit: they still count what the workload did before the migration;
    * no fix otherwise: the first sentence of the check's "How the fix is applied safely" section, which
      says why none is generated.
    """
    kinds = {c.kind for c in finding.changes}
    if kinds and kinds <= set(NOT_SCHEMA):
        what = " and ".join(NOT_SCHEMA[k] for k in sorted(kinds))
        return f"{what}, not a schema change: a migration carries schema changes only; review the fix and run it"
    if ChangeKind.DROP_INDEX in kinds and not include_drops:
        return "dropping an index is left out of the migration unless --include-drops"
    if kinds:
        return "its fix was not part of the migration (the planner left it out)"
    since = finding.evidence.get("stats_since")
    started = before.generated_at
    if isinstance(since, str) and started is not None and datetime.fromisoformat(since) < started:
        basis = finding.evidence.get("stats_basis", "stats_reset")
        return (f"its counters are cumulative from before the migration (since {basis}), so they still count "
                "what the workload did without the new indexes; reset them (SELECT pg_stat_reset()) and audit "
                "again once the application has run")
    check = catalogue.get(finding.check_id)
    doc = " ".join(check.doc.get("How the fix is applied safely", "").split()) if check else ""
    return doc.split(". ")[0].rstrip(".") if doc else "no schema change fixes it"
