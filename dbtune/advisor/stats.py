"""Column statistics from ``pg_stats`` for the advisor: how selective an equality on a column is, how
frequent a value is, how wide a column is.

One set-based query for all the tables named (:data:`COLUMN_STATS`), read-only, marked as dbtune's
(:class:`~dbtune.db.connect.MarkedCursor`). The estimates follow the planner's own
(``var_eq_const``/``var_eq_non_const`` in ``src/backend/utils/adt/selfuncs.c``): a value among
``most_common_vals`` has its frequency; another value shares what the most common values and NULLs leave,
evenly among the other distinct values. ``n_distinct`` below zero is minus a fraction of ``reltuples``.
See https://www.postgresql.org/docs/current/view-pg-stats.html and
https://www.postgresql.org/docs/current/row-estimation-examples.html.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import dict_row

from dbtune.db.connect import MarkedCursor
from dbtune.errors import ServerRefused
from dbtune.sqlnames import qualified

COLUMN_STATS = """
-- One row per column of the named tables that ANALYZE has statistics for: null_frac, avg_width (bytes),
-- n_distinct (< 0: minus a fraction of reltuples), the most common values (as text) and their
-- frequencies, the correlation of physical and logical order, and the table's reltuples. A table with
-- inheritance children (a partitioned table) has inherited statistics, preferred where both exist.
-- ``padded``: the column is character(n), whose equality ignores trailing spaces (its values print padded).
SELECT DISTINCT ON (s.schemaname, s.tablename, s.attname)
       s.schemaname::text AS schema, s.tablename::text AS table, s.attname::text AS column,
       s.null_frac, s.avg_width, s.n_distinct, s.most_common_vals::text::text[] AS mcv,
       s.most_common_freqs AS mcf, s.correlation, c.reltuples,
       a.atttypid = 'pg_catalog.bpchar'::pg_catalog.regtype AS padded
FROM pg_catalog.pg_stats s
JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname
JOIN ROWS FROM (pg_catalog.unnest(%(schemas)s::text[]), pg_catalog.unnest(%(tables)s::text[])) AS want(schema, name)
  ON want.schema = s.schemaname AND want.name = s.tablename
ORDER BY s.schemaname, s.tablename, s.attname, s.inherited DESC
"""


WITHOUT_STATISTICS = """
-- Each named table, or each leaf partition of a named partitioned table (the planner costs a partition's
-- scan from the partition's own statistics), that has no statistics although it may hold rows: reltuples -1
-- (never vacuumed nor analyzed, PostgreSQL 14+), or no pg_stats row while VACUUM or the cumulative
-- statistics saw rows (analyzed before it held rows, or only vacuumed; before 14 a table never analyzed
-- has reltuples 0, and is found this way). A table ANALYZE saw empty and that stayed empty (reltuples 0,
-- no pages, no rows counted since) is not one. Lock-free: pg_class, pg_stats and pg_stat_all_tables only.
-- The named table, the relation without statistics and its reltuples.
SELECT want.schema, want.name, n.nspname, c.relname, c.reltuples
FROM ROWS FROM (pg_catalog.unnest(%(schemas)s::text[]), pg_catalog.unnest(%(tables)s::text[])) AS want(schema, name)
JOIN pg_catalog.pg_namespace wn ON wn.nspname = want.schema
JOIN pg_catalog.pg_class w ON w.relnamespace = wn.oid AND w.relname = want.name
CROSS JOIN LATERAL (SELECT w.oid WHERE w.relkind <> 'p'
                    UNION ALL
                    SELECT t.relid FROM pg_catalog.pg_partition_tree(w.oid) AS t WHERE w.relkind = 'p' AND t.isleaf
                   ) AS leaf(oid)
JOIN pg_catalog.pg_class c ON c.oid = leaf.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_stat_all_tables a ON a.relid = c.oid
WHERE c.reltuples < 0
   OR (NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stats s WHERE s.schemaname = n.nspname AND s.tablename = c.relname)
       AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
       AND (c.reltuples > 0 OR c.relpages > 0 OR a.n_live_tup > 0 OR a.n_mod_since_analyze > 0))
