"""The workload file formats of the common tools, and telling them apart.

- ``psql``: a psql script (meta-commands dropped, ``:var`` → ``$n``), see
  https://www.postgresql.org/docs/current/app-psql.html.
- ``pgbench``: a ``pgbench -f`` script: psql's rules, a meta-command (``\\set``, ``\\sleep``,
  ``\\setshell`` …, continued over a backslash-newline) and the transaction control pgbench wraps around
  its statements (``BEGIN``, ``END``, ``COMMIT`` …) are skipped, each with why; see
  https://www.postgresql.org/docs/current/pgbench.html (Custom Scripts).
- ``qgen``: a TPC-H qgen template: the directive lines (``:x``, ``:o``, ``:n 10`` …) are stripped, the
  stream marker ``:s`` is stream 0, and the substitution markers ``:1``, ``:2`` … become ``$n`` parameters,
  inside string literals too (qgen substitutes text: ``date ':1'`` is ``$1::date``, ``'%:1%'`` is
  ``'%' || $1 || '%'``).
- ``plain``: SQL as the server reads it: a backslash or a colon is the server's.

:func:`detect_format` picks one when the user did not.
"""

from __future__ import annotations

import re
from enum import StrEnum

from pglast.parser import ParseError, scan


class WorkloadFormat(StrEnum):
    """How a workload script is read (``--workload-format``)."""

    PSQL = "psql"
    PGBENCH = "pgbench"
    QGEN = "qgen"
    PLAIN = "plain"


# A qgen directive alone on its line (qgen's :b :c :d :e :n :o :q :s :x, with an optional argument).
QGEN_DIRECTIVE = re.compile(r"(?m)^[ \t]*:[bcdenoqsx](?:[ \t]+-?\d+)?[ \t]*\r?$")
_STREAM = re.compile(r"(?<=[A-Za-z0-9_]):s(?![A-Za-z0-9_])")
_MARKER = re.compile(r":(\d+)")
_META = re.compile(r"(?m)^[ \t]*\\([A-Za-z]+)")
# Meta-commands only pgbench has (psql has \set and \gset too, with another meaning of \set's value), and
# all of pgbench's: a script with any other meta-command (\timing, \i, \c …) is psql's.
_PGBENCH_ONLY = frozenset({"sleep", "setshell", "shell", "aset", "startpipeline", "syncpipeline", "endpipeline"})
_PGBENCH_ALL = _PGBENCH_ONLY | {"set", "gset", "if", "elif", "else", "endif"}
_PSQL_QUOTED_VARIABLE = re.compile(r"(?<!:):['\"][A-Za-z_]")
# \set with an expression pgbench evaluates (a function call, arithmetic on a variable); psql keeps text.
_PGBENCH_SET = re.compile(r"(?m)^[ \t]*\\set[ \t]+\w+[ \t]+.*(?:\w[ \t]*\(|:\w+[ \t]*[-+*/%]|[-+*/%][ \t]*:\w)")

# What pgbench's scripts wrap their statements in: the benchmark runs each statement on its own.
TRANSACTION_CONTROL = frozenset({"BEGIN", "END", "COMMIT", "ROLLBACK", "START", "ABORT"})


def detect_format(text: str) -> WorkloadFormat:
    """The format of a workload script: ``qgen`` when a line holds a qgen directive alone (``:x``),
    ``pgbench`` when a meta-command only pgbench has (``\\sleep``, ``\\setshell``, ``\\aset``,
    ``\\startpipeline`` …) or a ``\\set`` with an expression (``\\set aid random(1, 100000 * :scale)``)
    appears and nothing only psql has (another meta-command, such as ``\\timing`` or ``\\i``; a quoted
    variable ``:'name'``), else ``psql`` (the script reader calls it ``plain`` when psql's lexer finds
    neither a meta-command nor a variable). A guess from the text: ``--workload-format`` overrides it."""
    if QGEN_DIRECTIVE.search(text):
        return WorkloadFormat.QGEN
    metas = {m.group(1).lower() for m in _META.finditer(text)}
    psql_only = bool(metas - _PGBENCH_ALL) or _PSQL_QUOTED_VARIABLE.search(text) is not None
    if not psql_only and (metas & _PGBENCH_ONLY or _PGBENCH_SET.search(text)):
        return WorkloadFormat.PGBENCH
    return WorkloadFormat.PSQL


def qgen_text(text: str) -> str:
    """A qgen template as a psql script with the same lines: the directive lines blanked, ``:s`` written
    ``0``, and every marker inside a plain string literal taken out of it as a psql variable (``':1'`` →
    ``:1``; ``'%:1%'`` → ``('%' || :1 || '%')``), which the script reader then numbers as ``$n``. A text
    the server's scanner cannot read keeps its literals."""
    text = _STREAM.sub("0", QGEN_DIRECTIVE.sub(lambda m: " " * len(m.group()), text))
    try:
        tokens = scan(text)
    except ParseError:
        return text
    parts: list[str] = []
    pos = 0
    for token in tokens:
        literal = text[token.start:token.end + 1]
        if token.name != "SCONST" or not literal.startswith("'") or "\n" in literal or not _MARKER.search(literal):
            continue
        pieces = []
        for k, piece in enumerate(_MARKER.split(literal[1:-1].replace("''", "'"))):
            if k % 2:
                pieces.append(f":{piece}")
            elif piece:
                pieces.append("'" + piece.replace("'", "''") + "'")
        parts += [text[pos:token.start], pieces[0] if len(pieces) == 1 else f"({' || '.join(pieces)})"]
        pos = token.end + 1
    return "".join([*parts, text[pos:]])
