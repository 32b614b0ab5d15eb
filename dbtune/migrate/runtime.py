"""What dbtune's Alembic revisions call: each step run outside Alembic's transaction, under
``lock_timeout`` with retries, and made safe to run again after an interrupted run.

* :func:`build_index` drops an INVALID index left by an earlier failed or interrupted concurrent build,
  treats an identical valid index, under this name or another, as already built (a change applied by hand
  is a clean no-op), stops a unique build over duplicate keys before anything is dropped, refuses an
  index name taken by a different index, builds concurrently and checks ``indisvalid`` afterwards;
* :func:`run_step` runs one statement (``VALIDATE CONSTRAINT``, a drop …), retrying when the lock is not
  granted within ``lock_timeout`` and naming the sessions that hold locks on the table;
* :func:`attach_index` skips a partition index that is already attached; after the last attach,
  :func:`complete_partitioned_index` checks the partitioned index's ``indisvalid`` and gives a partition
  added since generating its index (the identical one it has, or one built concurrently), or fails naming it;
* :func:`drop_invalid_index` drops an INVALID index before its rebuild, unless it is unique and the table
  holds duplicate keys for it (the rebuild would fail and only the INVALID index records the intent);
* :func:`analyze` refreshes the planner's statistics of a table whose indexes changed.

Offline (``alembic upgrade --sql``) nothing is looked up in a catalog: each step writes the statements that
``dbtune migrate generate --format sql`` writes for it (with psql's repair before a concurrent build and
its validity check after it) to Alembic's output, for ``psql -X -f``.

Options (lock timeout, retries, dry run, where to report) come from ``ApplyOptions`` placed in the Alembic
config's ``attributes["dbtune_apply"]`` by ``dbtune migrate apply``; a plain ``alembic upgrade`` gets the
defaults. See https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY and
https://www.postgresql.org/docs/current/explicit-locking.html.
"""

from __future__ import annotations

import functools
import sys
import time
from collections import Counter
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec

from pglast import ast

from dbtune.db import locks
from dbtune.errors import DbtuneError, ExitCode
from dbtune.escape import one_line
from dbtune.pgsql import parse_one
from dbtune.progress import Count, no_count
from dbtune.units import size_pretty

DEFAULT_LOCK_TIMEOUT_MS = 2000
LOCK_NOT_AVAILABLE = "55P03"
# What ``ApplyOptions.count`` is told: every step helper a revision calls, and the index builds among them.
STEPS_RUN = "steps run"
INDEXES_BUILT = "indexes built"
# The step helpers (each call one step: the helpers it calls in turn are part of it).
STEP_HELPERS = frozenset({"run_step", "build_index", "drop_invalid_index", "complete_partitioned_index",
                          "add_constraint", "attach_index", "analyze"})


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
    wait: bool = True  # wait for another applier's migration lock (False: refuse the run, naming it)
    announce_steps: bool = False  # report each step as it starts (``dbtune migrate apply``'s progress)
    report: Callable[[str], None] = field(default=_stderr)
    count: Count = field(default=no_count)  # told STEPS_RUN and INDEXES_BUILT as each step ends (progress bars)
    totals: dict[str, int] = field(default_factory=dict)  # the run's total of each count, where known
    _done: Counter[str] = field(default_factory=Counter, init=False, repr=False)

    def done(self, *what: str) -> None:
        """One more of each ``what`` (:data:`STEPS_RUN`, :data:`INDEXES_BUILT`) done, told to ``count`` with
        its total from ``totals`` (None when not known); nothing in a dry run, which runs no step."""
        if self.dry_run:
            return
        for name in what:
            self._done[name] += 1
            self.count(name, self._done[name], self.totals.get(name))

    def announce(self, line: str) -> None:
        """Report the start of a step, when steps are announced (never in a dry run, which reports them all)."""
        if self.announce_steps and not self.dry_run:
            self.report(f"  {line}")


