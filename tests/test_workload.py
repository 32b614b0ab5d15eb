"""``dbtune.workload``: query sources (SQL scripts with psql meta-commands and ``:var``, real server logs
in stderr, csvlog and jsonlog on every available server, pg_stat_statements, standard input, bad input)
and column usage on the JOB (113), TPC-H (22) and pagila queries, resolved against real catalogs.
"""

from __future__ import annotations

import io
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import conftest
import psycopg
import pytest

from dbtune.catalog.snapshot import take
from dbtune.db.connect import ConnectionSettings, read_only_snapshot
from dbtune.db.local_server import LocalServer, embedded_bindir, system_bindir
from dbtune.errors import ExitCode, UsageError
from dbtune.workload import (
    LoadResult,
    Query,
    QueryUsage,
    Source,
    Usage,
    UsageAnalyzer,
    WorkloadSchema,
    column_usage,
    group_by_fingerprint,
    load_queries,
    pg_stat_statements_queries,
    read_views,
)
from dbtune.workload.model import PredicateOp
from dbtune.workload.sqlfile import split_script

DATA = conftest.SHARED / "data"
JOB_QUERIES = sorted((DATA / "job" / "queries").glob("*.sql"))
TPCH_NUMBERS = range(1, 23)
U = Usage


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def cols(usage: QueryUsage, table: str) -> dict[str, set[Usage]]:
    found = usage.table(table)
    assert found is not None, (table, [t.table for t in usage.tables], usage.reason, usage.unresolved)
    return {c: set(k) for c, k in found.columns.items()}


def exprs(usage: QueryUsage, table: str) -> dict[str, set[Usage]]:
    found = usage.table(table)
    assert found is not None, (table, [t.table for t in usage.tables])
    return {e.text: set(e.kinds) for e in found.expressions}


# --- the benchmark schemas on a real server -------------------------------------------------------------


def tpch_script(n: int) -> str:
    """A qgen template as a script: the directive lines (``:x``, ``:o``) dropped, the stream marker of
    ``revenue:s`` numbered 0, markers inside literals given sample values (a date, an interval, text);
    bare markers (``p_size = :1``) are left for the loader, which turns them into ``$n``."""
    text = (DATA / "tpch" / "templates" / f"{n}.sql").read_text()
    text = re.sub(r"(?m)^:[a-z](?: .*)?$", "", text)
    text = text.replace("revenue:s", "revenue0")
    text = re.sub(r"date ':\d+'", "date '1995-03-15'", text)
    text = re.sub(r"interval ':\d+'", "interval '90'", text)
    return re.sub(r"'([^'\n]*)'", lambda m: "'" + re.sub(r":\d+", "X", m.group(1)) + "'", text)


def tpch_queries(n: int, tmp: Path) -> LoadResult:
    return load_queries(write(tmp / f"tpch{n}.sql", tpch_script(n)), group=False)


@dataclass
class Catalog:
    database: conftest.TestDatabase
    schema: WorkloadSchema


