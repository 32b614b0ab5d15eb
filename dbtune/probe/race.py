"""``probe race``: N sessions accept the same routing at once, R rounds, and how many win each round.

The guide's application accepts a routing for a vendor in one ``READ COMMITTED`` transaction: it reads
whether an ``ACCEPTED`` response exists for the routing, and inserts one when none does. Under READ
COMMITTED two sessions that read before either commits both insert, so both vendors "win", unless a unique
index stops the second insert (the guide's ``unique_routing_acceptance``: a partial unique index on
``(routing_id) WHERE response = 'ACCEPTED'``; PostgreSQL has no partial UNIQUE constraint). See
https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED and
https://www.postgresql.org/docs/current/indexes-unique.html.

The probe never touches the application's table. It copies the response table's definition into a scratch
schema ``dbtune_probe_<random>`` of the target database: the columns with their defaults, identity,
generated columns and CHECK constraints (``CREATE TABLE … (LIKE … INCLUDING ALL EXCLUDING INDEXES)``), then
every valid index and every primary key, unique and exclusion constraint under its own name, from the
catalog (``pg_get_indexdef``, ``pg_get_constraintdef``), so the unique violations name the target's own
index. A ``serial`` column's default is pointed at a sequence of the scratch schema, so the target's
sequences do not move. Foreign keys are not copied (``LIKE`` copies none): the accept's read and insert do
not depend on them, and the referenced rows need not exist. The schema is dropped at the end, whatever
happens (an error, Ctrl-C).

Each round, every session waits at a barrier, then runs its accept for the round's routing (a routing value
of its own per round, so rounds do not see each other); when all are done, the next round starts. The
winners of a round are the ``ACCEPTED`` rows the scratch table holds for its routing at the end.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import psycopg
from pglast import ast
from pglast.parser import ParseError
from psycopg import sql

from dbtune.config.model import RaceProbeConfig
from dbtune.db.connect import ConnectionSettings, connect, describe
from dbtune.errors import ConnectionFailed, DbtuneError, ServerRefused, UsageError
from dbtune.escape import one_line
from dbtune.model import report_header
from dbtune.pgsql import parse_one, render
from dbtune.progress import Count, no_count
from dbtune.sqlnames import qualified, quote_ident, quote_literal

SCHEMA_PREFIX = "dbtune_probe_"
APPLICATION_NAME = "dbtune probe race"  # the racing sessions' application_name, in pg_stat_activity
UNIQUE_VIOLATION = "23505"
RACE_VERSION = 1
ROUNDS_RUN = "rounds run"  # what run_race's count is told

_RELATION = """
/* the response table named by [probe.race] table: oid, schema, name and relkind; no row when it does not exist */
SELECT c.oid, n.nspname, c.relname, c.relkind
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass(%s)
"""

_COLUMNS = """
/* the table's columns in order: name, type, type category, NOT NULL, whether the insert may leave it out
   (a default, identity or generation expression), and a default that is a sequence's nextval() */
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typcategory, t.typname, a.attnotnull,
       (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''),
       CASE WHEN pg_catalog.pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%' THEN true ELSE false END
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_INDEXES = """
/* the table's indexes: name, valid, the constraint it backs (p, u, x) with that constraint's definition,
   and the index's definition */
SELECT i.relname, x.indisvalid, con.conname, pg_catalog.pg_get_constraintdef(con.oid),
       pg_catalog.pg_get_indexdef(x.indexrelid)
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE x.indrelid = %s
ORDER BY i.relname
"""


