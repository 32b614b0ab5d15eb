"""EXPLAIN collection: one plan per query, in a session of its own, one failure never stopping the run.

How a query is planned (https://www.postgresql.org/docs/current/sql-explain.html):

* by default, ``EXPLAIN (VERBOSE, FORMAT JSON)``: planned, never executed;
* a query with ``$n`` parameters gets its *generic plan*, the one a prepared statement uses whatever the
  values: on PostgreSQL 16+ through ``EXPLAIN (GENERIC_PLAN)``; before 16 through ``PREPARE`` (parameter
  types inferred by the server), ``plan_cache_mode = force_generic_plan`` and ``EXPLAIN EXECUTE`` with
  ``NULL`` for every parameter (the generic plan does not depend on the values), then ``DEALLOCATE``.
  ``EXPLAIN EXECUTE`` starts the executor, whose initial partition pruning compares the partition key to
  the NULLs and removes the scans of a partitioned table (``Subplans Removed``), which ``EXPLAIN
  (GENERIC_PLAN)`` keeps; such a plan is planned again under ``enable_partition_pruning = off`` (``SET
  LOCAL``), which lists every partition's scan at the same costs (the planner does not discount run-time
  pruning: an Append costs all its subplans; checked on PostgreSQL 15), and stands where plan-time pruning
  had removed nothing it brings back (the same subplans, counted with those removed): a partition key
  compared to a constant is still pruned at plan time. Where it had (a key compared to a constant and to a
  parameter), the pruned plan stands, without those scans (the advisor's costing then reads which indexes
  they use from the unpruned plan, :func:`dbtune.advisor.costing.plan_costing`)
  (https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITION-PRUNING);
* with ``analyze``, ``EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)``: the query runs, with timing.
  Only SELECTs that neither lock rows nor modify data run, unless ``allow_writes``. A query with ``$n``
  runs with one set of values sampled from the tables (:func:`dbtune.workload.params.sample_parameters`);
  when no values can be found, or the query would write and writes are not allowed, it is planned without
  ANALYZE instead and :attr:`ExplainedQuery.notes` says why.

Safety: the session has ``default_transaction_read_only = on`` unless writes are allowed with ANALYZE,
and every query runs in a transaction of its own that is always rolled back, so even an allowed write
leaves no rows behind (sequences still advance). ``statement_timeout`` (``settings.statement_timeout_ms``)
applies to every statement; a query the server cancels or refuses (a timeout, a missing table, syntax
newer than the server) is recorded with the server's message and the run goes on. Settings are applied
with ``set_config()``, so the session sends only SELECTs, EXPLAINs, transaction control and (before 16)
PREPARE/DEALLOCATE.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pglast
import psycopg
from pglast.parser import ParseError, scan

from dbtune.db.connect import AUDIT_LOCK_TIMEOUT_MS, ConnectionSettings, MarkedRawCursor, connect, describe
from dbtune.errors import ServerRefused, UsageError
from dbtune.pgsql import check_nesting
from dbtune.plans.model import Plan
from dbtune.sqlnames import qualified, quote_ident
from dbtune.workload.params import ParameterUnresolved, sample_parameters
from dbtune.workload.statements import EXPLAINABLE, explainable_text, statement_kind, utility_statement

GENERIC_PLAN_VERSION = 160000
# Settings recorded with every collection: the checks quote them in their advice.
RECORDED_SETTINGS = ("work_mem", "hash_mem_multiplier", "max_parallel_workers", "max_parallel_workers_per_gather",
                     "max_worker_processes", "jit", "jit_above_cost", "jit_inline_above_cost",
                     "jit_optimize_above_cost", "statement_timeout", "default_statistics_target")

_SERVER = """
-- The server and database the plans come from.
SELECT pg_catalog.current_setting('server_version') AS version,
       pg_catalog.current_setting('server_version_num')::int AS version_num,
       pg_catalog.current_database() AS database
