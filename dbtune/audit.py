"""The audit as a plain Python API: connect read-only, snapshot, run the catalogue, build a Report.

When a workload is available (pg_stat_statements created in the database, or a workload file) the plans
of its queries are checked too (:func:`dbtune.plans.audit_plans`): planned, never run, in a read-only
session of their own after the snapshot's transaction. Every unique index a finding proposes to build is
checked for duplicate keys (:mod:`dbtune.catalog.duplicate_keys`), so that ``migrate generate`` can leave
out a build known to fail.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from dbtune.catalog.duplicate_keys import probe_duplicate_keys
from dbtune.catalog.snapshot import take
from dbtune.checks import Catalogue, load_catalogue, run_checks
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings, describe, read_only_snapshot
from dbtune.errors import ConfigError
from dbtune.plans import audit_plans, workload_queries
from dbtune.report.model import Report


def audit(settings: ConnectionSettings, config: Config, *, config_path: Path | None = None,
          catalogue: Catalogue | None = None, select: Iterable[str] = (),
          ignore: Iterable[str] = (), workload: Path | None = None,
          workload_format: str | None = None) -> Report:
    """Audit one database in a single ``REPEATABLE READ, READ ONLY`` transaction.

    Raises :class:`~dbtune.errors.ConnectionFailed` (cannot connect), :class:`~dbtune.errors.ConfigError`
    (the config names a missing table or an unknown check), :class:`~dbtune.errors.CatalogueError`.
    ``workload`` is a workload file whose queries are planned for the plan checks (instead of the top
    ``audit.plan_queries`` statements of pg_stat_statements); a missing or malformed file is a
    :class:`~dbtune.errors.UsageError`; ``workload_format`` reads it as a ``psql``, ``pgbench``, ``qgen``
    or ``plain`` script (detected when ``None``). Never writes to the target.
    """
    started = time.perf_counter()
    catalogue = catalogue or load_catalogue(config.audit.checks_paths)
    queries = (workload_queries(settings, path=workload, workload_format=workload_format)
               if workload is not None else None)
    with read_only_snapshot(settings) as conn:
        snapshot = take(conn)
    try:
        result = run_checks(catalogue, snapshot, config, select=select, ignore=ignore)
        plans = audit_plans(settings, config, catalogue, queries=queries, select=select, ignore=ignore,
                            pg_stat_statements="pg_stat_statements" in snapshot.server.extensions)
    except ConfigError as exc:
        if config_path is None:
            raise
        raise ConfigError(f"{config_path}: {exc}") from None
    findings, unprobed = probe_duplicate_keys(settings, (*result.findings, *plans.findings))
    return Report(
        target=describe(settings), server=snapshot.server, findings=findings,
        skipped=(*result.skipped, *plans.skipped, *unprobed), config_path=str(config_path) if config_path else None,
        profile=config.profile.name if config.profile else None,
        targets=config.targets.model_dump(exclude_none=True), statements_sent=snapshot.statements_sent,
        duration_ms=(time.perf_counter() - started) * 1000, generated_at=snapshot.server.now,
        index_names=tuple(ix.qualified_name for ix in snapshot.indexes if ix.is_valid),
    )
