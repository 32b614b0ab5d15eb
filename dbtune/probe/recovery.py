"""``dbtune probe recovery``: how long the server takes to come back after a crash, measured on a server
dbtune started, and estimated for any server from its checkpoint settings and WAL rate.

**Measured** (:func:`crash_and_recover`, only on a :class:`~dbtune.db.local_server.LocalServer`, the
demo's or a throwaway one): ``writers`` sessions insert rows into a scratch table
(:data:`SCRATCH_TABLE`) through pgbench; after ``load_s`` seconds the server is killed with ``pg_ctl stop
-m immediate`` (every process gone without a checkpoint, as in a power loss), restarted, and timed from
``pg_ctl start`` until the first ``SELECT 1`` succeeds. The WAL it had to replay (from the last
checkpoint's redo point to the end of WAL) and the redo time the server logged (``redo done at … elapsed:
…``) give the replay rate, which the estimate then uses. The scratch table is dropped afterwards.

**Estimated** (:func:`estimate_recovery`, any server, read-only): crash recovery replays the WAL written
since the redo point of the last checkpoint. A checkpoint starts every ``checkpoint_timeout``, or sooner
when the WAL since the last one approaches ``max_wal_size``, and spreads its writes over
``checkpoint_completion_target`` of the interval; the redo point is the start of the last *completed*
checkpoint, so at worst about ``(1 + checkpoint_completion_target) × checkpoint_timeout`` of WAL is
replayed, and never much more than ``max_wal_size``. At the WAL rate measured over ``sample_s`` seconds
(``pg_stat_wal.wal_bytes`` on PostgreSQL 14+, the advance of ``pg_current_wal_lsn()`` before), that is
``min(max_wal_size, rate × (1 + cct) × checkpoint_timeout)`` bytes, divided by the replay rate: measured
by a crash of a server dbtune started, else :data:`ASSUMED_REPLAY_BYTES_S` (an assumption, and the report
says so). Following https://www.postgresql.org/docs/current/wal-configuration.html.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg

from dbtune.db.connect import ConnectionSettings, MarkedCursor, connect, describe
from dbtune.db.local_server import LocalServer
from dbtune.errors import ServerRefused, UsageError
from dbtune.model import report_header

WAL_CONFIGURATION_DOCS = "https://www.postgresql.org/docs/current/wal-configuration.html"
SCRATCH_TABLE = "dbtune_probe_recovery"
# Replay speed assumed when none was measured: 50 MB/s, a modest rate for the single startup process that
# replays WAL (it is often several times faster on SSDs); `probe recovery --local-server` measures one.
ASSUMED_REPLAY_BYTES_S = 50 * 1024 * 1024
_REDO_ELAPSED = re.compile(r"redo done at \S+.*?elapsed: ([0-9.]+) s")

_SETTINGS = """
-- The checkpoint settings in base units (checkpoint_timeout in s, max_wal_size in MB), the server version,
-- the current WAL position, and whether the server is a standby.
SELECT (SELECT setting::float8 FROM pg_catalog.pg_settings WHERE name = 'checkpoint_timeout'),
       (SELECT setting::float8 FROM pg_catalog.pg_settings WHERE name = 'max_wal_size'),
       (SELECT setting::float8 FROM pg_catalog.pg_settings WHERE name = 'checkpoint_completion_target'),
       pg_catalog.current_setting('server_version_num')::int,
       pg_catalog.pg_is_in_recovery()
"""
# WAL written so far: pg_stat_wal (14+) counts it in bytes; before 14, the WAL position itself.
_WAL_BYTES_14 = "SELECT wal_bytes::float8 FROM pg_catalog.pg_stat_wal"
_WAL_LSN = "SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), '0/0')::float8"
# WAL since the last checkpoint's redo point: what a crash now would replay (pg_control_checkpoint needs
# superuser or an explicit grant; without it, this is left unknown).
_SINCE_REDO = """
SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), redo_lsn)::float8
FROM pg_catalog.pg_control_checkpoint()
"""


@dataclass(frozen=True)
class RecoveryEstimate:
    """The estimate (see the module docstring): the settings (``checkpoint_timeout_s`` s,
    ``max_wal_size_bytes``, ``completion_target``), the WAL rate (bytes/s, over ``sample_s`` s, from
    ``wal_rate_source``), ``worst_replay_bytes``, the replay rate (bytes/s) and ``replay_rate_source``,
    ``estimate_s`` (s); ``since_redo_bytes`` the WAL a crash now would replay (None when unreadable)."""

    checkpoint_timeout_s: float
    max_wal_size_bytes: int
    completion_target: float
    wal_rate_bytes_s: float
    wal_rate_source: str
    sample_s: float
    worst_replay_bytes: int
    replay_rate_bytes_s: float
    replay_rate_source: str
    estimate_s: float
    since_redo_bytes: int | None = None
    docs: str = WAL_CONFIGURATION_DOCS

    @property
    def how(self) -> str:
        """The estimate in one sentence, with its figures."""
        return (f"min(max_wal_size {_mb(self.max_wal_size_bytes)}, WAL rate {_mb(self.wal_rate_bytes_s)}/s x "
                f"(1 + checkpoint_completion_target {self.completion_target:g}) x checkpoint_timeout "
                f"{self.checkpoint_timeout_s:g} s) = {_mb(self.worst_replay_bytes)} of WAL to replay at "
                f"{_mb(self.replay_rate_bytes_s)}/s ({self.replay_rate_source})")


@dataclass(frozen=True)
class RecoveryMeasurement:
    """A crash under write load and the restart: ``writers`` sessions for ``load_s`` s (``transactions``
    committed); ``wal_to_replay_bytes`` from the last redo point at the crash; ``stop_s`` the immediate
    stop; ``recovery_s`` from ``pg_ctl start`` to the first successful query; ``redo_s`` the redo time
    the server logged (None when its log does not say); ``wal_rate_bytes_s`` the load's WAL per second."""

    writers: int
    load_s: float
    transactions: int
    wal_to_replay_bytes: int | None
    stop_s: float
    recovery_s: float
    redo_s: float | None
    wal_rate_bytes_s: float = 0.0

    @property
    def replay_rate_bytes_s(self) -> float | None:
        """WAL replayed per second of redo, when both are known (and the redo took measurable time)."""
        if self.wal_to_replay_bytes is None or not self.redo_s:
            return None
        return self.wal_to_replay_bytes / self.redo_s


