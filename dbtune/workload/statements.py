"""What kind of statement a text is, and walking pglast's AST."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.parser import ParseError

from dbtune.pgsql import parse_sql


def statement_kind(sql: str) -> str:
    """``read`` for a SELECT (or VALUES) that neither locks rows nor modifies data, ``write`` for DML
    (INSERT, UPDATE, DELETE, MERGE, SELECT INTO, SELECT … FOR UPDATE/SHARE, data-modifying WITH), and
    ``other`` for everything else (utility statements). Raises pglast's ParseError on bad SQL (and on a
    statement nested too deep, :class:`~dbtune.pgsql.StatementTooDeep`)."""
    return node_kind(parse_sql(sql)[0].stmt)


def node_kind(stmt: ast.Node | None) -> str:
    """:func:`statement_kind` of an already parsed statement."""
    if isinstance(stmt, ast.ExplainStmt | ast.CopyStmt):
        return "other"
    if isinstance(stmt, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
        return "write"
    if not isinstance(stmt, ast.SelectStmt):
        return "other"
    for node in walk(stmt):
        if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
            return "write"
        if isinstance(node, ast.SelectStmt) and (node.intoClause is not None or node.lockingClause):
            return "write"
    return "read"


def fields(node: ast.Node) -> tuple[str, ...]:
    """The attribute names of a pglast AST node (its ``__slots__``)."""
    return tuple(getattr(type(node), "__slots__", ()))


def walk(node: object) -> Iterator[ast.Node]:
    """Every AST node under ``node`` (itself included), depth first, parents before children. Iterative:
    however deep the tree, no Python recursion."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, ast.Node):
            yield item
            stack.extend(reversed([getattr(item, attr, None) for attr in fields(item)]))
        elif isinstance(item, tuple | list):
            stack.extend(reversed(item))


_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
# The tables migration tools record their revisions in: Alembic's default, and dbtune's own.
VERSION_TABLES = frozenset({"alembic_version", "dbtune_version"})


_SYSTEM_FUNCTIONS = frozenset({"now", "version", "current_setting", "set_config", "current_database",
                               "current_user", "current_schema", "txid_current", "random", "generate_series"})


def reads_user_relations(sql: str) -> bool:
    """Whether ``sql`` is the application's: it names a relation outside the system schemas other than a
    version table (:data:`VERSION_TABLES`), or, naming none, calls a function of the application's
    (``SELECT lookup($1)``). Catalog reads, reads and writes of ``alembic_version``, ``SELECT 1`` and
    calls of PostgreSQL's own functions are not. A text pglast cannot parse counts."""
    try:
        tree = parse_sql(sql)
    except ParseError:
        return True
    ctes: set[str] = set()
    names: list[ast.RangeVar] = []
    functions: list[tuple[str, ...]] = []
    for node in walk(tree):
        if isinstance(node, ast.RangeVar):
            names.append(node)
        elif isinstance(node, ast.FuncCall):
            functions.append(tuple(getattr(n, "sval", "") for n in node.funcname or ()))
        elif isinstance(node, ast.CommonTableExpr) and node.ctename:
            ctes.add(node.ctename)
    for rv in names:
        name = rv.relname or ""
        if name.startswith("pg_") or rv.schemaname in _SYSTEM_SCHEMAS or (not rv.schemaname and name in ctes):
            continue  # a system catalog or view (pg_stat_statements lives in its extension's schema), a CTE
        if name in VERSION_TABLES:
            continue  # a migration tool's bookkeeping, not the application's workload
        return True
    if names:
        return False
    return any(not (f[-1].startswith("pg_") or f[-1] in _SYSTEM_FUNCTIONS or (len(f) > 1 and f[0] in _SYSTEM_SCHEMAS))
               for f in functions if f)
