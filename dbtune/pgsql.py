"""PostgreSQL's own grammar (pglast), typed: parse one statement as the node type the caller expects."""

from __future__ import annotations

from typing import TypeVar

from pglast import ast, parse_sql

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
