"""Loading queries from a file or standard input, whatever it holds: a SQL script or a server log.

Also the benchmark's view of the same sources (:func:`load_workload`, :func:`parse_workload`,
:func:`pg_stat_statements_workload`): named :class:`WorkloadQuery` objects, every statement required to
parse.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from dbtune.db.connect import ConnectionSettings
from dbtune.errors import UsageError
from dbtune.workload.formats import WorkloadFormat
from dbtune.workload.logs import parse_log, sniff
from dbtune.workload.model import LoadResult, Query, Source, WorkloadQuery, group_by_fingerprint
from dbtune.workload.pgss import pg_stat_statements_queries
from dbtune.workload.reader import label_of, read_text
from dbtune.workload.sqlfile import parse_script, split_script

_LOG_SUFFIXES = {".log", ".csv", ".json"}
_LOG_FORMATS = {"stderr": Source.STDERR_LOG, "csvlog": Source.CSVLOG, "jsonlog": Source.JSONLOG, "sql": Source.SQL}


def load_queries(path_or_dash: str | Path, *, group: bool = True, fmt: str | None = None,
                 workload_format: WorkloadFormat | str | None = None) -> LoadResult:
    """The queries of a SQL script or a PostgreSQL server log (``-``: standard input).

    ``workload_format`` (``psql``, ``pgbench``, ``qgen``, ``plain``; :mod:`dbtune.workload.formats`) reads
    the input as a script of that tool, whatever its name; without it, a script's format is detected from
    its text. The format is ``fmt`` when given (``sql``, ``stderr``, ``csvlog``, ``jsonlog``); otherwise a
    ``.sql`` file is SQL, and anything else is sniffed: a jsonlog, csvlog or stderr log is read as such
    (:mod:`dbtune.workload.logs`), other text as SQL (:mod:`dbtune.workload.sqlfile`). Statements that do
    not parse are returned in ``errors`` (with ``path:line`` and the parser's message); the others are
    kept. With ``group``, statements with the same pglast fingerprint and relations are merged
    (:func:`~dbtune.workload.model.group_by_fingerprint`: counts and times summed, the first text kept).
    A pgbench meta-command or ``BEGIN``/``END`` comes back as a query with ``skipped`` set.

    Raises :class:`UsageError` naming the file when it is missing, unreadable, binary or compressed, not
    UTF-8 or empty; when ``workload_format`` is not one of the four; when a ``.log``/``.csv``/``.json``
    file (or ``fmt``) is not a log of a format recognised; when a log records no statement; or when
    nothing in the file parses as SQL and it is not a server log either.
    """
    label = label_of(path_or_dash)
    if fmt is not None and fmt not in _LOG_FORMATS:
        raise UsageError(f"{label}: unknown input format {fmt!r} (one of {', '.join(_LOG_FORMATS)})")
    script_format = workload_format_of(workload_format, label)
    text = read_text(path_or_dash, label)
    suffix = Path(str(path_or_dash)).suffix.lower() if str(path_or_dash) != "-" else ""
    forced = _LOG_FORMATS[fmt] if fmt else (Source.SQL if suffix == ".sql" or script_format else None)
    found = sniff(text) if forced is None or forced is not Source.SQL else None
    if forced is not None and forced is not Source.SQL and found is not forced:
        raise UsageError(f"{label}: not a PostgreSQL {forced} (found {found or 'no server log'}); "
                         "the formats read are stderr, csvlog and jsonlog")
    if found is None and suffix in _LOG_SUFFIXES and forced is None:
        raise UsageError(f"{label}: not a PostgreSQL server log in a recognised format (stderr with any "
                         "log_line_prefix, csvlog, jsonlog)")
    if found is not None:
        queries, errors = parse_log(text, found, label)
        if not queries and not errors:
            raise UsageError(f"{label}: this {found} records no statement (set log_min_duration_statement = 0 "
                             "or log_statement = 'all' to log them)")
        fmt_read = found
    else:
        queries, errors, script_format = parse_script(text, label, script_format)
        fmt_read = Source.SQL
        if not queries and errors and forced is None:
            raise UsageError(f"{label}: not a SQL script or a PostgreSQL server log: the first statement "
                             f"does not parse ({errors[0]})")
    if group:
        queries = group_by_fingerprint(queries)
    return LoadResult(tuple(queries), tuple(errors), fmt_read, script_format if fmt_read is Source.SQL else None)


def workload_format_of(value: WorkloadFormat | str | None, label: str = "--workload-format") -> WorkloadFormat | None:
    """``value`` as a :class:`WorkloadFormat` (``None`` stays ``None``: detect it). Raises
    :class:`UsageError` naming ``label`` when it is not one of ``psql``, ``pgbench``, ``qgen``, ``plain``."""
    if value is None or isinstance(value, WorkloadFormat):
        return value
    try:
        return WorkloadFormat(value)
    except ValueError:
        raise UsageError(f"{label}: unknown workload format {value!r} (one of "
                         f"{', '.join(f.value for f in WorkloadFormat)})") from None


# --- the benchmark's workload ------------------------------------------------------------------------


def parse_workload(text: str, label: str = "workload",
                   workload_format: WorkloadFormat | None = None) -> list[WorkloadQuery]:
    """The statements of a workload text (:mod:`dbtune.workload.sqlfile` rules), named by their
    ``-- name:`` line or ``query-<n>``; statements that do not parse are left out, as are those a
    pgbench script has that are not the server's (meta-commands, ``BEGIN``/``END``)."""
    statements, _errors = split_script(text, label, workload_format)
    return [WorkloadQuery(s.name or f"query-{i}", s.text, s.params_sql)
            for i, s in enumerate((s for s in statements if s.skipped is None), start=1)]


def load_workload(path: Path, workload_format: WorkloadFormat | str | None = None) -> list[WorkloadQuery]:
    """Read a workload file (annotated or plain SQL, a psql, pgbench or qgen script; UTF-8) for
    ``dbtune bench``; ``workload_format`` as in :func:`load_queries` (``None``: detected). A statement
    without a ``-- name:`` line is named ``<file stem>-<n>``; one that does not parse is returned with its
    ``parse_error`` set, and a pgbench meta-command or ``BEGIN``/``END`` with its ``skipped`` reason, so
    the run lists it as skipped and goes on.

    Raises :class:`UsageError` naming the file when it is missing, unreadable, not UTF-8, holds no
    statement, two queries have the same name, or the workload format is unknown.
    """
    label = f"--workload {path}"
    script_format = workload_format_of(workload_format)
    text = read_text(path, label)
    statements, errors = split_script(text, label, script_format)
    queries = [WorkloadQuery(s.name or f"{path.stem}-{i}", s.text, s.params_sql, skipped=s.skipped)
               for i, s in enumerate(statements, start=1)]
    # A statement that does not parse is kept, to be listed as skipped with the parser's message.
    queries += [WorkloadQuery(e.name or f"{path.stem}-line{e.line}", "", None, f"{path}:{e.line}: {e.message}")
                for e in errors]
    if not any(q.skipped is None for q in queries):
        raise UsageError(f"{label}: no SQL statement in the file")
    names = [q.name for q in queries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"{label}: query name {dupes[0]!r} is used more than once")
    return queries


def from_pg_stat_statements(conn: psycopg.Connection, top: int) -> list[WorkloadQuery]:
    """:func:`~dbtune.workload.pgss.pg_stat_statements_queries` (top-level SELECT and DML) as benchmark
    queries named ``pgss:<queryid>``; errors name ``--from-pg-stat-statements``."""
    return [_as_workload(q) for q in pg_stat_statements_queries(conn, top, label="--from-pg-stat-statements")]


def pg_stat_statements_workload(settings: ConnectionSettings, top: int) -> list[WorkloadQuery]:
    """:func:`from_pg_stat_statements` on a read-only connection of its own (closed afterwards)."""
    return [_as_workload(q) for q in pg_stat_statements_queries(settings, top, label="--from-pg-stat-statements")]


def _as_workload(q: Query) -> WorkloadQuery:
    return WorkloadQuery(q.name or q.location, q.text, q.params_sql)

