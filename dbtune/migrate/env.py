"""The body of a dbtune migrations environment's ``env.py``.

The target comes from dbtune's own connection settings: those ``dbtune migrate`` put in the Alembic config's
``attributes["dbtune_settings"]``, else ``DATABASE_URL`` or libpq's defaults, exactly as ``dbtune audit``
resolves them. A session advisory lock makes sure two appliers never run at once.

Revisions are recorded in dbtune's own version table (``[migrate] version_table``, ``dbtune_version`` by
default), never in the ``alembic_version`` of an application that migrates the same database with Alembic:
the table comes from ``attributes["dbtune_version_table"]``, else from the dbtune config found from the
working directory (so a plain ``alembic upgrade`` run in the project uses the same table).
See https://alembic.sqlalchemy.org/en/latest/api/runtime.html.
"""

from __future__ import annotations

import os
import re
import socket
import time
from typing import Any

from dbtune.db.connect import ConnectionSettings, connect, resolve
from dbtune.errors import DbtuneError, ExitCode
from dbtune.escape import one_line

# pg_advisory_lock key: the bytes "dbtune" read as an integer.
ADVISORY_LOCK_KEY = int.from_bytes(b"dbtune", "big")


class _DryRunDone(Exception):
    """Raised inside the migration transaction to roll a dry run back."""


class ApplyInProgress(DbtuneError):
    """Another applier holds the migration lock (exit 3: the server refused the run)."""

    exit_code = ExitCode.CONNECTION


def settings_of(config: Any) -> ConnectionSettings:
    found = config.attributes.get("dbtune_settings") if config is not None else None
    return found if isinstance(found, ConnectionSettings) else resolve(None)


def version_table_of(config: Any) -> str:
    """The version table of this run: the one ``dbtune migrate`` chose, else ``[migrate] version_table`` of
    the dbtune config found from the working directory. Raises :class:`~dbtune.errors.ConfigError`."""
    found = config.attributes.get("dbtune_version_table") if config is not None else None
    if isinstance(found, str):
        return found
    from dbtune.config import load_config

    return load_config(None)[0].migrate.version_table


def recorded_heads(connection: Any, version_table: str) -> tuple[str, ...]:
    """The revisions ``version_table`` records on ``connection`` (empty when the table does not exist)."""
    from alembic.migration import MigrationContext

    return tuple(MigrationContext.configure(connection, opts={"version_table": version_table})
                 .get_current_heads())


