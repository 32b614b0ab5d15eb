"""PostgreSQL's own grammar (pglast), typed: parse one statement as the node type the caller expects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

N = TypeVar("N", bound=ast.Node)


def parse_one(sql: str, node_type: type[N]) -> N:
    """The first statement of ``sql`` as a ``node_type`` node.

    Raises :class:`pglast.parser.ParseError` when ``sql`` does not parse and :class:`ValueError` when its
    first statement is of another type.
    """
    raw = parse_sql(sql)[0].stmt
    if not isinstance(raw, node_type):
        raise ValueError(f"expected {node_type.__name__}, got {type(raw).__name__}")
    return raw


def render(node: ast.Node) -> str:
    """A node printed back as SQL by pglast, on one line, with every identifier quoted as needed."""
    return str(RawStream()(node))


def _only_statement(sql: str, what: str = "expression") -> ast.Node:
    """The one statement of ``sql``. Raises ValueError (with pglast's message) when ``sql`` does not parse or
    holds more or fewer than one statement."""
    try:
        raws = parse_sql(sql)
    except ParseError as exc:
        raise ValueError(str(exc.args[0]) if exc.args else str(exc)) from None
    if len(raws) != 1:
        raise ValueError(f"holds {len(raws)} statements; one {what} was expected")
    stmt = raws[0].stmt
    if stmt is None:
        raise ValueError(f"no {what}")
    return stmt


def parse_fragment(template: str, text: str, pick: Callable[[Any], ast.Node | None],
                   show: Callable[[ast.Node], str] = render, what: str = "expression") -> ast.Node:
    """``text`` parsed as exactly the one part of a statement that ``template`` (with ``{}`` where ``text``
    goes) and ``pick`` (which takes that part out of the parse tree) say, and nothing more; ``show`` prints
    the part as it stands in ``template``.

    Text from a config or a report is pasted into DDL only this way: ``"state = 'PAID'; DROP TABLE x"``
    holds two statements, ``"true GROUP BY 1"`` adds a clause, ``"a) WHERE (b"`` an index predicate, and each
    is refused because the statement printed from the tree differs from the one printed with the part alone.
    Raises ValueError naming what is wrong.
    """
    stmt = _only_statement(template.format(text), what)
    part = pick(stmt)
    if part is None:
        raise ValueError("not of the expected form")
    again = _only_statement(template.format(show(part)))
    if render(again) != render(stmt):
        raise ValueError("holds more than one clause")
    return part


def parse_expression(text: str) -> ast.Node:
    """``text`` as exactly one scalar expression (an index predicate or index expression).
    Raises ValueError."""
    return parse_fragment("SELECT 1 WHERE {}", text, lambda s: s.whereClause if isinstance(s, ast.SelectStmt)
                          else None)


def parse_index_column(text: str) -> ast.IndexElem:
    """``text`` as exactly one ``CREATE INDEX`` key column (``created_at DESC``, ``(lower(email))``,
    ``"Name" text_pattern_ops``). Raises ValueError."""
    def pick(s: Any) -> ast.Node | None:
        params = s.indexParams if isinstance(s, ast.IndexStmt) else None
        return params[0] if params and len(params) == 1 else None

    node = parse_fragment("CREATE INDEX x ON t ({})", text, pick, what="index column")
    assert isinstance(node, ast.IndexElem)
    return node


def parse_constraint_definition(text: str) -> ast.Constraint:
    """``text`` as exactly one table constraint, written as after ``ADD CONSTRAINT name`` (``CHECK (a > 0)``,
    ``FOREIGN KEY (a) REFERENCES p (id)``). Raises ValueError."""
    def pick(s: Any) -> ast.Node | None:
        cmds = s.cmds if isinstance(s, ast.AlterTableStmt) else None
        if cmds and len(cmds) == 1 and isinstance(cmds[0].def_, ast.Constraint):
            return cmds[0].def_
        return None

    node = parse_fragment("ALTER TABLE t ADD CONSTRAINT x {}", text, pick, show=constraint_text,
                          what="constraint definition")
    assert isinstance(node, ast.Constraint)
    return node


def constraint_text(node: ast.Node) -> str:
    """A constraint node printed without its ``CONSTRAINT name`` prefix."""
    text = render(node)
    name = getattr(node, "conname", None)
    if name:
        from dbtune.sqlnames import quote_ident

        text = text.removeprefix(f"CONSTRAINT {quote_ident(name)} ")
    return text