"""

_SETTINGS = """
-- The current value (as SHOW prints it) of each named setting that exists on this server.
SELECT s.name, pg_catalog.current_setting(s.name) FROM pg_catalog.unnest(%s::text[]) AS s(name)
WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_settings p WHERE p.name = s.name)
ORDER BY s.name
"""

_SET = "SELECT pg_catalog.set_config(%s, %s, %s)"

_PREPARED_PARAMETERS = """
-- How many parameters the server inferred for a prepared statement of this session.
SELECT pg_catalog.cardinality(parameter_types) FROM pg_catalog.pg_prepared_statements WHERE name = %s
"""

_RELATION_ROWS = """
-- The planner's row count (reltuples; -1: never vacuumed or analyzed) of each named relation, and for a
-- partition the schema and name of the partitioned table at the root of its tree.
SELECT n.nspname, c.relname, c.reltuples, rn.nspname, rc.relname
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class rc ON c.relispartition AND rc.oid = pg_catalog.pg_partition_root(c.oid)
LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
JOIN ROWS FROM (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])) AS r(nspname, relname)
  ON r.nspname = n.nspname AND r.relname = c.relname
"""


@dataclass(frozen=True)
class PlanQuery:
    """One statement to explain: its text (``$n`` parameters allowed), an optional name, and optional
    SQL returning parameter rows (a workload file's ``-- params:`` line) for ANALYZE; ``location``
    (``path:line``) where it was read, and ``parse_error`` when it does not parse (it is then not sent);
    ``notes``: warnings from reading it (shown with its plan); ``skipped``: why the workload file's
    entry is not the server's (a pgbench meta-command or ``BEGIN``/``END``; it is then not sent);
    ``search_path``: the path its session had set (``SET search_path`` earlier in the file), set for the
    statement's plan alone (``None``: the connection's)."""

    sql: str
    name: str | None = None
    params_sql: str | None = None
    location: str | None = None
    parse_error: str | None = None
    notes: tuple[str, ...] = ()
    skipped: str | None = None
    search_path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ExplainOptions:
    """``analyze``: run the queries (EXPLAIN ANALYZE, BUFFERS); ``allow_writes``: also run statements that
    write, in a transaction that is rolled back; ``session_settings``: settings (name → value) applied to
    the session before anything is explained, e.g. ``{"work_mem": "64kB"}``; ``seed`` makes the sampled
    parameter values repeatable."""

    analyze: bool = False
    allow_writes: bool = False
    session_settings: Mapping[str, str] = field(default_factory=dict)
    seed: int = 1


@dataclass(frozen=True)
class PlanServer:
    """Where the plans come from: ``version`` as the server prints it, ``version_num``
    (``server_version_num``), the database, and the :data:`RECORDED_SETTINGS` of the session."""

    version: str
    version_num: int
    database: str
    settings: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "version_num": self.version_num, "database": self.database,
                "settings": dict(self.settings)}


@dataclass(frozen=True)
class ExplainedQuery:
    """One query's plan, or why there is none.

    ``kind``: ``plain`` (no parameters, not run), ``generic`` (the generic plan of a query with ``$n``),
    ``analyzed`` (run with EXPLAIN ANALYZE); ``parameters``: the values used with ANALYZE; ``error``: the
    server's message when it could not plan or run the query (``sqlstate`` its code), ``plan`` is then
    ``None``; ``skipped``: why it was not sent at all (a utility statement, which EXPLAIN cannot take);
    ``notes``: why a query was not run with ANALYZE although asked, or how its text was rewritten (a
    normalised ``interval $1`` sent as ``$1::interval``); ``relation_rows``: the
    planner's row count (``reltuples``) of each relation the plan reads, keyed as
    :attr:`~dbtune.plans.model.PlanNode.relation`; ``partition_roots``: for each partition the plan reads,
    the partitioned table at the root of its tree (same keys).
    """

    query: PlanQuery
    fingerprint: str
    server: PlanServer
    kind: str = "plain"
    plan: Plan | None = None
    error: str | None = None
    sqlstate: str | None = None
    parameters: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    relation_rows: Mapping[str, float] = field(default_factory=dict)
    skipped: str | None = None
    partition_roots: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The query's name, else ``query <fingerprint>`` (``query`` for a statement that was not read: its
        error says where it was found)."""
        return self.query.name or (f"query {self.fingerprint}" if self.fingerprint else "query")

    @property
    def analyzed(self) -> bool:
        return self.plan is not None and self.plan.analyzed


