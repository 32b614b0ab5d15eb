"""Telling a statement the server ran from its text (a server log line, a pg_stat_statements row): what
kind it is, by PostgreSQL's grammar (pglast), and whether it only reads. Shared by the hostile-identifier
and read-only parts of issue 9."""

from __future__ import annotations

from pglast import ast, parse_sql
from pglast.stream import RawStream

# Statements that write nothing: queries, session settings, plans, transaction control, prepared
# statements. A SELECT may call a function (hypopg_create_index, whose hypothetical index lives in the
# backend's memory only); a SELECT … INTO or one whose WITH holds an INSERT/UPDATE/DELETE writes, and is
# not counted as a read.
READ_KINDS = frozenset({"SelectStmt", "VariableSetStmt", "VariableShowStmt", "ExplainStmt", "TransactionStmt",
                        "PrepareStmt", "ExecuteStmt", "DeallocateStmt", "DiscardStmt"})


def statements(text: str) -> list[ast.Node] | None:
    """The statements of ``text`` (a logged statement may hold several), or ``None`` when it does not
    parse (a pg_stat_statements text with ``$1`` where a name would be parses; a truncated one may not)."""
    try:
        return [raw.stmt for raw in parse_sql(text)]
    except Exception:  # noqa: BLE001 - pglast's ParseError, or a text cut by track_activity_query_size
        return None


def writes(node: ast.Node) -> bool:
    """Whether ``node`` may change data or the schema (anything but :data:`READ_KINDS`)."""
    kind = type(node).__name__
    if kind == "ExplainStmt":
        options = {o.defname for o in (node.options or ())}  # type: ignore[attr-defined]
        return "analyze" in options and writes(node.query)  # type: ignore[attr-defined]
    if kind not in READ_KINDS:
        return True
    if isinstance(node, ast.SelectStmt):
        if node.intoClause is not None:
            return True
        ctes = node.withClause.ctes if node.withClause is not None else ()
        return any(not isinstance(c.ctequery, ast.SelectStmt) or writes(c.ctequery) for c in ctes)
    return False


def normalised(node: ast.Node) -> str:
    """The statement printed back from its parse tree (comments and layout gone): two texts of one
    statement compare equal."""
    return str(RawStream()(node))
