"""Session settings an application's code sends on its connections: a JavaScript/TypeScript module (the
guide's ``database.js``) whose SQL string literals hold a ``SET`` (``prisma.$executeRaw`SET lock_timeout TO
'30s';```, ``client.query("SET statement_timeout = 5000")``).

Every string literal (quotes or backticks) that starts with ``SET`` is parsed by PostgreSQL's grammar
(pglast); only a ``VariableSetStmt`` counts, so prose that happens to start with "set" is not taken for
SQL. Each becomes a :class:`~dbtune.appconfig.model.SessionFeature` of the ``app`` pool: behind PgBouncer in
transaction mode such a setting applies to whichever server connection ran it
(https://www.pgbouncer.org/features.html).
"""

from __future__ import annotations

import re

import pglast
from pglast import ast

from dbtune.appconfig.model import Origin, Pool, SessionFeature
from dbtune.appconfig.values import PoolBuilder

SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")
_LITERAL = re.compile(r"""(?P<q>[`'"])(?P<body>\s*SET\s(?:\\.|(?!(?P=q)).)*)(?P=q)""", re.IGNORECASE | re.DOTALL)


def read_connect_hooks(text: str, shown: str) -> list[Pool]:
    """The ``SET`` statements in a module's string literals, as session features of the ``app`` pool (an
    empty list when there are none)."""
    b = PoolBuilder("app", Origin(shown))
    for m in _LITERAL.finditer(text):
        body = m.group("body").strip()
        sql = re.sub(r"\$\{[^}]*\}", "0", body)  # a template's ${…} parsed as a placeholder, shown as written
        try:
            statements = pglast.parse_sql(sql)
        except pglast.parser.ParseError:
            continue
        line = text.count("\n", 0, m.start()) + 1
        for raw in statements:
            if isinstance(raw.stmt, ast.VariableSetStmt):
                b.features.append(SessionFeature("set", " ".join(body.split()).rstrip(";"),
                                                 Origin(shown, line, raw.stmt.name)))
    return [b.build()] if b.features else []