def options_of_config(config: Any) -> ApplyOptions:
    """The options in an Alembic config's ``attributes["dbtune_apply"]`` (defaults when there are none)."""
    found = config.attributes.get("dbtune_apply") if config is not None else None
    return found if isinstance(found, ApplyOptions) else ApplyOptions()


def options(op: Any) -> ApplyOptions:
    """The options of this run (defaults when Alembic runs the revision without dbtune)."""
    return options_of_config(op.get_context().config)


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None)


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", exc)
    return " ".join(str(orig).split())


def _send(conn: Any, sql: str) -> Any:
    """Run a complete statement (no parameters) and return SQLAlchemy's result. SQLAlchemy hands psycopg an
    empty parameter set, so psycopg reads ``%`` as a placeholder: doubled here, a ``%`` in a predicate
    (``LIKE '%x'``) or in a quoted name reaches the server as written."""
    return conn.exec_driver_sql(sql.replace("%", "%%"))


P = ParamSpec("P")
_depth: ContextVar[int] = ContextVar("dbtune_step_depth", default=0)


def _step(helper: Callable[Concatenate[Any, P], None]) -> Callable[Concatenate[Any, P], None]:
    """A step helper (``helper(op, …)``) whose run counts as one step done (:meth:`ApplyOptions.done`;
    an index build in :data:`INDEXES_BUILT` too) once it returns: the outermost helper only (``analyze``
    calls ``run_step``: one step), and not offline (``alembic upgrade --sql`` runs nothing)."""
    counts = (STEPS_RUN, INDEXES_BUILT) if helper.__name__ == "build_index" else (STEPS_RUN,)

    @functools.wraps(helper)
    def step(op: Any, *args: P.args, **kwargs: P.kwargs) -> None:
        depth = _depth.get()
        token = _depth.set(depth + 1)
        try:
            helper(op, *args, **kwargs)
        finally:
            _depth.reset(token)
        if depth == 0 and not _offline(op):
            options(op).done(*counts)

    return step


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
    """``, public.t is 16 kB`` (``pg_size_pretty``'s form): read from ``pg_class.relpages`` (as of the last VACUUM or
    ANALYZE), which takes no lock, so a table held in ACCESS EXCLUSIVE does not stall the dry run; a
    partitioned table counts its partitions."""
    if not table:
        return ""
    row = conn.exec_driver_sql(_SIZE, {"t": table}).first()
    if not row or row[0] is None:
        return ""
    below = f" with the {row[1]} relations below it" if row[1] else ""
    return f", {one_line(table)} is {size_pretty(row[0])}{below}"


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
            _send(conn, sql)
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


def _offline(op: Any) -> bool:
    """Whether Alembic renders SQL (``alembic upgrade --sql``) instead of running it."""
    return bool(op.get_context().as_sql)


def _emit(op: Any, lines: list[str]) -> None:
    """Write ``lines`` to Alembic's offline output outside its transaction (a ``COMMIT`` before them and a
    ``BEGIN`` after, as Alembic's ``autocommit_block()`` does offline)."""
    with op.get_context().autocommit_block():
        op.get_context().impl.static_output("\n".join(lines))


@_step
def run_step(op: Any, sql: str, table: str | None = None) -> None:
    """Run one statement outside Alembic's transaction, under ``lock_timeout`` with retries (offline:
    write it to Alembic's output)."""
    if _offline(op):
        _emit(op, [sql.rstrip().rstrip(";") + ";"])
        return
    opts = options(op)
    if opts.dry_run:
        level, others = _lock_of(sql)
        on = f" on {', '.join(one_line(t) for t in (table, *others) if t)}" if others else ""
        opts.report(f"  would run ({level} lock{on}{_size(op.get_bind(), table)}): {_one_line(sql)}")
        _dry_run_warning(op.get_bind(), sql, table, opts)
        return
    opts.announce(f"running ({_lock_of(sql)[0]} lock): {_one_line(sql)}")
    with _autocommit_block(op):
        _execute(op, sql, table, opts)


