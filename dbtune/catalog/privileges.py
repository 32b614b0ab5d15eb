"""The privilege a server's refusal names, as dbtune's skips name it.

PostgreSQL refuses a statement on an object the role may not use with SQLSTATE 42501 and
``permission denied for <kind> <name>`` (``schema app``, ``table orders``, ``function pgstatindex`` …);
the grant that would allow it is ``USAGE`` on a schema, ``EXECUTE`` on a function, ``CONNECT`` on a
database and ``SELECT`` on a relation.
See https://www.postgresql.org/docs/current/ddl-priv.html and
https://www.postgresql.org/docs/current/errcodes-appendix.html.
"""

from __future__ import annotations

import re

_DENIED = re.compile(r"permission denied for (schema|table|view|materialized view|sequence|function|relation"
                     r"|database|foreign table) (\"(?:[^\"]|\"\")+\"|[^\s:]+)")
_GRANT = {"schema": "USAGE", "function": "EXECUTE", "database": "CONNECT"}


def lacked_privilege(message: str, fallback: str | None = None) -> str | None:
    """The grant a refusal's ``message`` names (``"USAGE on schema app"``, ``"SELECT on table orders"``,
    ``"EXECUTE on function pgstatindex"``), or ``fallback`` when the message names none."""
    match = _DENIED.search(message)
    if match is None:
        return fallback
    kind, name = match.groups()
    return f"{_GRANT.get(kind, 'SELECT')} on {kind} {name}"
