"""SQL scripts: psql, pgbench, qgen or plain SQL files, and the annotated workload format.

How a script is read (the format given, or detected: :mod:`dbtune.workload.formats`; a qgen template is
first rewritten as a psql script; plain SQL skips the psql rules of step 1; a pgbench script's
meta-commands and ``BEGIN``/``END`` are kept as statements skipped with why):

1. psql's own lexical rules (psqlscan.l) find what the server never sees: meta-commands (a backslash
   outside quotes and comments, to the end of the line: ``\\set``, ``\\timing``, ``\\i``, ``\\c`` …) are
   dropped, ``\\g`` and its variants end a statement like ``;``; variable references ``:var``,
   ``:'var'`` and ``:"var"`` (psql, and pgbench's ``:var``) become ``$n`` parameters, numbered per
   statement in order of first use (the same name is the same number; numbers go on after the
   statement's own ``$n``). Nothing inside string literals, quoted identifiers, dollar quotes, comments or
   ``[…]`` subscripts is touched, and ``::`` is a cast.
2. pglast splits the statements with the server's parser (``pglast.parser.split``), so a ``;`` inside a
   ``BEGIN ATOMIC`` body does not end one. When some statement does not parse, the server's scanner
   splits instead, and each statement is parsed on its own: the bad ones are reported with their line
   and the parser's message, the others are kept.
3. ``-- name: <name>`` names the next statement; ``-- params: <SQL>`` after a statement gives the query
   that returns sample values for its ``$1``, ``$2`` … (a bare ``-- params: SELECT``: none);
   ``-- weight: <number>`` before a statement gives its weight in the workload (how many times it runs
   for each run of a statement of weight 1; the advisor weighs each query's cost saved by it). A weight
   that is not a positive number makes the statement an error.

See https://www.postgresql.org/docs/current/app-psql.html (Meta-Commands, SQL Interpolation) and
https://www.postgresql.org/docs/current/pgbench.html (Custom Scripts).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re
from dataclasses import dataclass, field

from pglast import parser
from pglast.parser import ParseError

from dbtune.escape import clip
from dbtune.pgsql import check_nesting
from dbtune.workload.formats import TRANSACTION_CONTROL, WorkloadFormat, detect_format, qgen_text
from dbtune.workload.model import Query, Source, SourceError
from dbtune.workload.statements import SessionPaths, explainable_text, utility_statement

# psql ends the query buffer and sends it on these meta-commands (psql's exec_command; pgbench's \aset too).
_SENDING = re.compile(r"\\(g|gx|gset|aset|gexec|gdesc|watch|crosstabview)(?![A-Za-z])")
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_\u0080-\U0010ffff]")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$")
_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.S)
_ANNOTATION = re.compile(r"--\s*(name|params|weight):\s*(.*?)\s*$")
# What the lexer stops at; everything else is skipped by the regex engine.
_SPECIAL = re.compile(r"--|/\*|::|:['\"]|:[A-Za-z0-9_\u0080-\U0010ffff]+|['\"$\\\[\]();]")


@dataclass(frozen=True)
class _Placeholder:
    start: int
    end: int
    name: str


@dataclass(frozen=True)
class _Annotation:
    offset: int
    key: str
    value: str


@dataclass
class _Lexed:
    text: str  # meta-commands blanked; same length and line breaks as the input
    placeholders: list[_Placeholder]
    annotations: list[_Annotation]
    semicolons: list[int]  # offsets of the ";" that end statements for psql
    quoted_markers: list[tuple[int, str, str]] = field(default_factory=list)  # (offset, marker, literal)
    meta_commands: list[tuple[int, str]] = field(default_factory=list)  # (offset, text) of each one blanked


# A psql variable reference written inside a string literal (qgen's `interval ':1' day`): psql leaves it
# alone, so the server gets the literal text. Not after a word character or a colon (`'12:30:00'`).
_QUOTED_MARKER = re.compile(r"(?<![\w:]):(?:[A-Za-z_]\w*|\d+)")


def _lex(text: str, fmt: WorkloadFormat = WorkloadFormat.PSQL) -> _Lexed:
    """psql's view of ``text``: blank meta-commands, find variable references and annotations. ``plain``
    text has neither (a backslash and a colon are the server's); a pgbench meta-command goes on to the
    next line after a backslash at the end of its line."""
    interpolate = fmt is not WorkloadFormat.PLAIN
    meta_commands: list[tuple[int, str]] = []
    out: list[str] | None = None  # a copy of the text, made only when a meta-command is blanked
    placeholders: list[_Placeholder] = []
    annotations: list[_Annotation] = []
    semicolons: list[int] = []
    quoted_markers: list[tuple[int, str, str]] = []
    n = len(text)
    brackets = parens = 0
    m = _SPECIAL.search(text, 0)
    while m is not None:
        i = m.start()
        token = m.group()
        end = i + len(token)
        if token == "--":
            end = text.find("\n", i)
            end = n if end < 0 else end
            note = _ANNOTATION.match(text, i, end)
            if note:
                annotations.append(_Annotation(i, note.group(1), note.group(2)))
        elif token == "/*":
            depth = 1
            while depth and end < n:
                close = text.find("*/", end)
                opening = text.find("/*", end, close if close >= 0 else n)
                if close < 0:
                    end = n
                elif opening >= 0:
                    depth, end = depth + 1, opening + 2
                else:
                    depth, end = depth - 1, close + 2
        elif token == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(text[i - 2]))
            end = _string_end(text, end, escapes)
            marker = _QUOTED_MARKER.search(text, i + 1, end - 1)
            if marker is not None:
                quoted_markers.append((marker.start(), marker.group(), text[i:end]))
        elif token == '"':
            while True:
                close = text.find('"', end)
                if close < 0:
                    end = n
                    break
                end = close + 1
                if not text.startswith('"', end):
                    break
                end += 1
        elif token == "$":
            tag = None if i > 0 and _IDENT_CHAR.match(text[i - 1]) else _DOLLAR_TAG.match(text, i)
            if tag is not None:
                close = text.find(tag.group(0), tag.end())
                end = n if close < 0 else close + len(tag.group(0))
        elif token == "\\" and interpolate:
            end = text.find("\n", i)
            end = n if end < 0 else end
            while fmt is WorkloadFormat.PGBENCH and end < n and text[i:end].rstrip(" \t\r").endswith("\\"):
                following = text.find("\n", end + 1)  # backslash-newline: the meta-command goes on
                end = n if following < 0 else following
            meta_commands.append((i, text[i:end]))
            if out is None:
                out = list(text)
            out[i:end] = [c if c == "\n" else " " for c in text[i:end]]
            if _SENDING.match(text, i):
                out[i] = ";"
                semicolons.append(i)
        elif token == "::" or token == "\\":
            pass
        elif token[0] == ":" and not interpolate:
            end = i + 1
        elif token[0] == ":":
            if brackets == 0:
                if token in (":'", ':"'):
                    close = text.find(token[1], end)
                    line_end = text.find("\n", i)
                    if close > 0 and (line_end < 0 or close < line_end):
                        placeholders.append(_Placeholder(i, close + 1, text[end:close]))
                        end = close + 1
                    else:
                        end = i + 1
                else:
                    placeholders.append(_Placeholder(i, end, token[1:]))
        elif token == "[":
            brackets += 1
        elif token == "]":
            brackets = max(0, brackets - 1)
        elif token == "(":
            parens += 1
        elif token == ")":
            parens = max(0, parens - 1)
        elif token == ";" and not parens:
            semicolons.append(i)
            brackets = 0
        m = _SPECIAL.search(text, max(end, i + 1))
    return _Lexed("".join(out) if out is not None else text, placeholders, annotations, semicolons,
                  quoted_markers, meta_commands)


def blank_meta_commands(text: str) -> str:
    """``text`` as the server gets it from psql, offsets and lines unchanged: every meta-command (a backslash
    outside quotes, identifiers, dollar quotes and comments, to the end of its line) blanked, and one that
    sends the query buffer (``\\g``, ``\\gset``, ``\\gexec`` …) turned into a ``;`` that ends the statement
    before it. A backslash inside ``"a<newline>\\b"`` or ``'…'`` is part of a name or a string, as psql's
    own lexer reads it."""
    return _lex(text).text


def _string_end(text: str, start: int, escapes: bool) -> int:
    """The offset after the closing quote of a string literal whose body starts at ``start``."""
    n = len(text)
    i = start
    while i < n:
        close = text.find("'", i)
        if close < 0:
            return n
        if escapes:
            backslashes = 0
            k = close - 1
            while k >= i and text[k] == "\\":
                backslashes += 1
                k -= 1
            if backslashes % 2:
                i = close + 1
                continue
        if text.startswith("''", close):
            i = close + 2
            continue
        return close + 1
    return n


def _probe(lexed: _Lexed) -> str:
    """The text with every variable reference replaced by ``$1`` padded to the same length, so the
    server's parser can split it and every offset stays where it was."""
    if not lexed.placeholders:
        return lexed.text
    parts: list[str] = []
    pos = 0
    for p in lexed.placeholders:
        parts.append(lexed.text[pos:p.start])
        parts.append("$1".ljust(p.end - p.start))
        pos = p.end
    parts.append(lexed.text[pos:])
    return "".join(parts)


class _Lines:
    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset)


