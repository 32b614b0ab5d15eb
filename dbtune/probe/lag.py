"""``dbtune probe lag``: replication lag, read-only, from both ends.

- On the primary, ``pg_stat_replication``: one row per standby streaming from it, with ``write_lag``,
  ``flush_lag`` and ``replay_lag`` (the time until the standby had written, flushed and applied recent
  WAL; NULL once the standby has caught up and the primary is idle) and the replay gap in bytes
  (``pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)``). Rows of other roles' sessions show their lag
  columns only to superusers and ``pg_monitor`` members.
  https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-REPLICATION-VIEW
- On each replica (a ``--replica`` DSN, or the application config's read replicas: ``DATABASE_READ_REPLICA_URL``
  and friends), the guide's own query, ``now() - pg_last_xact_replay_timestamp()``: the age of the last
  transaction replayed. On an idle primary that age grows though nothing is left to replay, so, as
  PgHero does, the lag is 0 when the replica has replayed all it received
  (``pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()``).
  https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-RECOVERY-INFO-TABLE

A replica that cannot be reached is reported with the reason; the rest goes on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import psycopg
from psycopg import conninfo

from dbtune.appconfig.model import Replica
from dbtune.db.connect import ConnectionSettings, MarkedCursor, connect, describe
from dbtune.errors import DbtuneError, ServerRefused
from dbtune.model import report_header

_PRIMARY = """
-- One row per standby streaming from this server: its name, address, state, the three lags (s) and the
-- replay gap (bytes).
SELECT application_name, client_addr::text, state,
       EXTRACT(epoch FROM write_lag)::float8, EXTRACT(epoch FROM flush_lag)::float8,
       EXTRACT(epoch FROM replay_lag)::float8,
       pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), replay_lsn)::float8
FROM pg_catalog.pg_stat_replication
ORDER BY application_name, client_addr
"""

_REPLICA = """
-- Whether this server is a standby, the age (s) of the last transaction it replayed, and whether it has
-- replayed all the WAL it received.
SELECT pg_catalog.pg_is_in_recovery(),
       EXTRACT(epoch FROM pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp())::float8,
       pg_catalog.pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_catalog.pg_last_wal_replay_lsn()
"""


@dataclass(frozen=True)
class StandbyLag:
    """A standby as its primary sees it (``pg_stat_replication``): lags in seconds (None: not reported,
    e.g. caught up on an idle primary) and ``replay_gap_bytes``."""

    application_name: str
    client_addr: str | None
    state: str | None
    write_lag_s: float | None
    flush_lag_s: float | None
    replay_lag_s: float | None
    replay_gap_bytes: int | None


@dataclass(frozen=True)
class ReplicaLag:
    """A replica probed itself: ``target`` (password-free label) and ``source`` (``--replica``, or the file
    and key of the application config); ``lag_s`` the replay lag in seconds (0 when caught up, None when
    it has replayed nothing yet), ``caught_up``; ``error`` when it could not be measured (not reachable,
    not a standby)."""

    target: str
    source: str
    lag_s: float | None = None
    caught_up: bool = False
    error: str | None = None


@dataclass(frozen=True)
class LagResult:
    """``primary`` (label, or None when not probed) with its ``standbys``, and the ``replicas`` probed."""

    command: ClassVar[str] = "probe lag"
    primary: str | None
    standbys: tuple[StandbyLag, ...]
    replicas: tuple[ReplicaLag, ...]

    @property
    def worst_s(self) -> float | None:
        """The largest lag measured, in seconds (replicas' replay lag, standbys' replay lag); None when none
        was measured."""
        values = [r.lag_s for r in self.replicas if r.lag_s is not None and r.error is None]
        values += [s.replay_lag_s for s in self.standbys if s.replay_lag_s is not None]
        values += [0.0 for s in self.standbys if s.replay_lag_s is None and s.replay_gap_bytes == 0]
        return max(values) if values else None

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``report_version``, ``command``, ``kind`` ``dbtune-probe-lag``, the fields as they
        are (s, bytes) and ``worst_s``."""
        return {**report_header(self), "kind": "dbtune-probe-lag", **dataclasses.asdict(self), "worst_s": self.worst_s}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def standby_lags(settings: ConnectionSettings) -> tuple[StandbyLag, ...]:
    """The standbys streaming from the primary of ``settings`` (``pg_stat_replication``; see the module
    docstring). Raises :class:`~dbtune.errors.ConnectionFailed` / :class:`ServerRefused` (exit 3)."""
    with connect(settings, autocommit=True) as conn:
        conn.cursor_factory = MarkedCursor  # type: ignore[assignment]
        try:
            rows = conn.execute(_PRIMARY).fetchall()
        except psycopg.Error as exc:
            raise ServerRefused(f"{describe(settings)} refused pg_stat_replication: {_one_line(exc)}") from None
    return tuple(StandbyLag(str(r[0]), r[1], r[2], r[3], r[4], r[5], None if r[6] is None else int(r[6]))
                 for r in rows)


def replica_lag(settings: ConnectionSettings, source: str) -> ReplicaLag:
    """The replay lag of one replica (see the module docstring); never raises for the replica itself: an
    unreachable server or one that is not a standby is a :class:`ReplicaLag` with ``error``."""
    target = describe(settings)
    try:
        with connect(settings, autocommit=True) as conn:
            conn.cursor_factory = MarkedCursor  # type: ignore[assignment]
            row = conn.execute(_REPLICA).fetchone()
    except DbtuneError as exc:
        return ReplicaLag(target, source, error=str(exc))
    except psycopg.Error as exc:
        return ReplicaLag(target, source, error=_one_line(exc))
    assert row is not None
    standby, age_s, caught_up = row
    if not standby:
        return ReplicaLag(target, source, error="not a standby (pg_is_in_recovery() is false)")
    lag = 0.0 if caught_up else age_s
    return ReplicaLag(target, source, None if lag is None else max(0.0, float(lag)), bool(caught_up))


def measure_lag(primary: ConnectionSettings | None,
                replicas: Sequence[tuple[ConnectionSettings, str]]) -> LagResult:
    """Replication lag on ``primary``'s standbys (None: not probed) and on each ``(settings, source)`` of
    ``replicas``. Raises what :func:`standby_lags` raises for the primary; replicas never raise."""
    standbys = standby_lags(primary) if primary is not None else ()
    return LagResult(describe(primary) if primary is not None else None, standbys,
                     tuple(replica_lag(s, source) for s, source in replicas))


def replica_settings(replica: Replica, base: ConnectionSettings) -> ConnectionSettings:
    """Connection settings for an application config's read replica: its host, port, database and user (the
    model never holds a password: libpq's ``PGPASSWORD`` or ``~/.pgpass`` supplies it), with ``base``'s
    timeouts."""
    t = replica.target
    params = {k: str(v) for k, v in {"host": t.host, "port": t.port, "dbname": t.database, "user": t.user}.items()
              if v is not None}
    return replace(base, dsn=conninfo.make_conninfo(**params), source=str(replica.origin))