@dataclass(frozen=True)
class Collection:
    """The plans of one run, in the order the queries were given."""

    server: PlanServer
    queries: tuple[ExplainedQuery, ...]


def fingerprint(sql: str) -> str:
    """pglast's fingerprint of the statement (the same for texts that differ only in constants,
    whitespace and comments); for text pglast cannot parse, a hash of its whitespace-normalised text."""
    try:
        return str(pglast.parser.fingerprint(sql))
    except ParseError:
        return hashlib.sha1(" ".join(sql.split()).encode()).hexdigest()[:16]


_PARAM = re.compile(r"\$(\d+)")
_STRINGS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


def parameter_count(sql: str) -> int:
    """The highest ``$n`` in ``sql`` (0: none), from the server's scanner (pglast's): parameters inside
    literals and comments do not count. Linear in the text; text the scanner cannot read is searched
    outside literals and comments with a regular expression."""
    try:
        return max((int(sql[t.start + 1:t.end + 1]) for t in scan(sql) if t.name == "PARAM"), default=0)
    except (ParseError, ValueError):
        return max((int(n) for n in _PARAM.findall(_STRINGS.sub("", sql))), default=0)


def server_message(exc: psycopg.Error) -> tuple[str, str | None]:
    """The server's primary message for ``exc`` on one line (psycopg's text when there is none), and its
    SQLSTATE (https://www.postgresql.org/docs/current/errcodes-appendix.html)."""
    primary = exc.diag.message_primary if exc.diag else None
    return " ".join((primary or str(exc)).split()), exc.sqlstate


def explain_session(settings: ConnectionSettings, options: ExplainOptions | None = None) -> psycopg.Connection:
    """An autocommit session with ``statement_timeout``, ``lock_timeout`` 1000 ms (``AUDIT_LOCK_TIMEOUT_MS``),
    read-only unless writes run, and the caller's
    session settings (set with ``set_config()``, so only SELECTs are sent). Raises
    :class:`~dbtune.errors.ConnectionFailed`, :class:`ServerRefused`, and :class:`UsageError` for a setting
    the server rejects."""
    options = options or ExplainOptions()
    conn = connect(settings, autocommit=True)
    try:
        conn.execute(_SET, ("statement_timeout", str(int(settings.statement_timeout_ms)), False))
        # EXPLAIN takes ACCESS SHARE on the tables it plans: behind a migration's ACCESS EXCLUSIVE it gives up
        # after a second, as the audit's catalog reads do, and that query reports the lock (55P03).
        conn.execute(_SET, ("lock_timeout", str(AUDIT_LOCK_TIMEOUT_MS), False))
        if not (options.analyze and options.allow_writes):
            conn.execute(_SET, ("default_transaction_read_only", "on", False))
    except psycopg.Error as exc:
        conn.close()
        raise ServerRefused(f"{describe(settings)} refused the EXPLAIN session: {server_message(exc)[0]}") from None
    for name, value in options.session_settings.items():
        try:
            conn.execute(_SET, (name, str(value), False))
        except psycopg.Error as exc:
            conn.close()
            raise UsageError(f"session setting {name} = {value!r}: {server_message(exc)[0]}") from None
    return conn