def _index_state(conn: Any, index: str) -> tuple[bool, str] | None:
    row = _one(conn, "SELECT i.indisvalid, pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i "
                     "WHERE i.indexrelid = pg_catalog.to_regclass(:i)", i=index)
    return (bool(row[0]), str(row[1])) if row else None


def same_index_definition(planned_sql: str, existing_def: str) -> bool:
    """Whether ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS …`` and ``pg_get_indexdef`` describe the
    same index in substance (the table aside: :func:`_build` compares it by OID), compared by
    :func:`dbtune.checks.matching.index_signature`, as the audit matches indexes."""
    from dbtune.checks.matching import index_signature

    try:
        return index_signature(planned_sql) == index_signature(existing_def)
    except Exception:  # noqa: BLE001 - an unreadable definition is not the same
        return False


def _equivalent_index(conn: Any, table: str | None, sql: str, *, dry_run: bool = False) -> str | None:
    """A valid index of ``table`` that is ``sql``'s index in substance, whatever its name (method,
    uniqueness, key columns with order, operator class and collation, INCLUDE, predicate; compared by
    :func:`dbtune.checks.matching.index_signature`, as the audit matches indexes), or ``None``. When another
    session holds ``table`` in ACCESS EXCLUSIVE: ``None`` in a dry run, else :class:`ApplyError` naming it."""
    from dbtune.checks.matching import index_signature

    if not table:
        return None
    try:
        want = index_signature(sql)
    except Exception:  # noqa: BLE001 - a statement pglast cannot read has no equivalent
        return None
    from sqlalchemy import text

    # pg_get_indexdef waits behind an ACCESS EXCLUSIVE lock on the table, with no lock_timeout in a dry run:
    # look first, without a lock, and say who holds it instead of hanging.
    held = locks.conflicting_holders(_run_sql(conn), "ACCESS SHARE", [table])
    if held:
        if dry_run:
            return None  # the dry run's warning names the holder
        raise ApplyError(f"cannot compare {one_line(table)}'s indexes with the planned one: "
                         f"{locks.describe_all(held)}; apply again once it is released")
    rows = conn.execute(text(
        "SELECT i.indexrelid::pg_catalog.regclass::text, pg_catalog.pg_get_indexdef(i.indexrelid) "
        "FROM pg_catalog.pg_index i WHERE i.indrelid = pg_catalog.to_regclass(:t) AND i.indisvalid "
        "ORDER BY 1"), {"t": table}).all()
    for name, definition in rows:
        try:
            if index_signature(str(definition)) == want:
                return str(name)
        except Exception:  # noqa: BLE001
            continue
    return None


def _refuse_duplicate_keys(conn: Any, index: str, create_sql: str) -> None:
    """Raise :class:`ApplyError` listing (up to 10 of) the key values held by more than one row when
    ``create_sql`` builds a unique index (the query is :func:`dbtune.catalog.duplicate_keys.duplicate_keys_query`:
    rows with a NULL key are left out unless ``NULLS NOT DISTINCT``). Reads the table under ACCESS SHARE."""
    from dbtune.catalog.duplicate_keys import duplicate_keys_query
    from dbtune.escape import printable

    query = duplicate_keys_query(create_sql)
    if query is None:
        return
    rows = _send(conn, query.rstrip().rstrip(";") + " LIMIT 11").all()
    if not rows:
        return
    shown = "; ".join(f"({', '.join(printable(str(v)) for v in row[:-1])}) in {row[-1]} rows" for row in rows[:10])
    more = " and more" if len(rows) > 10 else ""
    raise ApplyError(f"unique index {printable(index)} cannot be built: duplicate keys {shown}{more}; nothing was "
                     f"dropped or built; remove the duplicates (all listed by: {_one_line(query)}) and apply again")


