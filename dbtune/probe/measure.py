"""Every probe on a server dbtune started (the demo's), and the profile table filled with what they
measured: ``dbtune demo``'s last stage.

In order: ``probe load`` (the workload at ``clients`` × ``load_s``, writes rolled back), ``probe lag`` on a
streaming standby made for the purpose (``pg_basebackup -R`` from the server, then a few writes on the
primary so there is WAL to replay; the standby is destroyed afterwards), then ``probe recovery`` (a
``CHECKPOINT`` first, so the crash replays only the probe's own writes, then the crash and restart) with
the estimate from the settings and the rates the crash measured. The race probe's result is taken as it is
(``race``: it runs elsewhere, before and after the migration).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg

from dbtune.appconfig.model import AppConfig
from dbtune.appconfig.plan import pool_plan
from dbtune.config.model import Config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.probe.lag import LagResult, measure_lag
from dbtune.probe.load import LoadOptions, LoadResult, run_load
from dbtune.probe.profile import ProfileTable, RaceOutcome, profile_table, read_connection_slots
from dbtune.probe.recovery import RecoveryEstimate, RecoveryMeasurement, crash_and_recover, estimate_recovery
from dbtune.progress import Count, no_count
from dbtune.workload.model import WorkloadQuery


@dataclass(frozen=True)
class Measured:
    """What :func:`measure_targets` measured, and the profile table made from it."""

    table: ProfileTable
    load: LoadResult
    lag: LagResult | None
    recovery: RecoveryMeasurement
    estimate: RecoveryEstimate


def _lag_on_a_standby(server: LocalServer, dbname: str) -> LagResult:
    standby = server.start_standby()
    try:
        with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS /* dbtune */ dbtune_probe_lag")
            conn.execute("CREATE TABLE /* dbtune */ dbtune_probe_lag (at timestamptz)")
            conn.execute("INSERT /* dbtune */ INTO dbtune_probe_lag VALUES (now())")
        time.sleep(0.5)  # let the standby replay it, as a replica of a live primary does continuously
        result = measure_lag(resolve(server.dsn(dbname)), [(resolve(standby.dsn(dbname)), "a standby made by "
                                                            "pg_basebackup -R")])
        with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
            conn.execute("DROP TABLE /* dbtune */ dbtune_probe_lag")
        return result
    finally:
        standby.destroy()


def measure_targets(server: LocalServer, dbname: str, config: Config, workload: Sequence[WorkloadQuery], *,
                    race: RaceOutcome | None = None, clients: int = 4, load_s: int = 3, lag: bool = True,
                    app_config: AppConfig | None = None,
                    progress: Callable[[str], None] = lambda _: None, count: Count = no_count) -> Measured:
    """Run the probes on ``server`` (which dbtune started: it is crashed and restarted) in ``dbname`` and
    fill ``config``'s profile table (see the module docstring); ``lag=False`` leaves replication lag not
    measured; the connection budget row is the pools of ``config`` merged with ``app_config``'s (through
    PgBouncer where they go through it); ``count`` (a progress bar) is told the load's seconds run.
    Raises what the probes raise."""
    settings = resolve(server.dsn(dbname))
    load = run_load(settings, workload, LoadOptions(clients=clients, duration_s=load_s, allow_writes=True),
                    progress=progress, count=count)
    progress(f"load: {load.tps:.0f} tps, p99 {load.p99_ms:.2f} ms ({load.engine.value})")
    lagged = None
    if lag:
        progress("replication lag on a streaming standby (pg_basebackup -R)")
        lagged = _lag_on_a_standby(server, dbname)
    with psycopg.connect(server.dsn(dbname), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    recovery = crash_and_recover(server, dbname, writers=clients, load_s=2.0, progress=progress)
    estimate = estimate_recovery(settings, wal_rate_bytes_s=recovery.wal_rate_bytes_s,
                                 replay_rate_bytes_s=recovery.replay_rate_bytes_s,
                                 replay_rate_source="measured by the crash's redo")
    plan = pool_plan(config, app_config)
    table = profile_table(config, load=load, race=race, recovery=recovery, estimate=estimate, lag=lagged,
                          budget=plan.budget(*read_connection_slots(settings)) if plan.pools else None)
    return Measured(table, load, lagged, recovery, estimate)