def _skip_noise(text: str, start: int, stop: int) -> int:
    m = _LEADING_NOISE.match(text, start, stop)
    return m.end() if m else start


def _slices(probe: str, lexed: _Lexed) -> tuple[list[tuple[int, int]], bool]:
    """Statement spans of the script and whether the server's parser made them: it does when every
    statement parses; otherwise the script is cut at psql's statement ends (``;`` outside quotes,
    comments and parentheses, and ``\\g``)."""
    try:
        return [(s.start, s.stop) for s in parser.split(probe, with_parser=True, only_slices=True)], True
    except ParseError:
        pass
    spans = []
    start = 0
    for end in [*lexed.semicolons, len(lexed.text)]:
        spans.append((start, end))
        start = end + 1
    return spans, False


def _statement_text(lexed: _Lexed, start: int, stop: int) -> str:
    """The statement between ``start`` and ``stop`` with its variable references as ``$n``."""
    inside = [p for p in lexed.placeholders if start <= p.start < stop]
    if not inside:
        return lexed.text[start:stop]
    segment = lexed.text[start:stop]
    try:  # the statement's own $n come first
        taken = max((int(segment[t.start + 1:t.end + 1]) for t in parser.scan(segment) if t.name == "PARAM"),
                    default=0)
    except (ParseError, ValueError):
        taken = 0
    numbers: dict[str, int] = {}
    parts: list[str] = []
    pos = start
    for p in inside:
        number = numbers.setdefault(p.name, taken + len(numbers) + 1)
        parts.append(lexed.text[pos:p.start])
        parts.append(f"${number}")
        pos = p.end
    parts.append(lexed.text[pos:stop])
    return "".join(parts)


