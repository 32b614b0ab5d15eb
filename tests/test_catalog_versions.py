"""Every catalog query's version variant, chosen the way the snapshot chooses it, for each major version
dbtune supports (13 to 18): it parses with PostgreSQL's own grammar (pglast), and the columns that moved
between versions are read from the variant the documentation says has them.

The servers the tests run (15 and 18) run every variant of their version in the other tests; this one
covers 13, 14, 16 and 17 too, from the documentation.
"""

from __future__ import annotations

import pytest
from pglast import parse_sql

from dbtune.catalog import index_health, maintenance, queries, replication, settings_health

VERSIONS = (130000, 140000, 150000, 160000, 170000, 180000)
_PGSS = "public.pg_stat_statements"


def variants(version_num: int) -> dict[str, str]:
    """Every catalog statement the snapshot may send to a server of ``version_num``, by name."""
    fixed = {name: getattr(module, name) for module, names in (
        (queries, ("SERVER", "OTHER_RELATIONS", "RELATIONS", "COLUMNS", "CONSTRAINTS", "SETTINGS",
                   "FILE_SETTINGS", "INDEX_BUILDS", "ROLE_SETTINGS", "ROLES", "PG_STAT_STATEMENTS_COUNT",
                   "PG_STAT_STATEMENTS_LOCATION", "ACTIVITY", "LOCK_HOLDERS")),
        (maintenance, ("TABLE_MAINTENANCE", "HEAP_BLOAT", "SEQUENCES", "DATABASE_MAINTENANCE",
                       "PGSTATTUPLE_LOCATION")),
        (index_health, ("INDEX_BLOAT", "INDEXED_COLUMN_STATS", "INDEX_IO", "TABLE_UPDATES")),
        (replication, ("PUBLISHED_TABLES", "SLOTS"))) for name in names}
    return {**fixed,
            "indexes": queries.indexes_query(version_num),
            "database_stats": queries.database_stats_query(version_num),
            "checkpoints": maintenance.checkpoints_query(version_num),
            "top_statements": settings_health.top_statements_query(version_num, _PGSS),
            "heap_bloat_exact": maintenance.heap_bloat_exact_query("public"),
            "index_bloat_exact": index_health.index_bloat_exact_query("public")}


@pytest.mark.parametrize("version_num", VERSIONS)
def test_every_variant_parses(version_num: int) -> None:
    for name, sql in variants(version_num).items():
        # LOCK_HOLDERS is sent with a psycopg parameter; pglast reads it as a literal.
        statements = parse_sql(sql.replace("%(oids)s", "'{}'"))
        assert len(statements) == 1, name


# (statement, column, first major version that has it, last that has it or None, the page saying so).
MOVED = [
    ("indexes", "i.indnullsnotdistinct", 15, None,
     "https://www.postgresql.org/docs/15/catalog-pg-index.html"),
    ("database_stats", "d.sessions_abandoned", 14, None,
     "https://www.postgresql.org/docs/14/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW"),
    ("checkpoints", "pg_catalog.pg_stat_checkpointer", 17, None,
     "https://www.postgresql.org/docs/17/monitoring-stats.html#MONITORING-PG-STAT-CHECKPOINTER-VIEW"),
    ("checkpoints", "checkpoints_timed", 13, 16,
     "https://www.postgresql.org/docs/16/monitoring-stats.html#MONITORING-PG-STAT-BGWRITER-VIEW"),
    ("top_statements", "s.shared_blk_read_time", 17, None,
     "https://www.postgresql.org/docs/17/pgstatstatements.html"),
    ("top_statements", "s.blk_read_time", 13, 16, "https://www.postgresql.org/docs/16/pgstatstatements.html"),
    ("top_statements", "s.toplevel", 14, None, "https://www.postgresql.org/docs/14/pgstatstatements.html"),
    ("top_statements", "s.total_exec_time", 13, None, "https://www.postgresql.org/docs/13/pgstatstatements.html"),
    ("TABLE_MAINTENANCE", "s.n_ins_since_vacuum", 13, None,
     "https://www.postgresql.org/docs/13/monitoring-stats.html#MONITORING-PG-STAT-ALL-TABLES-VIEW"),
    ("SLOTS", "s.wal_status", 13, None, "https://www.postgresql.org/docs/13/view-pg-replication-slots.html"),
]


@pytest.mark.parametrize(("statement", "column", "first", "last", "page"), MOVED,
                         ids=[f"{s}-{c}" for s, c, *_ in MOVED])
@pytest.mark.parametrize("version_num", VERSIONS)
def test_moved_columns_are_read_where_they_exist(version_num: int, statement: str, column: str, first: int,
                                                 last: int | None, page: str) -> None:
    major = version_num // 10000
    exists = first <= major and (last is None or major <= last)
    assert (column in variants(version_num)[statement]) == exists, page
