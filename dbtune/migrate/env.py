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

from typing import Any

from dbtune.db.connect import ConnectionSettings, connect, resolve
from dbtune.errors import DbtuneError, ExitCode

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
        context.configure(url="postgresql+psycopg://", literal_binds=True, transaction_per_migration=True,
                          version_table=version_table)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = engine_for(settings_of(config))
    with engine.connect() as connection:
        got = connection.exec_driver_sql(f"SELECT pg_catalog.pg_try_advisory_lock({ADVISORY_LOCK_KEY})").scalar()
        if not got:
            holder = connection.exec_driver_sql(
                "SELECT a.pid, a.application_name FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a "
                f"ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.objid = {ADVISORY_LOCK_KEY & 0xFFFFFFFF} "
                "AND l.granted LIMIT 1").first()
            who = f" (pid {holder[0]}, {holder[1]})" if holder else ""
            raise ApplyInProgress(f"another migration run holds the dbtune migration lock{who}")
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
            connection.exec_driver_sql(f"SELECT pg_catalog.pg_advisory_unlock({ADVISORY_LOCK_KEY})")
            connection.commit()
