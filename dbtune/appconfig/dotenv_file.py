"""``.env`` files, parsed by python-dotenv's own parser (``dotenv.parser.parse_stream``, the parser behind
``dotenv_values``), which keeps each binding's line: ``KEY=value``, ``export KEY=value``, quoted and
multi-line values, ``#`` comments (https://github.com/theskumar/python-dotenv#file-format).

Values are taken as written: no ``${VAR}`` expansion from the machine's environment, so what is read does
not depend on where dbtune runs.
"""

from __future__ import annotations

import io

from dotenv.parser import parse_stream

from dbtune.appconfig.environment import Variable
from dbtune.appconfig.model import Origin
from dbtune.errors import UsageError


def parse_dotenv(text: str, shown: str) -> list[Variable]:
    """The variables of a ``.env`` text, each with its line. Raises :class:`UsageError` naming
    ``shown:line`` for a line python-dotenv cannot parse; the line itself is not repeated (it may hold a
    password)."""
    out = []
    for binding in parse_stream(io.StringIO(text)):
        line = binding.original.line
        if binding.error:
            raise UsageError(f"{shown}:{line}: not a KEY=value line (a .env line is KEY=value, "
                             "export KEY=value or a # comment)")
        if binding.key is not None and binding.value is not None:
            out.append(Variable(binding.key, binding.value, Origin(shown, line, binding.key)))
    return out


def looks_like_dotenv(text: str) -> bool:
    """Content detection: every binding parses and at least one is a database or pool variable."""
    from dbtune.appconfig import hikari
    from dbtune.appconfig.environment import URL_NAMES

    try:
        variables = parse_dotenv(text, "")
    except UsageError:
        return False
    return any(v.name in URL_NAMES or v.name.startswith(("DATABASE_", "PG")) or hikari.is_hikari_key(v.name)
               for v in variables)