@dataclass
class _Piece:
    start: int
    stop: int
    text: str
    error: tuple[str, int] | None


@dataclass(frozen=True)
class ScriptStatement:
    """One statement of a script: its text, 1-based line, and its ``-- name:``/``-- params:``/``-- weight:``;
    ``skipped`` says why it is read but neither planned nor run (a pgbench meta-command, whose ``text`` it
    is, or pgbench's ``BEGIN``/``END``)."""

    text: str
    line: int
    fingerprint: str
    name: str | None = None
    params_sql: str | None = None
    warnings: tuple[str, ...] = ()  # ``label:line: message``: read, but maybe not as its author meant
    skipped: str | None = None
    weight: float | None = None


@dataclass(frozen=True)
class Script:
    """What :func:`read_script` found: the statements (skipped ones included, in line order), those that
    do not parse, and the format the script was read as."""

    statements: tuple[ScriptStatement, ...]
    errors: tuple[SourceError, ...]
    format: WorkloadFormat


def split_script(text: str, label: str,
                 fmt: WorkloadFormat | None = None) -> tuple[list[ScriptStatement], list[SourceError]]:
    """:func:`read_script`'s statements and errors."""
    script = read_script(text, label, fmt)
    return list(script.statements), list(script.errors)


def _pgbench_skip(meta: str) -> str:
    command = meta.split(None, 1)[0].lstrip("\\").lower()
    if command in ("set", "setshell"):
        why = "it sets a pgbench variable; dbtune samples the values of the statements' $n from the data"
    elif command in ("gset", "aset"):
        why = "it stores a result in pgbench variables"
    else:
        why = "it runs in pgbench, not on the server"
    return f"pgbench meta-command \\{command} skipped: {why}"


