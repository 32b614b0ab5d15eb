"""Session-level state a workload's statements create, read with PostgreSQL's grammar (pglast).

Behind PgBouncer in transaction mode a client's consecutive transactions may run on different server
connections, so whatever a statement leaves on *its* server connection after the transaction ends is
lost to the client (and inherited by another one): a plain ``SET`` (``SET LOCAL`` ends with the
transaction), ``LISTEN``, SQL ``PREPARE``, a session advisory lock (``pg_advisory_lock``, not the
``_xact_`` variants), a ``WITH HOLD`` cursor, a temporary table
(https://www.pgbouncer.org/features.html#sql-feature-map-for-pooling-modes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pglast import ast, enums
from pglast.parser import ParseError

from dbtune.pgsql import parse_sql
from dbtune.workload.model import Query
from dbtune.workload.statements import statement_line, walk

# pglast's CURSOR_OPT_HOLD (parsenodes.h): DECLARE … WITH HOLD.
CURSOR_OPT_HOLD = 0x0020
# The session-level advisory lock functions; their pg_advisory_xact_* twins end with the transaction.
SESSION_ADVISORY_LOCKS = frozenset({"pg_advisory_lock", "pg_advisory_lock_shared", "pg_try_advisory_lock",
                                    "pg_try_advisory_lock_shared"})


@dataclass(frozen=True)
class SessionFeatureUse:
    """One statement of the workload that leaves session state behind: ``kind`` (``SET``, ``LISTEN``,
    ``PREPARE``, ``advisory lock``, ``WITH HOLD cursor``, ``temporary table``), ``detail`` (the setting,
    channel, statement, function, cursor or table name), the statement on one line and its ``location``
    (``path:line``)."""

    kind: str
    detail: str
    statement: str
    location: str


def session_feature_uses(queries: Iterable[Query]) -> list[SessionFeatureUse]:
    """Every use of a session-level feature in ``queries``, in their order; a statement that does not
    parse is passed over (the plan checks report it)."""
    found: list[SessionFeatureUse] = []
    for q in queries:
        try:
            statements = parse_sql(q.text)
        except ParseError:
            continue
        shown = statement_line(q.text)
        for raw in statements:
            for kind, detail in _features(raw.stmt):
                found.append(SessionFeatureUse(kind, detail, shown, q.location))
    return found


def _features(stmt: ast.Node | None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if isinstance(stmt, ast.VariableSetStmt):
        if not stmt.is_local and stmt.kind in (enums.VariableSetKind.VAR_SET_VALUE,
                                               enums.VariableSetKind.VAR_SET_DEFAULT,
                                               enums.VariableSetKind.VAR_SET_CURRENT) and stmt.name:
            out.append(("SET", stmt.name))
        return out
    if isinstance(stmt, ast.ListenStmt):
        return [("LISTEN", stmt.conditionname or "")]
    if isinstance(stmt, ast.PrepareStmt):
        return [("PREPARE", stmt.name or "")]
    if isinstance(stmt, ast.DeclareCursorStmt) and (stmt.options or 0) & CURSOR_OPT_HOLD:
        return [("WITH HOLD cursor", stmt.portalname or "")]
    if isinstance(stmt, ast.CreateStmt) and stmt.relation is not None and stmt.relation.relpersistence == "t":
        return [("temporary table", stmt.relation.relname or "")]
    if isinstance(stmt, ast.CreateTableAsStmt) and stmt.into is not None and stmt.into.rel is not None \
            and stmt.into.rel.relpersistence == "t":
        return [("temporary table", stmt.into.rel.relname or "")]
    for node in walk(stmt):
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None and node.intoClause.rel is not None \
                and node.intoClause.rel.relpersistence == "t":
            out.append(("temporary table", node.intoClause.rel.relname or ""))
        if isinstance(node, ast.FuncCall):
            parts = [p.sval for p in node.funcname or ()]
            name = parts[-1] if parts else ""
            schema = parts[0] if len(parts) == 2 else "pg_catalog"
            if name in SESSION_ADVISORY_LOCKS and schema == "pg_catalog":
                out.append(("advisory lock", name))
    return out
