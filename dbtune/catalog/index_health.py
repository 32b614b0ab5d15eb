"""What the index health checks read: the btree bloat estimate (and ``pgstatindex()`` of the worst few
where pgstattuple is installed), the planner statistics of every indexed column, per-index block I/O, and
per-table HOT update counters.

Four set-based statements (six with pgstattuple), whatever the size of the catalog (one per kind, never one
per index). The same SQL serves PostgreSQL 13 to 18: ``pg_stats``, ``pg_statio_all_indexes`` and
``pg_stat_all_tables.n_tup_hot_upd`` have had these columns since before 13, and none moved since. What a
role with only ``pg_monitor`` cannot read is a :class:`Skip` naming the privilege: ``pg_stats`` shows only
the columns the role may ``SELECT`` (the bloat estimate and the column statistics of the others are then
missing), and ``pgstatindex()`` needs ``pg_stat_scan_tables`` (which ``pg_monitor`` includes).

References: https://www.postgresql.org/docs/current/view-pg-stats.html,
https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STATIO-ALL-INDEXES-VIEW,
https://www.postgresql.org/docs/current/pgstattuple.html,
https://github.com/ioguix/pgsql-bloat-estimation (btree/btree_bloat.sql).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from dbtune.catalog.maintenance import PartReader, _int, pgstattuple_rows

if TYPE_CHECKING:  # model.py holds the Snapshot, which holds an IndexHealth
    from dbtune.catalog.model import Server, Skip

_USER_SCHEMAS = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'
"""

INDEX_BLOAT = f"""
-- The statistical estimate of each valid btree index's bloat (ioguix's btree bloat query,
-- https://github.com/ioguix/pgsql-bloat-estimation): the leaf pages reltuples index tuples of the average
-- key width (pg_stats.avg_width and null_frac of each column, or of the index's own expression
-- statistics) would fill at the index's fillfactor (90 unless set), against relpages. is_na: pg_stats
-- lacks a column (never analyzed, or not readable by this role) or a column is of type name.
SELECT idxoid AS oid, bs * relpages AS real_size_bytes,
       CASE WHEN relpages > est_pages_ff THEN (relpages - est_pages_ff) * bs ELSE 0 END AS bloat_bytes,
       fillfactor, is_na
FROM (
  SELECT coalesce(1 + ceil(reltuples / floor((bs - pageopqdata - pagehdr) * fillfactor
                                             / (100 * (4 + nulldatahdrwidth)::float))), 0) AS est_pages_ff,
         bs, relpages, fillfactor, is_na, idxoid
  FROM (
    SELECT bs, reltuples, relpages, idxoid, fillfactor, pagehdr, pageopqdata, is_na,
           (index_tuple_hdr_bm + maxalign
            - CASE WHEN index_tuple_hdr_bm % maxalign = 0 THEN maxalign ELSE index_tuple_hdr_bm % maxalign END
            + nulldatawidth + maxalign
            - CASE WHEN nulldatawidth = 0 THEN 0
                   WHEN nulldatawidth::integer % maxalign = 0 THEN maxalign
                   ELSE nulldatawidth::integer % maxalign END)::numeric AS nulldatahdrwidth
    FROM (
      SELECT i.reltuples, i.relpages, i.idxoid, i.fillfactor,
             pg_catalog.current_setting('block_size')::numeric AS bs,
             CASE WHEN pg_catalog.version() ~ 'mingw32|64-bit|x86_64|ppc64|ia64|amd64|aarch64'
                  THEN 8 ELSE 4 END AS maxalign,
             24 AS pagehdr, 16 AS pageopqdata,
             CASE WHEN max(coalesce(s.null_frac, 0)) = 0 THEN 8 ELSE 8 + ((32 + 8 - 1) / 8) END
               AS index_tuple_hdr_bm,
             sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) AS nulldatawidth,
             bool_or(i.atttypid = 'pg_catalog.name'::pg_catalog.regtype)
               OR count(*) <> count(s.attname) AS is_na
      FROM (
        SELECT ci.reltuples, ci.relpages, ci.oid AS idxoid, ct.relnamespace,
               coalesce(substring(pg_catalog.array_to_string(ci.reloptions, ' ')
                                  FROM 'fillfactor=([0-9]+)')::smallint, 90) AS fillfactor,
               coalesce(a1.attname, a2.attname) AS attname, coalesce(a1.atttypid, a2.atttypid) AS atttypid,
               CASE WHEN a1.attnum IS NULL THEN ci.relname ELSE ct.relname END AS attrelname
        FROM pg_catalog.pg_index x
        JOIN pg_catalog.pg_class ci ON ci.oid = x.indexrelid
        JOIN pg_catalog.pg_class ct ON ct.oid = x.indrelid
        CROSS JOIN LATERAL pg_catalog.generate_series(1, x.indnatts) AS attpos
        LEFT JOIN pg_catalog.pg_attribute a1 ON x.indkey[attpos - 1] <> 0 AND a1.attrelid = x.indrelid
             AND a1.attnum = x.indkey[attpos - 1]
        LEFT JOIN pg_catalog.pg_attribute a2 ON x.indkey[attpos - 1] = 0 AND a2.attrelid = x.indexrelid
             AND a2.attnum = attpos
        WHERE ci.relam = (SELECT oid FROM pg_catalog.pg_am WHERE amname = 'btree') AND ci.relpages > 0
          AND x.indisvalid AND ci.relkind = 'i'
      ) AS i
      JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace
      LEFT JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname AND s.tablename = i.attrelname
           AND s.attname = i.attname AND NOT s.inherited
      WHERE {_USER_SCHEMAS}
      GROUP BY 1, 2, 3, 4
    ) AS rows_data_stats
  ) AS rows_hdr_pdg_stats
) AS relation_stats
"""