def _server(conn: psycopg.Connection) -> PlanServer:
    version, version_num, database = conn.execute(_SERVER).fetchone()  # type: ignore[misc]
    rows = conn.execute(_SETTINGS, (list(RECORDED_SETTINGS),)).fetchall()
    settings = {str(name): str(value) for name, value in rows}
    return PlanServer(str(version), int(version_num), str(database), settings)


def _analyze_values(conn: psycopg.Connection, query: PlanQuery, n_params: int, options: ExplainOptions,
                    notes: list[str]) -> tuple[bool, tuple[str, ...]]:
    """Whether ``query`` may run with ANALYZE, and the parameter values to run it with."""
    try:
        kind = statement_kind(query.sql)
    except ParseError as exc:
        kind, why = "unknown", f"pglast cannot parse it ({exc.args[0]})"
    else:
        why = "it writes" if kind == "write" else "it is not a SELECT or DML statement"
    if kind != "read" and not options.allow_writes:
        notes.append(f"not run with ANALYZE: {why}; --allow-writes runs it in a transaction that is rolled back")
        return False, ()
    if not n_params:
        return True, ()
    try:
        params = sample_parameters(conn, query.sql, query.params_sql, k=1, seed=options.seed)
    except ParameterUnresolved as exc:
        notes.append(f"not run with ANALYZE: no values for its parameters: {exc}")
        return False, ()
    except psycopg.Error as exc:
        notes.append(f"not run with ANALYZE: sampling values for its parameters failed: {server_message(exc)[0]}")
        return False, ()
    if len(params.sets[0]) != n_params:
        notes.append(f"not run with ANALYZE: found values for {len(params.sets[0])} of its {n_params} parameters")
        return False, ()
    return True, params.sets[0]


def _relation_rows(conn: psycopg.Connection, plan: Plan) -> tuple[dict[str, float], dict[str, str]]:
    """The ``reltuples`` of each relation the plan reads, and the root partitioned table of each partition."""
    names = sorted({(str(n.raw["Schema"]), str(n.raw["Relation Name"])) for n in plan.nodes()
                    if n.raw.get("Schema") and n.raw.get("Relation Name")})
    if not names:
        return {}, {}
    try:
        rows = conn.execute(_RELATION_ROWS, ([s for s, _ in names], [r for _, r in names])).fetchall()
    except psycopg.Error:
        return {}, {}  # the plan stands; only checks that need the table's size without ANALYZE pass it over
    return ({qualified(schema, rel): float(reltuples) for schema, rel, reltuples, _, _ in rows},
            {qualified(schema, rel): qualified(root_schema, root) for schema, rel, _, root_schema, root in rows
             if root is not None})


def _run_explain(conn: psycopg.Connection, sql: str, n_params: int, values: tuple[str, ...] | None,
                 prepared: str, version_num: int, prepared_done: list[str]) -> Any:
    """The JSON of EXPLAIN for ``sql``: with ANALYZE when ``values`` is given (``()``: no parameters), else
    its plan, generic when it has parameters. Runs inside the caller's transaction; lets psycopg.Error
    through. ``prepared_done`` gets ``prepared`` once the statement is prepared (to be deallocated)."""
    cur = MarkedRawCursor(conn)
    if values is not None:
        explain = f"EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) {sql}"
        return cur.execute(explain, values or None).fetchall()[0][0]  # type: ignore[arg-type]
    if not n_params:
        return cur.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) {sql}").fetchall()[0][0]  # type: ignore[arg-type]
    if version_num >= GENERIC_PLAN_VERSION:
        return cur.execute(f"EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) {sql}").fetchall()[0][0]  # type: ignore[arg-type]
    # Before 16: the generic plan of a prepared statement, whatever the (NULL) values.
    cur.execute(f"PREPARE {prepared} AS {sql}")  # type: ignore[arg-type]
    prepared_done.append(prepared)
    count = conn.execute(_PREPARED_PARAMETERS, (prepared,)).fetchone()
    nulls = ", ".join(["NULL"] * int(count[0] if count else n_params))
    conn.execute(_SET, ("plan_cache_mode", "force_generic_plan", True))
    pruned = cur.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {prepared}({nulls})").fetchall()[0][0]  # type: ignore[arg-type]
    if not startup_pruned(Plan.from_json(pruned)):
        return pruned
    # Executor-startup pruning with the NULLs removed subplans: the generic plan without partition pruning
    # (a prepared statement of its own: the first keeps its cached plan) lists every partition's scan. It
    # stands only where plan-time pruning removed nothing it brings back (the same subplans, counted with
    # those removed), else the pruned plan does.
    cur.execute(f"PREPARE {prepared}_unpruned AS {sql}")  # type: ignore[arg-type]
    prepared_done.append(f"{prepared}_unpruned")
    conn.execute(_SET, ("enable_partition_pruning", "off", True))
    unpruned = cur.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {prepared}_unpruned({nulls})"  # type: ignore[arg-type]
                           ).fetchall()[0][0]
    return unpruned if _append_members(unpruned, removed=False) == _append_members(pruned, removed=True) else pruned


