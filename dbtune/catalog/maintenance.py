"""What the maintenance checks read: vacuum and analyze state, freeze ages, the heap bloat estimate,
sequences with the column each feeds, and the current database's freeze ages and temporary files.

Five set-based statements (seven with pgstattuple), whatever the size of the catalog (one per kind, never
one per table). The same SQL serves PostgreSQL 13 to 18: every column read here exists in 13
(``n_ins_since_vacuum`` is 13+, ``pg_sequence_last_value`` 10+) and none moved since, but for the
checkpoint counters (``pg_stat_checkpointer`` from 17, before it ``pg_stat_bgwriter``:
:func:`checkpoints_query`). What a role with only ``pg_monitor`` cannot read is a :class:`Skip` naming
the privilege: ``pg_stats`` shows only the columns the role may ``SELECT`` (the bloat estimate is then
not applicable), and a sequence's last value needs ``USAGE`` or ``SELECT`` on it.

References: https://www.postgresql.org/docs/current/monitoring-stats.html,
https://www.postgresql.org/docs/current/routine-vacuuming.html,
https://www.postgresql.org/docs/current/view-pg-stats.html,
https://www.postgresql.org/docs/current/catalog-pg-sequence.html.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:  # model.py holds the Snapshot, which holds a Maintenance
    from dbtune.catalog.model import Server, Skip

_USER_SCHEMAS = """
    n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_toast' AND n.nspname !~ '^pg_temp_'
"""

TABLE_MAINTENANCE = f"""
-- Per table and materialized view (partitioned tables have no storage and are left out): persistence,
-- storage parameters of the heap and of its TOAST table, freeze ages (age(relfrozenxid),
-- mxid_age(relminmxid)) of both, pg_stat_all_tables' vacuum and analyze counters and times, and
-- pg_statio_all_tables' heap blocks read and hit (since stats_reset).
SELECT c.oid, c.relpersistence, c.reloptions, t.reloptions AS toast_reloptions,
       pg_catalog.age(c.relfrozenxid) AS xid_age,
       CASE WHEN t.oid IS NOT NULL THEN pg_catalog.age(t.relfrozenxid) END AS toast_xid_age,
       pg_catalog.mxid_age(c.relminmxid) AS mxid_age,
       CASE WHEN t.oid IS NOT NULL THEN pg_catalog.mxid_age(t.relminmxid) END AS toast_mxid_age,
       s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze, s.n_ins_since_vacuum,
       s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze,
       io.heap_blks_read, io.heap_blks_hit
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
LEFT JOIN pg_catalog.pg_statio_all_tables io ON io.relid = c.oid
WHERE c.relkind IN ('r', 'm') AND {_USER_SCHEMAS}
"""

HEAP_BLOAT = f"""
-- The statistical estimate of each heap's bloat (ioguix's table bloat query,
-- https://github.com/ioguix/pgsql-bloat-estimation): the pages reltuples rows of the average width
-- (pg_stats.avg_width, null_frac) would fill at the table's fillfactor, against relpages (heap and
-- TOAST). is_na: pg_stats lacks a column (never analyzed, or not readable by this role) or a column is
-- of type name, so the estimate does not apply.
SELECT tblid AS oid, bs * tblpages AS real_size_bytes,
       CASE WHEN tblpages - est_tblpages_ff > 0 THEN (tblpages - est_tblpages_ff) * bs ELSE 0 END
         AS bloat_bytes,
       fillfactor, is_na
