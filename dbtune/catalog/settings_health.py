"""Catalog reads for the settings and workload checks: the statements of ``pg_stat_statements`` that
stand out by execution time, shared blocks read or temporary blocks written.

One query, whatever the number of statements: the top rows by each of the three measures, at most
:data:`TOP_PER_MEASURE` of each, for the current database, top-level statements only (PostgreSQL 14+;
pg_stat_statements 1.8 on PostgreSQL 13 has no ``toplevel`` column), dbtune's own statements left out.
Version variants: the I/O time column is ``blk_read_time`` up to PostgreSQL 16 and
``shared_blk_read_time`` from 17 (pg_stat_statements 1.11).
See https://www.postgresql.org/docs/current/pgstatstatements.html.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from dbtune.catalog.model import Server, Skip
from dbtune.catalog.privileges import lacked_privilege
from dbtune.db.connect import MARKER
from dbtune.sqlnames import quote_ident

TOP_PER_MEASURE = 50

_TOP_STATEMENTS = """
-- The statements of the current database that rank among the top {top} by total execution time, by
-- shared blocks read or by temporary blocks written, one row per queryid (summed over roles), with
-- calls, times (ms) and block counts (8 kB pages); dbtune's own statements left out.
WITH s AS (
  SELECT s.queryid, min(s.query) AS query, sum(s.calls)::bigint AS calls,
         sum(s.total_exec_time) AS total_exec_time_ms,
         sum(s.shared_blks_hit)::bigint AS shared_blks_hit, sum(s.shared_blks_read)::bigint AS shared_blks_read,
         sum(s.{read_time})::float8 AS shared_blk_read_time_ms,
         sum(s.temp_blks_written)::bigint AS temp_blks_written
  FROM {view} s
  WHERE s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
    AND pg_catalog.strpos(s.query, {marker}) = 0 {toplevel}
  GROUP BY s.queryid
), ranked AS (
  SELECT s.*, rank() OVER (ORDER BY total_exec_time_ms DESC) AS by_time,
         rank() OVER (ORDER BY shared_blks_read DESC) AS by_read,
         rank() OVER (ORDER BY temp_blks_written DESC) AS by_temp
  FROM s
)
SELECT queryid, query, calls, total_exec_time_ms, shared_blks_hit, shared_blks_read, shared_blk_read_time_ms,
       temp_blks_written
FROM ranked WHERE by_time <= {top} OR by_read <= {top} OR by_temp <= {top}
"""


def top_statements_query(version_num: int, view: str) -> str:
    """:data:`_TOP_STATEMENTS` for a server of ``version_num`` and the view's qualified name."""
    return _TOP_STATEMENTS.format(
        top=TOP_PER_MEASURE, view=view, marker="'" + MARKER + "'",
        read_time="shared_blk_read_time" if version_num >= 170000 else "blk_read_time",
        toplevel="AND s.toplevel" if version_num >= 140000 else "")


@dataclass(frozen=True)
class StatementStats:
    """One statement of ``pg_stat_statements`` (its normalised text, ``$n`` for constants), summed over
    roles: ``calls``, ``total_exec_time_ms`` (ms), blocks in 8 kB pages, ``shared_blk_read_time_ms`` (ms;
    0 unless ``track_io_timing`` is on)."""

    queryid: int
    query: str
    calls: int
    total_exec_time_ms: float
    shared_blks_hit: int
    shared_blks_read: int
    shared_blk_read_time_ms: float
    temp_blks_written: int

    @property
    def mean_exec_time_ms(self) -> float:
        return self.total_exec_time_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class SettingsHealth:
    """What the settings and workload checks read beyond ``pg_settings``: ``statements`` is ``None`` when
    pg_stat_statements is not created in this database or cannot be read."""

    statements: tuple[StatementStats, ...] | None = None


class Reader(Protocol):
    """The snapshot's statement counter (``q`` in :func:`dbtune.catalog.snapshot.take`)."""

    def optional(self, query: str) -> tuple[list[dict[str, Any]] | None, psycopg.Error | None]: ...


_LOCATION = """
-- The schema holding the pg_stat_statements view in this database, if the extension is created.
SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""


def read_settings_health(q: Reader, server: Server, skipped: list[Skip]) -> SettingsHealth:
    """Read the top statements of pg_stat_statements (two statements: where the view is, then its rows).
    ``statements`` stays ``None`` when the extension is not created in this database (ST001 reports that)
    or its view cannot be read, which is recorded in ``skipped`` naming ``pg_read_all_stats``. Without
    that privilege the view shows other roles' statements as ``<insufficient privilege>``: they are left
    out here."""
    located, _ = q.optional(_LOCATION)
    if not located:
        return SettingsHealth()
    view = f"{quote_ident(located[0]['nspname'])}.pg_stat_statements"
    rows, err = q.optional(top_statements_query(server.version_num, view))
    if rows is None:
        privilege = (lacked_privilege(" ".join(str(err).split()), "pg_read_all_stats")
                     if isinstance(err, psycopg.errors.InsufficientPrivilege) else None)
        skipped.append(Skip("pg_stat_statements top statements", " ".join(str(err).split()), privilege))
        return SettingsHealth()
    return SettingsHealth(tuple(
        StatementStats(int(r["queryid"] or 0), r["query"], int(r["calls"] or 0),
                       float(r["total_exec_time_ms"] or 0), int(r["shared_blks_hit"] or 0),
                       int(r["shared_blks_read"] or 0), float(r["shared_blk_read_time_ms"] or 0),
                       int(r["temp_blks_written"] or 0))
        for r in rows if r["query"] and "<insufficient privilege>" not in r["query"]))
