"""Split SQL text into statements with their lines and pglast nodes, surviving statements that do not parse.

The whole text is parsed once with pglast (PostgreSQL's own parser, so statements are split exactly as the
server would, ``BEGIN ATOMIC`` bodies included). When any statement does not parse, the text is split
again on the ``;`` tokens of PostgreSQL's scanner and each piece is parsed on its own, so one bad statement
gives one error and the others are still linted. psql meta-commands (``\\set``, ``\\connect`` …) are
blanked first by the workload reader's psql lexer (:func:`dbtune.workload.sqlfile.blank_meta_commands`):
psql runs them, the server never sees them; one that sends the query buffer (``\\g``, ``\\gset``,
``\\gexec`` …) ends the statement before it, as a ``;`` would.
"""

from __future__ import annotations

from pglast.parser import ParseError, scan

from dbtune.migrate.statements import RawStatement
from dbtune.pgsql import parse_sql
from dbtune.workload.sqlfile import blank_meta_commands

__all__ = ["blank_meta_commands", "split_statements"]

_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _statement(text: str, start: int, end: int, *, node: object = None, error: str | None = None,
               error_at: int | None = None) -> RawStatement:
    sql = text[start:end]
    line = _line(text, start)
    return RawStatement(sql=sql, line=line, end_line=line + sql.count("\n"), node=node,  # type: ignore[arg-type]
                        error=error, error_line=None if error_at is None else _line(text, error_at),
                        start=start, end=end)


def _scanner_pieces(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` character spans of the statements, split on ``;`` tokens, comments left out.
    Raises :class:`ParseError` when even the scanner fails (an unterminated quoted string or comment)."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    last_end = 0
    for token in scan(text):
        if token.name == "ASCII_59":  # ';'
            if start is not None:
                spans.append((start, last_end))
            start = None
        elif token.name not in _COMMENTS:
            if start is None:
                start = token.start
            last_end = token.end + 1
    if start is not None:
        spans.append((start, last_end))
    return spans


def split_statements(text: str) -> list[RawStatement]:
    """The statements of ``text`` in order. A statement that does not parse has ``node=None`` and the
    parser's message and line in ``error``/``error_line``; nothing is raised."""
    text = blank_meta_commands(text)
    try:
        raws = parse_sql(text)
    except ParseError:
        pass
    else:
        out = []
        for raw in raws:
            start = raw.stmt_location or 0
            end = start + raw.stmt_len if raw.stmt_len else len(text)
            piece = text[start:end].rstrip()
            out.append(_statement(text, start, start + len(piece), node=raw.stmt))
        return out
    try:
        spans = _scanner_pieces(text)
    except ParseError as exc:
        message, at = _error(exc)
        start = len(text) - len(text.lstrip())
        return [_statement(text, start, len(text.rstrip()), error=message, error_at=at)]
    out = []
    for start, end in spans:
        piece = text[start:end]
        try:
            nodes = parse_sql(piece)
        except ParseError as exc:
            message, at = _error(exc)
            out.append(_statement(text, start, end, error=message, error_at=None if at is None else start + at))
            continue
        for raw in nodes:
            out.append(_statement(text, start, end, node=raw.stmt))
    return out


def _error(exc: ParseError) -> tuple[str, int | None]:
    """The parser's message and the character offset it points at (if any)."""
    message = str(exc.args[0]) if exc.args else str(exc)
    at = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else None
    return message, at