@dataclass(frozen=True)
class RaceOptions:
    """What to race: the response ``table`` (``schema.table`` or a name the server's ``search_path``
    finds), its ``routing_column``, ``vendor_column`` and ``response_column``, the ``accepted`` value,
    the name of the partial unique index to propose (``index_name``), and ``sessions`` (concurrent
    connections, 2 or more) × ``rounds``."""

    table: str = "vendor_routing_responses"
    routing_column: str = "routing_id"
    vendor_column: str = "vendor_id"
    response_column: str = "response"
    accepted: str = "ACCEPTED"
    index_name: str = "unique_routing_acceptance"
    sessions: int = 16
    rounds: int = 200

    @classmethod
    def from_config(cls, config: RaceProbeConfig, *, table: str | None = None, sessions: int | None = None,
                    rounds: int | None = None) -> RaceOptions:
        """``[probe.race]`` with the command line's ``--table``, ``--sessions`` and ``--rounds`` over it.
        Raises :class:`UsageError` when a value given is out of range."""
        options = cls(table=table or config.table, routing_column=config.routing_column,
                      vendor_column=config.vendor_column, response_column=config.response_column,
                      accepted=config.accepted, index_name=config.index_name,
                      sessions=config.sessions if sessions is None else sessions,
                      rounds=config.rounds if rounds is None else rounds)
        options.validate()
        return options

    def validate(self) -> None:
        """Raises :class:`UsageError` naming the option at fault."""
        if self.sessions < 2:
            raise UsageError(f"--sessions: a race needs at least 2 sessions, got {self.sessions}")
        if self.rounds < 1:
            raise UsageError(f"--rounds: at least 1, got {self.rounds}")
        if not self.table.strip():
            raise UsageError("--table: empty table name")


@dataclass(frozen=True)
class RaceError:
    """Errors of one kind the accepts met: SQLSTATE, psycopg's condition name (``UniqueViolation``), the
    constraint or index the server named, and how many accepts failed so."""

    sqlstate: str
    condition: str
    constraint: str | None
    count: int

    @property
    def unique_violation(self) -> bool:
        """A unique violation: the constraint working, not a failure of the probe."""
        return self.sqlstate == UNIQUE_VIOLATION


@dataclass(frozen=True)
class RaceResult:
    """One race: the ``table`` raced (schema-qualified, quoted as needed), ``sessions`` × ``rounds``, the
    rounds with no winner (``zero``), exactly one (``one``) and more than one (``many``), the most winners
    of one round (``most``), the errors the accepts met, the unique index or constraint that made it one
    winner a round (``enforced_by``, with its definition, when its unique violations were seen), else the
    partial unique index that would (``suggestion``, SQL), the scratch schema used (dropped), and the time
    the rounds took (``elapsed_s``, seconds) and the whole probe (``total_s``)."""

    command: ClassVar[str] = "probe race"
    table: str
    sessions: int
    rounds: int
    zero: int
    one: int
    many: int
    most: int
    errors: tuple[RaceError, ...]
    enforced_by: str | None
    enforced_definition: str | None
    suggestion: str | None
    scratch_schema: str
    elapsed_s: float
    total_s: float
    notes: tuple[str, ...] = ()
    accept: tuple[str, ...] = ()  # the accept's read and insert on the target's table (accept_statements)

    @property
    def win_rate_pct(self) -> float:
        """Rounds with exactly one winner, in % of all rounds (the guide's "vendor win rate")."""
        return 100.0 * self.one / self.rounds if self.rounds else 0.0

    @property
    def passed(self) -> bool:
        """Every round had exactly one winner."""
        return self.one == self.rounds

    def to_json(self) -> dict[str, Any]:
        """The result as JSON data (``report_version``, ``command`` ``"probe race"``, ``version``
        :data:`RACE_VERSION`)."""
        return {
            **report_header(self), "version": RACE_VERSION, "table": self.table, "sessions": self.sessions,
            "rounds": self.rounds,
            "win_rate_pct": round(self.win_rate_pct, 3), "passed": self.passed,
            "winners": {"0": self.zero, "1": self.one, ">1": self.many, "most": self.most},
            "errors": [{"sqlstate": e.sqlstate, "condition": e.condition, "constraint": e.constraint,
                        "count": e.count} for e in self.errors],
            "enforced_by": self.enforced_by, "enforced_definition": self.enforced_definition,
            "suggestion": self.suggestion, "scratch_schema": self.scratch_schema,
            "elapsed_s": round(self.elapsed_s, 3), "total_s": round(self.total_s, 3),
            "notes": list(self.notes), "accept": list(self.accept),
        }


@dataclass(frozen=True)
class _Column:
    name: str
    type: str
    category: str
    typname: str
    not_null: bool
    omittable: bool
    serial: bool


@dataclass(frozen=True)
class _Index:
    name: str
    valid: bool
    constraint: str | None
    constraint_definition: str | None
    definition: str