# pgstatindex() reads the whole index, so it runs only on the few the estimate suspects most: 1 MB or
# more, a fifth or more estimated bloat, the EXACT_LIMIT largest estimates.
EXACT_MIN_BYTES = 1024 * 1024
EXACT_MIN_RATIO = 0.2
EXACT_LIMIT = 5


def index_bloat_exact_query(schema_sql: str) -> str:
    """pgstatindex() (``schema_sql``: the pgstattuple extension's schema, quoted) of the EXACT_LIMIT btree
    indexes with the largest estimate (INDEX_BLOAT) of at least EXACT_MIN_BYTES and EXACT_MIN_RATIO: their
    size, leaf, empty and deleted pages, and average leaf density in percent
    (https://www.postgresql.org/docs/current/pgstattuple.html)."""
    return f"""
-- pgstatindex() of the few btree indexes the statistical estimate suspects most of bloat.
WITH estimate AS ({INDEX_BLOAT}),
worst AS (SELECT oid, fillfactor FROM estimate
          WHERE NOT is_na AND real_size_bytes >= {EXACT_MIN_BYTES}
            AND bloat_bytes >= {EXACT_MIN_RATIO} * real_size_bytes
          ORDER BY bloat_bytes DESC LIMIT {EXACT_LIMIT})
SELECT w.oid, w.fillfactor, pg_catalog.current_setting('block_size')::int AS bs, p.index_size, p.leaf_pages,
       p.empty_pages, p.deleted_pages, p.avg_leaf_density
FROM worst w, LATERAL {schema_sql}.pgstatindex(w.oid::pg_catalog.regclass) p
"""


INDEXED_COLUMN_STATS = f"""
-- pg_stats (null_frac, n_distinct, correlation) of every table column that is a key column of an index
-- on a user table or materialized view (partitioned tables' own rows are in their partitions').
SELECT DISTINCT a.attrelid AS table_oid, a.attnum, s.null_frac, s.n_distinct, s.correlation
FROM pg_catalog.pg_index x
JOIN pg_catalog.pg_class c ON c.oid = x.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.generate_series(1, x.indnkeyatts) AS k
JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[k - 1]
JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = a.attname
     AND NOT s.inherited
WHERE c.relkind IN ('r', 'm') AND {_USER_SCHEMAS}
"""

INDEX_IO = f"""
-- Index blocks (8 kB pages) read from outside shared buffers and found in them, since stats_reset
-- (pg_statio_all_indexes).
SELECT io.indexrelid AS oid, io.idx_blks_read, io.idx_blks_hit
FROM pg_catalog.pg_statio_all_indexes io
JOIN pg_catalog.pg_namespace n ON n.nspname = io.schemaname
WHERE {_USER_SCHEMAS}
"""

TABLE_UPDATES = f"""
-- Rows updated and of them HOT-updated (no index entry written), since stats_reset (pg_stat_all_tables).
SELECT s.relid AS oid, s.n_tup_upd, s.n_tup_hot_upd
FROM pg_catalog.pg_stat_all_tables s
JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
WHERE {_USER_SCHEMAS}
"""


