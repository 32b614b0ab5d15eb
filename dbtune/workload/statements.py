"""What kind of statement a text is, and walking pglast's AST."""

from __future__ import annotations

from collections.abc import Iterator

import pglast
from pglast import ast


def statement_kind(sql: str) -> str:
    """``read`` for a SELECT (or VALUES) that neither locks rows nor modifies data, ``write`` for DML
    (INSERT, UPDATE, DELETE, MERGE, SELECT INTO, SELECT … FOR UPDATE/SHARE, data-modifying WITH), and
    ``other`` for everything else (utility statements). Raises pglast's ParseError on bad SQL."""
    return node_kind(pglast.parse_sql(sql)[0].stmt)


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
    """Every AST node under ``node`` (itself included), depth first."""
    if isinstance(node, ast.Node):
        yield node
        for attr in fields(node):
            yield from walk(getattr(node, attr, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from walk(item)