@dataclass(frozen=True)
class _Shape:
    oid: int
    schema: str
    name: str
    columns: tuple[_Column, ...]
    indexes: tuple[_Index, ...]

    @property
    def qualified(self) -> str:
        return qualified(self.schema, self.name)

    def column(self, name: str) -> _Column | None:
        return next((c for c in self.columns if c.name == name), None)


def run_race(settings: ConnectionSettings, options: RaceOptions, *, yes: bool,
             progress: Callable[[str], None] = lambda _: None, count: Count = no_count) -> RaceResult:
    """Race ``options.sessions`` concurrent accepts of one routing per round over ``options.rounds``
    rounds on a scratch copy of ``options.table``, and count each round's winners.

    Writes only in its scratch schema, which it drops before returning or raising (also on
    KeyboardInterrupt). ``progress`` is told the setup steps and every tenth of the rounds, in the
    calling thread (an exception it raises stops the race, as Ctrl-C does); ``count`` (a progress bar) is
    told ``("rounds run", r, options.rounds)`` after each round, in that thread too.

    Raises :class:`UsageError` without ``yes`` or when the target looks like production
    (:func:`dbtune.advisor.validate.refuse_production`), when the table or a column does not exist or
    has a shape the accept cannot fill; :class:`ConnectionFailed` when a session cannot connect or loses
    its connection; :class:`ServerRefused` when the server refuses the scratch schema or an accept does not
    finish in time. See https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED.
    """
    from dbtune.advisor.validate import refuse_production

    options.validate()
    started = time.perf_counter()
    refuse_production(settings, yes=yes, what="probe race", acts="writes a scratch schema")
    schema = SCHEMA_PREFIX + secrets.token_hex(4)
    with connect(settings, autocommit=True) as admin:
        shape = _read_shape(admin, options)
        values = _Values(shape, options)
        progress(f"copying {shape.qualified} into scratch schema {schema}")
        try:
            notes = _create_scratch(admin, shape, schema)
            sessions = _open_sessions(settings, options.sessions)
            try:
                progress(f"racing {options.sessions} sessions × {options.rounds} rounds")
                statements = _accept(schema, shape.name, options)
                outcomes, elapsed = _race(sessions, statements, values, options, settings.statement_timeout_ms,
                                           progress, count)
            finally:
                _close(sessions)
            winners = _winners(admin, statements, values, options)
        finally:
            _drop_scratch(admin, settings, schema)
    return _result(shape, options, schema, winners, outcomes, elapsed, time.perf_counter() - started, notes)


def _read_shape(conn: psycopg.Connection, options: RaceOptions) -> _Shape:
    try:
        row = conn.execute(_RELATION, (options.table,)).fetchone()
    except psycopg.Error as exc:
        raise UsageError(f"[probe.race] table {options.table!r}: {one_line(str(exc))}") from None
    if row is None:
        raise UsageError(f"[probe.race] table {options.table!r}: relation does not exist "
                         "(set --table or [probe.race] table)")
    oid, schema, name, relkind = row
    if relkind not in ("r", "p"):
        raise UsageError(f"[probe.race] table {options.table!r}: {qualified(schema, name)} is not a table")
    columns = tuple(_Column(*r) for r in conn.execute(_COLUMNS, (oid,)).fetchall())
    indexes = tuple(_Index(*r) for r in conn.execute(_INDEXES, (oid,)).fetchall())
    shape = _Shape(oid, schema, name, columns, indexes)
    ours = {options.routing_column, options.vendor_column, options.response_column}
    for key in ("routing_column", "vendor_column", "response_column"):
        column = getattr(options, key)
        if shape.column(column) is None:
            raise UsageError(f"[probe.race] {key} {column!r}: no such column in {shape.qualified}")
    unfilled = [c.name for c in columns if c.not_null and not c.omittable and c.name not in ours]
    if unfilled:
        raise UsageError(f"[probe.race] table {shape.qualified}: NOT NULL column(s) without a default that the "
                         f"accept does not set: {', '.join(unfilled)}")
    return shape