def _append_members(explain_json: Any, *, removed: bool) -> list[tuple[str, int]]:
    """Each Append and Merge Append of EXPLAIN's JSON, in plan order: its node type and the member subplans
    it shows, counting with ``removed`` those executor-startup pruning removed (``Subplans Removed``)."""
    return [(n.node_type, sum(c.parent_relationship == "Member" for c in n.children)
             + (int(n.raw.get("Subplans Removed") or 0) if removed else 0))
            for n in Plan.from_json(explain_json).nodes() if n.node_type in ("Append", "Merge Append")]


def startup_pruned(plan: Plan) -> bool:
    """Whether executor-startup pruning removed subplans of an Append or Merge Append of ``plan``
    (``Subplans Removed``): their scans are not in it."""
    return any(n.raw.get("Subplans Removed") for n in plan.nodes() if n.node_type in ("Append", "Merge Append"))


def plan_statement(conn: psycopg.Connection, sql: str, version_num: int, *, values: tuple[str, ...] | None = None,
                   prepared: str = "dbtune_plan", search_path: tuple[str, ...] | None = None,
                   partition_pruning: bool = True) -> Plan:
    """The plan of one statement, in a transaction of its own that is always rolled back (a savepoint when
    ``conn`` is inside a transaction already, so the caller's transaction goes on after a failure).

    ``sql`` may hold ``$n`` parameters: it then gets its generic plan (see the module docstring: ``EXPLAIN
    (GENERIC_PLAN)`` on 16+, ``PREPARE`` + ``plan_cache_mode = force_generic_plan`` + ``EXPLAIN EXECUTE``
    with NULLs before, ``version_num`` being ``server_version_num``, planned again without partition
    pruning when the NULLs pruned partitions' scans; the prepared statements ``prepared`` and
    ``<prepared>_unpruned`` are deallocated afterwards). With ``values`` (``()``: no parameters) it runs
    under ``EXPLAIN (ANALYZE, BUFFERS)``. ``search_path`` is set for this transaction alone, and so is
    ``enable_partition_pruning = off`` without ``partition_pruning`` (every partition's scan). Lets
    :class:`psycopg.Error` through (the server's refusal); raises ValueError when EXPLAIN's output holds no
    plan.
    See https://www.postgresql.org/docs/current/sql-explain.html and, for the partitions,
    https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITION-PRUNING.
    """
    prepared_done: list[str] = []
    try:
        with conn.transaction(force_rollback=True):
            if search_path is not None:  # the session's own path, for this transaction only
                conn.execute(_SET, ("search_path", ", ".join(quote_ident(s) for s in search_path), True))
            if not partition_pruning:
                conn.execute(_SET, ("enable_partition_pruning", "off", True))
            return Plan.from_json(_run_explain(conn, sql, parameter_count(sql), values, prepared, version_num,
                                               prepared_done))
    finally:
        for name in prepared_done:  # PREPARE is not undone by a rollback
            _deallocate(conn, name)


