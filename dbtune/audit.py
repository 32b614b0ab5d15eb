"""The audit as a plain Python API: connect read-only, snapshot, run the catalogue, build a Report.

When a workload is available (pg_stat_statements created in the database, or a workload file) the plans
of its queries are checked too (:func:`dbtune.plans.audit_plans`): planned, never run, in a read-only
session of their own after the snapshot's transaction. Every unique index a finding proposes to build is
checked for duplicate keys (:mod:`dbtune.catalog.duplicate_keys`), so that ``migrate generate`` can leave
out a build known to fail.

On the same workload the index advisor runs read-only (no trial builds, no validation; hypothetical
indexes live in the backend's memory only) and its top ``audit.recommendations`` choices become
``index-recommended`` findings (:mod:`dbtune.checks.advice`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from dbtune.appconfig.model import AppConfig
from dbtune.appconfig.plan import pool_plan
from dbtune.catalog.duplicate_keys import probe_duplicate_keys
from dbtune.catalog.model import Skip
from dbtune.catalog.snapshot import take
from dbtune.checks import AuditResult, Catalogue, load_catalogue, run_checks
from dbtune.checks.advice import CHECK_NAME, advice_checks_selected, run_advice_checks
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings, describe, read_only_snapshot
from dbtune.errors import ConfigError, DbtuneError
from dbtune.model import Finding
from dbtune.plans import audit_plans, workload_queries
from dbtune.plans.collect import PlanQuery
from dbtune.report.model import Report
from dbtune.workload.model import Query, Source


def audit(settings: ConnectionSettings, config: Config, *, config_path: Path | None = None,
          catalogue: Catalogue | None = None, select: Iterable[str] = (),
          ignore: Iterable[str] = (), workload: Path | None = None,
          workload_format: str | None = None, app_config: AppConfig | None = None,
          statements: Path | None = None) -> Report:
    """Audit one database in a single ``REPEATABLE READ, READ ONLY`` transaction.

    Raises :class:`~dbtune.errors.ConnectionFailed` (cannot connect), :class:`~dbtune.errors.ConfigError`
    (the config names a missing table or an unknown check), :class:`~dbtune.errors.CatalogueError`.
    ``workload`` is a workload file whose queries are planned for the plan checks (instead of the top
    ``audit.plan_queries`` statements of pg_stat_statements); a missing or malformed file is a
    :class:`~dbtune.errors.UsageError`; ``workload_format`` reads it as a ``psql``, ``pgbench``, ``qgen``
    or ``plain`` script (detected when ``None``). ``app_config`` is the application's own configuration
    (:func:`dbtune.appconfig.read_app_config`): its pools and poolers join the config's for the pool checks,
    and the report lists its sources and where each pool value came from. ``statements`` is a file of the
    application's statements, read in order and never planned, for the checks that follow them
    (check-then-insert, session state behind a transaction pooler); by default they are the workload
    file's. Never writes to the target.
    """
    started = time.perf_counter()
    plan = pool_plan(config, app_config)  # before connecting: contradictory pool values are input errors
    catalogue = catalogue or load_catalogue(config.audit.checks_paths)
    queries = (workload_queries(settings, path=workload, workload_format=workload_format)
               if workload is not None else None)
    statements_read = (_file_statements(statements, None) if statements is not None
                       else _workload_statements(workload, workload_format, queries))
    with read_only_snapshot(settings) as conn:
        snapshot = take(conn)
    try:
        result = run_checks(catalogue, snapshot, config, select=select, ignore=ignore, app_config=app_config,
                            workload=statements_read)
        plans = audit_plans(settings, config, catalogue, queries=queries, select=select, ignore=ignore,
                            pg_stat_statements="pg_stat_statements" in snapshot.server.extensions)
    except ConfigError as exc:
        if config_path is None:
            raise
        raise ConfigError(f"{config_path}: {exc}") from None
    advised = audit_advice(settings, config, catalogue, workload=workload, workload_format=workload_format,
                           pg_stat_statements="pg_stat_statements" in snapshot.server.extensions,
                           findings=(*result.findings, *plans.findings), select=select, ignore=ignore)
    app_skipped = tuple(Skip("app-config", s.reason or "skipped") for s in app_config.sources
                        if s.status == "skipped") if app_config is not None else ()
    findings, unprobed = probe_duplicate_keys(settings, (*result.findings, *plans.findings, *advised.findings))
    return Report(
        target=describe(settings), server=snapshot.server, findings=findings,
        skipped=(*app_skipped, *result.skipped, *plans.skipped, *advised.skipped, *unprobed),
        config_path=str(config_path) if config_path else None,
        profile=config.profile.name if config.profile else None,
        targets=config.targets.model_dump(exclude_none=True), statements_sent=snapshot.statements_sent,
        duration_ms=(time.perf_counter() - started) * 1000, generated_at=snapshot.server.now,
        index_names=tuple(ix.qualified_name for ix in snapshot.indexes if ix.is_valid),
        app_config=app_config, pool_values=plan.values if app_config is not None else (),
        connection_budget=plan.budget_on(snapshot) if plan.pools else None,
    )


def _workload_statements(workload: Path | None, workload_format: str | None,
                         queries: Sequence[PlanQuery] | None) -> tuple[Query, ...]:
    """The workload file's statements in file order, every one (not grouped by fingerprint), for the checks
    that read how the application's statements follow each other; standard input's from ``queries``
    (read once, for the plans)."""
    if workload is None or queries is None:
        return ()
    if str(workload) != "-":
        return _file_statements(workload, workload_format)
    return tuple(Query(q.sql, Source.SQL, q.location or "<stdin>", "", name=q.name, skipped=q.skipped)
                 for q in queries if q.parse_error is None)


def _file_statements(path: Path, workload_format: str | None) -> tuple[Query, ...]:
    """Every statement of the file at ``path`` in file order (``group=False``). Raises
    :class:`~dbtune.errors.InputError` when it cannot be read."""
    from dbtune.workload import load_queries

    return tuple(load_queries(path, group=False, workload_format=workload_format).queries)


def audit_advice(settings: ConnectionSettings, config: Config, catalogue: Catalogue, *, workload: Path | None,
                 workload_format: str | None, pg_stat_statements: bool, findings: Sequence[Finding] = (),
                 select: Iterable[str] = (), ignore: Iterable[str] = ()) -> AuditResult:
    """The audit's ``index-recommended`` findings: :func:`dbtune.advisor.api.advise` run read-only (no trial
    builds, no validation) on the audit's own workload, the ``workload`` file or, when
    ``pg_stat_statements`` is created in the database, its top ``config.audit.plan_queries`` statements;
    ``findings`` are the audit's own proposals, which the advisor judges.

    Nothing runs when no advice check is selected, ``audit.recommendations`` is 0, or there is no workload.
    An advisor that fails (the server refuses what it asks) is recorded as skipped; the audit goes on.
    """
    result = AuditResult()
    if config.audit.recommendations == 0 or not advice_checks_selected(catalogue, config, select, ignore):
        return result
    from dbtune.workload import load_queries

    if workload is not None and str(workload) == "-":
        result.skipped.append(Skip(CHECK_NAME, "standard input was read once, for the plans; give the advisor "
                                               "the workload as --workload FILE"))
        return result
    if workload is not None:
        queries = [q for q in load_queries(workload, workload_format=workload_format).queries if q.skipped is None]
    elif pg_stat_statements and config.audit.plan_queries > 0:
        queries = None  # the advisor reads the top statements itself, weighted by calls
    else:
        return result
    from dbtune.advisor.api import AdviseOptions, advise

    try:
        advice = advise(settings, config, queries, AdviseOptions(top=max(1, config.audit.plan_queries)),
                        findings=findings)
    except DbtuneError as exc:
        if isinstance(exc, ConfigError):
            raise
        result.skipped.append(Skip(CHECK_NAME, f"the index advisor could not run: {exc}"))
        return result
    return run_advice_checks(catalogue, advice, config, select=select, ignore=ignore)
