"""Escaping text that comes from the catalog, a report or a config before it is written where a character
could change meaning: a ``--`` or ``#`` comment line, a table cell, a terminal.

A relation may be called ``"y<newline>DROP TABLE victim; --"`` (a quoted identifier may hold any character
but NUL), so a name is never written raw into a comment, and no control character from a name reaches a
terminal (an ANSI escape sequence could rewrite what the reader sees). Escaped are every C0 and C1 control
character and DEL (Unicode category ``Cc``), the line and paragraph separators U+2028/U+2029, and the
bidirectional controls (U+061C, U+200E/U+200F, U+202A–U+202E, U+2066–U+2069) that reorder what is shown
("Trojan Source", CVE-2021-42574). Escapes are Python's: ``\\n``, ``\\r``, ``\\t``, ``\\xNN``, ``\\uNNNN``.
"""

from __future__ import annotations

import re

_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


# Unicode category Cc is exactly U+0000–U+001F and U+007F–U+009F; Zl and Zp are U+2028 and U+2029.
_UNSAFE_CHARS = "".join(chr(c) for c in (*range(0x20), *range(0x7F, 0xA0))) + "\u2028\u2029" + "".join(sorted(_BIDI))
_UNSAFE = re.compile("[" + re.escape(_UNSAFE_CHARS) + "]")
_UNSAFE_OR_BACKSLASH = re.compile("[\\\\" + re.escape(_UNSAFE_CHARS) + "]")
_UNSAFE_BUT_LAYOUT = re.compile("[" + re.escape(_UNSAFE_CHARS.replace("\n", "").replace("\t", "")) + "]")


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` on one line, unambiguously: backslashes doubled and every unsafe character escaped, so a
    reader tells a name holding a newline (shown ``a\\nb``) from one holding a backslash and an ``n``
    (shown ``a\\\\nb``). For names in comments and table cells."""
    return _UNSAFE_OR_BACKSLASH.sub(lambda m: _escape(m.group(0)), text)


def one_line(text: str) -> str:
    """``text`` with every unsafe character escaped, newlines included, backslashes left alone: an
    ``error:`` line or a progress line, which must stay one line."""
    return _UNSAFE.sub(lambda m: _escape(m.group(0)), text)


def terminal_safe(text: str) -> str:
    """``text`` with every unsafe character escaped but the newlines and tabs of its layout: the last
    guard before a whole report reaches a terminal or a file."""
    return _UNSAFE_BUT_LAYOUT.sub(lambda m: _escape(m.group(0)), text)


def sql_comment(text: str) -> str:
    """A ``--`` comment line saying ``text``: it ends where it is meant to, whatever ``text`` holds."""
    return "-- " + printable(text)


def python_comment(text: str) -> str:
    """A ``#`` comment line saying ``text`` (for generated Python: Alembic revisions)."""
    return "# " + printable(text)


def display_sql(sql: str) -> str:
    """SQL for reading in a report: its layout (the white space between tokens) kept, and every unsafe
    character inside a token (a quoted identifier or string holding a newline, an escape sequence)
    escaped, so no line of it is anything but the statement's own. Pasted back, an escaped name names
    another object, which the server then refuses; ``dbtune migrate generate`` writes the exact DDL."""
    from pglast.parser import ParseError, scan

    try:
        tokens = scan(sql)
    except ParseError:
        return "\n".join(one_line(line) for line in sql.split("\n"))
    out, at = [], 0
    for token in tokens:
        out.append(sql[at:token.start])
        out.append(one_line(sql[token.start:token.end + 1]))
        at = token.end + 1
    out.append(one_line(sql[at:]) if sql[at:].strip() else sql[at:])
    return "".join(out)


# The longest message a text report prints in full (characters); the JSON report keeps every message whole.
MESSAGE_CHARS = 500


def clip(text: str, limit: int = MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out: a finding's message quoting a
    1.6 MB filter stays a few lines in a table cell (and wrapping it stays linear)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters; the JSON report has them all)"