def read_script(text: str, label: str, fmt: WorkloadFormat | None = None) -> Script:
    """The statements of a psql, pgbench, qgen or plain script (see the module docstring and
    :mod:`dbtune.workload.formats`; ``fmt`` ``None``: :func:`~dbtune.workload.formats.detect_format`) and
    those that do not parse.

    ``label`` prefixes error locations (``label:line``). Errors carry the line of the error, the parser's
    message and the statement's name. A utility statement that does not parse (``DO $1``, as
    pg_stat_statements writes it) is kept, for its reader to skip as a utility statement; a psql variable
    written inside a string literal is a warning on its statement. In a pgbench script, each meta-command
    and each transaction control statement (``BEGIN``, ``END`` …) is a statement with ``skipped`` set.
    """
    detected = fmt is None
    fmt = detect_format(text) if fmt is None else fmt
    if fmt is WorkloadFormat.QGEN:
        text = qgen_text(text)  # same lines; markers as psql variables
    lexed = _lex(text, fmt)
    if detected and fmt is WorkloadFormat.PSQL and not lexed.meta_commands and not lexed.placeholders:
        fmt = WorkloadFormat.PLAIN  # nothing for psql to read: the server's SQL as it is
    probe = _probe(lexed)
    lines = _Lines(text)
    errors: list[SourceError] = []
    chunks, exact = _slices(probe, lexed)
    pieces: list[_Piece] = []
    i = 0
    while i < len(chunks):
        start, stop = chunks[i]
        start = _skip_noise(lexed.text, start, stop)
        while stop > start and lexed.text[stop - 1].isspace():
            stop -= 1
        if start >= stop:
            i += 1
            continue
        body = _statement_text(lexed, start, stop)
        error = _check(body)
        if error is not None and not exact and "end of input" in error[0]:
            # A ";" inside a BEGIN ATOMIC body: the scanner split it; join the pieces until they parse.
            for j in range(i + 1, min(len(chunks), i + 64)):
                candidate = _statement_text(lexed, start, chunks[j][1])
                if _check(candidate) is None:
                    stop, body, error, i = chunks[j][1], candidate, None, j
                    break
        pieces.append(_Piece(start, stop, body, error))
        i += 1
    names: dict[int, str] = {}
    params: dict[int, str | None] = {}
    weights: dict[int, str] = {}
    starts = [p.start for p in pieces]
    for note in lexed.annotations:
        k = bisect.bisect_right(starts, note.offset)  # the pieces that start before the comment
        if note.key == "name" and k < len(pieces):
            names[k] = note.value
        elif note.key == "weight" and k < len(pieces):
            weights[k] = note.value
        elif note.key == "params" and k > 0 and pieces[k - 1].stop <= note.offset:
            value = note.value.rstrip(";").strip()
            params[k - 1] = None if value.upper() in ("", "SELECT") else value
    found: list[ScriptStatement] = []
    for k, piece in enumerate(pieces):
        name = names.get(k)
        if piece.error is not None and utility_statement(piece.text) is None:
            message, offset = piece.error
            # Placeholders never span lines and blanked meta-commands keep theirs: lines match the source.
            line = lines.line(piece.start) + piece.text[:offset].count("\n")
            errors.append(SourceError(f"{label}:{line}", message, name))
            continue
        weight = _weight(weights[k]) if k in weights else None
        if weight is not None and weight <= 0:
            errors.append(SourceError(f"{label}:{lines.line(piece.start)}",
                                      f"-- weight: must be a positive number, got {clip(weights[k], 40)!r}", name))
            continue
        warnings = tuple(
            f"{label}:{lines.line(offset)}: {marker} inside the string literal {clip(literal, 60)} is not a psql "
            "variable (psql substitutes variables only outside quotes): the server gets the text as written"
            for offset, marker, literal in lexed.quoted_markers if piece.start <= offset < piece.stop)
        fingerprint = parser.fingerprint(piece.text) if piece.error is None else _text_hash(piece.text)
        body = explainable_text(piece.text) if fmt is WorkloadFormat.QGEN else piece.text  # date $1: $1::date
        utility = utility_statement(piece.text) if fmt is WorkloadFormat.PGBENCH else None
        skipped = (f"{utility} skipped: pgbench's transaction control; dbtune plans and runs each statement on "
                   "its own" if utility in TRANSACTION_CONTROL else None)
        found.append(ScriptStatement(body, lines.line(piece.start), fingerprint, name, params.get(k),
                                     warnings, skipped, weight))
    if fmt is WorkloadFormat.PGBENCH:
        found += [ScriptStatement(meta.strip(), lines.line(offset), _text_hash(meta), skipped=_pgbench_skip(meta))
                  for offset, meta in lexed.meta_commands]
        found.sort(key=lambda s: s.line)
    errors.sort(key=lambda e: _sort_key(e.location))
    return Script(tuple(found), tuple(errors), fmt)