@pytest.fixture(scope="module")
def bench_catalog(pg: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """One database per server: JOB in ``public``, TPC-H in ``tpch`` (found through the database's
    search path), TPC-H Q15's view ``revenue0``; the schema taken from a real snapshot and the views query."""
    database = conftest.new_database(pg, "workload")
    database.execute((DATA / "job" / "schema.sql").read_text())
    q15_view = next(q.text for q in tpch_queries(15, tmp_path_factory.mktemp("q15")).queries
                    if q.text.lower().startswith("create view"))
    database.execute(f"CREATE SCHEMA tpch; SET search_path = tpch; {(DATA / 'tpch' / 'tpch-create.sql').read_text()};"
                     f"{q15_view}")
    database.execute(f"ALTER DATABASE {database.name} SET search_path = public, tpch")
    with read_only_snapshot(ConnectionSettings(dsn=database.dsn)) as conn:
        schema = WorkloadSchema.from_snapshot(take(conn), read_views(conn))
    yield Catalog(database, schema)
    conftest.drop_database(database)


def test_snapshot_schema_has_tables_views_and_the_search_path(bench_catalog: Catalog) -> None:
    schema = bench_catalog.schema
    assert schema.search_path == ("public", "tpch")
    assert schema.relation(None, "lineitem").qualified_name == "tpch.lineitem"  # type: ignore[union-attr]
    view = schema.relation("tpch", "revenue0")
    assert view is not None and view.is_view and view.column_names == ("supplier_no", "total_revenue")
    assert "tpch.lineitem" in (view.definition or "")  # pg_get_viewdef under an empty search path


def test_every_job_query_yields_column_usage(bench_catalog: Catalog) -> None:
    analyzer = UsageAnalyzer(bench_catalog.schema)
    assert len(JOB_QUERIES) == 113
    for path in JOB_QUERIES:
        result = load_queries(path)
        assert not result.errors and len(result.queries) == 1, (path, result.errors)
        usage = analyzer.usage(result.queries[0].text)
        assert usage.reason is None and usage.unresolved == (), (path.name, usage)
        assert usage.tables and all(t.table.startswith("public.") for t in usage.tables)
        assert any(U.JOIN in k for t in usage.tables for k in t.columns.values()), path.name
    q1a = analyzer.usage((DATA / "job" / "queries" / "1a.sql").read_text())
    assert cols(q1a, "public.company_type") == {"kind": {U.EQUALITY}, "id": {U.JOIN}}
    assert cols(q1a, "public.movie_companies") == {"company_type_id": {U.JOIN}, "movie_id": {U.JOIN},
                                                   "note": {U.PATTERN}}  # LIKE '%(co-production)%'
    assert cols(q1a, "public.info_type") == {"info": {U.EQUALITY}, "id": {U.JOIN}}
    q6a = analyzer.usage((DATA / "job" / "queries" / "6a.sql").read_text())
    assert cols(q6a, "public.keyword")["keyword"] == {U.EQUALITY}
    assert cols(q6a, "public.name")["name"] == {U.PATTERN}  # LIKE '%Downey%Robert%'
    assert cols(q6a, "public.title")["production_year"] == {U.RANGE}


def test_every_tpch_query_yields_column_usage(bench_catalog: Catalog, tmp_path: Path) -> None:
    analyzer = UsageAnalyzer(bench_catalog.schema)
    usages: dict[int, QueryUsage] = {}
    for n in TPCH_NUMBERS:
        result = tpch_queries(n, tmp_path)
        assert not result.errors, (n, result.errors)
        (select,) = [q for q in result.queries if q.text.lower().startswith("select")]
        usage = analyzer.usage(select.text)
        assert usage.reason is None and usage.tables, (n, usage)
        # The only columns without a table are aggregates of derived tables and views (Q13, 15, 17, 20).
        assert all("aggregate" in u for u in usage.unresolved), (n, usage.unresolved)
        usages[n] = usage
    assert cols(usages[1], "tpch.lineitem") == {"l_shipdate": {U.RANGE}, "l_returnflag": {U.GROUP_BY, U.ORDER_BY},
                                                "l_linestatus": {U.GROUP_BY, U.ORDER_BY}}
    # Bare markers became parameters: p_size = :1 is p_size = $1.
    q2 = next(q for q in tpch_queries(2, tmp_path).queries)
    assert "p_size = $1" in q2.text and "like '%X'" in q2.text
    assert cols(usages[2], "tpch.part")["p_size"] == {U.EQUALITY}
    assert cols(usages[2], "tpch.part")["p_type"] == {U.PATTERN}
    assert cols(usages[6], "tpch.lineitem") == {"l_shipdate": {U.RANGE}, "l_discount": {U.RANGE},
                                                "l_quantity": {U.RANGE}}
    # GROUP BY l_year, the derived table's extract(year from l_shipdate), as pglast writes it.
    assert exprs(usages[7], "tpch.lineitem") == {"EXTRACT(YEAR FROM l_shipdate)": {U.GROUP_BY, U.ORDER_BY}}
    assert cols(usages[12], "tpch.lineitem")["l_shipmode"] == {U.IN, U.GROUP_BY, U.ORDER_BY}
    # Q15 reads the view revenue0: its definition's range and grouping reach lineitem.
    assert cols(usages[15], "tpch.lineitem") == {"l_shipdate": {U.RANGE}, "l_suppkey": {U.GROUP_BY, U.JOIN}}
    assert cols(usages[15], "tpch.supplier")["s_suppkey"] == {U.JOIN, U.ORDER_BY}
    assert "tpch.revenue0" not in [t.table for t in usages[15].tables]
    assert cols(usages[16], "tpch.part")["p_type"] == {U.GROUP_BY, U.ORDER_BY}  # NOT LIKE is no search
    assert cols(usages[16], "tpch.supplier") == {"s_comment": {U.PATTERN}}  # in NOT IN (… LIKE '%X%')
    assert cols(usages[20], "tpch.part")["p_name"] == {U.LIKE_PREFIX}
    assert cols(usages[20], "tpch.partsupp")["ps_partkey"] == {U.IN, U.JOIN}
    assert cols(usages[22], "tpch.orders") == {"o_custkey": {U.JOIN}}  # correlated NOT EXISTS
    assert exprs(usages[22], "tpch.customer") == {"pg_catalog.substring(c_phone, 1, 2)": {U.IN, U.GROUP_BY,
                                                                                        U.ORDER_BY}}


def test_usage_of_wrapped_and_utility_statements(bench_catalog: Catalog, tmp_path: Path) -> None:
    analyzer = UsageAnalyzer(bench_catalog.schema)
    create_view, _select, drop_view = tpch_queries(15, tmp_path).queries
    assert cols(analyzer.usage(create_view.text), "tpch.lineitem")["l_shipdate"] == {U.RANGE}
    assert analyzer.usage(drop_view.text).reason == "a utility statement (DROP): it reads no table columns"
    explained = analyzer.usage("EXPLAIN (ANALYZE, BUFFERS) SELECT * FROM title WHERE production_year > $1")
    assert cols(explained, "public.title") == {"production_year": {U.RANGE}}


# --- column usage: names, scopes, views, DML --------------------------------------------------------------

EDGE_SCHEMA = """
CREATE SCHEMA app;
CREATE TABLE public.users (id bigint PRIMARY KEY, email text, "Name" text, payload jsonb, created_at timestamptz,
                           active boolean, org_id int, nick varchar(20), tags text[]);
CREATE TABLE app."Orders" (id bigint, user_id bigint, "Total" numeric, status text, created_at timestamptz);
CREATE TABLE app.users (id int, zz int);
CREATE TABLE public.events (id bigint, at timestamptz, kind text) PARTITION BY RANGE (at);
CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE VIEW public.active_users AS SELECT u.id AS uid, lower(u.email) AS mail, u.nick FROM public.users u
    WHERE u.active;
CREATE VIEW app.recent_orders AS SELECT o.user_id, o."Total" AS total FROM app."Orders" o
    WHERE o.created_at > now() - interval '1 day';
CREATE VIEW public.both_ids AS SELECT id FROM public.users UNION ALL SELECT id FROM app."Orders";
"""

EDGE_CASES: list[tuple[str, dict[str, dict[str, set[Usage]]], dict[str, dict[str, set[Usage]]]]] = [
    # (statement, {table: columns}, {table: expressions})
    ("SELECT * FROM users WHERE lower(email) = $1 AND payload->>'status' = 'paid' "
     "AND created_at::date > now() - interval '1 day'",
     {"public.users": {}},
     {"public.users": {"lower(email)": {U.EQUALITY}, "payload ->> 'status'": {U.EQUALITY},
                       "CAST(created_at AS date)": {U.RANGE}}}),
    ('SELECT o."Total" FROM "Orders" o JOIN users u ON u.id = o.user_id WHERE o.status IN ($1, $2) '
     "ORDER BY o.created_at DESC LIMIT $3",
     {'app."Orders"': {"status": {U.IN}, "user_id": {U.JOIN}, "created_at": {U.ORDER_BY}},
      "public.users": {"id": {U.JOIN}}}, {}),
    ('SELECT * FROM "Orders" WHERE "Total" >= $1 AND "Total" < $2', {'app."Orders"': {"Total": {U.RANGE}}}, {}),
    ("SELECT * FROM app.users WHERE zz = $1", {"app.users": {"zz": {U.EQUALITY}}}, {}),
    # A CTE named like a table is the CTE, not the table.
    ('WITH users AS (SELECT 1 AS id) SELECT * FROM users JOIN "Orders" o ON o.user_id = users.id '
     "WHERE o.status = $1", {'app."Orders"': {"status": {U.EQUALITY}, "user_id": {U.JOIN}}}, {}),
    ('SELECT u.id, x.total FROM users u, LATERAL (SELECT sum(o."Total") AS total FROM "Orders" o '
     "WHERE o.user_id = u.id) x WHERE u.email LIKE $1",
     {'app."Orders"': {"user_id": {U.JOIN}}, "public.users": {"id": {U.JOIN}, "email": {U.LIKE_UNKNOWN}}}, {}),
    ("SELECT g FROM users u, generate_series(1, 10) g WHERE u.email LIKE 'abc%' AND u.org_id = g",
     {"public.users": {"email": {U.LIKE_PREFIX}, "org_id": {U.JOIN}}}, {}),
    ("INSERT INTO users (id, email) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET email = excluded.email",
     {"public.users": {"id": {U.CONFLICT}}}, {}),
    ('UPDATE users u SET email = $1 FROM "Orders" o WHERE o.user_id = u.id AND o.status = $2',
     {"public.users": {"id": {U.JOIN}}, 'app."Orders"': {"user_id": {U.JOIN}, "status": {U.EQUALITY}}}, {}),
    ('DELETE FROM users WHERE created_at < $1 AND "Name" IS NULL',
     {"public.users": {"created_at": {U.RANGE}, "Name": {U.IS_NULL}}}, {}),
    ('MERGE INTO users u USING "Orders" o ON o.user_id = u.id WHEN MATCHED THEN UPDATE SET email = $1',
     {"public.users": {"id": {U.JOIN}}, 'app."Orders"': {"user_id": {U.JOIN}}}, {}),
    # The partitioned table is reported as written, not as its partitions.
    ("SELECT * FROM events WHERE at >= $1 AND kind = ANY($2)", {"public.events": {"at": {U.RANGE}, "kind": {U.IN}}},
     {}),
    # Views map to their base tables (and bring their own conditions); a view column that is an expression
    # becomes that expression on the base table.
    ("SELECT uid FROM active_users WHERE mail = $1 ORDER BY nick",
     {"public.users": {"active": {U.EQUALITY}, "nick": {U.ORDER_BY}}},
     {"public.users": {"lower(email)": {U.EQUALITY}}}),
    ("SELECT * FROM recent_orders r JOIN users u ON u.id = r.user_id WHERE r.total > $1",
     {'app."Orders"': {"created_at": {U.RANGE}, "user_id": {U.JOIN}, "Total": {U.RANGE}},
      "public.users": {"id": {U.JOIN}}}, {}),
    ("SELECT * FROM both_ids WHERE id = $1",
     {"public.users": {"id": {U.EQUALITY}}, 'app."Orders"': {"id": {U.EQUALITY}}}, {}),
    ('SELECT * FROM (SELECT id, email FROM users UNION ALL SELECT id, status FROM "Orders") s WHERE s.id = $1',
     {"public.users": {"id": {U.EQUALITY}}, 'app."Orders"': {"id": {U.EQUALITY}}}, {}),
    # varchar::text is binary-coercible (pg_get_viewdef writes it): the column itself; a real cast is not.
    ("SELECT * FROM users WHERE nick::text = $1 AND id::text = $2",
     {"public.users": {"nick": {U.EQUALITY}}}, {"public.users": {"CAST(id AS text)": {U.EQUALITY}}}),
    ("SELECT * FROM users WHERE active AND id = $1::bigint",
     {"public.users": {"active": {U.EQUALITY}, "id": {U.EQUALITY}}}, {}),
    ('SELECT * FROM users WHERE id = (SELECT max(user_id) FROM "Orders" WHERE status = $1)',
     {"public.users": {"id": {U.EQUALITY}}, 'app."Orders"': {"status": {U.EQUALITY}}}, {}),
    ("SELECT email, count(*) FROM users GROUP BY 1 ORDER BY 2 DESC", {"public.users": {"email": {U.GROUP_BY}}}, {}),
    ("WITH RECURSIVE t(n) AS (SELECT id FROM users WHERE id = $1 UNION ALL SELECT u.id FROM users u "
     "JOIN t ON u.org_id = t.n) SELECT * FROM t",
     {"public.users": {"id": {U.EQUALITY, U.JOIN}, "org_id": {U.JOIN}}}, {}),
    ('SELECT * FROM users u WHERE EXISTS (SELECT 1 FROM "Orders" o WHERE o.user_id = u.id AND o.status = \'x\')',
     {'app."Orders"': {"user_id": {U.JOIN}, "status": {U.EQUALITY}}, "public.users": {"id": {U.JOIN}}}, {}),
    ('SELECT * FROM users u JOIN "Orders" o USING (id) WHERE o.status = $1',
     {"public.users": {"id": {U.JOIN}}, 'app."Orders"': {"id": {U.JOIN}, "status": {U.EQUALITY}}}, {}),
    ("SELECT * FROM users WHERE email ILIKE $1 OR nick ~ $2 OR created_at BETWEEN $3 AND $4",
     {"public.users": {"email": {U.PATTERN}, "nick": {U.PATTERN}, "created_at": {U.RANGE}}}, {}),
    ("WITH d AS (DELETE FROM users WHERE id = $1 RETURNING *) SELECT * FROM d", {"public.users": {"id": {U.EQUALITY}}},
     {}),
]


@pytest.fixture(scope="module")
def edge_schema(pg: LocalServer) -> Iterator[WorkloadSchema]:
    database = conftest.new_database(pg, "usage")
    database.execute(EDGE_SCHEMA)
    database.execute(f"ALTER DATABASE {database.name} SET search_path = public, app")
    with read_only_snapshot(ConnectionSettings(dsn=database.dsn)) as conn:
        schema = WorkloadSchema.from_snapshot(take(conn), read_views(conn))
    yield schema
    conftest.drop_database(database)


@pytest.mark.parametrize(("sql", "columns", "expressions"), EDGE_CASES, ids=[c[0][:48] for c in EDGE_CASES])
def test_column_usage_cases(edge_schema: WorkloadSchema, sql: str, columns: dict[str, dict[str, set[Usage]]],
                            expressions: dict[str, dict[str, set[Usage]]]) -> None:
    usage = column_usage(sql, edge_schema)
    assert usage.reason is None, usage
    assert {t.table: {c: set(k) for c, k in t.columns.items()} for t in usage.tables} == columns, usage
    got = {t.table: {e.text: set(e.kinds) for e in t.expressions} for t in usage.tables if t.expressions}
    assert got == expressions, usage


def test_column_usage_of_a_bare_snapshot(pg: LocalServer) -> None:
    """A catalog snapshot alone has no views: a view is then a relation not in the catalog."""
    database = conftest.new_database(pg, "snap")
    try:
        database.execute(EDGE_SCHEMA)
        with read_only_snapshot(ConnectionSettings(dsn=database.dsn)) as conn:
            snapshot = take(conn)
        usage = column_usage('SELECT * FROM app."Orders" o JOIN active_users a ON a.uid = o.user_id '
                             "WHERE o.status = $1", snapshot)
        assert cols(usage, 'app."Orders"') == {"status": {U.EQUALITY}, "user_id": {U.JOIN}}
        assert "active_users: relation not in the catalog" in usage.unresolved
    finally:
        conftest.drop_database(database)


def test_column_usage_gives_reasons_not_crashes(edge_schema: WorkloadSchema) -> None:
    reasons = {
        "SELEC 1": "does not parse: syntax error at or near \"SELEC\"",
        "SELECT 1; SELECT 2": "holds 2 statements; column usage is per statement",
        "VACUUM users": "a utility statement (VACUUM): it reads no table columns",
        "SELECT now()": "it reads no table",
        "SELECT * FROM nope WHERE x = 1": "no table of the catalog is read (nope: relation not in the catalog)",
        "SELECT JSON('{\"a\": 1}' WITH UNIQUE KEYS)": "sqlglot cannot parse it: ",
    }
    for sql, reason in reasons.items():
        usage = column_usage(sql, edge_schema)
        assert usage.reason is not None and usage.reason.startswith(reason), (sql, usage)
        assert usage.tables == ()
    partial = column_usage("SELECT * FROM users u JOIN nope n ON n.uid = u.id WHERE u.email = $1", edge_schema)
    assert cols(partial, "public.users") == {"email": {U.EQUALITY}, "id": {U.JOIN}}
    assert "nope: relation not in the catalog" in partial.unresolved
    srf = column_usage("SELECT * FROM users u, jsonb_each(u.payload) AS kv WHERE kv.key = $1", edge_schema)
    assert any("set-returning function" in u for u in srf.unresolved), srf


def test_cache_is_per_fingerprint_unless_constants_matter(edge_schema: WorkloadSchema) -> None:
    analyzer = UsageAnalyzer(edge_schema)
    assert cols(analyzer.usage("SELECT * FROM users WHERE id = 1"), "public.users") == {"id": {U.EQUALITY}}
    assert cols(analyzer.usage("SELECT * FROM users WHERE id = 2"), "public.users") == {"id": {U.EQUALITY}}
    assert (analyzer.hits, analyzer.misses) == (1, 1)
    # Same fingerprint, different LIKE patterns: a prefix and a suffix search.
    assert cols(analyzer.usage("SELECT * FROM users WHERE email LIKE 'ab%'"), "public.users") == {
        "email": {U.LIKE_PREFIX}}
    assert cols(analyzer.usage("SELECT * FROM users WHERE email LIKE '%ab'"), "public.users") == {
        "email": {U.PATTERN}}
    assert exprs(analyzer.usage("SELECT 1 FROM users WHERE payload->>'a' = $1"), "public.users") == {
        "payload ->> 'a'": {U.EQUALITY}}
    assert exprs(analyzer.usage("SELECT 1 FROM users WHERE payload->>'b' = $1"), "public.users") == {
        "payload ->> 'b'": {U.EQUALITY}}
    assert analyzer.misses == 5
    # White space and comments do not change the constants: a hit.
    spaced = analyzer.usage("/* app */ SELECT *\n  FROM users  WHERE email LIKE 'ab%'")
    assert cols(spaced, "public.users") == {"email": {U.LIKE_PREFIX}} and analyzer.misses == 5
    uncached = analyzer.usage("SELECT * FROM users WHERE id = 3", cache=False)
    assert cols(uncached, "public.users") == {"id": {U.EQUALITY}} and analyzer.misses == 6


def test_usage_sort_keys_per_clause_in_order(edge_schema: WorkloadSchema) -> None:
    """ORDER BY keys with their directions, clause by clause; a LATERAL subquery's ORDER BY is its own."""
    usage = column_usage('SELECT u.id FROM users u CROSS JOIN LATERAL (SELECT o."Total" FROM "Orders" o '
                         "WHERE o.user_id = u.id ORDER BY o.created_at DESC NULLS LAST, o.id LIMIT 1) x "
                         'ORDER BY u.email, lower(u."Name") DESC', edge_schema)
    orders, users = usage.table('app."Orders"'), usage.table("public.users")
    assert orders is not None and users is not None
    (lateral,) = orders.sort_clauses()
    assert [(k.text, k.descending, k.nulls_first, k.position) for k in lateral] == [
        ("created_at", True, False, 0), ("id", False, False, 1)]
    (outer,) = users.sort_clauses()
    assert [(k.text, k.expression, k.descending, k.nulls_first) for k in outer] == [
        ("email", False, False, False), ('lower("Name")', True, True, True)]
    assert lateral[0].clause != outer[0].clause
    # Only a table's leading keys of a clause can come from one index.
    mixed = column_usage('SELECT * FROM users u JOIN "Orders" o ON o.user_id = u.id ORDER BY o.status, u.email',
                         edge_schema)
    assert [k.text for k in mixed.table("public.users").sort_keys] == ["email"]  # type: ignore[union-attr]
    assert mixed.table("public.users").sort_clauses() == ()  # type: ignore[union-attr]
    assert [[k.text for k in c] for c in mixed.table('app."Orders"').sort_clauses()] == [["status"]]  # type: ignore[union-attr]


def test_usage_referenced_columns(edge_schema: WorkloadSchema) -> None:
    """Every column of a table the statement reads, select list included; * is every column."""
    usage = column_usage("SELECT email FROM users WHERE org_id = $1 ORDER BY created_at", edge_schema)
    assert set(usage.table("public.users").referenced) == {"email", "org_id", "created_at"}  # type: ignore[union-attr]
    star = column_usage('SELECT u.*, o.status FROM users u JOIN "Orders" o ON o.user_id = u.id', edge_schema)
    assert set(star.table("public.users").referenced) == {  # type: ignore[union-attr]
        "id", "email", "Name", "payload", "created_at", "active", "org_id", "nick", "tags"}
    assert set(star.table('app."Orders"').referenced) == {"user_id", "status"}  # type: ignore[union-attr]
    view = column_usage("SELECT uid FROM active_users WHERE mail = $1", edge_schema)
    assert {"id", "email", "nick", "active"} <= set(view.table("public.users").referenced)  # type: ignore[union-attr]


def test_usage_constant_predicates(edge_schema: WorkloadSchema) -> None:
    """Top-level AND terms comparing a column with constants; built from quote_ident/quote_literal."""
    usage = column_usage("SELECT id FROM users WHERE email = 'a''b' AND org_id IN (1, 2) AND \"Name\" IS NULL "
                         "AND active AND (nick = 'x' OR nick = 'y') AND id = $1 AND 7 = org_id "
                         "AND created_at = E'2026\\\\01'", edge_schema)
    users = usage.table("public.users")
    assert users is not None
    assert [p.sql for p in users.constants] == [
        "email = 'a''b'", "org_id IN (1, 2)", '"Name" IS NULL', "active", "org_id = 7", "created_at = E'2026\\\\01'"]
    assert users.constants[0].values == ("a'b",) and users.constants[0].op is PredicateOp.EQUAL
    assert users.constants[1].values == ("1", "2") and users.constants[1].op is PredicateOp.IN
    # A view's own constants count too (active_users is WHERE u.active).
    view = column_usage("SELECT uid FROM active_users", edge_schema)
    assert [p.sql for p in view.table("public.users").constants] == ["active"]  # type: ignore[union-attr]
    # Cached per fingerprint: another statement of it gets its own constants.
    analyzer = UsageAnalyzer(edge_schema)
    first = analyzer.usage("SELECT id FROM users WHERE email = 'x' AND org_id = 1")
    second = analyzer.usage("SELECT id FROM users WHERE email = 'y' AND org_id = 2")
    assert (analyzer.hits, analyzer.misses) == (1, 1)
    assert [p.sql for p in first.tables[0].constants] == ["email = 'x'", "org_id = 1"]
    assert [p.sql for p in second.tables[0].constants] == ["email = 'y'", "org_id = 2"]
    # IN lists of other lengths fingerprint alike: their constants do not line up, so it is analysed again.
    analyzer.usage("SELECT id FROM users WHERE org_id IN (1, 2) AND email = 'x'")
    longer = analyzer.usage("SELECT id FROM users WHERE org_id IN (1, 2, 3) AND email = 'z'")
    assert [p.sql for p in longer.tables[0].constants] == ["org_id IN (1, 2, 3)", "email = 'z'"]
    assert analyzer.misses == 3


def test_usage_containment(edge_schema: WorkloadSchema) -> None:
    usage = column_usage("SELECT id FROM users WHERE payload @> $1 AND payload ? 'k' AND tags && $2 "
                         "AND tags <@ $3 AND payload ?| $4", edge_schema)
    users = usage.table("public.users")
    assert users is not None
    assert users.columns == {"payload": {Usage.CONTAINMENT}, "tags": {Usage.CONTAINMENT}}
    assert users.containment == {"payload": {"@>", "?", "?|"}, "tags": {"&&", "<@"}}


def test_schema_from_sql_files_matches_the_server(bench_catalog: Catalog) -> None:
    """The offline schema (CREATE TABLE/VIEW parsed by pglast) gives the same usage as the server's."""
    offline = WorkloadSchema.from_sql((DATA / "job" / "schema.sql").read_text())
    for path in JOB_QUERIES[::10]:
        text = path.read_text()
        assert column_usage(text, offline) == column_usage(text, bench_catalog.schema), path.name
    mapping = {"public": {"title": {"id": "integer", "production_year": "integer"}}}
    usage = column_usage("SELECT id FROM title WHERE production_year = $1", mapping)
    assert cols(usage, "public.title") == {"production_year": {U.EQUALITY}}


# --- pagila: some queries need PostgreSQL 17/18, pgvector or pg_partman -------------------------------------


def test_every_pagila_readme_query_yields_usage_or_a_reason() -> None:
    schema = WorkloadSchema.from_sql((DATA / "pagila" / "pagila-schema.sql").read_text())
    result = load_queries(DATA / "pagila" / "queries-from-readme.sql", group=False)
    # SQL/PGQ (CREATE PROPERTY GRAPH, GRAPH_TABLE) and FOR PORTION OF are beyond PostgreSQL 18's grammar;
    # CREATE PROPERTY GRAPH, a utility statement, is kept for its readers to skip as one.
    assert {e.message.split('"')[1] for e in result.errors} == {"MATCH", "FOR"}
    assert any(q.text.startswith("CREATE PROPERTY GRAPH") for q in result.queries)
    assert all(e.line for e in result.errors)
    usages = {}
    for q in result.queries:
        usage = column_usage(q.text, schema)
        assert usage.tables or usage.reason, (q.location, usage)
        usages[int(q.location.rsplit(":", 1)[1])] = usage
    first = usages[4]
    assert cols(first, "public.rental") == {"return_date": {U.IS_NULL}, "rental_date": {U.RANGE},
                                            "customer_id": {U.JOIN}, "inventory_id": {U.JOIN}}
    assert cols(first, "public.film") == {"film_id": {U.JOIN}, "title": {U.ORDER_BY}}
    # actor_info is a view: the query reaches actor (and the view's joins) through it.
    assert U.EQUALITY in cols(usages[39], "public.actor")["actor_id"]
    assert usages[83].reason is not None and usages[83].reason.startswith("sqlglot cannot parse it")  # JSON_SERIALIZE
    assert "film_embedding: relation not in the catalog" in usages[92].unresolved  # pgvector's table
    assert usages[153].reason == "a utility statement (CALL): it reads no table columns"
    assert "uuid: no relation in scope has this column" in usages[122].unresolved  # the PostgreSQL 18 schema's


# --- SQL scripts ------------------------------------------------------------------------------------------

PSQL_SCRIPT = r"""\set id random(1, 100)
\timing on
-- name: by-id
SELECT * FROM t WHERE id = :id AND b = :'name' AND c = :"col" AND d = :id AND x::int = 1
  AND arr[1:2] = '{}' AND s = ':notme' AND e = $1;
-- params: SELECT 1, 2, 3
\i other.sql
SELEC broken;
SELECT 'a
multi-line' FROM t WHERE e = E'\':x' \gset
CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;
SELECT $$ :x ; $$, /* :y ; */ 1;
-- name: last
SELECT 3 FROM
  t WHERE
"""


def test_sql_script_with_meta_commands_and_variables(tmp_path: Path) -> None:
    result = load_queries(write(tmp_path / "s.sql", PSQL_SCRIPT), group=False)
    assert result.format is Source.SQL
    texts = [q.text for q in result.queries]
    assert texts[0] == ("SELECT * FROM t WHERE id = $2 AND b = $3 AND c = $4 AND d = $2 AND x::int = 1\n"
                        "  AND arr[1:2] = '{}' AND s = ':notme' AND e = $1")
    assert texts[1:] == ["SELECT 'a\nmulti-line' FROM t WHERE e = E'\\':x'",
                         "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
                         "SELECT $$ :x ; $$, /* :y ; */ 1"]
    first = result.queries[0]
    assert (first.name, first.params_sql, first.location) == ("by-id", "SELECT 1, 2, 3", f"{tmp_path}/s.sql:4")
    assert [q.location.rsplit(":", 1)[1] for q in result.queries] == ["4", "9", "11", "12"]
    assert [(e.line, e.name, e.message) for e in result.errors] == [
        (8, None, 'syntax error at or near "SELEC"'), (15, "last", "syntax error at end of input")]
    assert str(result.errors[1]).endswith("s.sql:15: query 'last': syntax error at end of input")


def test_unterminated_literal_swallows_the_rest(tmp_path: Path) -> None:
    result = load_queries(write(tmp_path / "u.sql", "SELECT 1;\nSELECT 'open\n;SELECT 3;\n"), group=False)
    assert [q.text for q in result.queries] == ["SELECT 1"]
    assert [(e.line, e.message.split(" at ")[0]) for e in result.errors] == [(2, "unterminated quoted string")]


def test_split_script_line_numbers_survive_placeholders() -> None:
    statements, errors = split_script("SELECT :a,\n :'b'\n;\n\nSELECT :a FROM\n", "x")
    assert [(s.text, s.line) for s in statements] == [("SELECT $1,\n $2", 1)]
    assert [(e.location, e.message) for e in errors] == [("x:5", "syntax error at end of input")]


def test_grouping_by_fingerprint(tmp_path: Path) -> None:
    path = write(tmp_path / "g.sql", "SELECT * FROM t WHERE id = 1;\nselect *  from t where id = 2;\nSELECT 2;\n")
    grouped = load_queries(path)
    assert [(q.text, q.occurrences, q.location) for q in grouped.queries] == [
        ("SELECT * FROM t WHERE id = 1", 2, f"{path}:1"), ("SELECT 2", 1, f"{path}:3")]
    merged = group_by_fingerprint([
        Query("SELECT 1", Source.PG_STAT_STATEMENTS, "pgss:1", "f", calls=3, total_ms=1.5, rows=3),
        Query("SELECT 2", Source.PG_STAT_STATEMENTS, "pgss:2", "f", calls=1, total_ms=0.25, rows=1)])
    assert len(merged) == 1 and (merged[0].calls, merged[0].total_ms, merged[0].rows) == (4, 1.75, 4)
    assert merged[0].mean_ms == pytest.approx(0.4375)


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"SELECT 1;\nSELECT a FROM t WHERE b = :v\n")))
    result = load_queries("-")
    assert [(q.text, q.location) for q in result.queries] == [("SELECT 1", "<stdin>:1"),
                                                              ("SELECT a FROM t WHERE b = $1", "<stdin>:2")]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bin.sql", b"SELECT 1;\x00\x01\x02", "a binary file (NUL byte at offset 9)"),
    ("latin1.sql", b"SELECT 'caf\xe9';", "not UTF-8 text (byte 0xe9 at offset 11, line 1)"),
    ("empty.sql", b"", "empty file"),
    ("blank.log", b"\n  \n", "empty file"),
    ("trace.log", b"hello\nthis is not a server log\n", "not a PostgreSQL server log in a recognised format"),
    ("data.csv", b"a,b,c\n1,2,3\n", "not a PostgreSQL server log in a recognised format"),
    ("notes.txt", b"just some words\n", "not a SQL script or a PostgreSQL server log"),
    ("notes.log", b"-- ERROR:  in a SQL comment\nSELECT 1;\n", "not a PostgreSQL server log"),
    ("log.gz", b"\x1f\x8b\x08\x00rest", "gzip-compressed"),
    ("quiet.log", b"2024-01-01 00:00:00 UTC [1] LOG:  database system is ready to accept connections\n",
     "records no statement"),
])
def test_bad_input_is_one_usage_error_naming_the_file(tmp_path: Path, name: str, content: bytes,
                                                      message: str) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(UsageError) as raised:
        load_queries(path)
    assert str(path) in str(raised.value) and message in str(raised.value), str(raised.value)
    assert raised.value.exit_code is ExitCode.USAGE
    assert "\n" not in str(raised.value)