def _build(op: Any, opts: ApplyOptions, index: str, sql: str, table: str | None) -> None:
    """The body of :func:`build_index`, inside an autocommit block."""
    from dbtune.escape import printable

    conn = op.get_bind()

    drop = f"DROP INDEX CONCURRENTLY IF EXISTS {index}"

    def drop_invalid_leftover() -> None:
        # Part of each attempt of the step: its wait for old transactions is retried like the build's.
        state = _index_state(conn, index)
        if state is not None and not state[0]:
            opts.report(f"    dropping INVALID index {one_line(index)} left by an earlier build")
            _send(conn, drop)

    state = _index_state(conn, index)
    if state is not None and state[0]:
        on_table = _one(conn, "SELECT indrelid = pg_catalog.to_regclass(:t) FROM pg_catalog.pg_index "
                              "WHERE indexrelid = pg_catalog.to_regclass(:i)", t=table, i=index)
        if on_table is not None and on_table[0] and same_index_definition(sql, state[1]):
            opts.report(f"    {index} already exists with this definition: nothing to do")
            return
        raise ApplyError(f"index name {index} is taken by a different index: {printable(state[1])}")
    same = _equivalent_index(conn, table, sql) if state is None else None
    if same is not None:
        opts.report(f"    {index}: an identical index already exists as {printable(same)} (same method, "
                    "columns, order, operator classes, collations, INCLUDE and predicate): nothing to build")
        return
    _refuse_duplicate_keys(conn, index, sql)
    try:
        _execute(op, sql, table, opts, before=drop_invalid_leftover)
    except ApplyError as failed:
        _drop_leftover(op, index, drop, table, opts, failed)
        raise
    state = _index_state(conn, index)
    if state is None or not state[0]:
        raise ApplyError(f"{index} is not valid after its build (indisvalid = false)")


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
        opts.report(f"    dropping INVALID index {one_line(index)} left by the failed build")
        _execute(op, drop, table, opts)
    except Exception as exc:  # noqa: BLE001 - the build's own failure is the error to raise
        reason = exc if isinstance(exc, ApplyError) else (
            "the session is gone" if _connection_lost(conn) else one_line(_reason(exc)))
        failed.args = (f"{failed.args[0]}; the INVALID index {one_line(index)} it left could not be dropped "
                       f"({reason}): the next run drops it first",)


@_step
def build_index(op: Any, index: str, sql: str) -> None:
    """Build an index concurrently, repairing what an earlier interrupted build left.

    Skipped when the index exists under this name with this definition, or under another name with the
    same definition in substance (an index built by hand: :func:`_equivalent_index`). A unique build first
    counts duplicate keys and stops, listing them, before it drops or builds anything. Raises
    :class:`ApplyError` when the name belongs to a different index, when the table holds duplicate keys for
    a unique index, when the build fails (the INVALID leftover is dropped), or when the index is not valid
    after it.
    """
    if _offline(op):
        from dbtune.migrate.render import offline_build

        _emit(op, offline_build(index, sql.rstrip().rstrip(";") + ";"))
        return
    opts = options(op)
    table = _table_of(sql)
    conn = op.get_bind()
    if opts.dry_run:
        state = _index_state(conn, index)
        same = _equivalent_index(conn, table, sql, dry_run=True) if state is None else None
        note = " (exists, INVALID: would be dropped and rebuilt)" if state and not state[0] else (
            " (exists: nothing to do)" if state else "")
        if same is not None:
            from dbtune.escape import printable

            note = f" (an identical index exists as {printable(same)}: nothing to do)"
        opts.report(f"  would build {one_line(index)}{note} (SHARE UPDATE EXCLUSIVE lock{_size(conn, table)}): "
                    f"{_one_line(sql)}")
        _dry_run_warning(conn, sql, table, opts)
        return
    opts.announce(f"building {one_line(index)} (SHARE UPDATE EXCLUSIVE lock): {_one_line(sql)}")
    with _autocommit_block(op):
        _build(op, opts, index, sql, table)