@dataclass(frozen=True)
class RecoveryReport:
    """What ``dbtune probe recovery`` produced: the crash ``measured`` (None with ``--estimate-only``) and
    the ``estimate`` from the checkpoint settings (None when it could not be made)."""

    command: ClassVar[str] = "probe recovery"

    measured: RecoveryMeasurement | None
    estimate: RecoveryEstimate | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form: ``report_version``, ``command``, ``kind`` ``dbtune-probe-recovery``, ``measured``
        and ``estimate`` with their fields as they are (s, bytes, bytes/s) and the estimate's ``how``."""
        return {**report_header(self), "kind": "dbtune-probe-recovery",
                "measured": dataclasses.asdict(self.measured) if self.measured else None,
                "estimate": {**dataclasses.asdict(self.estimate), "how": self.estimate.how} if self.estimate else None}


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _wal_bytes(conn: psycopg.Connection, version_num: int) -> float:
    row = conn.execute(_WAL_BYTES_14 if version_num >= 140000 else _WAL_LSN).fetchone()
    assert row is not None
    return float(row[0])


def _since_redo(conn: psycopg.Connection) -> int | None:
    try:
        row = conn.execute(_SINCE_REDO).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return int(row[0]) if row and row[0] is not None else None


def estimate_recovery(settings: ConnectionSettings, *, sample_s: float = 5.0,
                      replay_rate_bytes_s: float | None = None, replay_rate_source: str | None = None,
                      wal_rate_bytes_s: float | None = None) -> RecoveryEstimate:
    """The crash-recovery estimate for the server of ``settings`` (read-only; see the module docstring).

    The WAL rate is measured over ``sample_s`` seconds unless ``wal_rate_bytes_s`` is given (bytes/s);
    ``replay_rate_bytes_s`` (bytes/s, with its ``replay_rate_source``) defaults to
    :data:`ASSUMED_REPLAY_BYTES_S`. On a hot standby pg_current_wal_lsn() is not available: raises
    :class:`UsageError` naming it. Raises :class:`~dbtune.errors.ConnectionFailed` /
    :class:`ServerRefused` (exit 3) when the server cannot be reached or refuses a query.
    """
    if sample_s <= 0 and wal_rate_bytes_s is None:
        raise UsageError(f"--sample must be more than 0 seconds, got {sample_s:g}")
    with connect(settings, autocommit=True) as conn:
        conn.cursor_factory = MarkedCursor  # type: ignore[assignment]
        try:
            row = conn.execute(_SETTINGS).fetchone()
            assert row is not None
            timeout_s, max_wal_mb, cct, version_num, standby = row
            if standby:
                raise UsageError(f"probe recovery: {describe(settings)} is a hot standby (pg_is_in_recovery() is "
                                 "true); estimate the primary's recovery on the primary")
            source = "pg_stat_wal.wal_bytes" if version_num >= 140000 else "pg_current_wal_lsn()"
            if wal_rate_bytes_s is None:
                first, started = _wal_bytes(conn, version_num), time.monotonic()
                time.sleep(sample_s)
                if version_num >= 140000:
                    conn.execute("SELECT pg_catalog.pg_stat_clear_snapshot()")
                wal_rate_bytes_s = max(0.0, (_wal_bytes(conn, version_num) - first) / (time.monotonic() - started))
                source += f" over {sample_s:g} s"
            else:
                source = "the write load's WAL"
            since_redo = _since_redo(conn)
        except psycopg.Error as exc:
            raise ServerRefused(f"{describe(settings)} refused a settings query: {' '.join(str(exc).split())}"
                                ) from None
    max_wal = int(max_wal_mb * 1024 * 1024)
    wal_rate_bytes_s = round(wal_rate_bytes_s, 1)  # the rate reported, so the worst case follows from it
    worst = int(min(max_wal, wal_rate_bytes_s * (1 + cct) * timeout_s))
    rate = replay_rate_bytes_s or ASSUMED_REPLAY_BYTES_S
    rate_source = (replay_rate_source or "given") if replay_rate_bytes_s else "assumed, not measured"
    return RecoveryEstimate(float(timeout_s), max_wal, float(cct), wal_rate_bytes_s, source, sample_s,
                            worst, rate, rate_source, round(worst / rate, 3), since_redo)


