"""Identifier quoting with PostgreSQL's own rules (``quote_ident``).

An identifier is left bare only when it is all lower-case letters, digits, ``_`` and ``$``, starts with a
letter or ``_``, and is not a keyword that needs quoting; otherwise it is double-quoted with embedded
quotes doubled. See https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS.
"""

from __future__ import annotations

import re

from pglast import keywords

# PostgreSQL keeps NAMEDATALEN - 1 = 63 bytes of an identifier and truncates a longer one (with a NOTICE), on
# a character boundary: https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS
MAX_IDENTIFIER_BYTES = 63

_BARE = re.compile(r"^[a-z_][a-z0-9_$]*$")
_NEEDS_QUOTES = (keywords.RESERVED_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS
                 | keywords.COL_NAME_KEYWORDS)


def quote_ident(name: str) -> str:
    """Quote ``name`` exactly as PostgreSQL's ``quote_ident()`` would."""
    if _BARE.match(name) and name not in _NEEDS_QUOTES:
        return name
    return '"' + name.replace('"', '""') + '"'


def truncated(name: str) -> str:
    """``name`` as PostgreSQL stores it: cut to at most 63 bytes (UTF-8) without splitting a character."""
    return name.encode()[:MAX_IDENTIFIER_BYTES].decode(errors="ignore")


def identifier_problem(name: str) -> str | None:
    """Why ``name`` cannot be used as one PostgreSQL identifier exactly as written (empty, holds a NUL, or
    over 63 bytes, naming what the server would truncate it to), or ``None``."""
    if not name:
        return "is empty"
    if "\x00" in name:
        return "holds a NUL character"
    size = len(name.encode())
    if size > MAX_IDENTIFIER_BYTES:
        return (f"is {size} bytes; PostgreSQL keeps {MAX_IDENTIFIER_BYTES} and would truncate it to "
                f"{truncated(name)!r}, so two such names may become one: use at most {MAX_IDENTIFIER_BYTES} bytes")
    return None


def qualified(schema: str, name: str) -> str:
    """``schema.name`` with each part quoted as needed."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def quote_literal(value: str) -> str:
    """A SQL string literal, as PostgreSQL's ``quote_literal()`` writes it: ``'it''s'``, and ``E'a\\\\b'``
    when the value holds a backslash, so it reads the same whatever ``standard_conforming_strings`` is."""
    if "\\" in value:
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return "'" + value.replace("'", "''") + "'"
