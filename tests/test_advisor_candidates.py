"""Candidate indexes (issue 7, item 1) and the pg_stats reader, on both servers: real tables with data and
ANALYZE, so pg_stats has rows; every candidate's DDL is run on the server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import conftest
import psycopg
import pytest

from dbtune.advisor.candidates import CandidateSet, generate_candidates
from dbtune.advisor.model import AdvisorQuery, Candidate, KeyPart
from dbtune.advisor.stats import ColumnStats, read_column_stats
from dbtune.catalog.model import Snapshot
from dbtune.catalog.snapshot import take
from dbtune.db.connect import ConnectionSettings, read_only_snapshot
from dbtune.db.local_server import LocalServer
from dbtune.samples import guide_file
from dbtune.sqlnames import quote_ident
from dbtune.workload.load import parse_workload
from dbtune.workload.schema import WorkloadSchema, read_views
from dbtune.workload.usage import column_usage

SCHEMA = """
CREATE TABLE parents (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE children (id bigint PRIMARY KEY, parent_id bigint NOT NULL, created_at timestamptz NOT NULL,
                       body text NOT NULL);
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, payload jsonb NOT NULL, tags text[] NOT NULL,
                    bio text NOT NULL);
CREATE TABLE tickets (id bigint PRIMARY KEY, status text NOT NULL, assignee int NOT NULL,
                      opened_at timestamptz NOT NULL, due timestamp NOT NULL, flagged boolean NOT NULL,
                      closed_at timestamptz);
