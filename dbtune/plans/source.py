"""Where the queries to explain come from: a workload file or pg_stat_statements.

:func:`workload_queries` is the one place that reads a workload, through :mod:`dbtune.workload`: a
``.sql`` file or script, a server log (stderr, csvlog, jsonlog) or standard input (``-``). A statement that
does not parse comes back as a query carrying its ``path:line`` and the parser's message, so the run
reports it and goes on.

From pg_stat_statements only the application's statements are wanted: statements that read no relation
at all (``SELECT 1``, ``SET``-like function calls) or only system catalogs and views (``pg_catalog``,
``information_schema``, ``pg_*`` names in any schema, among them dbtune's own catalog queries and reads of
``pg_stat_statements`` itself) are passed over, so ``top`` counts statements on user tables.
"""

from __future__ import annotations

from pathlib import Path

import pglast
from pglast import ast
from pglast.parser import ParseError

from dbtune.bench.workload import from_pg_stat_statements
from dbtune.db.connect import ConnectionSettings
from dbtune.errors import UsageError
from dbtune.plans.collect import PlanQuery, explain_session
from dbtune.workload import load_queries

# The bench reader returns at most 1000 statements by total_exec_time; ask for all of them and keep the first
# ``top`` that read user tables.
PGSS_SCAN = 1000
_SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})


def workload_queries(settings: ConnectionSettings, *, path: Path | str | None = None,
                     top: int | None = None) -> list[PlanQuery]:
    """The queries of the workload file ``path``, or the ``top`` statements of pg_stat_statements by
    total execution time that read user tables (named ``pgss:<queryid>``).

    Raises :class:`~dbtune.errors.UsageError` for a file that is missing or does not parse, ``top < 1``,
    or pg_stat_statements not created in the database; :class:`~dbtune.errors.ServerRefused` when the
    server refuses to read it.
    """
    if path is not None:
        loaded = load_queries(path)
        if not loaded.queries and not loaded.errors:
            raise UsageError(f"{'<stdin>' if str(path) == '-' else path}: no SQL statement in the file")
        queries = [PlanQuery(q.text, q.name, q.params_sql, q.location) for q in loaded.queries]
        errors = [PlanQuery("", e.name, None, e.location, e.message) for e in loaded.errors]
        return sorted(queries + errors, key=lambda q: _line(q.location))
    assert top is not None, "give a workload path or top"
    if top < 1:
        raise UsageError(f"--from-pg-stat-statements must be at least 1, got {top}")
    with explain_session(settings) as conn:  # read-only, statement_timeout, only SELECTs sent
        found = [q for q in from_pg_stat_statements(conn, PGSS_SCAN) if reads_user_relations(q.sql)]
    return [PlanQuery(q.sql, q.name, q.params_sql) for q in found[:top]]


def _line(location: str | None) -> int:
    tail = (location or "").rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def reads_user_relations(sql: str) -> bool:
    """Whether ``sql`` names a relation outside the system schemas (a text pglast cannot parse counts)."""
    try:
        tree = pglast.parse_sql(sql)
    except ParseError:
        return True
    ctes: set[str] = set()
    names: list[ast.RangeVar] = []

    def visit(node: object) -> None:
        if isinstance(node, ast.RangeVar):
            names.append(node)
        elif isinstance(node, ast.CommonTableExpr) and node.ctename:
            ctes.add(node.ctename)
        if isinstance(node, ast.Node):
            for attr in getattr(type(node), "__slots__", ()):
                visit(getattr(node, attr, None))
        elif isinstance(node, tuple | list):
            for item in node:
                visit(item)

    visit(tree)
    for rv in names:
        name = rv.relname or ""
        if name.startswith("pg_") or rv.schemaname in _SYSTEM_SCHEMAS or (not rv.schemaname and name in ctes):
            continue  # a system catalog or view (pg_stat_statements lives in its extension's schema), a CTE
        return True
    return False