def _weight(text: str) -> float:
    """A ``-- weight:`` value as a number; ``-1`` (refused) when it is not a finite number."""
    try:
        value = float(text)
    except ValueError:
        return -1.0
    return value if math.isfinite(value) else -1.0


def _text_hash(text: str) -> str:
    """A stand-in fingerprint for text pglast cannot fingerprint: its words, hashed."""
    return hashlib.sha1(" ".join(text.split()).encode()).hexdigest()[:16]


def _sort_key(location: str) -> tuple[str, int]:
    head, _, line = location.rpartition(":")
    return (head, int(line) if line.isdigit() else 0)


def _location(exc: ParseError, default: int) -> int:
    """The character offset of a ParseError (its end of input when the parser gives none)."""
    where = exc.args[1] if len(exc.args) > 1 else None
    return int(where) if isinstance(where, int) else default


def _check(body: str) -> tuple[str, int] | None:
    """None when ``body`` parses, else the parser's message and offset (a statement nested too deep to
    read safely is an error too, see :func:`dbtune.pgsql.check_nesting`)."""
    try:
        check_nesting(body)
        parser.fingerprint(body)
    except ParseError as exc:
        return str(exc.args[0]), _location(exc, len(body))
    return None


def parse_script(text: str, label: str,
                 fmt: WorkloadFormat | None = None) -> tuple[list[Query], list[SourceError], WorkloadFormat]:
    """:func:`read_script` as :class:`Query` objects (source ``sql``, location ``label:line``), and the
    format the script was read as."""
    script = read_script(text, label, fmt)
    paths = SessionPaths()  # the script is one session: its SET search_path statements apply to what follows
    queries = []
    for s in script.statements:
        relations, search_path = paths.resolve(s.text) if s.skipped is None else ((), None)
        queries.append(Query(text=s.text, source=Source.SQL, location=f"{label}:{s.line}", fingerprint=s.fingerprint,
                             name=s.name, params_sql=s.params_sql, weight=s.weight, warnings=s.warnings,
                             relations=relations,
                             search_path=search_path, skipped=s.skipped))
    return queries, list(script.errors), script.format
