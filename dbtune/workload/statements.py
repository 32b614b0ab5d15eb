"""What kind of statement a text is, and walking pglast's AST."""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums, parser
from pglast.parser import ParseError, scan
from pglast.stream import RawStream

from dbtune.escape import one_line
from dbtune.pgsql import parse_sql
from dbtune.sqlnames import qualified, quote_ident


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


def statement_line(sql: str) -> str:
    """A statement on one line, as a finding shows it: whitespace collapsed, control characters escaped
    (:func:`dbtune.escape.one_line`)."""
    return one_line(" ".join(sql.split()))


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


# What EXPLAIN takes (https://www.postgresql.org/docs/current/sql-explain.html): the first word of each.
_EXPLAINABLE_WORDS = frozenset({"SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE_P", "MERGE",
                                "EXECUTE", "DECLARE", "ASCII_40"})
EXPLAINABLE = "SELECT, INSERT, UPDATE, DELETE, MERGE, VALUES, EXECUTE and DECLARE"


def utility_statement(sql: str) -> str | None:
    """The first word of ``sql`` (``DO``, ``VACUUM``, ``SET`` …, upper case) when it is a statement EXPLAIN
    cannot take, read with the server's scanner, so that text no parser accepts (pg_stat_statements'
    ``DO $1``) is recognised too; None for the statements EXPLAIN takes, and for text with no word."""
    try:
        tokens = [t for t in scan(sql) if t.name not in ("C_COMMENT", "SQL_COMMENT")]
    except ParseError:
        return None
    if not tokens or tokens[0].name in _EXPLAINABLE_WORDS or tokens[0].kind == "NO_KEYWORD":
        return None  # a name, a parameter, punctuation (a psql `:x` read as plain SQL): no utility word
    if tokens[0].name == "CREATE" and "AS" in {t.name for t in tokens[1:12]}:
        return None  # CREATE TABLE … AS / CREATE MATERIALIZED VIEW … AS: EXPLAIN takes them
    return sql[tokens[0].start:tokens[0].end + 1].upper()


# Interval fields that may follow the constant (``interval '1' day``, ``interval $1 hour to minute``).
_INTERVAL_FIELDS = frozenset({"YEAR_P", "MONTH_P", "DAY_P", "HOUR_P", "MINUTE_P", "SECOND_P", "TO"})


def explainable_text(sql: str) -> str:
    """``sql`` as the server's grammar takes it back: pg_stat_statements normalises ``interval '1 day'``
    to ``interval $1`` (and ``date '…'`` to ``date $1``), which pglast parses but the server refuses
    (``syntax error at or near "$1"``): each such ``type $n`` is written ``$n::type``, the type as
    pglast deparses it (``interval $1 day`` → ``$1::interval day``). The rest of the text is kept as it
    is; text without such a constant, or that does not parse, is returned unchanged.
    """
    if "$" not in sql:
        return sql
    try:
        tree = parse_sql(sql)
    except ParseError:
        return sql
    # (start of the type name, the type name, the parameter) of each `type $n`, in text order
    casts: list[tuple[int, ast.TypeName, ast.ParamRef]] = []
    for n in walk(tree):
        if (isinstance(n, ast.TypeCast) and n.location is None and isinstance(n.arg, ast.ParamRef)
                and n.arg.location is not None and n.typeName is not None and n.typeName.location is not None):
            casts.append((n.typeName.location, n.typeName, n.arg))
    if not casts:
        return sql
    tokens = scan(sql)
    starts = {t.start: i for i, t in enumerate(tokens)}
    parts: list[str] = []
    pos = 0
    for start, type_name, param in sorted(casts, key=lambda c: c[0]):
        i = starts.get(param.location or 0)
        if i is None or start < pos:
            return sql
        end = tokens[i].end + 1
        i += 1
        while i < len(tokens) and tokens[i].name in _INTERVAL_FIELDS:
            end = tokens[i].end + 1
            i += 1
            if tokens[i - 1].name == "SECOND_P" and i + 2 < len(tokens) and tokens[i].name == "ASCII_40":
                end, i = tokens[i + 2].end + 1, i + 3  # second(3)
        parts += [sql[pos:start], f"${param.number}::{RawStream()(type_name)}"]
        pos = end
    rewritten = "".join([*parts, sql[pos:]])
    try:
        return rewritten if parser.fingerprint(rewritten) == parser.fingerprint(sql) else sql
    except ParseError:
        return sql


# --- the relations a statement names -------------------------------------------------------------------


def set_search_path(stmt: ast.Node | None) -> tuple[bool, tuple[str, ...] | None]:
    """Whether ``stmt`` sets the session's ``search_path`` (``SET [SESSION | LOCAL] search_path TO …``,
    ``RESET search_path``, ``SET search_path TO DEFAULT``), and the path it sets (``None``: back to the
    session's default, which only the server knows). See
    https://www.postgresql.org/docs/current/sql-set.html and ddl-schemas.html#DDL-SCHEMAS-PATH."""
    if not isinstance(stmt, ast.VariableSetStmt) or (stmt.name or "").lower() != "search_path":
        return False, None
    if stmt.kind != enums.VariableSetKind.VAR_SET_VALUE:
        return True, None  # RESET, SET … TO DEFAULT
    schemas: list[str] = []
    for arg in stmt.args or ():
        value = getattr(getattr(arg, "val", None), "sval", None)
        if isinstance(value, str):
            schemas += [s.strip() for s in value.split(",") if s.strip()]
    return True, tuple(schemas)


def named_relations(tree: tuple[ast.RawStmt, ...] | list[ast.RawStmt] | ast.Node,
                    search_path: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The relations a parsed statement names (its own CTEs left out), sorted and distinct, each as it
    resolves under the session's ``search_path`` without a catalog: ``schema.name`` (quoted as needed)
    when written qualified, ``name`` when unqualified under the session's default path (``None``), and
    ``name (search_path a, b)`` under a path the session set. Two statements with the same pglast
    fingerprint (which ignores schemas) are the same statement only when these are equal too."""
    ctes: set[str] = set()
    found: set[str] = set()
    written: list[ast.RangeVar] = []
    for node in walk(tree):
        if isinstance(node, ast.CommonTableExpr) and node.ctename:
            ctes.add(node.ctename)
        elif isinstance(node, ast.RangeVar) and node.relname:
            written.append(node)
    path = f" (search_path {', '.join(search_path)})" if search_path is not None else ""
    for rv in written:
        assert rv.relname is not None
        if rv.schemaname:
            found.add(qualified(rv.schemaname, rv.relname) if not rv.catalogname else
                      f"{quote_ident(rv.catalogname)}.{qualified(rv.schemaname, rv.relname)}")
        elif rv.relname not in ctes:
            found.add(f"{quote_ident(rv.relname)}{path}")
    return tuple(sorted(found))


class SessionPaths:
    """The ``search_path`` of each session of a source, followed statement by statement: a script is one
    session; a log's sessions are its ``session_id`` (stderr: one, ``None``)."""

    def __init__(self) -> None:
        self._paths: dict[str | None, tuple[str, ...] | None] = {}

    def resolve(self, text: str, session: str | None = None) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
        """:func:`named_relations` of ``text`` under the session's path as it stands (``()`` for text
        that does not parse), and that path (``None``: the session's default); a ``SET search_path`` in
        ``text`` changes the path for what follows."""
        path = self._paths.get(session)
        try:
            tree = parse_sql(text)
        except ParseError:
            return (), path
        found = named_relations(tree, path)
        for raw in tree:
            sets, new_path = set_search_path(raw.stmt)
            if sets:
                self._paths[session] = new_path
        return found, path