@_step
def drop_invalid_index(op: Any, index: str, sql: str) -> None:
    """The first step of an INVALID index's rebuild: ``DROP INDEX CONCURRENTLY``, but when the index is
    unique, only once the table holds no duplicate keys for it (counted from its own ``pg_get_indexdef``):
    otherwise :class:`ApplyError` lists them and the INVALID index, the only trace of the intent, stays."""
    if _offline(op):
        run_step(op, sql)
        return
    conn = op.get_bind()
    state = _index_state(conn, index)
    if state is not None and not state[0]:
        _refuse_duplicate_keys(conn, index, state[1])
    run_step(op, sql, table=_table_of(state[1]) if state is not None else None)


_UNATTACHED_PARTITIONS = """
SELECT p.oid::pg_catalog.regclass::text, p.relkind, n.nspname, p.relname
  FROM pg_catalog.pg_index parent
  JOIN pg_catalog.pg_inherits h ON h.inhparent = parent.indrelid
  JOIN pg_catalog.pg_class p ON p.oid = h.inhrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = p.relnamespace
 WHERE parent.indexrelid = pg_catalog.to_regclass(:i)
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits a JOIN pg_catalog.pg_index x ON x.indexrelid = a.inhrelid
                    WHERE a.inhparent = parent.indexrelid AND x.indrelid = p.oid)
 ORDER BY 1
"""


@_step
def complete_partitioned_index(op: Any, index: str, sql: str, planned: tuple[str, ...] = ()) -> None:
    """After the last ``ATTACH PARTITION`` of a partitioned index (``sql`` is its ``CREATE INDEX … ON ONLY``):
    check ``indisvalid``; a partition with no index attached (one created after the revision was generated)
    gets the identical index it already has attached, or one built concurrently and attached, in this run.

    Raises :class:`ApplyError` naming the partitions still without an attached index (a partition that is
    itself partitioned, or whose build failed), leaving the revision unrecorded. ``planned`` names the
    partitions whose index the revision builds: ``--dry-run`` lists the others, which would get theirs. See
    https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE.
    """
    from pglast.stream import RawStream
    from sqlalchemy import text

    from dbtune.escape import printable
    from dbtune.migrate.changes import index_name
    from dbtune.sqlnames import qualified

    if _offline(op):
        from dbtune.migrate.render import offline_partitioned_check

        _emit(op, offline_partitioned_check(index))
        return
    opts = options(op)
    conn = op.get_bind()
    table = _table_of(sql)

    def unattached() -> list[tuple[str, str, str, str]]:
        rows = conn.execute(text(_UNATTACHED_PARTITIONS), {"i": index}).all()
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in rows]

    if opts.dry_run:
        rows = conn.execute(text(
            "SELECT h.inhrelid::pg_catalog.regclass::text FROM pg_catalog.pg_inherits h "
            "WHERE h.inhparent = pg_catalog.to_regclass(:t) AND h.inhrelid <> ALL (ARRAY(SELECT "
            "pg_catalog.to_regclass(p) FROM pg_catalog.unnest(CAST(:p AS text[])) p WHERE p IS NOT NULL)) "
            "AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits a JOIN pg_catalog.pg_index x ON "
            "x.indexrelid = a.inhrelid WHERE a.inhparent = pg_catalog.to_regclass(:i) AND x.indrelid = h.inhrelid) "
            "ORDER BY 1"), {"t": table, "p": list(planned), "i": index}).all()
        opts.report(f"  would check that {index} is valid" + (
            "; partitions with no index attached would get one built concurrently and attached: "
            + ", ".join(printable(str(r[0])) for r in rows) if rows else ""))
        return
    opts.announce(f"checking that {one_line(index)} is valid, every partition's index attached")
    with _autocommit_block(op):
        state = _index_state(conn, index)
        if state is None or state[0]:
            return
        stmt = parse_one(sql, ast.IndexStmt)
        failed: list[str] = []
        for part, relkind, schema, relname in unattached():
            opts.report(f"    partition {printable(part)} has no index attached to {index}")
            if relkind == "p":
                failed.append(f"{printable(part)} (itself partitioned: give it an index ON ONLY it, attached "
                              "to its partitions' indexes, then attach that)")
                continue
            part_stmt = parse_one(sql, ast.IndexStmt)
            part_stmt.relation = ast.RangeVar(schemaname=schema, relname=relname, inh=True, relpersistence="p")
            part_stmt.concurrent = True
            part_stmt.if_not_exists = True
            name = index_name(relname, [stmt.idxname or ""], suffix="part")
            for n in range(1, 100):
                if _one(conn, "SELECT pg_catalog.to_regclass(:i)", i=qualified(schema, name))[0] is None:
                    break
                name = index_name(relname, [stmt.idxname or ""], suffix=f"part_{n}")
            part_stmt.idxname = name
            build = str(RawStream()(part_stmt))
            child = _equivalent_index(conn, part, build)
            try:
                if child is None:
                    child = qualified(schema, name)
                    _build(op, opts, child, build, part)
                else:
                    opts.report(f"    attaching its identical index {printable(child)}")
                _execute(op, f"ALTER INDEX {index} ATTACH PARTITION {child}", table, opts)
            except ApplyError as exc:
                failed.append(f"{printable(part)} ({exc})")
        state = _index_state(conn, index)
        if failed or state is None or not state[0]:
            left = failed or [printable(m[0]) for m in unattached()]
            raise ApplyError(f"partitioned index {index} is not valid (indisvalid = false): no index is attached "
                             f"for partition {'; '.join(left)}")