def _deallocate(conn: psycopg.Connection, name: str) -> None:
    """``DEALLOCATE name``, when psycopg has not removed it already: after a rollback psycopg sends its own
    ``DEALLOCATE ALL`` when it had prepared statements of its own. Inside the caller's transaction it runs
    in a savepoint, so that transaction goes on either way."""
    try:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute(f"DEALLOCATE {name}")  # type: ignore[arg-type]
        else:
            with conn.transaction():
                conn.execute(f"DEALLOCATE {name}")  # type: ignore[arg-type]
    except psycopg.Error:
        pass


def _explain_one(conn: psycopg.Connection, query: PlanQuery, number: int, server: PlanServer,
                 options: ExplainOptions) -> ExplainedQuery:
    sql = query.sql.strip().rstrip(";").strip()
    if query.parse_error is not None:  # the workload file's statement does not parse: nothing is sent
        return ExplainedQuery(query, "", server, error=f"{query.location}: {query.parse_error}")
    if query.skipped is not None:  # a pgbench meta-command, pgbench's BEGIN/END: nothing is sent
        return ExplainedQuery(query, "", server, skipped=f"{query.location}: {query.skipped}")
    try:
        check_nesting(sql)
    except ParseError as exc:  # nothing is sent: the server's parser would refuse it anyway
        return ExplainedQuery(query, fingerprint(sql), server, error=str(exc.args[0]))
    utility = utility_statement(sql)
    if utility is not None:
        return ExplainedQuery(query, fingerprint(sql), server, skipped=f"not explained: {utility} is a utility "
                              f"statement; EXPLAIN plans only {EXPLAINABLE}")
    notes: list[str] = list(query.notes)
    sent = explainable_text(sql)
    if sent != sql:
        notes.append(f"sent as {sent!r}: pg_stat_statements' normalised text is not valid SQL as it stands")
        sql = sent
    n_params = parameter_count(sql)
    analyze, values = _analyze_values(conn, query, n_params, options, notes) if options.analyze else (False, ())
    result = ExplainedQuery(query, fingerprint(sql), server, kind="analyzed" if analyze else
                            "generic" if n_params else "plain", notes=tuple(notes))
    try:
        plan = plan_statement(conn, sql, server.version_num, values=values if analyze else None,
                              prepared=f"dbtune_plan_{number}", search_path=query.search_path)
    except psycopg.Error as exc:
        message, sqlstate = server_message(exc)
        if sqlstate == "55P03":
            message = (f"{message}: another session holds or awaits ACCESS EXCLUSIVE on a table it reads "
                       f"(waited lock_timeout, {AUDIT_LOCK_TIMEOUT_MS} ms)")
        return replace(result, error=message, sqlstate=sqlstate)
    relation_rows, partition_roots = _relation_rows(conn, plan)
    return replace(result, plan=plan, parameters=tuple(values), relation_rows=relation_rows,
                   partition_roots=partition_roots)


def collect_plans(settings: ConnectionSettings, queries: Iterable[PlanQuery],
                  options: ExplainOptions | None = None, *,
                  progress: Callable[[str], None] = lambda _: None) -> Collection:
    """Explain every query in one session of its own (see the module docstring), in order.

    Raises :class:`~dbtune.errors.ConnectionFailed` when the server cannot be reached,
    :class:`~dbtune.errors.ServerRefused` when it refuses the session, :class:`UsageError` for a session
    setting it rejects. A query that fails is an :class:`ExplainedQuery` with ``error`` set.
    """
    options = options or ExplainOptions()
    with explain_session(settings, options) as conn:
        server = _server(conn)
        results = []
        for number, query in enumerate(queries, start=1):
            result = _explain_one(conn, query, number, server, options)
            progress(f"{result.label}: {result.error or result.kind}")
            results.append(result)
    return Collection(server, tuple(results))