def test_missing_file_and_forced_format(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nope.sql: no such file"):
        load_queries(tmp_path / "nope.sql")
    sql = write(tmp_path / "q.txt", "SELECT 1;")
    with pytest.raises(UsageError, match="not a PostgreSQL csvlog"):
        load_queries(sql, fmt="csvlog")
    with pytest.raises(UsageError, match="unknown input format 'xml'"):
        load_queries(sql, fmt="xml")


# --- server logs ------------------------------------------------------------------------------------------

STDERR_LOG = """\
2024-05-01 10:00:00.001 CEST [11] app=x LOG:  duration: 1.500 ms  bind <unnamed>: SELECT * FROM t WHERE a = $1
2024-05-01 10:00:00.001 CEST [11] app=x DETAIL:  Parameters: $1 = 'x''y', $2 = NULL, $3 = ''
2024-05-01 10:00:00.002 CEST [11] app=x LOG:  duration: 0.500 ms  execute <unnamed>: SELECT * FROM t WHERE a = $1
2024-05-01 10:00:00.002 CEST [11] app=x DETAIL:  Parameters: $1 = 'x''y', $2 = NULL, $3 = ''
2024-05-01 10:00:00.003 CEST [12] app=y LOG:  duration: 250.000 ms  bind S_1: SELECT count(*)
\tFROM big
2024-05-01 10:00:00.003 CEST [12] app=y DETAIL:  parameters: $1 = '7'
a line written by something else
2024-05-01 10:00:00.004 CEST [13] LOG:  statement: SELECT 1
2024-05-01 10:00:00.005 CEST [13] LOG:  duration: 0.100 ms
2024-05-01 10:00:00.006 CEST [13] LOG:  statement: SELEC 2
"""


def test_stderr_log_binds_parameters_and_log_statement(tmp_path: Path) -> None:
    path = write(tmp_path / "postgresql.log", STDERR_LOG)
    result = load_queries(path, group=False)
    assert result.format is Source.STDERR_LOG
    assert [(q.location.rsplit(":", 1)[1], q.text, q.params, q.total_ms) for q in result.queries] == [
        ("3", "SELECT * FROM t WHERE a = $1", ("x'y", None, ""), 2.0),  # bind + execute
        ("9", "SELECT 1", None, None),                                  # log_statement: no duration
        ("5", "SELECT count(*)\nFROM big", ("7",), 250.0),            # a slow bind alone
    ]
    assert [(e.line, e.message) for e in result.errors] == [(11, 'syntax error at or near "SELEC"')]


# --- real server logs -------------------------------------------------------------------------------------


def _log_servers() -> list[str]:
    names = ["pg18"]
    if system_bindir(conftest.SYSTEM_MAJOR) is not None:
        names.append(f"pg{conftest.SYSTEM_MAJOR}")
    return names


@pytest.fixture(scope="module", params=_log_servers())
def server_logs(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A server of its own logging every statement to stderr, csvlog and jsonlog (log_min_duration_statement
    = 0, an unusual log_line_prefix), after a session of prepared statements with parameters; its log
    directory once it has stopped (so the files are complete)."""
    bindir = embedded_bindir() if request.param == "pg18" else system_bindir(conftest.SYSTEM_MAJOR)
    assert bindir is not None
    server = LocalServer.create(bindir)
    server.init({"logging_collector": "on", "log_destination": "'stderr,csvlog,jsonlog'",
                 "log_directory": "'log'", "log_filename": "'server.log'", "log_min_duration_statement": "0",
                 "log_line_prefix": "'%m [%p] %q%u@%d app=%a: '"})
    server.start()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int, name text)")
            conn.execute("SELECT * FROM t WHERE id = %s AND name = %s", (1, "it's"))
            for i in range(2, 4):  # prepared: "execute _pg3_0"
                conn.execute("SELECT * FROM t WHERE id = %s AND name = %s", (i, None), prepare=True)
            conn.execute("SELECT *\nFROM t\nWHERE id = %s", (3,))
            psycopg.ClientCursor(conn).execute("SELECT 1;\nSELECT name\n  FROM t")  # simple protocol
            with pytest.raises(psycopg.errors.SyntaxError):
                conn.execute("SELEC 1")
    finally:
        server.stop()
    yield server.datadir / "log"
    server.destroy()


@pytest.mark.parametrize(("filename", "fmt"), [("server.log", Source.STDERR_LOG), ("server.csv", Source.CSVLOG),
                                               ("server.json", Source.JSONLOG)])
def test_real_server_logs(server_logs: Path, filename: str, fmt: Source) -> None:
    path = server_logs / filename
    result = load_queries(path, group=False)
    assert result.format is fmt and result.errors == ()
    mine = [q for q in result.queries if "FROM t" in q.text]
    assert [(q.text, q.params) for q in mine] == [
        ("SELECT * FROM t WHERE id = $1 AND name = $2", ("1", "it's")),
        ("SELECT * FROM t WHERE id = $1 AND name = $2", ("2", None)),
        ("SELECT * FROM t WHERE id = $1 AND name = $2", ("3", None)),
        ("SELECT *\nFROM t\nWHERE id = $1", ("3",)),
        ("SELECT name\n  FROM t", None),
    ]
    assert all(q.source is fmt and q.calls == 1 and q.location.startswith(f"{path}:") for q in mine)
    assert all(q.total_ms is not None and q.total_ms >= 0 for q in mine[:4])
    assert mine[4].total_ms is None  # one duration for "SELECT 1; SELECT name FROM t": not split
    assert "SELECT 1" in [q.text for q in result.queries]
    assert not any("SELEC 1" in q.text for q in result.queries)  # an ERROR's STATEMENT is not an execution
    lines = path.read_text().splitlines()
    line = int(mine[3].location.rsplit(":", 1)[1])
    assert "execute" in lines[line - 1]  # a multi-line record is located at its first line
    if fmt is not Source.JSONLOG:
        assert "WHERE id = $1" not in lines[line - 1] and "WHERE id = $1" in lines[line + 1]
    grouped = load_queries(path)
    same = next(q for q in grouped.queries if q.text == "SELECT * FROM t WHERE id = $1 AND name = $2")
    assert same.occurrences == 3 and same.calls == 3 and same.params == ("1", "it's")
    assert same.total_ms == pytest.approx(sum(q.total_ms or 0 for q in mine[:3]))


# --- pg_stat_statements -----------------------------------------------------------------------------------


def test_pg_stat_statements_top_level_and_nested(db: conftest.TestDatabase) -> None:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        with pytest.raises(UsageError, match="pg_stat_statements is not created"):
            pg_stat_statements_queries(conn, 5)
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, code text)")
        conn.execute("INSERT INTO items SELECT g, 'c' || g FROM generate_series(1, 100) g")
        conn.execute("CREATE FUNCTION lookup(c text) RETURNS int LANGUAGE plpgsql AS "
                     "$$ BEGIN RETURN (SELECT id FROM items WHERE code = c); END $$")
        conn.execute("SET pg_stat_statements.track = 'all'")
        for code in ("c17", "c18", "c19"):
            conn.execute(f"SELECT id FROM items WHERE code = '{code}'")  # type: ignore[arg-type]
            conn.execute("SELECT lookup(%s)", (code,))
        top = pg_stat_statements_queries(conn, 50)
        nested = pg_stat_statements_queries(conn, 50, include_nested=True)
        with pytest.raises(UsageError, match="must be at least 1"):
            pg_stat_statements_queries(conn, 0)
    by_text = {q.text: q for q in top}
    ours = by_text["SELECT id FROM items WHERE code = $1"]
    assert ours.source is Source.PG_STAT_STATEMENTS and ours.location.startswith("pgss:")
    assert ours.calls == 3 and ours.rows == 3 and ours.total_ms is not None and ours.total_ms > 0
    assert ours.mean_ms == pytest.approx(ours.total_ms / 3)
    assert "SELECT lookup($1)" in by_text
    inner = "(SELECT id FROM items WHERE code = c)"  # PL/pgSQL sends its expression as a query
    assert inner not in by_text and inner in {q.text for q in nested}
    assert not any(q.text.startswith(("CREATE", "SET")) for q in top)  # utility statements are passed over
    totals = [q.total_ms or 0 for q in top]
    assert totals == sorted(totals, reverse=True)
    assert len(pg_stat_statements_queries(ConnectionSettings(dsn=db.dsn), 2)) == 2


# --- the benchmark's names still work -------------------------------------------------------------------


def test_bench_uses_the_same_implementation() -> None:
    import dbtune.bench as bench
    import dbtune.workload as workload
    from dbtune.workload import params

    assert bench.load_workload is workload.load_workload and bench.parse_workload is workload.parse_workload
    assert bench.WorkloadQuery is workload.WorkloadQuery
    assert bench.pg_stat_statements_workload is workload.pg_stat_statements_workload
    assert bench.sample_parameters is params.sample_parameters
