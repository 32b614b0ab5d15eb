"""The profile table: each of a deployment profile's targets (the config's ``[targets]``, the guide's
"Performance Targets by Deployment Size" in ``sample_configs/*.toml``) beside the value a probe measured,
and whether it is met.

A target with no measurement says why (``not measured`` and the probe that would measure it); a
measurement with no target in the profile is still shown (``no target``). A minimum is met at or above
it, a maximum at or below it. The rows, in order: webhook RPS, webhook p99 and error rate (``probe load``,
on the database side: the workload's transactions, not HTTP requests), vendor win rate (``probe race``),
DB recovery (``probe recovery``: measured when a server dbtune started was crashed, else the estimate from
the checkpoint settings), replication lag (``probe lag``), the connection budget (the server connections
of the profile's pools × instances, through PgBouncer where they go through it, the application's config
merged in: the audit's :class:`~dbtune.appconfig.plan.ConnectionBudget`, against ``max_connections``
minus reserved slots), and the targets outside the database (Redis), which dbtune does not measure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, Protocol

import psycopg

from dbtune.appconfig.plan import ConnectionBudget
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings, MarkedCursor, connect, describe
from dbtune.errors import ServerRefused
from dbtune.model import report_header
from dbtune.probe.lag import LagResult
from dbtune.probe.load import LoadResult
from dbtune.probe.recovery import RecoveryEstimate, RecoveryMeasurement


class RaceOutcome(Protocol):
    """What the profile needs of ``probe race``'s result (:class:`dbtune.probe.race.RaceResult`)."""

    @property
    def win_rate_pct(self) -> float: ...

    @property
    def sessions(self) -> int: ...

    @property
    def rounds(self) -> int: ...


class Status(StrEnum):
    MET = "met"
    MISSED = "missed"
    NOT_MEASURED = "not measured"
    NO_TARGET = "no target"


@dataclass(frozen=True)
class TargetRow:
    """One target: ``label``, the config ``key`` (``targets.webhook_rps_min``), the ``bound`` (a number, or
    text such as ``"required + sentinel"``, None when the profile sets none) and whether it is a ``minimum``;
    the ``measured`` value in ``unit`` (None when not measured), ``how`` it was measured (or why not), and
    the ``status``."""

    label: str
    key: str
    bound: float | str | None
    minimum: bool
    measured: float | None
    unit: str
    how: str
    status: Status


@dataclass(frozen=True)
class ProfileTable:
    """The rows for the profile ``profile`` (its name, None when the config names none): the guide's
    targets beside what the probes measured, shown by ``demo`` and under each probe's result."""

    command: ClassVar[str] = "probe"
    profile: str | None
    rows: tuple[TargetRow, ...]

    @property
    def missed(self) -> tuple[TargetRow, ...]:
        """The rows whose measured value misses its target."""
        return tuple(r for r in self.rows if r.status == Status.MISSED)

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``report_version``, ``command``, ``kind`` ``dbtune-profile``, the profile and its rows."""
        return {**report_header(self), "kind": "dbtune-profile", **dataclasses.asdict(self)}


_BUDGET = """
-- The server's connection slots and those reserved (reserved_connections exists from 16 on).
SELECT pg_catalog.current_setting('max_connections')::int,
       pg_catalog.current_setting('superuser_reserved_connections')::int
       + COALESCE(pg_catalog.current_setting('reserved_connections', true)::int, 0)