def _first_query(server: LocalServer, dbname: str, started: float, timeout_s: float) -> float:
    """Seconds from ``started`` (``time.monotonic()``) until ``SELECT 1`` succeeds on ``server`` (polled
    every 10 ms); raises ServerRefused after ``timeout_s``."""
    dsn = server.dsn(dbname)
    last = ""
    while time.monotonic() - started < timeout_s:
        try:
            with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                conn.execute("SELECT /* dbtune */ 1")
            return time.monotonic() - started
        except psycopg.OperationalError as exc:
            last = " ".join(str(exc).split())
            time.sleep(0.01)
    raise ServerRefused(f"the server did not answer within {timeout_s:g} s of its restart: {last}")


def crash_and_recover(server: LocalServer, dbname: str, *, writers: int = 4, load_s: float = 3.0,
                      timeout_s: float = 300.0, progress: Callable[[str], None] = lambda _: None
                      ) -> RecoveryMeasurement:
    """Crash ``server`` (a server dbtune started: the type says so) under write load in ``dbname`` and time
    its restart (see the module docstring). ``writers`` pgbench sessions insert into
    :data:`SCRATCH_TABLE` for ``load_s`` seconds; then ``pg_ctl stop -m immediate`` and ``pg_ctl start``.
    The scratch table is dropped afterwards. Raises :class:`UsageError` for ``writers`` < 1 or ``load_s``
    <= 0, :class:`ServerRefused` when the server does not come back within ``timeout_s`` seconds
    (https://www.postgresql.org/docs/current/app-pg-ctl.html, wal-configuration.html)."""
    if writers < 1:
        raise UsageError(f"--writers must be at least 1, got {writers}")
    if load_s <= 0:
        raise UsageError(f"--load must be more than 0 seconds, got {load_s:g}")
    dsn = server.dsn(dbname)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS /* dbtune */ {SCRATCH_TABLE} "  # type: ignore[arg-type]
                     "(id bigint GENERATED ALWAYS AS IDENTITY, payload text)")
    script = server.root / "dbtune-recovery.sql"
    script.write_text(f"INSERT /* dbtune */ INTO {SCRATCH_TABLE} (payload) VALUES (repeat('x', 200));\n")
    with psycopg.connect(dsn, autocommit=True) as conn:
        wal_before = float(conn.execute(_WAL_LSN).fetchone()[0])  # type: ignore[index]
    progress(f"write load: {writers} sessions inserting for {load_s:g} s, then pg_ctl stop -m immediate")
    load = subprocess.Popen([str(server.bindir / "pgbench"), "-n", "-c", str(writers), "-T", str(int(load_s) + 60),
                             "-f", str(script), dsn], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        loading = time.monotonic()
        time.sleep(load_s)
        with psycopg.connect(dsn, autocommit=True) as conn:
            wal_rate = (float(conn.execute(_WAL_LSN).fetchone()[0]) - wal_before) / (  # type: ignore[index]
                time.monotonic() - loading)
            transactions = int(conn.execute(f"SELECT /* dbtune */ count(*) FROM {SCRATCH_TABLE}"  # type: ignore[arg-type]
                                            ).fetchone()[0])  # type: ignore[index]
            wal = _since_redo(conn)
        log_size = server.logfile.stat().st_size if server.logfile.exists() else 0
        stopped = time.monotonic()
        server.stop("immediate")
        stop_s = time.monotonic() - stopped
    finally:
        if load.poll() is None:
            load.kill()
        load.communicate(timeout=30)
    progress(f"crashed after {transactions} inserts with {_mb(wal) if wal is not None else 'unknown'} of WAL "
             "since the last checkpoint; restarting")
    restarted = time.monotonic()
    server.start(wait=False)
    recovery_s = _first_query(server, dbname, restarted, timeout_s)
    log = server.logfile.read_text(errors="replace")[log_size:] if server.logfile.exists() else ""
    m = _REDO_ELAPSED.search(log)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS /* dbtune */ {SCRATCH_TABLE}")  # type: ignore[arg-type]
    script.unlink(missing_ok=True)
    return RecoveryMeasurement(writers, load_s, transactions, wal, round(stop_s, 3), round(recovery_s, 3),
                               float(m.group(1)) if m else None, round(wal_rate, 1))