def engine_for(settings: ConnectionSettings) -> Any:
    """A SQLAlchemy engine whose connections come from :func:`dbtune.db.connect.connect`."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    # No native hstore: the dialect would look its type up with psycopg's own (unmarked) catalog query.
    return create_engine("postgresql+psycopg://", creator=lambda: connect(settings), poolclass=NullPool,
                         use_native_hstore=False)


def run_env(context: Any) -> None:
    """Run migrations online (or render them offline with ``alembic upgrade --sql``)."""
    config = context.config
    version_table = version_table_of(config)
    if context.is_offline_mode():
        # A psql script, as `dbtune migrate generate --format sql` writes: the revisions' steps write their
        # statements (dbtune.migrate.runtime) and look nothing up.
        from dbtune.migrate.render import session_settings
        from dbtune.migrate.runtime import options_of_config

        context.configure(url="postgresql+psycopg://", literal_binds=True, transaction_per_migration=True,
                          version_table=version_table)
        context.static_output("\n".join(session_settings(options_of_config(config).lock_timeout_ms)))
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_for(settings_of(config))
    with engine.connect() as connection:
        _take_migration_lock(connection, config)
        # What is applied once the lock is held: another applier may have applied it while this one waited.
        config.attributes["dbtune_heads_at_lock"] = recorded_heads(connection, version_table)
        connection.commit()
        dry_run = bool(config.attributes.get("dbtune_dry_run"))
        try:
            # A dry run executes nothing (the runtime only reports) and rolls back the version stamps.
            context.configure(connection=connection, transaction_per_migration=not dry_run,
                              version_table=version_table)
            try:
                with context.begin_transaction():
                    context.run_migrations()
                    if dry_run:
                        raise _DryRunDone
            except _DryRunDone:
                pass
            connection.commit()
        finally:
            try:
                connection.exec_driver_sql(f"SELECT pg_catalog.pg_advisory_unlock({ADVISORY_LOCK_KEY})")
                connection.commit()
            except Exception:  # noqa: BLE001 - the session is gone (a server restart), and its lock with it;
                pass  # the error that ended the run is the one to report


# The applier's application_name: which client process runs it, so that a refused run can tell whether
# the holder's client is still alive (pg_stat_activity knows nothing of a Unix-socket client).
_APPLIER = re.compile(r"^dbtune migrate apply: pid (\d+) on (.+)$")


def applier_name() -> str:
    """``dbtune migrate apply: pid 123 on host`` (cut to 63 bytes, PostgreSQL's NAMEDATALEN - 1)."""
    return f"dbtune migrate apply: pid {os.getpid()} on {socket.gethostname()}"[:63]


_HOLDER = f"""
/* the session holding dbtune's migration lock: pid, application_name, state, wait event, current query,
   and when it connected (an applier takes the lock as it connects) */
SELECT a.pid, a.application_name, a.state, a.wait_event_type, a.wait_event, a.query, a.backend_start
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.objid = {ADVISORY_LOCK_KEY & 0xFFFFFFFF} AND l.granted
LIMIT 1
"""


def _client_gone(application_name: str) -> str | None:
    """``pid 123 on host``, when ``application_name`` names an applier on this host whose process is gone."""
    found = _APPLIER.match(application_name or "")
    if not found or not socket.gethostname().startswith(found.group(2)):  # another host (or cut short)
        return None
    pid = int(found.group(1))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"pid {pid} on {found.group(2)}"
    except PermissionError:
        return None  # alive, another user's
    return None


def _since(backend_start: Any) -> str:
    """``, connected since 2026-12-07 06:31:02 UTC`` from ``pg_stat_activity.backend_start`` (empty if unknown)."""
    from datetime import UTC, datetime

    if not isinstance(backend_start, datetime):
        return ""
    return f", connected since {backend_start.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def describe_holder(row: Any, *, refused: bool = True) -> str:
    """The holder of the migration lock, for a person: its pid, its application_name (an applier's names its
    client's pid and host), since when it is connected, whether its client is gone (an applier killed with
    ``kill -9`` leaves the server backend running its statement, lock held, until the statement ends), and
    what it is doing, with (``refused``) what to do about an orphaned backend. ``row`` is a row of ``_HOLDER``."""
    pid, application_name, state, wait_type, wait_event, query, backend_start = row
    gone = _client_gone(str(application_name or ""))
    doing = " ".join(str(query or "").split())[:160]
    waiting = f", waiting on {wait_type}/{wait_event}" if wait_type else ""
    since = _since(backend_start)
    if gone is not None and state == "active":
        return one_line(f"server backend pid {pid}{since}, whose client ({gone}) is gone, is still running: {doing} "
                        f"(state {state}{waiting}); it releases the lock when that statement ends"
                        + (f" (re-run without --no-wait to wait for it, or end it with SELECT "
                           f"pg_cancel_backend({pid}))" if refused else ""))
    return one_line(f"pid {pid} ({application_name or 'no application_name'}){since}, state {state}{waiting}"
                    + (f": {doing}" if doing else ""))


def _take_migration_lock(connection: Any, config: Any) -> None:
    """Take the session advisory lock that keeps appliers apart, waiting for it (saying once whom for) unless
    the run was started with ``--no-wait`` (``attributes["dbtune_wait"]`` false). Raises
    :class:`ApplyInProgress` naming the holder when it does not wait. See
    https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS."""
    connection.exec_driver_sql("SELECT pg_catalog.set_config('application_name', %(n)s, false)",
                               {"n": applier_name()})
    wait = bool(config.attributes.get("dbtune_wait", True)) if config is not None else True
    report = config.attributes.get("dbtune_apply").report if config is not None and hasattr(
        config.attributes.get("dbtune_apply"), "report") else None
    said = False
    while not connection.exec_driver_sql(
            f"SELECT pg_catalog.pg_try_advisory_lock({ADVISORY_LOCK_KEY})").scalar():
        holder = connection.exec_driver_sql(_HOLDER).first()
        who = describe_holder(holder, refused=not wait) if holder else "a session that has just ended"
        if not wait:
            raise ApplyInProgress(f"another migration run holds the dbtune migration lock (--no-wait): {who}")
        if not said and report is not None:
            report(f"waiting for the dbtune migration lock, held by {who}")
            said = True
        connection.commit()
        time.sleep(0.5)