FROM (
  SELECT ceil(reltuples / ((bs - page_hdr) * fillfactor / (tpl_size * 100))) + ceil(toasttuples / 4)
           AS est_tblpages_ff,
         tblpages, fillfactor, bs, tblid, is_na
  FROM (
    SELECT (4 + tpl_hdr_size + tpl_data_size + (2 * ma)
            - CASE WHEN tpl_hdr_size % ma = 0 THEN ma ELSE tpl_hdr_size % ma END
            - CASE WHEN ceil(tpl_data_size)::int % ma = 0 THEN ma ELSE ceil(tpl_data_size)::int % ma END
           ) AS tpl_size,
           (heappages + toastpages) AS tblpages, reltuples, toasttuples, bs, page_hdr, tblid, fillfactor,
           is_na
    FROM (
      SELECT tbl.oid AS tblid, GREATEST(tbl.reltuples, 0) AS reltuples, tbl.relpages AS heappages,
             coalesce(toast.relpages, 0) AS toastpages,
             GREATEST(coalesce(toast.reltuples, 0), 0) AS toasttuples,
             coalesce(substring(pg_catalog.array_to_string(tbl.reloptions, ' ')
                                FROM 'fillfactor=([0-9]+)')::smallint, 100) AS fillfactor,
             pg_catalog.current_setting('block_size')::numeric AS bs,
             CASE WHEN pg_catalog.version() ~ 'mingw32|64-bit|x86_64|ppc64|ia64|amd64|aarch64'
                  THEN 8 ELSE 4 END AS ma,
             24 AS page_hdr,
             23 + CASE WHEN max(coalesce(s.null_frac, 0)) > 0 THEN (7 + count(s.attname)) / 8 ELSE 0::int END
               AS tpl_hdr_size,
             sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) AS tpl_data_size,
             bool_or(att.atttypid = 'pg_catalog.name'::pg_catalog.regtype)
               OR count(*) <> count(s.attname) AS is_na
      FROM pg_catalog.pg_attribute att
      JOIN pg_catalog.pg_class tbl ON tbl.oid = att.attrelid
      JOIN pg_catalog.pg_namespace n ON n.oid = tbl.relnamespace
      LEFT JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname AND s.tablename = tbl.relname
           AND NOT s.inherited AND s.attname = att.attname
      LEFT JOIN pg_catalog.pg_class toast ON toast.oid = tbl.reltoastrelid
      WHERE att.attnum > 0 AND NOT att.attisdropped AND tbl.relkind IN ('r', 'm') AND tbl.relpages > 0
        AND {_USER_SCHEMAS}
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
    ) AS s1
  ) AS s2
) AS s3
"""

# pgstattuple_approx() reads the pages the visibility map does not mark all-visible, so it runs only on
# the heaps the estimate already suspects: 1 MB or more, a fifth or more estimated bloat.
EXACT_MIN_BYTES = 1024 * 1024
EXACT_MIN_RATIO = 0.2

PGSTATTUPLE_LOCATION = """
-- The schema holding the pgstattuple extension's functions in this database.
SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pgstattuple'
"""


def heap_bloat_exact_query(schema_sql: str) -> str:
    """pgstattuple_approx() (``schema_sql``: the extension's schema, quoted) of the heaps whose estimate
    (HEAP_BLOAT) is at least EXACT_MIN_BYTES and EXACT_MIN_RATIO: their heap length, free space and dead
    tuple length in bytes (https://www.postgresql.org/docs/current/pgstattuple.html)."""
    return f"""
-- pgstattuple_approx() of the heaps the statistical estimate suspects of bloat.
WITH estimate AS ({HEAP_BLOAT})
SELECT e.oid, a.table_len, a.approx_free_space, a.dead_tuple_len
FROM estimate e, LATERAL {schema_sql}.pgstattuple_approx(e.oid::pg_catalog.regclass) a
WHERE NOT e.is_na AND e.real_size_bytes >= {EXACT_MIN_BYTES}
  AND e.bloat_bytes >= {EXACT_MIN_RATIO} * e.real_size_bytes
"""


SEQUENCES = f"""
-- Every sequence: its type, bounds, increment and CYCLE flag, its last value (NULL when never used, or
-- when this role has neither USAGE nor SELECT on it: `readable`), and the column it feeds (serial: the
-- OWNED BY dependency 'a'; identity: 'i') with that column's type.
SELECT c.oid, n.nspname AS schema, c.relname AS name,
       pg_catalog.format_type(s.seqtypid, NULL) AS seq_type, s.seqmin, s.seqmax, s.seqincrement, s.seqcycle,
       pg_catalog.has_sequence_privilege(c.oid, 'USAGE,SELECT') AS readable,
       CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'USAGE,SELECT')
            THEN pg_catalog.pg_sequence_last_value(c.oid) END AS last_value,
       d.refobjid AS table_oid, d.refobjsubid AS attnum,
       pg_catalog.format_type(a.atttypid, NULL) AS column_type
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0
     AND d.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE {_USER_SCHEMAS}
"""

DATABASE_MAINTENANCE = """
-- The current database's freeze ages (age(datfrozenxid), mxid_age(datminmxid)) and its temporary files
-- since stats_reset (pg_stat_database.temp_files, temp_bytes).
SELECT pg_catalog.age(d.datfrozenxid) AS xid_age, pg_catalog.mxid_age(d.datminmxid) AS mxid_age,
       s.temp_files, s.temp_bytes
FROM pg_catalog.pg_database d
LEFT JOIN pg_catalog.pg_stat_database s ON s.datid = d.oid
WHERE d.datname = pg_catalog.current_database()
"""

_CHECKPOINTS = """
-- Checkpoints since the view's own stats_reset: started by checkpoint_timeout (timed) and requested
-- (max_wal_size reached, CHECKPOINT, CREATE DATABASE, a base backup, shutdown). {view}.
SELECT {timed} AS timed, {requested} AS requested, stats_reset FROM pg_catalog.{view}
"""
CHECKPOINTS_V13 = _CHECKPOINTS.format(view="pg_stat_bgwriter", timed="checkpoints_timed",
                                      requested="checkpoints_req")
CHECKPOINTS_V17 = _CHECKPOINTS.format(view="pg_stat_checkpointer", timed="num_timed", requested="num_requested")


def checkpoints_query(version_num: int) -> str:
    """The checkpoint counters moved from ``pg_stat_bgwriter`` to ``pg_stat_checkpointer`` in PostgreSQL 17
    (https://www.postgresql.org/docs/17/monitoring-stats.html#MONITORING-PG-STAT-CHECKPOINTER-VIEW)."""
    return CHECKPOINTS_V17 if version_num >= 170000 else CHECKPOINTS_V13


@dataclass(frozen=True)
class Checkpoints:
    """Checkpoints started by ``checkpoint_timeout`` and requested otherwise, since ``stats_reset`` (of the
    checkpointer's view; ``None`` when never reset)."""

    timed: int
    requested: int
    stats_reset: datetime | None


@dataclass(frozen=True)
class TableMaintenance:
    """One heap's vacuum state: ``*_xid_age``/``*_mxid_age`` in transactions or multixacts (``toast_*``
    ``None`` without a TOAST table); ``reloptions`` as ``name → value`` (``toast.`` prefixed for the
    TOAST table's); tuple counters and last times from ``pg_stat_all_tables`` (``None`` before the
    statistics system saw the table); heap blocks (8 kB pages) read and hit from ``pg_statio_all_tables``."""

    oid: int
    persistence: str
    reloptions: dict[str, str]
    xid_age: int
    toast_xid_age: int | None
    mxid_age: int
    toast_mxid_age: int | None
    n_live_tup: int | None
    n_dead_tup: int | None
    n_mod_since_analyze: int | None
    n_ins_since_vacuum: int | None
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    last_analyze: datetime | None
    last_autoanalyze: datetime | None
    heap_blks_read: int | None
    heap_blks_hit: int | None

    @property
    def last_vacuumed(self) -> datetime | None:
        """The later of ``last_vacuum`` and ``last_autovacuum``."""
        return max((t for t in (self.last_vacuum, self.last_autovacuum) if t is not None), default=None)

    @property
    def last_analyzed(self) -> datetime | None:
        """The later of ``last_analyze`` and ``last_autoanalyze``."""
        return max((t for t in (self.last_analyze, self.last_autoanalyze) if t is not None), default=None)


@dataclass(frozen=True)
class HeapBloat:
    """The statistical bloat estimate of one heap (with its TOAST table): its size and the bytes beyond
    what its rows need at its ``fillfactor`` (percent); ``not_applicable`` where ``pg_stats`` lacks a
    column."""

    oid: int
    real_size_bytes: int
    bloat_bytes: int
    fillfactor: int
    not_applicable: bool
    # pgstattuple_approx() where installed and run: the heap's length, and its free space plus dead
    # tuples, in bytes (None: not measured).
    exact_table_len: int | None = None
    exact_reclaimable_bytes: int | None = None


@dataclass(frozen=True)
class SequenceUse:
    """One sequence: ``seq_type`` (``bigint`` …), bounds and increment, ``last_value`` (``None``: never
    called, or not ``readable`` by this role), and the column it feeds (``table_oid``/``attnum``/
    ``column_type``, ``None`` for a sequence no column owns)."""

    oid: int
    schema: str
    name: str
    seq_type: str
    min_value: int
    max_value: int
    increment: int
    cycle: bool
    readable: bool
    last_value: int | None
    table_oid: int | None
    attnum: int | None
    column_type: str | None


@dataclass(frozen=True)
class DatabaseMaintenance:
    """The current database's ``age(datfrozenxid)``, ``mxid_age(datminmxid)`` and temporary files
    (count and bytes since ``stats_reset``; ``None`` when ``pg_stat_database`` has no row yet)."""

    xid_age: int
    mxid_age: int
    temp_files: int | None
    temp_bytes: int | None


@dataclass(frozen=True)
class Maintenance:
    """What :func:`read_maintenance` read; a part is empty (or ``None``) when its query could not run."""

    tables: dict[int, TableMaintenance] = field(default_factory=dict)
    bloat: dict[int, HeapBloat] = field(default_factory=dict)
    sequences: tuple[SequenceUse, ...] = ()
    database: DatabaseMaintenance | None = None
    checkpoints: Checkpoints | None = None
    # Which parts were read: "tables", "bloat", "sequences", "database", "checkpoints" (a part whose query
    # failed is absent).
    readable: frozenset[str] = frozenset()


def _options(reloptions: list[str] | None, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for item in reloptions or []:
        key, _, value = item.partition("=")
        out[prefix + key] = value
    return out


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def read_maintenance(q: Any, server: Server, skipped: list[Skip]) -> Maintenance:
    """Read the maintenance state through ``q`` (the snapshot's counter: ``q.rows``/``q.optional``), five
    statements. A query the role may not run is recorded in ``skipped`` with the privilege it needs, and
    its part is left empty. ``server`` is the snapshot's (it picks the checkpoint counters' view); where
    it lists the pgstattuple extension, two more statements measure the heaps the estimate suspects
    (:func:`heap_bloat_exact_query`; a role without ``pg_stat_scan_tables`` gets a skip)."""
    reader = PartReader(q, skipped)
    read = reader.read
    tables = {r["oid"]: TableMaintenance(
        oid=r["oid"], persistence=r["relpersistence"],
        reloptions={**_options(r["reloptions"]), **_options(r["toast_reloptions"], "toast.")},
        xid_age=int(r["xid_age"]), toast_xid_age=_int(r["toast_xid_age"]), mxid_age=int(r["mxid_age"]),
        toast_mxid_age=_int(r["toast_mxid_age"]), n_live_tup=_int(r["n_live_tup"]),
        n_dead_tup=_int(r["n_dead_tup"]), n_mod_since_analyze=_int(r["n_mod_since_analyze"]),
        n_ins_since_vacuum=_int(r["n_ins_since_vacuum"]), last_vacuum=r["last_vacuum"],
        last_autovacuum=r["last_autovacuum"], last_analyze=r["last_analyze"],
        last_autoanalyze=r["last_autoanalyze"], heap_blks_read=_int(r["heap_blks_read"]),
        heap_blks_hit=_int(r["heap_blks_hit"]))
        for r in read(TABLE_MAINTENANCE, "tables", "vacuum and analyze state", "pg_monitor")}
    bloat = {r["oid"]: HeapBloat(r["oid"], int(r["real_size_bytes"]), int(r["bloat_bytes"]), int(r["fillfactor"]),
                                 bool(r["is_na"]))
             for r in read(HEAP_BLOAT, "bloat", "heap bloat estimate", "pg_monitor")}
    if "pgstattuple" in server.extensions and bloat:
        bloat = _exact_bloat(q, bloat, skipped)
    sequences = tuple(SequenceUse(
        oid=r["oid"], schema=r["schema"], name=r["name"], seq_type=r["seq_type"],
        min_value=int(r["seqmin"]), max_value=int(r["seqmax"]), increment=int(r["seqincrement"]),
        cycle=bool(r["seqcycle"]), readable=bool(r["readable"]), last_value=_int(r["last_value"]),
        table_oid=r["table_oid"], attnum=r["attnum"], column_type=r["column_type"])
        for r in read(SEQUENCES, "sequences", "sequences", "SELECT on the sequences"))
    database = next((DatabaseMaintenance(int(r["xid_age"]), int(r["mxid_age"]), _int(r["temp_files"]),
                                         _int(r["temp_bytes"]))
                     for r in read(DATABASE_MAINTENANCE, "database", "database freeze ages and temporary files",
                                   "pg_monitor")), None)
    checkpoints = next((Checkpoints(int(r["timed"]), int(r["requested"]), r["stats_reset"])
                        for r in read(checkpoints_query(server.version_num), "checkpoints", "checkpoint counters",
                                      "pg_monitor")), None)
    return Maintenance(tables=tables, bloat=bloat, sequences=sequences, database=database,
                       checkpoints=checkpoints, readable=frozenset(reader.parts))


class PartReader:
    """Runs a snapshot part's optional queries through ``q`` (``q.optional``): a query the role may not run
    is recorded in ``skipped`` with the privilege it needs and gives no rows; ``parts`` names those read."""

    def __init__(self, q: Any, skipped: list[Skip]) -> None:
        self.q, self.skipped, self.parts = q, skipped, set[str]()

    def read(self, query: str, part: str, what: str, privilege: str) -> list[dict[str, Any]]:
        """The rows of ``query``, or ``[]`` (and a skip naming ``what`` and ``privilege``) when it failed."""
        rows, err = self.q.optional(query)
        if err is not None:
            self.skipped.append(_skip(what, _reason(err), privilege))
            return []
        self.parts.add(part)
        return list(rows or [])


def pgstattuple_rows(q: Any, query_in: Callable[[str], str], what: str, skipped: list[Skip]) -> list[dict[str, Any]]:
    """The rows of ``query_in(schema)``, ``schema`` being the quoted schema of the pgstattuple extension
    (two statements); ``[]`` where the extension is not in this database, or where the role may not run its
    functions (then a skip naming ``what`` and ``pg_stat_scan_tables``)."""
    from dbtune.sqlnames import quote_ident

    location, _ = q.optional(PGSTATTUPLE_LOCATION)
    if not location:
        return []
    rows, err = q.optional(query_in(quote_ident(location[0]["nspname"])))
    if err is not None:
        skipped.append(_skip(what, _reason(err), "pg_stat_scan_tables"))
        return []
    return list(rows or [])


def _skip(what: str, reason: str, privilege: str) -> Skip:
    from dbtune.catalog.model import Skip

    return Skip(what, reason, privilege)


def _exact_bloat(q: Any, bloat: dict[int, HeapBloat], skipped: list[Skip]) -> dict[int, HeapBloat]:
    """``bloat`` with pgstattuple_approx()'s figures on the suspected heaps (two statements)."""
    rows = pgstattuple_rows(q, heap_bloat_exact_query, "pgstattuple_approx", skipped)
    exact = dict(bloat)
    for r in rows:
        if r["oid"] in exact:
            exact[r["oid"]] = replace(exact[r["oid"]], exact_table_len=int(r["table_len"]),
                                      exact_reclaimable_bytes=int(r["approx_free_space"]) + int(r["dead_tuple_len"]))
    return exact


def _reason(err: psycopg.Error) -> str:
    return " ".join(str(err).split())