"""


def read_connection_slots(settings: ConnectionSettings) -> tuple[int, int]:
    """The server's ``max_connections`` and its reserved slots (``superuser_reserved_connections``, and
    ``reserved_connections`` on 16+), read-only
    (https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-MAX-CONNECTIONS). Raises
    :class:`~dbtune.errors.ConnectionFailed` / :class:`~dbtune.errors.ServerRefused` (exit 3)."""
    with connect(settings, autocommit=True) as conn:
        conn.cursor_factory = MarkedCursor  # type: ignore[assignment]
        try:
            row = conn.execute(_BUDGET).fetchone()
        except psycopg.Error as exc:
            raise ServerRefused(f"{describe(settings)} refused a settings query: {' '.join(str(exc).split())}"
                                ) from None
    assert row is not None
    return int(row[0]), int(row[1])


def _row(label: str, key: str, bound: float | str | None, minimum: bool, measured: float | None, unit: str,
         how: str) -> TargetRow:
    if measured is None:
        status = Status.NOT_MEASURED
    elif not isinstance(bound, int | float):
        status = Status.NO_TARGET
    else:
        status = Status.MET if (measured >= bound if minimum else measured <= bound) else Status.MISSED
    return TargetRow(label, key, bound, minimum, measured, unit, how, status)


def profile_table(config: Config, *, load: LoadResult | None = None, race: RaceOutcome | None = None,
                  recovery: RecoveryMeasurement | None = None, estimate: RecoveryEstimate | None = None,
                  lag: LagResult | None = None, budget: ConnectionBudget | None = None) -> ProfileTable:
    """The profile table of ``config``'s targets against what was measured (any of the probes' results may
    be None: that row is ``not measured``, with the probe that measures it). Pure: it measures nothing."""
    t = config.targets
    rows = []
    load_how = (f"probe load: {load.clients} client{'s' if load.clients != 1 else ''} x {load.duration_s} s, "
                f"{load.engine.value}, {load.transactions:,} transactions" if load else
                "not measured: dbtune probe load")
    rows.append(_row("Webhook RPS (database transactions/s)", "webhook_rps_min", t.webhook_rps_min, True,
                     load.tps if load else None, "tps", load_how))
    rows.append(_row("Webhook p99", "webhook_p99_ms_max", t.webhook_p99_ms_max, False,
                     load.p99_ms if load else None, "ms", load_how))
    rows.append(_row("Webhook errors", "webhook_error_rate_pct_max", t.webhook_error_rate_pct_max, False,
                     load.error_rate_pct if load else None, "%", load_how))
    rows.append(_row("Vendor win rate", "vendor_win_rate_pct_min", t.vendor_win_rate_pct_min, True,
                     race.win_rate_pct if race else None, "%",
                     f"probe race: {race.sessions} sessions x {race.rounds} rounds" if race
                     else "not measured: dbtune probe race"))
    if recovery is not None:
        rows.append(_row("DB recovery time", "db_recovery_s_max", t.db_recovery_s_max, False, recovery.recovery_s,
                         "s", f"probe recovery: crash under writes from {recovery.writers} session"
                              f"{'s' if recovery.writers != 1 else ''}, pg_ctl start to the first query"))
    else:
        rows.append(_row("DB recovery time (estimated)", "db_recovery_s_max", t.db_recovery_s_max, False,
                         estimate.estimate_s if estimate else None, "s",
                         f"estimate: {estimate.how}" if estimate else "not measured: dbtune probe recovery"))
    measured_lag = lag.worst_s if lag else None
    lag_how = ("probe lag: " + ", ".join([*(f"standby {s.application_name}" for s in lag.standbys),
                                          *(f"replica {r.target}" for r in lag.replicas if r.error is None)])
               if lag and measured_lag is not None else
               "not measured: no replica reached (dbtune probe lag)")
    rows.append(_row("Replication lag", "replication_lag_s_max", t.replication_lag_s_max, False, measured_lag,
                     "s", lag_how))
    if budget is not None:
        rows.append(_row("Connection budget (pools x instances)", "pool", budget.available, False,
                         float(budget.demand), "connections",
                         f"{budget.summary()}; the pools and PgBouncer of the profile and the application's config"))
    for key in ("redis_availability", "redis_failure_error_rate_pct_max"):
        value = getattr(t, key)
        if value is not None:
            rows.append(TargetRow(key.replace("_", " ").replace("pct max", "(%)").capitalize(), key, value,
                                  False, None, "", "not measured: outside the database", Status.NOT_MEASURED))
    return ProfileTable(config.profile.name if config.profile else None, tuple(rows))


LOAD_KEYS = ("webhook_rps_min", "webhook_p99_ms_max", "webhook_error_rate_pct_max")
RECOVERY_KEYS = ("db_recovery_s_max",)
LAG_KEYS = ("replication_lag_s_max",)


def only(table: ProfileTable, keys: tuple[str, ...]) -> ProfileTable:
    """``table`` with only the rows of ``keys`` (a probe's own targets)."""
    return ProfileTable(table.profile, tuple(r for r in table.rows if r.key in keys))
