"""What dbtune's Alembic revisions call: each step run outside Alembic's transaction, under
``lock_timeout`` with retries, and made safe to run again after an interrupted run.

* :func:`build_index` drops an INVALID index left by an earlier failed or interrupted concurrent build,
  treats an identical valid index as already built (a change applied by hand is a clean no-op), refuses an
  index name taken by a different index, builds concurrently and checks ``indisvalid`` afterwards;
* :func:`run_step` runs one statement (``VALIDATE CONSTRAINT``, a drop …), retrying when the lock is not
  granted within ``lock_timeout`` and naming the sessions that hold locks on the table;
* :func:`attach_index` skips a partition index that is already attached;
* :func:`analyze` refreshes the planner's statistics of a table whose indexes changed.

Options (lock timeout, retries, dry run, where to report) come from ``ApplyOptions`` placed in the Alembic
config's ``attributes["dbtune_apply"]`` by ``dbtune migrate apply``; a plain ``alembic upgrade`` gets the
defaults. See https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY and
https://www.postgresql.org/docs/current/explicit-locking.html.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pglast import ast

from dbtune.db import locks
from dbtune.errors import DbtuneError, ExitCode
from dbtune.escape import one_line
from dbtune.pgsql import parse_one

DEFAULT_LOCK_TIMEOUT_MS = 2000
LOCK_NOT_AVAILABLE = "55P03"


class ApplyError(DbtuneError):
    """A migration step failed on the server (exit 3); the message names the step and the server's reason."""

    exit_code = ExitCode.CONNECTION


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class ApplyOptions:
    """How steps run. Times in ms; ``statement_timeout_ms`` 0 means no limit (index builds can be long)."""

    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS
    statement_timeout_ms: int = 0
    retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    dry_run: bool = False
    wait: bool = False  # wait for another applier's migration lock instead of refusing the run
    report: Callable[[str], None] = field(default=_stderr)


def options(op: Any) -> ApplyOptions:
    """The options of this run (defaults when Alembic runs the revision without dbtune)."""
    config = op.get_context().config
    found = config.attributes.get("dbtune_apply") if config is not None else None
    return found if isinstance(found, ApplyOptions) else ApplyOptions()


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", exc)
    return " ".join(str(orig).split())


