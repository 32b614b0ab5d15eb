"""How a workload's statements write, read with PostgreSQL's grammar (pglast): the races and conflicts the
concurrency checks judge against the catalog.

- :func:`check_then_inserts`: an existence check (a ``SELECT`` on one table by equality, with no
  ``ORDER BY`` and at most ``LIMIT 1``, or inside ``EXISTS``) followed later in the same file by an
  ``INSERT`` into that table that gives every compared column a value. Under ``READ COMMITTED`` (and
  ``REPEATABLE READ``) two sessions can both see nothing and both insert; only a unique index makes the
  second insert fail (https://www.postgresql.org/docs/current/transaction-iso.html).
- :func:`on_conflict_targets`: the ``INSERT … ON CONFLICT`` arbiters the statements name.
- :func:`updates_of`: the ``UPDATE`` statements, with what they set and compare, for optimistic locking.

Names are as the statement writes them (folded by the parser); the checks resolve them against the
snapshot with the config's ``search_path``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pglast import ast, enums
from pglast.parser import ParseError
from pglast.stream import RawStream

from dbtune.pgsql import parse_sql
from dbtune.sqlnames import quote_ident
from dbtune.workload.model import Query
from dbtune.workload.statements import statement_line, walk


@dataclass(frozen=True)
class TableName:
    """A relation as a statement names it: ``schema`` (``None``: through the ``search_path``) and ``name``."""

    schema: str | None
    name: str

    @property
    def written(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}" if self.schema else quote_ident(self.name)


@dataclass(frozen=True)
class CheckThenInsert:
    """An existence check and the insert after it. ``key``: the columns the check compares with a
    parameter or another expression (the business key); ``conditions``: ``column = constant`` terms of the
    check as written (``response = 'ACCEPTED'``), the predicate a partial unique index needs; the locations and the
    two statements on one line."""

    table: TableName
    key: tuple[str, ...]
    conditions: tuple[str, ...]
    select_location: str
    insert_location: str
    select_statement: str
    insert_statement: str

    @property
    def where(self) -> str | None:
        """The conditions as one predicate (``None`` when there are none)."""
        return " AND ".join(self.conditions) or None


@dataclass(frozen=True)
class OnConflictTarget:
    """One ``INSERT … ON CONFLICT`` arbiter: the target's columns or expressions and the ``WHERE`` it
    states, as PostgreSQL's grammar prints them back (the checks compare them with index keys and
    predicates after their own normalisation), or the constraint it names (``ON CONFLICT ON
    CONSTRAINT``); ``action`` is ``DO NOTHING`` or ``DO UPDATE``."""

    table: TableName
    columns: tuple[str, ...]
    where: str | None
    constraint: str | None
    action: str
    location: str
    statement: str


@dataclass(frozen=True)
class UpdateOf:
    """One ``UPDATE``: the columns it sets with their normalised expressions, the columns its ``WHERE``
    compares for equality (top-level ``AND`` terms), where it is, the statement on one line."""

    table: TableName
    sets: dict[str, str]
    compared: frozenset[str]
    location: str
    statement: str


def _parsed(queries: Iterable[Query]) -> Iterator[tuple[Query, ast.Node]]:
    for q in queries:
        if q.skipped is not None:
            continue
        try:
            statements = parse_sql(q.text)
        except ParseError:
            continue
        for raw in statements:
            if raw.stmt is not None:
                yield q, raw.stmt


def _file(location: str) -> str:
    return location.rpartition(":")[0] or location


def _table(rv: ast.RangeVar) -> TableName:
    return TableName(rv.schemaname, rv.relname or "")


def _column(node: object) -> str | None:
    if isinstance(node, ast.ColumnRef) and node.fields and isinstance(node.fields[-1], ast.String):
        return node.fields[-1].sval
    return None


def _constant(node: object) -> bool:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return isinstance(node, ast.A_Const)


def _deparse(node: ast.Node) -> str:
    return str(RawStream()(node))


def _terms(where: ast.Node | None) -> list[ast.Node]:
    if where is None:
        return []
    if isinstance(where, ast.BoolExpr) and where.boolop == enums.BoolExprType.AND_EXPR:
        return [t for arg in where.args or () for t in _terms(arg)]
    return [where]


def _equalities(where: ast.Node | None) -> tuple[list[str], list[tuple[str, str]]]:
    """The columns compared for equality with something other than a constant, and the ``column =
    constant`` terms (column, the term deparsed), of the top-level ``AND`` terms of ``where``."""
    key: list[str] = []
    conditions: list[tuple[str, str]] = []
    for term in _terms(where):
        if not (isinstance(term, ast.A_Expr) and term.kind == enums.A_Expr_Kind.AEXPR_OP
                and term.name is not None and len(term.name) == 1 and term.name[0].sval == "="):
            continue
        for col_side, other in ((term.lexpr, term.rexpr), (term.rexpr, term.lexpr)):
            col = _column(col_side)
            if col is None or _column(other) is not None:
                continue
            if _constant(other):
                assert isinstance(other, ast.Node)
                conditions.append((col, f"{quote_ident(col)} = {_deparse(other)}"))
            else:
                key.append(col)
            break
    return list(dict.fromkeys(key)), conditions


def _existence_check(select: ast.SelectStmt, inside_exists: bool) -> bool:
    if select.sortClause or select.groupClause:
        return False
    if select.limitCount is not None:
        limit = select.limitCount
        if not (isinstance(limit, ast.A_Const) and getattr(limit.val, "ival", None) == 1):
            return False
    elif not inside_exists and select.whereClause is None:
        return False
    return True


def _checks_in(stmt: ast.Node) -> Iterator[tuple[TableName, list[str], list[tuple[str, str]]]]:
    exists_selects = {id(n.subselect) for n in walk(stmt)
                      if isinstance(n, ast.SubLink) and n.subLinkType == enums.SubLinkType.EXISTS_SUBLINK}
    for node in walk(stmt):
        if not isinstance(node, ast.SelectStmt) or not node.fromClause or len(node.fromClause) != 1:
            continue
        source = node.fromClause[0]
        if not isinstance(source, ast.RangeVar) or not _existence_check(node, id(node) in exists_selects):
            continue
        key, conditions = _equalities(node.whereClause)
        if key:
            yield _table(source), key, conditions


def check_then_inserts(queries: Iterable[Query]) -> list[CheckThenInsert]:
    """Every existence check followed, later in the same file, by an ``INSERT`` (without ``ON CONFLICT``)
    into the same table that names every column of the check's key; one result per (table, key,
    conditions), the first pair found. Statements that do not parse are passed over."""
    seen: dict[str, list[tuple[TableName, list[str], list[tuple[str, str]], Query]]] = {}
    found: dict[tuple[TableName, tuple[str, ...], tuple[str, ...]], CheckThenInsert] = {}
    for q, stmt in _parsed(queries):
        where = _file(q.location)
        if isinstance(stmt, ast.InsertStmt) and stmt.relation is not None and stmt.onConflictClause is None:
            table = _table(stmt.relation)
            columns = {c.name for c in stmt.cols or () if isinstance(c, ast.ResTarget)}
            for checked, key, conditions, select in seen.get(where, []):
                if checked == table and set(key) <= columns:
                    terms = tuple(text for _col, text in conditions)
                    found.setdefault((table, tuple(key), terms), CheckThenInsert(
                        table, tuple(key), terms, select.location, q.location,
                        statement_line(select.text), statement_line(q.text)))
        if isinstance(stmt, ast.SelectStmt | ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt):
            for table, key, conditions in _checks_in(stmt):
                seen.setdefault(where, []).append((table, key, conditions, q))
    return list(found.values())


def on_conflict_targets(queries: Iterable[Query]) -> list[OnConflictTarget]:
    """Every ``INSERT … ON CONFLICT`` that names an arbiter (columns or a constraint), in order; an ``ON
    CONFLICT DO NOTHING`` without a target takes any constraint and is left out."""
    out: list[OnConflictTarget] = []
    for q, stmt in _parsed(queries):
        for node in walk(stmt):
            if not isinstance(node, ast.InsertStmt) or node.onConflictClause is None or node.relation is None:
                continue
            infer = node.onConflictClause.infer
            if infer is None:
                continue
            action = "DO UPDATE" if node.onConflictClause.action == enums.OnConflictAction.ONCONFLICT_UPDATE \
                else "DO NOTHING"
            where = _deparse(infer.whereClause) if infer.whereClause is not None else None
            columns = tuple(_deparse(e) for e in infer.indexElems or () if isinstance(e, ast.IndexElem))
            out.append(OnConflictTarget(_table(node.relation), columns, where, infer.conname, action, q.location,
                                        statement_line(q.text)))
    return out


def updates_of(queries: Iterable[Query]) -> list[UpdateOf]:
    """Every ``UPDATE`` in the workload (also inside a ``WITH``), in order."""
    out: list[UpdateOf] = []
    for q, stmt in _parsed(queries):
        for node in walk(stmt):
            if not isinstance(node, ast.UpdateStmt) or node.relation is None:
                continue
            key, conditions = _equalities(node.whereClause)
            compared = frozenset(key) | frozenset(col for col, _text in conditions)
            sets = {t.name: _deparse(t.val) for t in node.targetList or ()
                    if isinstance(t, ast.ResTarget) and t.name and t.val is not None}
            out.append(UpdateOf(_table(node.relation), sets, compared, q.location, statement_line(q.text)))
    return out
