"""The whole loop as a plain Python API: audit, generate the migration, lint it, benchmark before, apply,
benchmark after, compare. ``dbtune demo`` runs it on the embedded database; ``dbtune tune`` on a user's
database (meant for staging), after confirmation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dbtune.audit import audit
from dbtune.bench import BenchOptions, BenchResult, Comparison, WorkloadQuery, compare, run_bench
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings
from dbtune.migrate import api as migrate_api
from dbtune.migrate.lint import LintResult, lint_paths
from dbtune.migrate.plan import MigrationPlan
from dbtune.migrate.runtime import ApplyOptions
from dbtune.report.model import Report


@dataclass(frozen=True)
class LoopResult:
    """What each stage produced; ``applied`` is empty when there was nothing to apply."""

    report: Report
    plan: MigrationPlan
    files: tuple[Path, ...]
    lint: LintResult | None
    before: BenchResult | None
    applied: tuple[str, ...]
    after: BenchResult | None
    comparison: Comparison | None


def run_loop(settings: ConnectionSettings, config: Config, workload: list[WorkloadQuery], directory: Path, *,
             bench: BenchOptions, apply_options: ApplyOptions, include_drops: bool = False,
             confirm: Callable[[MigrationPlan], bool] = lambda _: True,
             stage: Callable[[str], None] = lambda _: None,
             progress: Callable[[str], None] = lambda _: None) -> LoopResult:
    """Run the loop. ``confirm`` is asked before anything is written to the target; when it says no,
    the loop stops after the before-benchmark. Raises what each stage raises (DbtuneError subclasses)."""
    stage("audit")
    report = audit(settings, config)
    stage("generate")
    generated = migrate_api.generate(list(report.findings), directory, include_drops=include_drops,
                                     existing_index_names=set(report.index_names))
    plan = generated.plan
    files = generated.generated.files if generated.generated else ()
    lint = None
    if files:
        stage("lint")
        lint = lint_paths(list(files), config=config)
    stage("benchmark before")
    before = run_bench(settings, workload, bench, source="workload", progress=progress)
    if plan.empty or not confirm(plan):
        return LoopResult(report, plan, tuple(files), lint, before, (), None, None)
    stage("apply")
    applied = migrate_api.apply(directory, settings, apply_options, version_table=config.migrate.version_table)
    stage("benchmark after")
    after = run_bench(settings, workload, bench, source="workload", progress=progress)
    stage("compare")
    return LoopResult(report, plan, tuple(files), lint, before, tuple(applied), after, compare(before, after))