class _Values:
    """The routing value of each round and the vendor value of each session, of the columns' types."""

    def __init__(self, shape: _Shape, options: RaceOptions) -> None:
        self.routing = self._maker(shape, "routing_column", options.routing_column)
        self.vendor = self._maker(shape, "vendor_column", options.vendor_column)

    @staticmethod
    def _maker(shape: _Shape, key: str, name: str) -> Callable[[int], object]:
        column = shape.column(name)
        assert column is not None
        if column.category == "N":
            return lambda n: n
        if column.typname == "uuid":
            return lambda n: uuid.UUID(int=n)
        if column.category == "S":
            return str
        raise UsageError(f"[probe.race] {key} {name!r}: type {column.type} is not supported (a number, text "
                         "or uuid)")


@dataclass(frozen=True)
class _Accept:
    """The accept's two statements on the scratch table, and the query that counts each round's winners."""

    read: sql.Composed
    insert: sql.Composed
    count: sql.Composed


def _accept(schema: str, table: str, options: RaceOptions) -> _Accept:
    target = sql.Identifier(schema, table)
    routing, vendor, response = (sql.Identifier(c) for c in (options.routing_column, options.vendor_column,
                                                               options.response_column))
    return _Accept(
        read=sql.SQL("SELECT 1 FROM {} WHERE {} = %s AND {} = %s LIMIT 1").format(target, routing, response),
        insert=sql.SQL("INSERT INTO {} ({}, {}, {}) VALUES (%s, %s, %s)").format(target, routing, vendor, response),
        count=sql.SQL("SELECT {}::text, count(*) FROM {} WHERE {} = %s GROUP BY 1").format(routing, target, response))


def _create_scratch(conn: psycopg.Connection, shape: _Shape, schema: str) -> tuple[str, ...]:
    """Create the scratch schema and the copy of the table in it; returns notes on what was not copied."""
    scratch = sql.Identifier(schema, shape.name)
    notes = []
    try:
        with conn.transaction():
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING INDEXES)").format(
                scratch, sql.Identifier(shape.schema, shape.name)))
            for column in shape.columns:
                if column.serial:
                    # A serial's default names the target's sequence: give the copy a sequence of its own.
                    sequence = f"{shape.name}_{column.name}_seq"[:63]
                    conn.execute(sql.SQL("CREATE SEQUENCE {} OWNED BY {}.{}").format(
                        sql.Identifier(schema, sequence), scratch, sql.Identifier(column.name)))
                    conn.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET DEFAULT pg_catalog.nextval({}::regclass)")
                                 .format(scratch, sql.Identifier(column.name),
                                         sql.Literal(qualified(schema, sequence))))
            for index in shape.indexes:
                if not index.valid:
                    notes.append(f"index {index.name} is not valid on the target (a failed CREATE INDEX "
                                 "CONCURRENTLY?), so it was not copied")
                    continue
                conn.execute(_copy_index(index, schema, shape.name))
    except psycopg.Error as exc:
        raise ServerRefused(f"{shape.qualified}: the scratch copy in schema {schema} was refused: "
                            f"{one_line(str(exc))}") from None
    return tuple(notes)


def _copy_index(index: _Index, schema: str, table: str) -> sql.SQL | sql.Composed:
    """The statement that creates ``index`` (under its own name) on the scratch table: ``ALTER TABLE … ADD
    CONSTRAINT`` for one that backs a constraint, else its ``CREATE INDEX`` moved into ``schema``."""
    if index.constraint is not None and index.constraint_definition is not None:
        return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
            sql.Identifier(schema, table), sql.Identifier(index.constraint),
            sql.SQL(index.constraint_definition))  # the server's own deparsed definition
    try:
        statement = parse_one(index.definition, ast.IndexStmt)
    except (ParseError, ValueError) as exc:
        raise ServerRefused(f"index {index.name}: cannot read its definition: {exc}") from None
    assert statement.relation is not None
    statement.relation.schemaname = schema
    statement.relation.relname = table
    statement.relation.inh = True
    return sql.SQL(render(statement))  # type: ignore[arg-type]