def _one(conn: Any, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    return conn.execute(text(sql), params).first()


_SIZE = """
/* the size of a relation from relpages (no lock taken): its heap, TOAST and indexes, and those of every
   partition below it (a partitioned table has no storage of its own) */
WITH RECURSIVE tree(oid) AS (
    SELECT pg_catalog.to_regclass(%(t)s)::oid
    UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid
), rels AS (
    SELECT c.oid FROM pg_catalog.pg_class c JOIN tree ON tree.oid = c.oid
    UNION SELECT c.reltoastrelid FROM pg_catalog.pg_class c JOIN tree ON tree.oid = c.oid WHERE c.reltoastrelid <> 0
    UNION SELECT x.indexrelid FROM pg_catalog.pg_index x JOIN tree ON tree.oid = x.indrelid
)
SELECT sum(GREATEST(c.relpages, 0))::bigint * pg_catalog.current_setting('block_size')::bigint,
       (SELECT count(*) - 1 FROM tree)
FROM pg_catalog.pg_class c JOIN rels ON rels.oid = c.oid
"""


def _size(conn: Any, table: str | None) -> str:
    """``, public.t is 1,024 bytes (relpages)``: read from ``pg_class.relpages`` (as of the last VACUUM or
    ANALYZE), which takes no lock, so a table held in ACCESS EXCLUSIVE does not stall the dry run; a
    partitioned table counts its partitions."""
    if not table:
        return ""
    row = conn.exec_driver_sql(_SIZE, {"t": table}).first()
    if not row or row[0] is None:
        return ""
    below = f", {row[1]} relations below it" if row[1] else ""
    return f", {_shown(table)} is {row[0]:,} bytes (relpages{below})"


def _shown(text: str) -> str:
    return one_line(text)


def _one_line(sql: str) -> str:
    return one_line(" ".join(sql.split()).replace(" ,", ","))


def _lock_of(sql: str) -> tuple[str, tuple[str, ...]]:
    """The lock level a statement takes and the other tables it takes it on (the referenced table of a
    foreign key, locked SHARE ROW EXCLUSIVE as the referencing one is)."""
    head = " ".join(sql.split()).upper()
    if "CONCURRENTLY" in head or "VALIDATE CONSTRAINT" in head or head.startswith("ANALYZE"):
        return "SHARE UPDATE EXCLUSIVE", ()
    if head.startswith("CREATE") and " ON ONLY " in head:
        return "SHARE", ()
    if head.startswith("ALTER INDEX") and "ATTACH PARTITION" in head:
        return "SHARE UPDATE EXCLUSIVE", ()
    if head.startswith(("ALTER DATABASE", "ALTER ROLE")):
        return "no table lock", ()
    referenced = _foreign_key_target(sql)
    if referenced is not None:
        return "SHARE ROW EXCLUSIVE", (referenced,)
    return "ACCESS EXCLUSIVE", ()


def _foreign_key_target(sql: str) -> str | None:
    """The referenced table of ``ALTER TABLE … ADD [CONSTRAINT …] FOREIGN KEY … REFERENCES t``, else ``None``."""
    try:
        from pglast.enums import ConstrType
        from pglast.stream import RawStream

        stmt = parse_one(sql, ast.AlterTableStmt)
    except Exception:  # noqa: BLE001 - not an ALTER TABLE
        return None
    for cmd in stmt.cmds or ():
        constraint = getattr(cmd, "def_", None)
        if isinstance(constraint, ast.Constraint) and constraint.contype == ConstrType.CONSTR_FOREIGN \
                and constraint.pktable is not None:
            return str(RawStream()(constraint.pktable))
    return None


def _run_sql(conn: Any) -> Any:
    return lambda sql, params: conn.exec_driver_sql(sql, params).all()


def _blockers(conn: Any, sql: str, table: str | None, since: Any) -> str:
    """Who a step waits for: the sessions whose locks on its tables conflict with its lock level (``held
    by``), and, for a concurrent build or drop, the transactions open since before ``since`` (a server
    timestamp) that its concurrent phases wait for. Empty when there are none."""
    level, others = _lock_of(sql)
    tables = [t for t in (table, *others) if t]
    parts = []
    if tables and level in locks.CONFLICTS:
        held = locks.conflicting_holders(_run_sql(conn), level, tables)
        if held:
            parts.append(f"held by {locks.describe_all(held)}")
    if "CONCURRENTLY" in " ".join(sql.split()).upper():
        older = locks.older_transactions(_run_sql(conn), since)
        if older:
            parts.append(f"waiting for transactions open since before the step: {locks.describe_all(older)}")
    return "; ".join(parts)


def _now(conn: Any) -> Any:
    return conn.exec_driver_sql("SELECT pg_catalog.clock_timestamp()").scalar()


def _connection_lost(conn: Any) -> bool:
    try:
        conn.exec_driver_sql("SELECT 1")
        return False
    except Exception:  # noqa: BLE001 - any failure of a trivial query: the session is gone
        return True


def _execute(op: Any, sql: str, table: str | None, opts: ApplyOptions, before: Callable[[], None] | None = None,
             ) -> None:
    """Run ``before()`` then ``sql`` in autocommit mode under the timeouts, the two as one attempt, retrying
    it when a lock (a table lock, or a concurrent phase's wait for an older transaction) is not granted
    within ``lock_timeout``. Raises :class:`ApplyError` naming the step, the server's reason and, after the
    last retry, the sessions it waited for."""
    conn = op.get_bind()
    conn.exec_driver_sql(f"SET lock_timeout = {int(opts.lock_timeout_ms)}")
    conn.exec_driver_sql(f"SET statement_timeout = {int(opts.statement_timeout_ms)}")
    delay = opts.backoff_s
    for attempt in range(opts.retries + 1):
        since = None
        try:
            since = _now(conn)
            if before is not None:
                before()
            conn.exec_driver_sql(sql)
            return
        except Exception as exc:
            step = _one_line(sql)[:160]
            if _sqlstate(exc) != LOCK_NOT_AVAILABLE:
                if since is None or _connection_lost(conn):
                    raise ApplyError(f"the server ended the session during step {step}: "
                                     f"{one_line(_reason(exc))}") from None
                raise ApplyError(f"step failed: {step}: {one_line(_reason(exc))}") from None
            blockers = _blockers(conn, sql, table, since)
            if attempt == opts.retries:
                raise ApplyError(f"step failed after {opts.retries} retries: {step}: {one_line(_reason(exc))}"
                                 + (f"; {blockers}" if blockers else "")) from None
            opts.report(f"    lock not granted within {opts.lock_timeout_ms} ms"
                        + (f"; {blockers}" if blockers else "")
                        + f"; retry {attempt + 1}/{opts.retries} in {delay:.1f} s")
            time.sleep(delay)
            delay = min(delay * 2, opts.max_backoff_s)


def _dry_run_warning(conn: Any, sql: str, table: str | None, opts: ApplyOptions) -> None:
    """Warn when sessions hold locks (or, for a concurrent step, open transactions) the step would wait for."""
    blockers = _blockers(conn, sql, table, _now(conn))
    if blockers:
        opts.report(f"    warning: this step would wait (up to {opts.lock_timeout_ms} ms, then retry): {blockers}")


def _autocommit_block(op: Any) -> Any:
    """Alembic's ``autocommit_block()``, which ends the migration's transaction so that the step runs outside
    any; refused with :class:`~dbtune.migrate.runtime_errors.InsideCallersTransaction` when the connection
    is in a transaction that the caller opened (an application's ``env.py`` that runs Alembic under its own
    ``with engine.begin()``): Alembic cannot end that one, and would fail on a bare assertion."""
    context = op.get_context()
    connection = context.connection
    owned = getattr(context, "_transaction", ())  # Alembic's own transaction, None when it opened none
    if not context.as_sql and connection is not None and connection.in_transaction() and owned is None:
        from dbtune.migrate.runtime_errors import InsideCallersTransaction

        where = context.config.get_main_option("script_location") if context.config is not None else None
        raise InsideCallersTransaction(
            "dbtune's revision steps run outside any transaction (CREATE INDEX CONCURRENTLY cannot run inside "
            "a transaction block), but this Alembic run is inside a transaction that its caller opened (an "
            "env.py that configures a connection already in a transaction, such as one under `with "
            "engine.begin()`): apply the revision with `dbtune migrate apply"
            + (f" --dir {where}" if where else "") + "`, or from an env.py that passes a connection with no "
            "transaction open to context.configure(..., transaction_per_migration=True) and runs the "
            "migrations in `with context.begin_transaction():`")
    return context.autocommit_block()


def run_step(op: Any, sql: str, table: str | None = None) -> None:
    """Run one statement outside Alembic's transaction, under ``lock_timeout`` with retries."""
    opts = options(op)
    if opts.dry_run:
        level, others = _lock_of(sql)
        on = f" on {', '.join(_shown(t) for t in (table, *others) if t)}" if others else ""
        opts.report(f"  would run ({level} lock{on}{_size(op.get_bind(), table)}): {_one_line(sql)}")
        _dry_run_warning(op.get_bind(), sql, table, opts)
        return
    with _autocommit_block(op):
        _execute(op, sql, table, opts)


def _index_state(conn: Any, index: str) -> tuple[bool, str] | None:
    row = _one(conn, "SELECT i.indisvalid, pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i "
                     "WHERE i.indexrelid = pg_catalog.to_regclass(:i)", i=index)
    return (bool(row[0]), str(row[1])) if row else None


def same_index_definition(planned_sql: str, existing_def: str) -> bool:
    """Whether ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS …`` and ``pg_get_indexdef`` describe the
    same index (name, table, method, columns, INCLUDE, predicate, uniqueness), compared with pglast."""
    from pglast.stream import RawStream

    from dbtune.checks.matching import normalize_expr

    def key(sql: str) -> tuple[object, ...]:
        stmt = parse_one(sql, ast.IndexStmt)
        where = normalize_expr(RawStream()(stmt.whereClause)) if stmt.whereClause is not None else ""
        relation = RawStream()(stmt.relation) if stmt.relation is not None else ""
        return (stmt.idxname, relation, stmt.accessMethod or "btree", bool(stmt.unique),
                [RawStream()(p) for p in stmt.indexParams or ()],
                [RawStream()(p) for p in stmt.indexIncludingParams or ()], where)

    try:
        return key(planned_sql) == key(existing_def)
    except Exception:  # noqa: BLE001 - an unreadable definition is not the same
        return False


def build_index(op: Any, index: str, sql: str) -> None:
    """Build an index concurrently, repairing what an earlier interrupted build left.

    Raises :class:`ApplyError` when the name belongs to a different index, when the build fails (a unique
    build on duplicate keys, say; the INVALID leftover is dropped), or when the index is not valid after it.
    """
    opts = options(op)
    table = _table_of(sql)
    conn = op.get_bind()
    if opts.dry_run:
        state = _index_state(conn, index)
        note = " (exists, INVALID: would be dropped and rebuilt)" if state and not state[0] else (
            " (exists: nothing to do)" if state else "")
        opts.report(f"  would build {_shown(index)}{note} (SHARE UPDATE EXCLUSIVE lock{_size(conn, table)}): "
                    f"{_one_line(sql)}")
        _dry_run_warning(conn, sql, table, opts)
        return

    drop = f"DROP INDEX CONCURRENTLY IF EXISTS {index}"

    def drop_invalid_leftover() -> None:
        # Part of each attempt of the step: its wait for old transactions is retried like the build's.
        state = _index_state(conn, index)
        if state is not None and not state[0]:
            opts.report(f"    dropping INVALID index {_shown(index)} left by an earlier build")
            conn.exec_driver_sql(drop)

    with _autocommit_block(op):
        state = _index_state(conn, index)
        if state is not None and state[0]:
            if same_index_definition(sql, state[1]):
                opts.report(f"    {_shown(index)} already exists with this definition: nothing to do")
                return
            raise ApplyError(f"index name {_shown(index)} is taken by a different index: {one_line(state[1])}")
        try:
            _execute(op, sql, table, opts, before=drop_invalid_leftover)
        except ApplyError as failed:
            _drop_leftover(op, index, drop, table, opts, failed)
            raise
        state = _index_state(conn, index)
        if state is None or not state[0]:
            raise ApplyError(f"{_shown(index)} is not valid after its build (indisvalid = false)")


def _drop_leftover(op: Any, index: str, drop: str, table: str | None, opts: ApplyOptions,
                   failed: ApplyError) -> None:
    """After a failed build, drop the INVALID index it left, under the same retries; when even that is not
    possible (the server is gone, the old transaction is still open), say so in ``failed``'s message: the
    next run drops it first."""
    conn = op.get_bind()
    try:
        leftover = _index_state(conn, index)
        if leftover is None or leftover[0]:
            return
        opts.report(f"    dropping INVALID index {_shown(index)} left by the failed build")
        _execute(op, drop, table, opts)
    except Exception as exc:  # noqa: BLE001 - the build's own failure is the error to raise
        reason = exc if isinstance(exc, ApplyError) else one_line(_reason(exc))
        failed.args = (f"{failed.args[0]}; the INVALID index {_shown(index)} it left could not be dropped "
                       f"({reason}): the next run drops it first",)


def add_constraint(op: Any, table: str, name: str, sql: str) -> None:
    """``ALTER TABLE … ADD CONSTRAINT``, skipped when ``table`` already has a constraint called ``name``
    (an earlier, interrupted run added it, or a person did)."""
    conn = op.get_bind()
    row = _one(conn, "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = pg_catalog.to_regclass(:t) "
                     "AND conname = :n", t=table, n=name)
    if row is not None and not options(op).dry_run:
        options(op).report(f"    {table} already has constraint {name}")
        return
    run_step(op, sql, table=table)


def attach_index(op: Any, index: str, sql: str) -> None:
    """``ALTER INDEX parent ATTACH PARTITION index``, skipped when ``index`` is attached already."""
    conn = op.get_bind()
    row = _one(conn, "SELECT 1 FROM pg_catalog.pg_inherits WHERE inhrelid = pg_catalog.to_regclass(:i)", i=index)
    if row is not None and not options(op).dry_run:
        options(op).report(f"    {index} is already attached")
        return
    run_step(op, sql)


def analyze(op: Any, table: str) -> None:
    """``ANALYZE`` a table whose indexes changed, so the planner costs the new indexes with fresh statistics."""
    run_step(op, f"ANALYZE {table}", table=table)


def _table_of(sql: str) -> str | None:
    try:
        from pglast.stream import RawStream

        stmt = parse_one(sql, ast.IndexStmt)
        return str(RawStream()(stmt.relation)) if stmt.relation is not None else None
    except Exception:  # noqa: BLE001
        return None
