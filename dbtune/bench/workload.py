"""Where the benchmarked queries come from: a workload file, or the top statements of pg_stat_statements.

A workload file is either the annotated format of ``sample_configs/guide/workload.sql``::

    -- name: orders-by-status
    SELECT id FROM orders WHERE status = $1 ORDER BY created_at DESC LIMIT 50;
    -- params: SELECT 'pending'

(``-- name:`` starts a query, the statement ends with ``;``, an optional ``-- params:`` line after it gives
SQL returning rows of values for ``$1``, ``$2`` …; a bare ``-- params: SELECT`` means no parameters), or a
plain ``.sql`` file whose statements pglast splits; those are named ``<file stem>-<n>``.

pg_stat_statements supplies the top N statements of the current database by ``total_exec_time``,
top-level only (https://www.postgresql.org/docs/current/pgstatstatements.html); constants are already
normalised to ``$n`` there, so their parameters are sampled like any other.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pglast
import psycopg
from pglast import ast
from pglast.parser import ParseError

from dbtune.db.connect import ConnectionSettings, connect
from dbtune.errors import ServerRefused, UsageError
from dbtune.sqlnames import quote_ident


@dataclass(frozen=True)
class WorkloadQuery:
    """One statement to benchmark: its name, its text with ``$n`` parameters, and the SQL that yields
    sample parameter rows from the data (``None``: find them from the statement's predicates)."""

    name: str
    sql: str
    params_sql: str | None = None


def parse_workload(text: str) -> list[WorkloadQuery]:
    """Split the annotated workload format: each query follows a ``-- name:`` line; a ``-- params:`` line
    after the statement gives the SQL that yields its sample parameters."""
    queries: list[WorkloadQuery] = []
    name: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("-- name:"):
            name, body = stripped.split(":", 1)[1].strip(), []
        elif stripped.startswith("-- params:") and queries:
            params = stripped.split(":", 1)[1].strip().rstrip(";")
            last = queries[-1]
            queries[-1] = WorkloadQuery(last.name, last.sql, params if params.upper() != "SELECT" else None)
        elif stripped.startswith("--") or not stripped:
            continue
        elif name is not None:
            body.append(line)
            if stripped.endswith(";"):
                queries.append(WorkloadQuery(name, "\n".join(body).strip().rstrip(";"), None))
                name, body = None, []
    return queries


def load_workload(path: Path) -> list[WorkloadQuery]:
    """Read a workload file (annotated or plain SQL, UTF-8). Every statement must parse.

    Raises :class:`UsageError` naming the file when it is missing, unreadable, not UTF-8, holds no
    statement, or a statement does not parse.
    """
    label = f"--workload {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{label}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    if any(line.strip().startswith("-- name:") for line in text.splitlines()):
        queries = parse_workload(text)
    else:
        try:
            statements = pglast.split(text)
        except ParseError as exc:
            raise UsageError(f"{label}: does not parse: {exc.args[0]}") from None
        queries = [WorkloadQuery(f"{path.stem}-{i}", s.strip().rstrip(";").strip())
                   for i, s in enumerate(statements, start=1)]
    if not queries:
        raise UsageError(f"{label}: no SQL statement in the file")
    names = [q.name for q in queries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{label}: query name {dupes[0]!r} is used more than once")
    for q in queries:
        try:
            parsed = pglast.parse_sql(q.sql)
        except ParseError as exc:
            raise UsageError(f"{label}: query {q.name!r} does not parse: {exc.args[0]}") from None
        if len(parsed) != 1:
            raise UsageError(f"{label}: query {q.name!r} holds {len(parsed)} statements; end each with ';' "
                             "after its own -- name: line")
    return queries


def statement_kind(sql: str) -> str:
    """``read`` for a SELECT (or VALUES) that neither locks rows nor modifies data, ``write`` for DML
    (INSERT, UPDATE, DELETE, MERGE, SELECT INTO, SELECT … FOR UPDATE/SHARE, data-modifying WITH), and
    ``other`` for everything else (utility statements). Raises pglast's ParseError on bad SQL."""
    stmt = pglast.parse_sql(sql)[0].stmt
    if isinstance(stmt, ast.ExplainStmt | ast.CopyStmt):
        return "other"
    if isinstance(stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
        return "write"
    if not isinstance(stmt, ast.SelectStmt):
        return "other"
    for node in _walk(stmt):
        if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
            return "write"
        if isinstance(node, ast.SelectStmt) and (node.intoClause is not None or node.lockingClause):
            return "write"
    return "read"


def fields(node: ast.Node) -> tuple[str, ...]:
    """The attribute names of a pglast AST node (its ``__slots__``)."""
    return tuple(getattr(type(node), "__slots__", ()))


def _walk(node: object) -> Iterator[ast.Node]:
    """Every AST node under ``node`` (itself included), depth first."""
    if isinstance(node, ast.Node):
        yield node
        for attr in fields(node):
            yield from _walk(getattr(node, attr, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)


PGSS_LOCATION = """
-- The schema holding the pg_stat_statements view in this database, if the extension is created.
SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

PGSS_COLUMNS = """
-- The columns of the pg_stat_statements view (total_exec_time from 1.8 / PG13, toplevel from 1.9 / PG14).
SELECT a.attname FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
"""

PGSS_TOP = """
-- Statements of the current database by total execution time, one row per queryid (summed over roles).
SELECT s.queryid, min(s.query) AS query, sum(s.calls)::bigint AS calls, sum(s.total_exec_time) AS total_ms
FROM {view} s
WHERE s.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  {toplevel}
GROUP BY s.queryid
ORDER BY total_ms DESC
LIMIT 1000
"""


def from_pg_stat_statements(conn: psycopg.Connection, top: int) -> list[WorkloadQuery]:
    """The ``top`` statements by ``total_exec_time`` in pg_stat_statements for the current database,
    top-level only (where the view has ``toplevel``), as queries named ``pgss:<queryid>``.

    Statements that are not SELECT or DML (utility statements, ``BEGIN``, ``SET`` …) and texts that do not
    parse are passed over, so ``top`` counts benchmarkable statements. Needs pg_stat_statements 1.8+
    (PostgreSQL 13+) created in the database and readable (``pg_read_all_stats`` to see other roles'
    texts). Raises :class:`UsageError` for ``top < 1`` or when the extension is absent or too old,
    :class:`ServerRefused` when the server refuses the query (e.g. no privilege).
    """
    if top < 1:
        raise UsageError(f"--from-pg-stat-statements must be at least 1, got {top}")
    try:
        rows = conn.execute(PGSS_LOCATION).fetchall()
        if not rows:
            raise UsageError("--from-pg-stat-statements: pg_stat_statements is not created in this database "
                             "(CREATE EXTENSION pg_stat_statements; it must also be in shared_preload_libraries)")
        view = f"{quote_ident(rows[0][0])}.pg_stat_statements"
        columns = {r[0] for r in conn.execute(PGSS_COLUMNS, (view,)).fetchall()}
        if "total_exec_time" not in columns:
            raise UsageError(f"--from-pg-stat-statements: {view} has no total_exec_time column: "
                             "pg_stat_statements 1.8 (PostgreSQL 13) or later is needed "
                             "(ALTER EXTENSION pg_stat_statements UPDATE)")
        toplevel = "AND s.toplevel" if "toplevel" in columns else ""
        found = conn.execute(PGSS_TOP.format(view=view, toplevel=toplevel)).fetchall()  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise ServerRefused(f"cannot read pg_stat_statements: {' '.join(str(exc).split())}") from None
    queries: list[WorkloadQuery] = []
    for queryid, text, _calls, _total in found:
        if text is None or "<insufficient privilege>" in text or text.lstrip().startswith("/* dbtune"):
            continue
        try:
            if statement_kind(text) == "other":
                continue
        except ParseError:
            continue
        queries.append(WorkloadQuery(f"pgss:{queryid}", text.strip().rstrip(";")))
        if len(queries) == top:
            break
    return queries


def pg_stat_statements_workload(settings: ConnectionSettings, top: int) -> list[WorkloadQuery]:
    """:func:`from_pg_stat_statements` on a connection of its own (read only, closed afterwards)."""
    with connect(settings, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        return from_pg_stat_statements(conn, top)