CREATE TABLE events (id bigint NOT NULL, at timestamptz NOT NULL, kind text NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Order Items" ("OrderId" bigint NOT NULL, "SKU" text NOT NULL, "Qty" int NOT NULL);
CREATE TABLE "Sales"."Odd" ("ki""nd" text NOT NULL, n int NOT NULL, "new
line" int NOT NULL DEFAULT 0);
CREATE VIEW open_tickets AS SELECT id, assignee, opened_at FROM tickets WHERE status = 'open';
CREATE EXTENSION file_fdw;
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE remote_rows (id int, v text) SERVER files OPTIONS (filename '/dev/null', format 'csv');

INSERT INTO parents SELECT g, 'p' || g FROM generate_series(1, 200) g;
INSERT INTO children SELECT g, 1 + g % 200, timestamptz '2026-01-01' + g * interval '1 minute', 'b'
    FROM generate_series(1, 4000) g;
INSERT INTO users SELECT g, 'U' || g || '@example.com', jsonb_build_object('type', 't' || g % 7, 'n', g),
                         ARRAY['x' || g % 11], 'bio ' || g FROM generate_series(1, 2000) g;
INSERT INTO tickets SELECT g, CASE WHEN g % 100 = 0 THEN 'pending' WHEN g % 3 = 0 THEN 'closed' ELSE 'open' END,
                           g % 50, timestamptz '2026-01-01' + g * interval '1 minute',
                           timestamp '2026-02-01' + g * interval '1 hour', g % 100 = 1,
                           CASE WHEN g % 50 <> 0 THEN timestamptz '2026-03-01' END
    FROM generate_series(1, 5000) g;
INSERT INTO events SELECT g, timestamptz '2025-06-01' + g * interval '1 hour', 'k' || g % 40
    FROM generate_series(1, 8000) g;
INSERT INTO "Sales"."Order Items" SELECT g % 300, 'S' || g % 97, g % 5 FROM generate_series(1, 3000) g;
INSERT INTO "Sales"."Odd" SELECT CASE WHEN g % 40 = 0 THEN E'it''s \\\\ rare' ELSE 'common' END, g
    FROM generate_series(1, 2000) g;
ANALYZE;
"""


@dataclass
class Catalog:
    db: conftest.TestDatabase
    snapshot: Snapshot
    schema: WorkloadSchema
    stats: ColumnStats
    sql: dict[str, str] = field(default_factory=dict)  # the queries of the last candidates() call

    def candidates(self, queries: dict[str, str]) -> CandidateSet:
        self.sql = dict(queries)
        pairs = []
        for name, sql in queries.items():
            usage = column_usage(sql, self.schema)
            tables = tuple(t.table for t in usage.tables)
            pairs.append((AdvisorQuery(name, name, sql, 1.0, tables), usage))
        return generate_candidates(pairs, self.snapshot, self.stats)

    def uses(self, candidate: Candidate, name: str) -> bool:
        """Whether the planner uses ``candidate`` for the query ``name`` of the last call."""
        return uses(self.db.dsn, candidate, self.sql[name])

    def accepts(self, candidates: tuple[Candidate, ...]) -> None:
        """Every candidate's DDL runs on the server (pg_trgm created first), all rolled back."""
        with psycopg.connect(self.db.dsn) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            for c in candidates:
                conn.execute(c.create_sql())  # type: ignore[arg-type]
            conn.rollback()


def uses(dsn: str, candidate: Candidate, sql: str) -> bool:
    """Whether the planner uses ``candidate`` for ``sql`` (built in a transaction that is rolled back;
    sequential scans off, the generic plan of the ``$n`` parameters)."""
    with psycopg.connect(dsn) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute(candidate.create_sql("dbtune_candidate"))  # type: ignore[arg-type]
        conn.execute("SET LOCAL enable_seqscan = off")
        conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE q AS {sql}")  # type: ignore[arg-type]
        params = max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)
        args = f"({', '.join(['NULL'] * params)})" if params else ""
        row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE q{args}").fetchone()  # type: ignore[arg-type]
        # On a partitioned table, the plan names the partitions' indexes attached to the candidate.
        names = {"dbtune_candidate"} | {r[0] for r in conn.execute(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = %s::regclass", [f"{quote_ident(candidate.schema)}.dbtune_candidate"])}
        conn.rollback()
        conn.execute("DEALLOCATE q")
    plan = json.dumps(row[0]) if row is not None else ""
    return any(f'"Index Name": "{n}"' in plan for n in names)


def catalog_of(db: conftest.TestDatabase) -> Catalog:
    with read_only_snapshot(ConnectionSettings(dsn=db.dsn)) as conn:
        snapshot = take(conn)
        schema = WorkloadSchema.from_snapshot(snapshot, read_views(conn))
        stats = read_column_stats(conn, [(r.schema, r.name) for r in snapshot.relations.values()])
    return Catalog(db, snapshot, schema, stats)


@pytest.fixture(scope="module")
def catalog(pg: LocalServer) -> Iterator[Catalog]:
    database = conftest.new_database(pg, "cand")
    database.execute(SCHEMA)
    yield catalog_of(database)
    conftest.drop_database(database)


def keys(c: Candidate) -> tuple[str, ...]:
    return c.columns


def on(cs: CandidateSet, name: str, table: str) -> list[Candidate]:
    return [c for c in cs.by_query[name] if c.table == table]


# --- pg_stats ---------------------------------------------------------------------------------------------


def test_read_column_stats_selectivities(catalog: Catalog) -> None:
    stats = catalog.stats
    # 1 % of the tickets are pending, a third closed: most_common_vals/freqs.
    assert stats.frequency("public", "tickets", "status", "pending") == pytest.approx(0.01, abs=0.002)
    assert stats.selectivity_eq("public", "tickets", "status", "closed") == pytest.approx(1 / 3, abs=0.01)
    # A value not among the most common ones shares what they leave: none is left here.
    assert stats.selectivity_eq("public", "tickets", "status", "nope") == pytest.approx(0.0, abs=1e-6)
    # id is unique: n_distinct is -1 (a fraction of reltuples), an equality selects one row in 5,000.
    assert stats.stat("public", "tickets", "id") is not None
    assert stats.stat("public", "tickets", "id").n_distinct == -1  # type: ignore[union-attr]
    assert stats.selectivity_eq("public", "tickets", "id") == pytest.approx(1 / 5000, rel=0.01)
    assert stats.width("public", "tickets", "assignee") == 4
    # A partitioned table has inherited statistics; a mixed-case name in another schema is found.
    assert stats.selectivity_eq("public", "events", "kind") == pytest.approx(1 / 40, rel=0.05)
    assert stats.selectivity_eq("Sales", "Order Items", "OrderId") == pytest.approx(1 / 300, rel=0.05)
    assert stats.stat("public", "tickets", "no_such_column") is None


def test_read_column_stats_is_marked_and_read_only(catalog: Catalog) -> None:
    catalog.db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    with psycopg.connect(catalog.db.dsn) as conn:
        conn.execute("SET default_transaction_read_only = on")
        conn.commit()
        stats = read_column_stats(conn, [("public", "tickets")])
        assert stats.stat("public", "tickets", "status") is not None
        assert stats.stat("public", "users", "email") is None  # not asked for
        assert read_column_stats(conn, []).columns == {}
    sent = catalog.db.query("SELECT query FROM pg_stat_statements WHERE query LIKE '%FROM pg_catalog.pg_stats s%' "
                            "AND query NOT LIKE '%pg_stat_statements%'")
    assert sent and all("/* dbtune */" in q for (q,) in sent), sent


# --- candidates -------------------------------------------------------------------------------------------


def test_latest_row_per_parent_gets_parent_id_created_at_desc(catalog: Catalog) -> None:
    cs = catalog.candidates({"latest": "SELECT p.id, c.body FROM parents p CROSS JOIN LATERAL "
                                       "(SELECT c.body FROM children c WHERE c.parent_id = p.id "
                                       "ORDER BY c.created_at DESC LIMIT 1) c"})
    found = {keys(c) for c in on(cs, "latest", "children")}
    assert ("parent_id", "created_at DESC") in found, found
    assert ("parent_id",) in found  # the prefix is a candidate too: selection decides
    # parents.id is the primary key: nothing to add there.
    assert on(cs, "latest", "parents") == []
    widest = next(c for c in on(cs, "latest", "children") if keys(c) == ("parent_id", "created_at DESC"))
    assert widest.create_sql() == "CREATE INDEX ON public.children (parent_id, created_at DESC)"
    assert "ORDER BY created_at DESC" in widest.reason and "\n" not in widest.reason
    assert catalog.uses(widest, "latest")
    catalog.accepts(cs.all)


def test_expression_keys_as_the_query_writes_them(catalog: Catalog) -> None:
    cs = catalog.candidates({"email": "SELECT id FROM users WHERE lower(email) = $1",
                             "type": "SELECT id, email FROM users WHERE payload->>'type' = $1"})
    assert [c.keys for c in cs.by_query["email"]][0] == (KeyPart("lower(email)", expression=True),)
    assert cs.by_query["email"][0].create_sql() == "CREATE INDEX ON public.users ((lower(email)))"
    types = cs.by_query["type"]
    assert (KeyPart("payload ->> 'type'", expression=True),) in [c.keys for c in types]
    # Never a btree on the whole jsonb column.
    assert not [c for c in cs.all if c.method == "btree" and any(k.text == "payload" for k in c.keys)]
    assert catalog.uses(cs.by_query["email"][0], "email")
    assert catalog.uses(next(c for c in types if c.keys == (KeyPart("payload ->> 'type'", expression=True),)), "type")
    catalog.accepts(cs.all)


def test_expression_that_is_not_immutable_is_skipped_with_the_reason(catalog: Catalog) -> None:
    cs = catalog.candidates({"zoned": "SELECT id FROM children WHERE date_trunc('day', created_at) = $1",
                             "plain": "SELECT id FROM tickets WHERE date_trunc('day', due) = $1",
                             "prefix": "SELECT id FROM users WHERE email LIKE 'U1%'"})
    assert cs.by_query["zoned"] == ()
    reason = dict(cs.skipped)["public.children (date_trunc('day', created_at))"]
    assert reason.startswith("not IMMUTABLE") and "TimeZone" in reason
    plain = [c.keys for c in cs.by_query["plain"] if not c.include]
    assert plain == [(KeyPart("date_trunc('day', due)", expression=True),)]
    assert [c.columns for c in cs.by_query["prefix"] if not c.include] == [("email text_pattern_ops",)]
    catalog.accepts(cs.all)


def test_partial_index_for_a_rare_constant(catalog: Catalog) -> None:
    cs = catalog.candidates({"pending": "SELECT id, opened_at FROM tickets WHERE status = 'pending' "
                                        "ORDER BY opened_at",
                             "open": "SELECT id FROM tickets WHERE status = 'open' ORDER BY opened_at"})
    partial = [c for c in cs.by_query["pending"] if c.predicate]
    assert [(keys(c), c.predicate) for c in partial] == [(("opened_at",), "status = 'pending'")], partial
    assert "1.0% of rows" in partial[0].reason
    assert partial[0].create_sql() == "CREATE INDEX ON public.tickets (opened_at) WHERE status = 'pending'"
    assert catalog.uses(partial[0], "pending")
    # The common value gets no partial index, only the full keys.
    assert not [c for c in cs.by_query["open"] if c.predicate]
    assert ("status", "opened_at") in {keys(c) for c in cs.by_query["open"]}
    catalog.accepts(cs.all)


def test_partial_index_for_a_rare_boolean_and_a_rare_null(catalog: Catalog) -> None:
    cs = catalog.candidates({"flagged": "SELECT id FROM tickets WHERE flagged AND assignee = $1",
                             "unclosed": "SELECT id FROM tickets WHERE closed_at IS NULL ORDER BY opened_at DESC",
                             "closed": "SELECT id FROM tickets WHERE closed_at IS NOT NULL ORDER BY opened_at"})
    assert [(keys(c), c.predicate) for c in cs.by_query["flagged"] if c.predicate] == [(("assignee",), "flagged")]
    assert [(keys(c), c.predicate) for c in cs.by_query["unclosed"] if c.predicate] == [
        (("opened_at DESC",), "closed_at IS NULL")]
    assert not [c for c in cs.by_query["closed"] if c.predicate]
    catalog.accepts(cs.all)


def test_most_selective_equality_first(catalog: Catalog) -> None:
    """pg_stats orders the key: 'pending' (1 %) before assignee (2 %) before 'open' (two thirds)."""
    cs = catalog.candidates({"pending": "SELECT id FROM tickets WHERE assignee = $1 AND status = 'pending'",
                             "open": "SELECT id FROM tickets WHERE assignee = $1 AND status = 'open'"})
    assert ("status", "assignee") in {keys(c) for c in cs.by_query["pending"]}
    assert ("assignee", "status") not in {keys(c) for c in cs.by_query["pending"]}
    assert ("assignee", "status") in {keys(c) for c in cs.by_query["open"]}


def test_include_for_an_index_only_scan(catalog: Catalog) -> None:
    cs = catalog.candidates({"q": "SELECT assignee, opened_at FROM tickets WHERE status = $1 AND assignee > $2"})
    covering = [c for c in cs.by_query["q"] if c.include]
    assert [(keys(c), c.include) for c in covering] == [(("status", "assignee"), ("opened_at",))]
    # SELECT * reads every column: too many for INCLUDE.
    wide = catalog.candidates({"q": "SELECT * FROM users WHERE email = $1"})
    assert not [c for c in wide.all if c.include]
    catalog.accepts(cs.all)


def test_gin_for_containment_and_trigram(catalog: Catalog) -> None:
    alone = catalog.candidates({"contains": "SELECT id FROM users WHERE payload @> $1"})
    assert [(c.method, c.columns) for c in alone.all] == [("gin", ("payload jsonb_path_ops",))]
    # jsonb_path_ops only when every use of the column in the workload is @>.
    cs = catalog.candidates({"contains": "SELECT id FROM users WHERE payload @> $1",
                             "keys": "SELECT id FROM users WHERE payload ? 'type' AND tags && $1",
                             "like": "SELECT id FROM users WHERE bio LIKE '%io 1%'"})
    assert [(c.method, c.columns) for c in cs.by_query["contains"]] == [("gin", ("payload",))]
    assert "jsonb_ops: other queries use ?" in cs.by_query["contains"][0].reason
    assert {(c.method, c.columns) for c in cs.by_query["keys"]} == {("gin", ("payload",)), ("gin", ("tags",))}
    # Without pg_trgm a trigram index cannot be built: none is proposed, and the skipped entry says why.
    assert cs.by_query["like"] == ()
    assert [why for what, why in cs.skipped if "(bio)" in what] == [
        "a pattern match (LIKE '%…%', ILIKE, ~) needs a trigram index, which needs the pg_trgm extension: "
        "CREATE EXTENSION pg_trgm, then advise again"]
    catalog.db.execute("CREATE EXTENSION pg_trgm")
    try:
        trigram = catalog_of(catalog.db).candidates({"like": "SELECT id FROM users WHERE bio LIKE '%io 1%'"})
    finally:
        catalog.db.execute("DROP EXTENSION pg_trgm")
    assert [(c.method, c.columns) for c in trigram.by_query["like"]] == [("gin", ("bio gin_trgm_ops",))]
    catalog.accepts(cs.all)


def test_partitioned_table_gets_one_parent_level_candidate(catalog: Catalog) -> None:
    cs = catalog.candidates({"parent": "SELECT id FROM events WHERE kind = $1",
                             "partition": "SELECT id FROM events_2025 WHERE kind = $1"})
    assert {c.table for c in cs.all} == {"events"}
    by_key = [c for c in cs.all if keys(c) == ("kind",) and not c.include]
    assert len(by_key) == 1
    assert by_key[0] in cs.by_query["partition"] and by_key[0] in cs.by_query["parent"]
    named = next(c for c in cs.by_query["partition"] if keys(c) == ("kind",) and not c.include)
    assert named.create_sql() == "CREATE INDEX ON public.events (kind)"
    assert catalog.uses(named, "partition") and catalog.uses(named, "parent")
    catalog.accepts(cs.all)


def test_foreign_tables_views_ctes_and_functions(catalog: Catalog) -> None:
    cs = catalog.candidates({
        "foreign": "SELECT v FROM remote_rows WHERE id = $1",
        "view": "SELECT id FROM open_tickets WHERE assignee = $1",
        "cte": "WITH tickets AS (SELECT 1 AS status) SELECT * FROM tickets WHERE status = 1",
        "srf": "SELECT g FROM generate_series(1, 10) g WHERE g = $1",
    })
    assert cs.by_query["foreign"] == ()
    assert [s for s in cs.skipped if s[0] == "public.remote_rows"], cs.skipped
    assert "foreign table" in dict(cs.skipped)["public.remote_rows"]
    # The view's base table, with the view's own constant: 'open' is two thirds of the rows.
    assert {c.table for c in cs.by_query["view"]} == {"tickets"}
    assert ("assignee",) in {keys(c) for c in cs.by_query["view"]}
    assert cs.by_query["cte"] == () and cs.by_query["srf"] == ()


def test_non_public_schema_and_mixed_case_names(catalog: Catalog) -> None:
    cs = catalog.candidates({"items": 'SELECT "SKU" FROM "Sales"."Order Items" WHERE "OrderId" = $1 '
                                      'ORDER BY "Qty" DESC'})
    ddl = {c.create_sql() for c in cs.all}
    assert 'CREATE INDEX ON "Sales"."Order Items" ("OrderId", "Qty" DESC)' in ddl, ddl
    assert 'CREATE INDEX ON "Sales"."Order Items" ("OrderId", "Qty" DESC) INCLUDE ("SKU")' in ddl, ddl
    nulls = catalog.candidates({"items": 'SELECT 1 FROM "Sales"."Order Items" WHERE "SKU" = $1 '
                                         'ORDER BY "Qty" DESC NULLS LAST, "OrderId"'})
    assert ("\"SKU\"", '"Qty" DESC NULLS LAST', '"OrderId"') in {keys(c) for c in nulls.all}
    catalog.accepts(cs.all + nulls.all)


def test_partial_index_on_odd_names_and_values_is_exact(catalog: Catalog) -> None:
    """A quote in the column's name, a quote and a backslash in the constant: the partial index's WHERE is
    built from quote_ident/quote_literal, and the server accepts it."""
    cs = catalog.candidates({"odd": 'SELECT n FROM "Sales"."Odd" WHERE "ki""nd" = E\'it\'\'s \\\\ rare\' ORDER BY n'})
    assert [c.reason for c in cs.all if c.predicate][0].endswith("selects 2.5% of rows (pg_stats)")
    partial = [c.create_sql() for c in cs.all if c.predicate]
    assert partial == ['CREATE INDEX ON "Sales"."Odd" (n) WHERE "ki""nd" = E\'it\'\'s \\\\ rare\''], partial
    # A newline in a column's name: exact in the DDL and in the reason (the renderers escape it, once).
    newline = catalog.candidates({"nl": 'SELECT n FROM "Sales"."Odd" WHERE "new\nline" = $1'})
    plain = [c for c in newline.all if not c.include]
    assert [c.create_sql() for c in plain] == ['CREATE INDEX ON "Sales"."Odd" ("new\nline")']
    assert plain[0].reason == "equality on new\nline"
    catalog.accepts(cs.all + newline.all)


def test_no_duplicates_across_queries(catalog: Catalog) -> None:
    cs = catalog.candidates({"a": "SELECT id FROM tickets WHERE assignee = $1",
                             "b": "SELECT id FROM tickets t WHERE t.assignee = $1 AND t.id > 5"})
    assert len(cs.all) == len(set(cs.all))
    shared = [c for c in cs.by_query["a"] if c in cs.by_query["b"]]
    assert shared and all(c.reason for c in cs.all)


def test_existing_valid_index_suppresses_an_invalid_one_does_not(db: conftest.TestDatabase) -> None:
    db.execute("CREATE TABLE t (a int NOT NULL, b int NOT NULL, c int NOT NULL, d text NOT NULL);"
               "INSERT INTO t SELECT g % 100, g, g % 10, 'd' FROM generate_series(1, 2000) g;"
               "CREATE INDEX t_a_b ON t (a DESC, b);"  # mirrors (a, b DESC)
               "CREATE INDEX t_d ON t (d text_pattern_ops);"  # not the default opclass
               "ANALYZE t")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY t_c ON t (c)")  # fails, leaving t_c INVALID
    assert db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_c'::regclass") == [(False,)]
    catalog = catalog_of(db)
    cs = catalog.candidates({"ab": "SELECT b FROM t WHERE a = $1 ORDER BY b DESC",
                             "c": "SELECT b FROM t WHERE c = $1",
                             "d": "SELECT b FROM t WHERE d = $1"})
    found = {keys(c) for c in cs.by_query["ab"]}
    assert ("a",) not in found and ("a", "b DESC") not in found, found
    # (a) INCLUDE (b) is served by (a DESC, b) too: b is among its columns.
    assert catalog.candidates({"a": "SELECT b FROM t WHERE a = $1"}).by_query["a"] == ()
    assert ("c",) in {keys(c) for c in cs.by_query["c"]}
    assert ("d",) in {keys(c) for c in cs.by_query["d"]}


# --- the guide's demo workload ------------------------------------------------------------------------------

GUIDE_SERVES = {
    "webhook-dedup-lookup": ("message_sid",),
    "webhook-recent-by-account": ("account_sid", "created_at DESC"),
    "routing-responses": ("routing_id",),
    "routing-accepted-response": ("routing_id",),
    "retailer-recent-orders": ("retailer_id", "created_at DESC"),
    "orders-by-status": ("status", "created_at DESC"),
    "job-queue-claim": ("state", "priority DESC", "created_at"),
}


def test_guide_workload_gets_a_candidate_for_every_query(pg: LocalServer) -> None:
    database = conftest.new_database(pg, "guide")
    try:
        database.execute(guide_file("schema.sql").read_text())
        database.execute(guide_file("data.sql").read_text().replace(":scale", "0.005"))
        catalog = catalog_of(database)
        workload = parse_workload(guide_file("workload.sql").read_text())
        cs = catalog.candidates({q.name: q.sql for q in workload})
        assert set(cs.by_query) == set(GUIDE_SERVES)
        for name, key in GUIDE_SERVES.items():
            assert key in {keys(c) for c in cs.by_query[name]}, (name, cs.by_query[name])
        # The claim's 'queued' jobs are rare: a partial index keyed by the sort.
        claim = [c for c in cs.by_query["job-queue-claim"] if c.predicate]
        assert [(keys(c), c.predicate) for c in claim] == [(("priority DESC", "created_at"), "state = 'queued'")]
        catalog.accepts(cs.all)
        # Each of those serves its query: the planner uses it.
        for q in workload:
            (candidate,) = [c for c in cs.by_query[q.name] if keys(c) == GUIDE_SERVES[q.name] and not c.include]
            assert uses(database.dsn, candidate, q.sql), q.name
    finally:
        conftest.drop_database(database)


# --- benchmark workloads: every candidate is DDL the server accepts ----------------------------------------


def test_every_job_and_tpch_candidate_is_accepted(pg18: LocalServer, tmp_path: Path) -> None:
    """The JOB templates' and TPC-H's queries (empty tables: no pg_stats, PostgreSQL's default selectivities) yield
    candidates for every query, each one a CREATE INDEX the server runs."""
    from test_workload import DATA, JOB_QUERIES, tpch_queries

    database = conftest.new_database(pg18, "candbench")
    try:
        database.execute((DATA / "job" / "schema.sql").read_text())
        q15_view = next(q.text for q in tpch_queries(15, tmp_path).queries if q.text.lower().startswith("create view"))
        database.execute(f"CREATE SCHEMA tpch; SET search_path = tpch; "
                         f"{(DATA / 'tpch' / 'tpch-create.sql').read_text()}; {q15_view}")
        database.execute(f"ALTER DATABASE {database.name} SET search_path = public, tpch")
        catalog = catalog_of(database)
        # One JOB query per template (1a, 2a, …: the others differ in their constants).
        queries = {p.stem: p.read_text() for p in JOB_QUERIES if p.stem.endswith("a")}
        for n in range(1, 23):
            loaded = [q.text for q in tpch_queries(n, tmp_path).queries
                      if not q.text.lower().startswith(("create view", "drop view"))]
            queries.update({f"q{n}.{k}": text for k, text in enumerate(loaded)})
        cs = catalog.candidates(queries)
        empty = sorted(name for name, found in cs.by_query.items() if not found)
        assert empty == [], empty
        assert all(c.reason and "\n" not in c.reason for c in cs.all)
        catalog.accepts(cs.all)
    finally:
        conftest.drop_database(database)


def test_a_character_n_column_matches_its_padded_most_common_values(db: conftest.TestDatabase) -> None:
    """``character(10)`` values print padded in pg_stats (``'BUILDING  '``) and compare equal to the query's
    ``'BUILDING'``: a 20 % segment is common (no partial index), a 1 % one is rare (TPC-H's c_mktsegment)."""
    db.execute("CREATE TABLE customer (c_custkey int PRIMARY KEY, c_mktsegment character(10) NOT NULL); "
               "INSERT INTO customer SELECT g, CASE WHEN g % 100 = 0 THEN 'RARE' ELSE "
               "(ARRAY['BUILDING', 'AUTOMOBILE', 'MACHINERY', 'HOUSEHOLD'])[g % 4 + 1] END "
               "FROM generate_series(1, 20000) g")
    db.execute("ANALYZE customer")
    stats = catalog_of(db).stats
    assert stats.frequency("public", "customer", "c_mktsegment", "BUILDING") == pytest.approx(0.25, abs=0.02)
    assert stats.frequency("public", "customer", "c_mktsegment", "RARE  ") == pytest.approx(0.01, abs=0.003)