ORDER BY want.schema, want.name, n.nspname, c.relname
"""


@dataclass(frozen=True)
class ColumnStat:
    """``pg_stats`` for one column: ``null_frac`` (0..1), ``avg_width`` (bytes), ``n_distinct`` as
    ``pg_stats`` gives it, ``most_common_vals`` (as text) with ``most_common_freqs`` (0..1),
    ``correlation`` (-1..1 or None), the table's ``reltuples`` (-1: never analysed or vacuumed), and
    ``padded`` for a ``character(n)`` column, whose equality ignores trailing spaces
    (https://www.postgresql.org/docs/current/datatype-character.html): its values print padded to ``n``."""

    null_frac: float
    avg_width: int
    n_distinct: float
    most_common_vals: tuple[str | None, ...] = ()
    most_common_freqs: tuple[float, ...] = ()
    correlation: float | None = None
    reltuples: float = -1.0
    padded: bool = False

    @property
    def distinct(self) -> float:
        """The number of distinct non-NULL values (``n_distinct`` < 0 scaled by ``reltuples``)."""
        if self.n_distinct >= 0:
            return self.n_distinct
        return -self.n_distinct * max(self.reltuples, 0.0)

    def frequency(self, value: str) -> float | None:
        """The fraction of rows equal to ``value`` when it is a most common value, else None."""
        if self.padded:
            value = value.rstrip(" ")
        for v, f in zip(self.most_common_vals, self.most_common_freqs, strict=False):
            if v == value or (self.padded and v is not None and v.rstrip(" ") == value):
                return f
        return None

    def selectivity_eq(self, value: str | None = None) -> float | None:
        """The fraction of rows (0..1) ``column = value`` selects; ``value`` None: a value not known
        until execution (a ``$n``), as ``(1 - null_frac) / n_distinct``. None when pg_stats cannot tell
        (no distinct values known)."""
        if value is not None:
            known = self.frequency(value)
            if known is not None:
                return known
            if self.distinct <= 0 and not self.most_common_vals:
                return None
            # As var_eq_const: what the most common values and NULLs leave, shared by the other distinct
            # values, and never more than the least common of the most common values.
            share = 1.0 - self.null_frac - sum(self.most_common_freqs)
            rest = self.distinct - len(self.most_common_vals)
            if rest > 1:
                share /= rest
            if self.most_common_freqs:
                share = min(share, min(self.most_common_freqs))
            return _clamp(share)
        if self.distinct <= 0:
            return None
        return _clamp((1.0 - self.null_frac) / self.distinct)


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))


@dataclass(frozen=True)
class ColumnStats:
    """``pg_stats`` of the columns of some tables, keyed by (schema, table, column), unquoted catalog
    names. Every lookup returns None for a column without statistics (never analysed, or not asked for)."""

    columns: dict[tuple[str, str, str], ColumnStat] = field(default_factory=dict)

    def stat(self, schema: str, table: str, column: str) -> ColumnStat | None:
        """The column's :class:`ColumnStat`, or None."""
        return self.columns.get((schema, table, column))

    def selectivity_eq(self, schema: str, table: str, column: str, value: str | None = None) -> float | None:
        """The fraction of rows (0..1) an equality on the column selects (:meth:`ColumnStat.selectivity_eq`)."""
        s = self.stat(schema, table, column)
        return s.selectivity_eq(value) if s else None

    def frequency(self, schema: str, table: str, column: str, value: str) -> float | None:
        """The fraction of rows (0..1) holding ``value``, from most_common_vals/freqs; None when it is not
        a most common value (or the column has no statistics)."""
        s = self.stat(schema, table, column)
        return s.frequency(value) if s else None

    def width(self, schema: str, table: str, column: str) -> int | None:
        """The column's average width in bytes (``avg_width``)."""
        s = self.stat(schema, table, column)
        return s.avg_width if s else None


