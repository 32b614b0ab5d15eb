"""The top statements of pg_stat_statements.

The view lives in the schema the extension was created in; its columns changed with the extension's
version, so the query is chosen by the columns present: ``total_exec_time``, ``mean_exec_time``, ``calls``
and ``rows`` from 1.8 (PostgreSQL 13), ``toplevel`` from 1.9 (PostgreSQL 14). Constants are already
normalised to ``$n`` in its texts. See https://www.postgresql.org/docs/current/pgstatstatements.html.
"""

from __future__ import annotations

import psycopg
from pglast import parser
from pglast.parser import ParseError

from dbtune.db.connect import MARKER, ConnectionSettings, connect
from dbtune.errors import ServerRefused, UsageError
from dbtune.sqlnames import quote_ident
from dbtune.workload.model import Query, Source, group_by_fingerprint
from dbtune.workload.statements import SessionPaths, explainable_text, reads_user_relations, statement_kind

PGSS_LOCATION = """
-- The schema holding the pg_stat_statements view in this database, if the extension is created.
SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

PGSS_COLUMNS = """
-- The columns of the pg_stat_statements view (total_exec_time from 1.8 / PG13, toplevel from 1.9 / PG14).
SELECT a.attname FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %s::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped
"""

# Statements of the current database by total execution time (ms), one row per queryid (summed over
# roles, and over top-level and nested executions where both are counted), leaving out the entries whose
# text carries dbtune's marker: pg_stat_statements keeps one entry per role, database, queryid and level,
# each with the first text it saw, so an application's entry keeps its own text and its own counts.
# {toplevel} is empty for pg_stat_statements 1.8 (PostgreSQL 13), which has no toplevel column and tracks
# nested statements only with pg_stat_statements.track = all.
PGSS_TOP = """
-- Statements of the current database by total execution time, one row per queryid, dbtune's own left out.
SELECT s.queryid, min(s.query) AS query, sum(s.calls)::bigint AS calls, sum(s.total_exec_time) AS total_ms,
       sum(s.rows)::bigint AS rows
FROM {view} s
WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
  AND pg_catalog.strpos(s.query, %s) = 0
  {toplevel}
GROUP BY s.queryid
ORDER BY total_ms DESC
LIMIT %s
"""
PGSS_TOPLEVEL_ONLY = "AND s.toplevel"


def pg_stat_statements_queries(source: ConnectionSettings | psycopg.Connection, top: int,
                               include_nested: bool = False, *, include_utility: bool = False,
                               label: str = "pg_stat_statements") -> list[Query]:
    """The ``top`` statements of the current database by total execution time, as :class:`Query`
    objects located ``pgss:<queryid>`` with ``calls``, ``total_ms`` (ms) and ``rows``.

    ``source`` is a connection (used as is; only SELECTs are sent) or settings to open a read-only one.
    Only top-level statements unless ``include_nested`` (needs the ``toplevel`` column, 1.9+). Utility
    statements (``BEGIN``, ``SET``, DDL …) are passed over unless ``include_utility``, as are texts that do
    not parse, ``<insufficient privilege>``, dbtune's own statements (their text carries
    :data:`~dbtune.db.connect.MARKER`), statements on version tables only (Alembic's ``alembic_version``,
    dbtune's ``dbtune_version``) and statements that read only system catalogs or no relation at all, so
    ``top`` counts the application's statements. Entries with the same pglast fingerprint and the same
    relations (:attr:`~dbtune.workload.model.Query.relations`; the same SQL under several query ids) are
    one query, located at the first one's ``pgss:<queryid>``, with their
    calls, times and rows added up and ``occurrences`` the number of query ids. ``label`` names the
    source in errors. Raises :class:`UsageError` for ``top < 1``, an extension
    that is not created in the database or older than 1.8; :class:`ServerRefused` when the server refuses
    the query (e.g. the role lacks ``pg_read_all_stats`` to see other roles' texts); connecting may raise
    :class:`~dbtune.errors.ConnectionFailed`.
    """
    if top < 1:
        raise UsageError(f"{label} must be at least 1, got {top}")
    if isinstance(source, psycopg.Connection):
        return _top(source, top, include_nested, include_utility, label)
    with connect(source, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = on")
        return _top(conn, top, include_nested, include_utility, label)


def _top(conn: psycopg.Connection, top: int, include_nested: bool, include_utility: bool,
         label: str) -> list[Query]:
    try:
        rows = conn.execute(PGSS_LOCATION).fetchall()
        if not rows:
            raise UsageError(f"{label}: pg_stat_statements is not created in this database "
                             "(CREATE EXTENSION pg_stat_statements; it must also be in shared_preload_libraries)")
        view = f"{quote_ident(rows[0][0])}.pg_stat_statements"
        columns = {r[0] for r in conn.execute(PGSS_COLUMNS, (view,)).fetchall()}  # type: ignore[call-overload]
        if "total_exec_time" not in columns:
            raise UsageError(f"{label}: {view} has no total_exec_time column: pg_stat_statements 1.8 "
                             "(PostgreSQL 13) or later is needed (ALTER EXTENSION pg_stat_statements UPDATE)")
        toplevel = PGSS_TOPLEVEL_ONLY if "toplevel" in columns and not include_nested else ""
        limit = max(1000, top * 10)
        found = conn.execute(PGSS_TOP.format(view=view, toplevel=toplevel),  # type: ignore[call-overload]
                             (MARKER, limit)).fetchall()
    except psycopg.Error as exc:
        raise ServerRefused(f"cannot read pg_stat_statements: {' '.join(str(exc).split())}") from None
    queries: list[Query] = []
    for queryid, text, calls, total_ms, n_rows in found:
        if text is None or "<insufficient privilege>" in text or MARKER in text:
            continue
        text = explainable_text(text.strip().rstrip(";").strip())  # interval $1 → $1::interval
        try:
            fingerprint = parser.fingerprint(text)
            if not include_utility and statement_kind(text) == "other":
                continue
            if not reads_user_relations(text):
                continue  # catalog reads, version tables (Alembic's, dbtune's), SELECT 1 …
        except ParseError:
            continue
        queries.append(Query(text=text, source=Source.PG_STAT_STATEMENTS, location=f"pgss:{queryid}",
                             fingerprint=fingerprint, calls=int(calls), total_ms=float(total_ms),
                             rows=int(n_rows), relations=SessionPaths().resolve(text)[0]))
    # The same statement under several query ids (parameters of other types, a constant of another type)
    # is one statement: its calls and times are added up. Qualified names that differ (sales.orders,
    # other.orders) keep them apart; pg_stat_statements records no search_path, so an unqualified name is
    # taken under the default path.
    grouped = sorted(group_by_fingerprint(queries), key=lambda q: -(q.total_ms or 0.0))
    return grouped[:top]