def _open_sessions(settings: ConnectionSettings, n: int) -> list[psycopg.Connection]:
    """``n`` connections, each in READ COMMITTED for its transactions (the application's level), named
    :data:`APPLICATION_NAME`."""
    sessions: list[psycopg.Connection] = []
    try:
        for _ in range(n):
            conn = connect(settings)
            conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
            conn.execute(sql.SQL("SET statement_timeout = {}").format(sql.Literal(settings.statement_timeout_ms)))
            conn.execute("SET lock_timeout = 0")
            conn.execute(sql.SQL("SET application_name = {}").format(sql.Literal(APPLICATION_NAME)))
            conn.commit()
            sessions.append(conn)
    except BaseException:
        _close(sessions)
        raise
    return sessions


def _close(sessions: Sequence[psycopg.Connection]) -> None:
    for conn in sessions:
        try:
            conn.close()
        except psycopg.Error:
            pass


@dataclass
class _Outcomes:
    """What the sessions met: errors by (SQLSTATE, condition, constraint), and the first lost connection."""

    errors: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    lost: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, exc: psycopg.Error) -> None:
        with self.lock:
            self.errors[(exc.sqlstate or "?????", type(exc).__name__, exc.diag.constraint_name)] += 1


def _race(sessions: Sequence[psycopg.Connection], accept: _Accept, values: _Values, options: RaceOptions,
          statement_timeout_ms: int, progress: Callable[[str], None], count: Count = no_count
          ) -> tuple[_Outcomes, float]:
    """Run the rounds: the sessions in threads, this thread a party to both barriers of each round (so
    Ctrl-C lands here, between rounds). Returns the outcomes and the seconds the rounds took."""
    # A round waits at most for two statements and a commit of every session (0: no statement_timeout).
    wait_s = 10.0 + 3 * (statement_timeout_ms or 600_000) / 1000
    parties = len(sessions) + 1
    start, done = threading.Barrier(parties), threading.Barrier(parties)
    outcomes = _Outcomes()
    accepted = options.accepted

    def session(i: int, conn: psycopg.Connection) -> None:
        vendor = values.vendor(i + 1)
        try:
            for r in range(options.rounds):
                start.wait()
                routing = values.routing(r + 1)
                try:
                    if conn.execute(accept.read, (routing, accepted)).fetchone() is None:
                        conn.execute(accept.insert, (routing, vendor, accepted))
                    conn.commit()
                except psycopg.Error as exc:
                    if conn.broken or conn.closed:
                        raise
                    conn.rollback()
                    outcomes.error(exc)
                done.wait()
        except threading.BrokenBarrierError:
            return
        except Exception as exc:  # a lost connection (or anything else): stop every session and say why
            outcomes.lost = outcomes.lost or f"session {i + 1}: {one_line(str(exc))}"
            start.abort()
            done.abort()

    threads = [threading.Thread(target=session, args=(i, conn), daemon=True, name=f"dbtune-race-{i + 1}")
               for i, conn in enumerate(sessions)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    step = max(1, options.rounds // 10)
    try:
        for r in range(options.rounds):
            start.wait(timeout=wait_s)
            done.wait(timeout=wait_s)
            count(ROUNDS_RUN, r + 1, options.rounds)
            if (r + 1) % step == 0 and r + 1 < options.rounds:
                progress(f"round {r + 1}/{options.rounds}")
    except BaseException as exc:  # Ctrl-C, the progress callback, a broken barrier: stop every session
        start.abort()
        done.abort()
        for conn in sessions:
            _cancel(conn)
        for thread in threads:
            thread.join(timeout=wait_s)
        if outcomes.lost is not None:
            raise ConnectionFailed(f"probe race: a session lost its connection: {outcomes.lost}") from None
        if isinstance(exc, threading.BrokenBarrierError):
            raise ServerRefused(f"probe race: a session did not finish its accept within {wait_s:.0f} s") from None
        raise
    elapsed = time.perf_counter() - began
    for thread in threads:
        thread.join(timeout=wait_s)
    return outcomes, elapsed


def _cancel(conn: psycopg.Connection) -> None:
    """Cancel the statement ``conn`` is running, if any (from another thread; never raises)."""
    try:
        conn.cancel_safe(timeout=5)
    except (psycopg.Error, AttributeError):
        pass


def _winners(conn: psycopg.Connection, accept: _Accept, values: _Values, options: RaceOptions) -> Counter[int]:
    """How many rounds had 0, 1, 2 … winners: the ``ACCEPTED`` rows per round's routing in the scratch
    table."""
    try:
        per_routing: dict[str, int] = dict(conn.execute(accept.count, (options.accepted,)).fetchall())
    except psycopg.Error as exc:
        raise ServerRefused(f"probe race: counting the winners failed: {one_line(str(exc))}") from None
    return Counter(int(per_routing.get(str(values.routing(r + 1)), 0)) for r in range(options.rounds))


def _drop_scratch(conn: psycopg.Connection, settings: ConnectionSettings, schema: str) -> None:
    """``DROP SCHEMA … CASCADE`` of the scratch schema, on ``conn`` or, when it is broken (an interrupted
    statement), on a new connection. Raises :class:`ServerRefused` naming the schema left behind."""
    drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
    try:
        if conn.broken or conn.closed:
            with connect(settings, autocommit=True) as fresh:
                fresh.execute(drop)
        else:
            conn.execute(drop)
    except (psycopg.Error, DbtuneError) as exc:
        raise ServerRefused(f"probe race: could not drop its scratch schema {schema} on {describe(settings)} "
                            f"({one_line(str(exc))}); drop it with DROP SCHEMA {quote_ident(schema)} CASCADE") from None


def _result(shape: _Shape, options: RaceOptions, schema: str, winners: Counter[int], outcomes: _Outcomes,
            elapsed: float, total: float, notes: tuple[str, ...]) -> RaceResult:
    errors = tuple(RaceError(state, condition, constraint, n)
                   for (state, condition, constraint), n in sorted(outcomes.errors.items(), key=lambda e: -e[1]))
    enforcing = Counter(e.constraint for e in errors if e.unique_violation and e.constraint)
    enforced_by = enforcing.most_common(1)[0][0] if enforcing else None
    index = next((i for i in shape.indexes if enforced_by in (i.name, i.constraint)), None)
    definition = None
    if index is not None:
        definition = (f"ALTER TABLE {shape.qualified} ADD CONSTRAINT {quote_ident(index.constraint)} "
                      f"{index.constraint_definition}" if index.constraint and index.constraint_definition
                      else index.definition)
    many = sum(n for w, n in winners.items() if w > 1)
    return RaceResult(
        table=shape.qualified, sessions=options.sessions, rounds=options.rounds, zero=winners.get(0, 0),
        one=winners.get(1, 0), many=many, most=max(winners, default=0), errors=errors, enforced_by=enforced_by,
        enforced_definition=definition,
        suggestion=None if enforced_by else partial_unique_index(shape.schema, shape.name, options),
        scratch_schema=schema, elapsed_s=elapsed, total_s=total, notes=notes,
        accept=accept_statements(shape.qualified, options))


def accept_statements(table: str, options: RaceOptions) -> tuple[str, str]:
    """The accept's read and insert as the application sends them, on ``table`` (qualified, quoted), with
    ``$1`` the routing and ``$2`` the vendor (the probe sends them on its scratch copy)."""
    routing, vendor, response = (quote_ident(c) for c in (options.routing_column, options.vendor_column,
                                                           options.response_column))
    accepted = quote_literal(options.accepted)
    return (f"SELECT 1 FROM {table} WHERE {routing} = $1 AND {response} = {accepted} LIMIT 1",
            f"INSERT INTO {table} ({routing}, {vendor}, {response}) VALUES ($1, $2, {accepted})")


def partial_unique_index(schema: str, table: str, options: RaceOptions) -> str:
    """The partial unique index that allows one ``accepted`` response per routing, built without blocking
    writes: ``CREATE UNIQUE INDEX CONCURRENTLY unique_routing_acceptance ON public.vendor_routing_responses
    (routing_id) WHERE response = 'ACCEPTED';`` (PostgreSQL has no partial UNIQUE constraint:
    https://www.postgresql.org/docs/current/indexes-partial.html)."""
    from dbtune.migrate.changes import pretty

    return pretty(f"CREATE UNIQUE INDEX CONCURRENTLY {quote_ident(options.index_name)} ON {qualified(schema, table)} "
                  f"({quote_ident(options.routing_column)}) WHERE {quote_ident(options.response_column)} = "
                  f"{quote_literal(options.accepted)}")