def read_column_stats(conn: psycopg.Connection, tables: Iterable[tuple[str, str]]) -> ColumnStats:
    """``pg_stats`` of every column of ``tables`` ((schema, table) pairs, unquoted catalog names) in one
    query (:data:`COLUMN_STATS`); read-only, so it runs inside the read-only snapshot transaction.

    Tables never analysed have no rows (their lookups return None). Raises :class:`ServerRefused` when the
    server refuses the query. https://www.postgresql.org/docs/current/view-pg-stats.html
    """
    wanted = sorted(set(tables))
    if not wanted:
        return ColumnStats()
    params = {"schemas": [s for s, _ in wanted], "tables": [t for _, t in wanted]}
    try:
        with MarkedCursor(conn, row_factory=dict_row) as cur:
            rows = cur.execute(COLUMN_STATS, params).fetchall()
    except psycopg.Error as exc:
        raise ServerRefused(f"cannot read pg_stats: {' '.join(str(exc).split())}") from None
    return ColumnStats({
        (r["schema"], r["table"], r["column"]): ColumnStat(
            float(r["null_frac"] or 0.0), int(r["avg_width"] or 0), float(r["n_distinct"] or 0.0),
            tuple(r["mcv"] or ()), tuple(float(f) for f in r["mcf"] or ()),
            float(r["correlation"]) if r["correlation"] is not None else None, float(r["reltuples"]),
            bool(r["padded"]))
        for r in rows})


@dataclass(frozen=True)
class WithoutStatistics:
    """A workload table the planner has no statistics for: ``table`` as the workload uses it (qualified,
    quoted), and ``relations`` without statistics (itself, or its leaf partitions), each with its
    ``reltuples`` (-1: never vacuumed nor analyzed). Its row counts and selectivities are the planner's
    defaults, and so any index's cost on it would be invented."""

    table: str
    relations: tuple[tuple[str, float], ...]

    @property
    def reason(self) -> str:
        """Why no candidate is proposed on it, and the fix (``ANALYZE public.t, then advise again``)."""
        names = [name for name, _ in self.relations]
        said = "never analyzed: reltuples -1 and" if all(r < 0 for _, r in self.relations) else (
            "not analyzed since it held rows:")
        if names != [self.table]:
            said = f"{'partition' if len(names) == 1 else 'partitions'} {', '.join(names)} {said}"
        return (f"{said} no pg_stats rows, so its row counts and selectivities are the planner's defaults and any "
                f"index's cost on it would be invented; ANALYZE {', '.join(names)}, then advise again")


def read_without_statistics(conn: psycopg.Connection, tables: Iterable[tuple[str, str]]
                            ) -> dict[str, WithoutStatistics]:
    """The tables of ``tables`` ((schema, table) pairs, unquoted catalog names) the planner has no statistics
    for (:data:`WITHOUT_STATISTICS`: never analyzed, or left without ``pg_stats`` rows while holding rows; for
    a partitioned table, its leaf partitions), keyed by the table qualified and quoted. One read-only,
    lock-free query. Raises :class:`ServerRefused` when the server refuses it.
    https://www.postgresql.org/docs/current/planner-stats.html,
    https://www.postgresql.org/docs/current/catalog-pg-class.html (``reltuples``)
    """
    wanted = sorted(set(tables))
    if not wanted:
        return {}
    params = {"schemas": [s for s, _ in wanted], "tables": [t for _, t in wanted]}
    try:
        with MarkedCursor(conn) as cur:
            rows = cur.execute(WITHOUT_STATISTICS, params).fetchall()
    except psycopg.Error as exc:
        raise ServerRefused(f"cannot read pg_class and pg_stats: {' '.join(str(exc).split())}") from None
    found: dict[str, list[tuple[str, float]]] = {}
    for schema, table, rel_schema, rel, reltuples in rows:
        found.setdefault(qualified(schema, table), []).append((qualified(rel_schema, rel), float(reltuples)))
    return {table: WithoutStatistics(table, tuple(relations)) for table, relations in found.items()}
