"""PostgreSQL's own grammar (pglast), typed and guarded.

:func:`parse_sql` is pglast's parser behind a nesting check: pglast turns the server's parse tree into
Python objects recursively in C, and a statement nested some 25,000 levels deep (``SELECT 1 + 1 + …``)
overflows the C stack and kills the process with a segmentation fault, where no ``except`` can catch
it. :func:`check_nesting` measures the nesting with pglast's scanner (flat, linear in the text's length)
before anything builds a tree, and refuses statements deeper than :data:`MAX_NESTING` with
:class:`StatementTooDeep`, a :class:`~pglast.parser.ParseError`, so every caller that already handles
statements that do not parse reports it the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

import pglast
from pglast import ast
from pglast.parser import ParseError, scan
from pglast.stream import RawStream

from dbtune.sqlnames import quote_ident

N = TypeVar("N", bound=ast.Node)

# The deepest statement dbtune reads, in levels of nesting as :func:`nesting_depth` counts them. PostgreSQL
# itself refuses far less: with the default max_stack_depth (2 MB) the server's parser stops a chain of
# `1 + 1 + …` at a few thousand terms ("stack depth limit exceeded", SQLSTATE 54001).
MAX_NESTING = 1000

# Tokens that add no level of nesting: names, constants, parameters, comments, the dot of a qualified name,
# and the keywords that name a clause (a field of the statement's node, not a node below it).
_FLAT = frozenset({"IDENT", "UIDENT", "ICONST", "FCONST", "SCONST", "USCONST", "BCONST", "XCONST", "PARAM",
                   "C_COMMENT", "SQL_COMMENT", "ASCII_46", "SELECT", "FROM", "WHERE", "GROUP_P", "BY", "ORDER",
                   "HAVING", "LIMIT", "OFFSET", "ALL", "DISTINCT", "AS", "ASC", "DESC", "ON", "USING", "INTO",
                   "VALUES", "SET", "RETURNING", "WITH", "WINDOW", "OVER", "PARTITION"})
# Tokens that start the next of a list of siblings (the grammar builds them flat, not nested).
_SIBLING = frozenset({"ASCII_44", "AND", "OR", "WHEN", "THEN", "ELSE"})
_OPEN = {"ASCII_40": "ASCII_41", "ASCII_91": "ASCII_93", "CASE": "END_P"}
_CLOSE = frozenset(_OPEN.values())
_LEVEL_CHARS = re.compile(r"[A-Za-z_\u0080-\uffff]+|[-+*/<>=~!@#%^&|`?:(\[]")
_BRACKET_LEVELS = 3  # a parenthesised subquery adds three nodes (sublink, statement, target)


class StatementTooDeep(ParseError):
    """A statement nested deeper than :data:`MAX_NESTING`; ``args`` are the message and the character
    offset where the nesting passed the limit (as :class:`~pglast.parser.ParseError` gives them)."""


def nesting_depth(sql: str) -> tuple[int, int]:
    """An upper estimate of how deep the parse tree of ``sql`` nests, from its tokens alone, and the
    character offset where that depth is first reached: ``(levels, offset)``.

    Each operator, cast or keyword other than a clause's (``SELECT``, ``FROM``, ``WHERE`` …) adds a level
    (a chain ``a + b + c`` nests one level per ``+``, a chain of ``UNION`` or ``JOIN`` one per keyword);
    parentheses, brackets and ``CASE … END`` add three around their content; list separators (``,``,
    ``AND``, ``OR``, ``WHEN``, ``THEN``, ``ELSE``) start a sibling, which the grammar keeps flat. Linear
    in the length of ``sql``; text the scanner cannot read (an unterminated literal) counts as flat.
    """
    # Every level counted comes from a word (a keyword), an operator character or a bracket: when even
    # three times their number is within the limit, the statement cannot be deeper, and is not scanned.
    if 3 * len(_LEVEL_CHARS.findall(sql)) <= MAX_NESTING:
        return 0, 0
    try:
        tokens = scan(sql)
    except ParseError:
        return 0, 0  # the parser will say what is wrong with it
    closers: list[str] = []
    counters = [0]
    above = 0  # the levels of every enclosing bracket (their counters and the brackets themselves)
    deepest, where = 0, 0
    for token in tokens:
        name = token.name
        if name in _OPEN:
            above += counters[-1] + _BRACKET_LEVELS
            closers.append(_OPEN[name])
            counters.append(0)
        elif name in _CLOSE:
            if closers and closers[-1] == name:
                closers.pop()
                counters.pop()
                above -= counters[-1] + _BRACKET_LEVELS
        elif name == "ASCII_59":  # ";": the next statement
            closers, counters, above = [], [0], 0
        elif name in _SIBLING:
            counters[-1] = 0
        elif name not in _FLAT:
            counters[-1] += 1
        if above + counters[-1] > deepest:
            deepest, where = above + counters[-1], token.start
    return deepest, where


@lru_cache(maxsize=256)
def _nesting(sql: str) -> tuple[int, int]:
    return nesting_depth(sql)


def check_nesting(sql: str) -> None:
    """Raise :class:`StatementTooDeep` when ``sql`` nests deeper than :data:`MAX_NESTING` levels (see
    :func:`nesting_depth`); the message says how deep and where."""
    levels, offset = _nesting(sql)
    if levels > MAX_NESTING:
        raise StatementTooDeep(f"statement nested too deep to read: about {levels:,} levels of operators and "
                               f"parentheses, more than the {MAX_NESTING:,} dbtune reads (the server's own "
                               "parser stops at a few thousand, max_stack_depth)", offset)


def parse_sql(sql: str) -> tuple[ast.RawStmt, ...]:
    """pglast's :func:`~pglast.parse_sql` after :func:`check_nesting`.

    Raises :class:`~pglast.parser.ParseError` when ``sql`` does not parse, :class:`StatementTooDeep` (a
    ParseError) when it nests too deep to be turned into a tree safely.
    """
    check_nesting(sql)
    return tuple(pglast.parse_sql(sql))


def parse_one(sql: str, node_type: type[N]) -> N:
    """The first statement of ``sql`` as a ``node_type`` node.

    Raises :class:`pglast.parser.ParseError` when ``sql`` does not parse (or nests too deep, see
    :func:`parse_sql`) and :class:`ValueError` when its first statement is of another type.
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
        text = text.removeprefix(f"CONSTRAINT {quote_ident(name)} ")
    return text
