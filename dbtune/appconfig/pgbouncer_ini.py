"""``pgbouncer.ini`` as a :class:`~dbtune.appconfig.model.Pooler`: its ``[pgbouncer]`` settings, its
``[databases]`` connection strings and ``[users]`` settings, and PgBouncer's own ``%include`` directive
(a path relative to the including file's folder here), parsed by :mod:`configparser`.

Sections other than ``databases``, ``users``, ``peers`` and ``pgbouncer`` are refused, as PgBouncer
refuses them, with their file and line (https://www.pgbouncer.org/config.html).
"""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from dbtune.appconfig.model import Origin, Pooler
from dbtune.appconfig.pgbouncer_settings import apply_setting
from dbtune.appconfig.values import read_source
from dbtune.errors import UsageError

SECTIONS = ("databases", "users", "peers", "pgbouncer")
_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]*)\]")
_INCLUDE = re.compile(r"^\s*%include\s+(?P<path>\S.*?)\s*$")
_KEY = re.compile(r"^\s*(?P<key>[^=;#\s\[][^=]*?)\s*=")
# key=value pairs of a [databases] connection string, values bare or in single quotes.
_PAIR = re.compile(r"(?P<key>\w+)\s*=\s*(?P<value>'(?:[^'\\]|\\.|'')*'|\S*)")
SECRET_KEYS = frozenset({"password", "auth_password"})


def _lines(path: Path, shown: str, seen: tuple[Path, ...]) -> list[tuple[str, Origin]]:
    """The file's lines with ``%include`` expanded, each with the file and line it came from."""
    text = read_source(path, shown)
    out: list[tuple[str, Origin]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        m = _INCLUDE.match(line)
        if m is None:
            out.append((line, Origin(shown, n)))
            continue
        included = (path.parent / m.group("path")).resolve()
        if included in seen:
            raise UsageError(f"{shown}:{n}: %include loops back to {m.group('path')}")
        out += _lines(included, str(Path(shown).parent / m.group("path")), (*seen, included))
    return out


def parse_connection_string(text: str) -> dict[str, str]:
    """A ``[databases]`` value (``host=postgres port=5432 dbname=whatsapp pool_size=20``) as a mapping,
    without its password."""
    out = {}
    for m in _PAIR.finditer(text):
        value = m.group("value")
        if value.startswith("'") and value.endswith("'") and len(value) >= 2:
            value = value[1:-1].replace("''", "'").replace("\\'", "'")
        if m.group("key").lower() not in SECRET_KEYS:
            out[m.group("key")] = value
    return out


def read_pgbouncer_ini(path: Path, shown: str) -> Pooler:
    """Read ``path`` (shown in messages as ``shown``). Raises :class:`UsageError` naming the file and line of
    an unknown section, a line that is not ``key = value``, a repeated key or section, or a value PgBouncer
    would refuse."""
    lines = _lines(path, shown, (path.resolve(),))
    section_of: list[str | None] = []
    current: str | None = None
    key_origins: dict[tuple[str, str], Origin] = {}
    for line, origin in lines:
        m = _SECTION.match(line)
        if m:
            current = m.group("name").strip().lower()
            if current not in SECTIONS:
                raise UsageError(f"{origin.file}:{origin.line}: unknown section [{m.group('name')}] (PgBouncer's are "
                                 f"{', '.join(f'[{s}]' for s in SECTIONS)})")
        else:
            k = _KEY.match(line)
            if k and current is not None:
                key_origins[(current, k.group("key").strip().lower())] = origin
        section_of.append(current)
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",), comment_prefixes=(";", "#"),
                                       inline_comment_prefixes=(";", "#"), strict=True, empty_lines_in_values=False)
    parser.optionxform = str.lower  # type: ignore[assignment,method-assign]
    try:
        # PgBouncer has no continuation lines: an indented line is a line of its own.
        parser.read_string("\n".join(line.lstrip() for line, _ in lines), source=shown)
    except configparser.MissingSectionHeaderError as exc:
        raise UsageError(f"{_at(lines, exc.lineno)}: a setting before any [section]") from None
    except configparser.ParsingError as exc:
        raise UsageError(f"{_at(lines, exc.errors[0][0])}: not a 'key = value' line") from None
    except configparser.DuplicateSectionError as exc:
        raise UsageError(f"{_at(lines, exc.lineno or 0)}: section [{exc.section}] appears twice") from None
    except configparser.DuplicateOptionError as exc:
        raise UsageError(f"{_at(lines, exc.lineno or 0)}: {exc.option} is set twice in [{exc.section}]") from None
    values: dict[str, object] = {}
    origins: dict[str, Origin] = {}
    if parser.has_section("pgbouncer"):
        for key, value in parser.items("pgbouncer"):
            o = key_origins.get(("pgbouncer", key), Origin(shown))
            apply_setting(key, value, Origin(o.file, o.line, f"pgbouncer.{key}"), values, origins)
    databases = {name: parse_connection_string(value) for name, value in parser.items("databases")} \
        if parser.has_section("databases") else {}
    users = {name: parse_connection_string(value) for name, value in parser.items("users")} \
        if parser.has_section("users") else {}
    return Pooler(name="pgbouncer", origin=Origin(shown), databases=databases, users=users, origins=origins,
                  **values)  # type: ignore[arg-type]


def _at(lines: list[tuple[str, Origin]], lineno: int) -> str:
    """``file:line`` of line ``lineno`` (1-based) of the expanded text."""
    if 1 <= lineno <= len(lines):
        o = lines[lineno - 1][1]
        return f"{o.file}:{o.line}"
    return lines[-1][1].file if lines else "pgbouncer.ini"


def looks_like_pgbouncer_ini(text: str) -> bool:
    """Content detection: an INI text with a ``[pgbouncer]`` section header."""
    return any((m := _SECTION.match(line)) and m.group("name").strip().lower() == "pgbouncer"
               for line in text.splitlines())