@dataclass(frozen=True)
class IndexBloat:
    """The statistical bloat estimate of one btree index: its size and the bytes beyond what its tuples
    need at its ``fillfactor`` (percent; 90 unless set); ``not_applicable`` where ``pg_stats`` lacks a
    column. ``exact_*``: pgstatindex()'s figures where it ran (``None``: not measured): the index's size
    and its reclaimable bytes (empty and deleted pages, and leaf space below the fillfactor's density)."""

    oid: int
    real_size_bytes: int
    bloat_bytes: int
    fillfactor: int
    not_applicable: bool
    exact_size_bytes: int | None = None
    exact_reclaimable_bytes: int | None = None


@dataclass(frozen=True)
class ColumnStats:
    """``pg_stats`` of one indexed table column: ``null_frac`` (0–1), ``n_distinct`` (negative: a
    fraction of the rows) and ``correlation`` (-1–1, ``None`` for types without ``<``)."""

    null_frac: float
    n_distinct: float
    correlation: float | None


@dataclass(frozen=True)
class IndexIO:
    """Blocks of one index read (not in shared buffers) and hit, since ``stats_reset``."""

    blks_read: int
    blks_hit: int


@dataclass(frozen=True)
class IndexHealth:
    """What :func:`read_index_health` read; a part is empty when its query could not run."""

    bloat: dict[int, IndexBloat] = field(default_factory=dict)
    # (table oid, attnum) -> the column's statistics (absent: not analyzed, or not readable).
    column_stats: dict[tuple[int, int], ColumnStats] = field(default_factory=dict)
    io: dict[int, IndexIO] = field(default_factory=dict)
    # table oid -> (n_tup_upd, n_tup_hot_upd).
    updates: dict[int, tuple[int, int]] = field(default_factory=dict)
    # Which parts were read: "bloat", "column_stats", "io", "updates".
    readable: frozenset[str] = frozenset()


def read_index_health(q: Any, server: Server, skipped: list[Skip]) -> IndexHealth:
    """Read the index health state through ``q`` (the snapshot's counter: ``q.rows``/``q.optional``), four
    statements. A query the role may not run is recorded in ``skipped`` with the privilege it needs, and
    its part is left empty. Where ``server`` lists the pgstattuple extension, two more statements measure
    the worst few indexes the estimate suspects (:func:`index_bloat_exact_query`; a role without
    ``pg_stat_scan_tables`` gets a skip)."""
    reader = PartReader(q, skipped)
    read = reader.read
    bloat = {r["oid"]: IndexBloat(r["oid"], int(r["real_size_bytes"]), int(r["bloat_bytes"]),
                                  int(r["fillfactor"]), bool(r["is_na"]))
             for r in read(INDEX_BLOAT, "bloat", "index bloat estimate", "pg_monitor")}
    if "pgstattuple" in server.extensions and bloat:
        bloat = _exact_bloat(q, bloat, skipped)
    column_stats = {(r["table_oid"], r["attnum"]): ColumnStats(float(r["null_frac"]), float(r["n_distinct"]),
                                                               None if r["correlation"] is None
                                                               else float(r["correlation"]))
                    for r in read(INDEXED_COLUMN_STATS, "column_stats", "statistics of indexed columns",
                                  "SELECT on the tables (pg_stats)")}
    io = {r["oid"]: IndexIO(_int(r["idx_blks_read"]) or 0, _int(r["idx_blks_hit"]) or 0)
          for r in read(INDEX_IO, "io", "index block I/O", "pg_monitor")}
    updates = {r["oid"]: (_int(r["n_tup_upd"]) or 0, _int(r["n_tup_hot_upd"]) or 0)
               for r in read(TABLE_UPDATES, "updates", "HOT update counters", "pg_monitor")}
    return IndexHealth(bloat=bloat, column_stats=column_stats, io=io, updates=updates,
                       readable=frozenset(reader.parts))


def _exact_bloat(q: Any, bloat: dict[int, IndexBloat], skipped: list[Skip]) -> dict[int, IndexBloat]:
    """``bloat`` with pgstatindex()'s figures on the worst suspects (two statements)."""
    exact = dict(bloat)
    for r in pgstattuple_rows(q, index_bloat_exact_query, "pgstatindex", skipped):
        if r["oid"] not in exact:
            continue
        size = int(r["index_size"])
        block, leaf_pages = int(r["bs"]), int(r["leaf_pages"])
        empty, deleted = int(r["empty_pages"]), int(r["deleted_pages"])
        density = float(r["avg_leaf_density"] or 0) / 100
        target = int(r["fillfactor"]) / 100
        reclaimable = (empty + deleted) * block + int(leaf_pages * block * max(0.0, 1 - density / target))
        exact[r["oid"]] = replace(exact[r["oid"]], exact_size_bytes=size, exact_reclaimable_bytes=reclaimable)
    return exact
