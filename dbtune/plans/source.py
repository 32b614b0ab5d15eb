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

from dbtune.db.connect import ConnectionSettings
from dbtune.errors import UsageError
from dbtune.plans.collect import PlanQuery, explain_session
from dbtune.workload import load_queries
from dbtune.workload.load import from_pg_stat_statements


def workload_queries(settings: ConnectionSettings, *, path: Path | str | None = None,
                     top: int | None = None, workload_format: str | None = None) -> list[PlanQuery]:
    """The queries of the workload file ``path`` (read as a ``workload_format`` script: ``psql``,
    ``pgbench``, ``qgen``, ``plain``; detected when ``None``), or the ``top`` statements of
    pg_stat_statements by total execution time that read user tables (named ``pgss:<queryid>``). A
    pgbench meta-command or ``BEGIN``/``END`` comes back with its ``skipped`` reason.

    Raises :class:`~dbtune.errors.UsageError` for a file that is missing or does not parse, an unknown
    ``workload_format``, ``top < 1``,
    or pg_stat_statements not created in the database; :class:`~dbtune.errors.ServerRefused` when the
    server refuses to read it.
    """
    if path is not None:
        loaded = load_queries(path, workload_format=workload_format)
        if not loaded.queries and not loaded.errors:
            raise UsageError(f"{'<stdin>' if str(path) == '-' else path}: no SQL statement in the file")
        queries = [PlanQuery(q.text, q.name, q.params_sql, q.location, notes=q.warnings, skipped=q.skipped,
                             search_path=q.search_path) for q in loaded.queries]
        errors = [PlanQuery("", e.name, None, e.location, e.message) for e in loaded.errors]
        return sorted(queries + errors, key=lambda q: _line(q.location))
    assert top is not None, "give a workload path or top"
    if top < 1:
        raise UsageError(f"--from-pg-stat-statements must be at least 1, got {top}")
    with explain_session(settings) as conn:  # read-only, statement_timeout, only SELECTs sent
        found = from_pg_stat_statements(conn, top)  # statements on user tables only
    return [PlanQuery(q.sql, q.name, q.params_sql) for q in found]


def _line(location: str | None) -> int:
    tail = (location or "").rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0