@_step
def add_constraint(op: Any, table: str, name: str, sql: str) -> None:
    """``ALTER TABLE … ADD CONSTRAINT``, skipped when ``table`` already has a constraint called ``name``
    (an earlier, interrupted run added it, or a person did). Offline, the SQL file's guarded lines."""
    if _offline(op):
        from dbtune.migrate.render import offline_add_constraint

        _emit(op, offline_add_constraint(table, name, sql))
        return
    conn = op.get_bind()
    row = _one(conn, "SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = pg_catalog.to_regclass(:t) "
                     "AND conname = :n", t=table, n=name)
    if row is not None and not options(op).dry_run:
        options(op).report(f"    {table} already has constraint {name}")
        return
    run_step(op, sql, table=table)


@_step
def attach_index(op: Any, index: str, sql: str) -> None:
    """``ALTER INDEX parent ATTACH PARTITION index``, skipped when ``index`` is attached already, or when it
    does not exist because its build found an identical index (:func:`complete_partitioned_index`
    attaches that one)."""
    if _offline(op):
        run_step(op, sql)
        return
    conn = op.get_bind()
    row = _one(conn, "SELECT 1 FROM pg_catalog.pg_inherits WHERE inhrelid = pg_catalog.to_regclass(:i)", i=index)
    if row is not None and not options(op).dry_run:
        options(op).report(f"    {index} is already attached")
        return
    if _one(conn, "SELECT pg_catalog.to_regclass(:i)", i=index)[0] is None and not options(op).dry_run:
        options(op).report(f"    {index} was not built (an identical index exists): the check of the "
                           "partitioned index attaches that one")
        return
    run_step(op, sql)


@_step
def analyze(op: Any, table: str) -> None:
    """``ANALYZE`` a table whose indexes changed, so the planner costs the new indexes with fresh statistics."""
    run_step(op, f"ANALYZE {table}", table=table)


def _table_of(sql: str) -> str | None:
    try:
        from pglast.stream import RawStream

        stmt = parse_one(sql, ast.IndexStmt)
        if stmt.relation is None:
            return None
        return str(RawStream()(ast.RangeVar(schemaname=stmt.relation.schemaname, relname=stmt.relation.relname,
                                            inh=True, relpersistence="p")))
    except Exception:  # noqa: BLE001
        return None
