"""The advisor's what-if engines (issue 7, items 2 and 3) against real servers: hypopg on PostgreSQL 15
(``CREATE EXTENSION hypopg`` in the test database), trial builds on 15 and 18 (18 has no hypopg), and the
cost cache in front of them.

Known answers: an index on the filtered column lowers the planner's cost and the plan scans it; a ``$n``
query is costed by its generic plan (the same one ``dbtune explain`` collects); quoted mixed-case and
hostile names are created and recognised exactly; a partitioned table's candidate is costed at the parent;
a query or a candidate the server refuses gives an error costing and the session goes on; GIN is costed by
a trial build and refused by hypopg; 5,000 evaluations through the cache leave no hypothetical index and
no built index behind; the hypopg session sends nothing but reads.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import conftest
import psycopg
import pytest
from psycopg import sql
from test_hostile_names import WHY_SQL

from dbtune.advisor.costing import CostCache, whatif_session
from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, Engine, EngineKind, KeyPart
from dbtune.advisor.ranking import StatisticsEngine
from dbtune.advisor.stats import ColumnStats, read_column_stats
from dbtune.advisor.trial import TrialBuildEngine
from dbtune.advisor.whatif import HypoPGEngine, hypopg_available
from dbtune.catalog.model import Snapshot
from dbtune.catalog.snapshot import take
from dbtune.db.connect import read_only_snapshot, resolve
from dbtune.db.local_server import LocalServer
from dbtune.plans.collect import PlanQuery, collect_plans
from dbtune.sqlnames import qualified

HOSTILE_TABLE = WHY_SQL  # "y\nDROP TABLE public.victim; --"
HOSTILE_COLUMN = "Col\"'; --"
SCHEMA = """
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL,
                     created_at timestamptz NOT NULL, note text);
INSERT INTO orders SELECT g, g % 500, CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'done' END,
                          timestamptz '2026-01-01' + g * interval '1 minute', 'n'
FROM generate_series(1, 20000) g;
CREATE TABLE customers (id int PRIMARY KEY);
INSERT INTO customers SELECT g FROM generate_series(0, 499) g;
CREATE VIEW pending_orders AS SELECT id, customer_id, created_at FROM orders WHERE status = 'pending';
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Order Items" ("OrderId" bigint NOT NULL, "Sku" text, qty int);
INSERT INTO "Sales Dept"."Order Items" SELECT g % 2000, 's' || g, g % 7 FROM generate_series(1, 20000) g;
CREATE TABLE events (id bigint NOT NULL, kind int NOT NULL, at date) PARTITION BY RANGE (id);
CREATE TABLE events_1 PARTITION OF events FOR VALUES FROM (0) TO (10000);
CREATE TABLE events_2 PARTITION OF events FOR VALUES FROM (10000) TO (20001);
INSERT INTO events SELECT g, g % 1000, date '2026-01-01' + g % 300 FROM generate_series(1, 20000) g;
CREATE TABLE docs (id int PRIMARY KEY, body jsonb NOT NULL);
INSERT INTO docs SELECT g, jsonb_build_object('k', g % 1000) FROM generate_series(1, 20000) g;
CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
INSERT INTO users SELECT g, 'User' || g || '@Example.com' FROM generate_series(1, 20000) g;
CREATE TABLE tasks (id int PRIMARY KEY, state text NOT NULL, due date NOT NULL, body text NOT NULL);
INSERT INTO tasks SELECT g, CASE WHEN g % 400 = 0 THEN 'pending' ELSE 'done' END, date '2026-01-01' + g % 365,
                         repeat('x', 200) FROM generate_series(1, 20000) g;
CREATE EXTENSION file_fdw;
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE remote_orders (id int, customer_id int) SERVER files OPTIONS (filename '/dev/null');
"""
HOSTILE = sql.SQL("CREATE TABLE public.{} ({} int NOT NULL, v int); "
                  "INSERT INTO public.{} SELECT g % 1000, g FROM generate_series(1, 20000) g").format(
    sql.Identifier(HOSTILE_TABLE), sql.Identifier(HOSTILE_COLUMN), sql.Identifier(HOSTILE_TABLE))

ORDERS = "public.orders"
ITEMS = qualified("Sales Dept", "Order Items")
HOSTILE_QUALIFIED = qualified("public", HOSTILE_TABLE)


def query(key: str, text: str, *tables: str) -> AdvisorQuery:
    return AdvisorQuery(key=key, name=key, sql=text, weight=1.0, tables=tables)


def btree(schema: str, table: str, *columns: str) -> Candidate:
    return Candidate(schema, table, tuple(KeyPart(c) for c in columns))


BY_CUSTOMER = btree("public", "orders", "customer_id")
BY_STATUS = btree("public", "orders", "status")
BY_CREATED = btree("public", "orders", "created_at")
BY_NOTE = btree("public", "orders", "note")
BY_CUSTOMER_CREATED = btree("public", "orders", "customer_id", "created_at")
BY_CUSTOMER_LATEST = Candidate("public", "orders", (KeyPart("customer_id"), KeyPart("created_at", descending=True)))
BY_ORDER_ID = btree("Sales Dept", "Order Items", "OrderId")
BY_HOSTILE = btree("public", HOSTILE_TABLE, HOSTILE_COLUMN)
BY_KIND = btree("public", "events", "kind")
BODY_GIN = Candidate("public", "docs", (KeyPart("body"),), method="gin")
BY_LOWER_EMAIL = Candidate("public", "users", (KeyPart("lower(email)", expression=True),))
BY_EMAIL = btree("public", "users", "email")
PENDING_BY_DUE = Candidate("public", "tasks", (KeyPart("due"),), predicate="state = 'pending'")
DONE_BY_DUE = Candidate("public", "tasks", (KeyPart("due"),), predicate="state = 'done'")

# (query, the candidate that serves it, one that does not)
SERVED = [
    (query("customer $1", "SELECT id, status FROM orders WHERE customer_id = $1", ORDERS), BY_CUSTOMER, BY_NOTE),
    (query("customer const", "SELECT * FROM orders WHERE customer_id = 42;", ORDERS), BY_CUSTOMER, BY_STATUS),
    (query("mixed case", 'SELECT qty FROM "Sales Dept"."Order Items" WHERE "OrderId" = $1', ITEMS),
     BY_ORDER_ID, BY_NOTE),
    (query("hostile", sql.SQL("SELECT v FROM public.{} WHERE {} = 3").format(
        sql.Identifier(HOSTILE_TABLE), sql.Identifier(HOSTILE_COLUMN)).as_string(), HOSTILE_QUALIFIED),
     BY_HOSTILE, BY_NOTE),
    (query("partitioned", "SELECT * FROM events WHERE kind = $1", "public.events"), BY_KIND, BY_NOTE),
    (query("view", "SELECT id FROM pending_orders WHERE customer_id = 7", ORDERS), BY_CUSTOMER, BY_NOTE),
    (query("expression", "SELECT id FROM users WHERE lower(email) = $1", "public.users"), BY_LOWER_EMAIL, BY_EMAIL),
    (query("partial", "SELECT id, due FROM tasks WHERE state = 'pending'", "public.tasks"), PENDING_BY_DUE,
     DONE_BY_DUE),
]
BAD = query("bad", "SELECT * FROM orders WHERE no_such_column = 1", ORDERS)
GIN_QUERY = query("gin", """SELECT id FROM docs WHERE body @> '{"k": 5}'""", "public.docs")


@dataclass
class Target:
    """One test database on one server, its catalog snapshot, and whether hypopg is installed in it."""

    db: conftest.TestDatabase
    snapshot: Snapshot
    stats: ColumnStats
    hypopg: bool

    def session(self, *, trial_builds: bool = False) -> psycopg.Connection:
        return whatif_session(resolve(self.db.dsn), trial_builds=trial_builds)

    def read_only_engines(self) -> Iterator[tuple[Engine, psycopg.Connection]]:
        """hypopg where it is installed, and pg_stats everywhere: each with its own session."""
        if self.hypopg:
            conn = self.session()
            engine = HypoPGEngine(conn, self.snapshot)
            try:
                yield engine, conn
            finally:
                engine.close()
                conn.close()
        conn = self.session()
        try:
            yield StatisticsEngine(conn, self.snapshot, self.stats), conn
        finally:
            conn.close()

    def engines(self) -> Iterator[tuple[Engine, psycopg.Connection]]:
        """The read-only engines, then trial builds (everywhere)."""
        yield from self.read_only_engines()
        conn = self.session(trial_builds=True)
        try:
            yield TrialBuildEngine(conn, self.snapshot), conn
        finally:
            conn.close()


@pytest.fixture(scope="module")
def target(pg: LocalServer) -> Iterator[Target]:
    database = conftest.new_database(pg, "engines")
    database.execute(SCHEMA)
    database.execute(HOSTILE.as_string())
    database.execute("ANALYZE")
    has_hypopg = database.query("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'") == [(1,)]
    assert has_hypopg is (database.query("SHOW server_version_num")[0][0] < "160000")  # hypopg on 15 only
    if has_hypopg:
        database.execute("CREATE EXTENSION hypopg")
    with read_only_snapshot(resolve(database.dsn)) as conn:
        snapshot = take(conn)
        stats = read_column_stats(conn, [(r.schema, r.name) for r in snapshot.relations.values()])
        assert hypopg_available(conn) is has_hypopg
    yield Target(database, snapshot, stats, has_hypopg)
    conftest.drop_database(database)


def test_a_useful_candidate_lowers_the_cost_and_the_plan_uses_it(target: Target) -> None:
    """For each query (a ``$n`` query, a mixed-case schema and table, a hostile table and column name, a
    partitioned parent, a view, an expression, a 0.25 % constant predicate and its partial index): with the
    candidate that serves it the cost drops and the plan scans that one, not the useless one beside it."""
    kinds = []
    for engine, _ in target.engines():
        kinds.append(engine.kind)
        for q, useful, useless in SERVED:
            before = engine.cost(q, frozenset())
            after = engine.cost(q, frozenset({useful, useless}))
            assert before.error is None and after.error is None, (engine.kind, q.name, before, after)
            assert before.cost is not None and after.cost is not None
            assert after.cost < before.cost, (engine.kind, q.name)
            assert after.used == {useful}, (engine.kind, q.name)
            assert before.used == frozenset()
            assert engine.size(useful) > 0
    assert kinds == ([EngineKind.HYPOPG] if target.hypopg else []) + [EngineKind.STATISTICS, EngineKind.TRIAL_BUILD]


def test_pg_stats_estimates_agree_with_the_planner(target: Target) -> None:
    """The pg_stats engine's cost with the useful index is within 20 % of the planner's own with the index
    built (a trial build): its selectivity, Mackert-Lohman pages and bitmap heap scan follow PostgreSQL's
    cost model."""
    built_conn, conn = target.session(trial_builds=True), target.session()
    try:
        built, ranked = TrialBuildEngine(built_conn, target.snapshot), StatisticsEngine(conn, target.snapshot,
                                                                                        target.stats)
        for q, useful, _ in SERVED:
            real, estimate = built.cost(q, frozenset({useful})), ranked.cost(q, frozenset({useful}))
            assert real.cost is not None and estimate.cost is not None and estimate.used == {useful}
            assert abs(estimate.cost - real.cost) <= 0.2 * real.cost, (q.name, estimate.cost, real.cost)
        built.close()
    finally:
        built_conn.close()
        conn.close()


def test_an_index_in_the_order_of_the_query_saves_its_sort(target: Target) -> None:
    """The latest rows of one customer, and of every customer through LATERAL (a nested loop: the inner scan
    runs once per customer): ``(customer_id, created_at DESC)`` costs less than ``(customer_id)``, which
    costs less than none, on every engine; ``(created_at)`` alone serves the first query's order."""
    lateral = query("lateral", "SELECT c.id, o.id, o.created_at FROM customers c CROSS JOIN LATERAL (SELECT id, "
                    "created_at FROM orders o WHERE o.customer_id = c.id ORDER BY o.created_at DESC LIMIT 1) o",
                    ORDERS, "public.customers")
    latest = ORDER_QUERIES[2]
    for engine, _ in target.engines():
        for q in (latest, lateral):
            none, narrow = engine.cost(q, frozenset()), engine.cost(q, frozenset({BY_CUSTOMER}))
            wide = engine.cost(q, frozenset({BY_CUSTOMER_LATEST}))
            assert none.cost is not None and narrow.cost is not None and wide.cost is not None
            assert wide.cost < narrow.cost < none.cost, (engine.kind, q.name, wide, narrow, none)
            assert wide.used == {BY_CUSTOMER_LATEST} and narrow.used == {BY_CUSTOMER}
            both = engine.cost(q, frozenset({BY_CUSTOMER, BY_CUSTOMER_LATEST}))
            assert both.used == {BY_CUSTOMER_LATEST}, (engine.kind, q.name)
        by_created = engine.cost(latest, frozenset({BY_CREATED}))
        assert by_created.used == {BY_CREATED} and by_created.cost is not None
        assert by_created.cost < engine.cost(latest, frozenset()).cost  # type: ignore[operator]


def test_pg_stats_does_not_prefer_a_copy_of_the_index_the_plan_uses(target: Target) -> None:
    """A scan through an existing index (the primary key, an index on customer_id built for this test) is
    compared with the candidate in the same model: the same key again, with or without INCLUDE, is not
    cheaper and not used."""
    copies = [(query("by id", "SELECT * FROM orders WHERE id = $1", ORDERS), btree("public", "orders", "id")),
              (query("by customer", "SELECT * FROM orders WHERE customer_id = $1", ORDERS),
               Candidate("public", "orders", (KeyPart("customer_id"),), include=("id",)))]
    target.db.execute("CREATE INDEX orders_customer_test ON orders (customer_id)")
    try:
        with read_only_snapshot(resolve(target.db.dsn)) as snapshot_conn:
            snapshot = take(snapshot_conn)
        conn = target.session()
        try:
            engine = StatisticsEngine(conn, snapshot, target.stats)
            for q, copy in copies:
                base = engine.cost(q, frozenset())
                assert engine.cost(q, frozenset({copy})) == base, q.name
        finally:
            conn.close()
    finally:
        target.db.execute("DROP INDEX orders_customer_test")


def test_an_index_on_a_column_most_rows_share_is_not_used(target: Target) -> None:
    """``status = 'done'`` holds for 99 % of the rows (pg_stats' most common values say so): no engine lowers
    the cost with an index on it, or says the plan would use it."""
    q = query("done", "SELECT * FROM orders WHERE status = 'done'", ORDERS)
    for engine, _ in target.engines():
        before, after = engine.cost(q, frozenset()), engine.cost(q, frozenset({BY_STATUS}))
        assert after == Costing(before.cost), engine.kind


def test_a_parameter_query_is_costed_by_its_generic_plan(target: Target) -> None:
    """A ``$n`` query cannot be explained as it stands; its cost is the generic plan's, the same that
    ``dbtune explain`` collects (EXPLAIN (GENERIC_PLAN) on 18, PREPARE + force_generic_plan on 15)."""
    q = SERVED[0][0]
    (collected,) = collect_plans(resolve(target.db.dsn), [PlanQuery(q.sql)]).queries
    assert collected.kind == "generic" and collected.plan is not None
    for engine, _ in target.engines():
        assert engine.cost(q, frozenset()) == Costing(collected.plan.total_cost)


def test_a_partitioned_parent_is_one_candidate_sized_over_its_partitions(target: Target) -> None:
    """The parent's candidate is used on every partition the plan scans, and its size is the sum of the
    same index's on each partition (hypopg's estimate of the parent's index alone is smaller)."""
    q = SERVED[4][0]
    leaves = [btree("public", leaf, "kind") for leaf in ("events_1", "events_2")]
    for engine, _ in target.engines():
        assert engine.cost(q, frozenset({BY_KIND})).used == {BY_KIND}
        assert engine.size(BY_KIND) == sum(engine.size(leaf) for leaf in leaves) > engine.size(leaves[0]) > 0


def test_a_refused_query_or_candidate_is_an_error_and_the_session_goes_on(target: Target) -> None:
    for engine, _ in target.engines():
        failed = engine.cost(BAD, frozenset({BY_CUSTOMER}))
        assert failed.cost is None and failed.error is not None and "no_such_column" in failed.error
        bad_candidate = btree("public", "orders", "no_such_column")
        refused = engine.cost(SERVED[0][0], frozenset({bad_candidate, BY_CUSTOMER}))
        assert refused.cost is None and refused.error is not None and "no_such_column" in refused.error
        ok = engine.cost(SERVED[0][0], frozenset({BY_CUSTOMER}))
        assert ok.error is None and ok.used == {BY_CUSTOMER}


def test_gin_is_refused_by_hypopg_and_costed_by_a_trial_build_and_pg_stats(target: Target) -> None:
    """hypopg 1.3 cannot create a gin index: it says so, and the pg_stats ranking (its companion for what it
    cannot cost) and trial builds cost it."""
    for engine, _ in target.engines():
        if engine.kind is EngineKind.HYPOPG:
            why = engine.cannot_cost(BODY_GIN)
            assert why is not None and "gin" in why
            assert engine.cannot_cost(BY_CUSTOMER) is None
            assert engine.cost(GIN_QUERY, frozenset({BODY_GIN})).error == f"{BODY_GIN.describe()}: {why}"
            continue
        assert engine.cannot_cost(BODY_GIN) is None
        before, after = engine.cost(GIN_QUERY, frozenset()), engine.cost(GIN_QUERY, frozenset({BODY_GIN}))
        assert before.cost is not None and after.cost is not None and after.cost < before.cost, engine.kind
        assert after.used == {BODY_GIN}


def test_pg_stats_says_what_it_could_not_cost(target: Target) -> None:
    by_hash = Candidate("public", "orders", (KeyPart("customer_id"),), method="hash")
    conn = target.session()
    try:
        engine = StatisticsEngine(conn, target.snapshot, target.stats)
        assert "not costed" not in engine.note
        why = engine.cannot_cost(by_hash)
        assert why == "pg_stats ranks btree and gin indexes only, not hash"
        assert engine.cost(SERVED[0][0], frozenset({by_hash})) == Costing(None, error=f"{by_hash.describe()}: {why}")
        assert engine.note.endswith(f"; not costed: {by_hash.describe()} ({why})")
    finally:
        conn.close()


def test_a_foreign_table_cannot_be_costed(target: Target) -> None:
    remote = btree("public", "remote_orders", "customer_id")
    q = query("remote", "SELECT id FROM remote_orders WHERE customer_id = 3", "public.remote_orders")
    for engine, _ in target.engines():
        why = engine.cannot_cost(remote)
        assert why == "public.remote_orders is a foreign table: PostgreSQL cannot index it", engine.kind
        assert engine.cost(q, frozenset({remote})) == Costing(None, error=f"{remote.describe()}: {why}")
        assert engine.cost(q, frozenset()).cost is not None


class CountingEngine:
    """The engine, counting the requests that reach it (to check the cache's ``calls``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.kind = engine.kind
        self.requests = 0

    def cost(self, q: AdvisorQuery, indexes: frozenset[Candidate]) -> Costing:
        self.requests += 1
        return self.engine.cost(q, indexes)

    def size(self, candidate: Candidate) -> int:
        return self.engine.size(candidate)

    def cannot_cost(self, candidate: Candidate) -> str | None:
        return self.engine.cannot_cost(candidate)

    def close(self) -> None:
        self.engine.close()


ORDER_QUERIES = [
    SERVED[0][0],
    query("status", "SELECT count(*) FROM orders WHERE status = 'pending'", ORDERS),
    query("latest", "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 5", ORDERS),
    query("range", "SELECT id FROM orders WHERE created_at >= $1 AND created_at < $2", ORDERS),
]
POOL = [BY_CUSTOMER, BY_STATUS, BY_CREATED, BY_NOTE, BY_CUSTOMER_CREATED, BY_ORDER_ID]


def test_5000_evaluations_through_the_cache_leave_nothing_behind(target: Target) -> None:
    """5,000 (query, candidate set) evaluations over random subsets: the cache sends only what it cannot
    answer (its ``calls`` are the requests the engine received), its answers equal the engine's own for the
    same sets, and once the engine is closed no hypothetical index exists in the session and no built index
    in pg_class."""
    relations_before = target.db.query("SELECT count(*) FROM pg_class")
    for engine, conn in target.engines():
        rng = random.Random(7)
        counting = CountingEngine(engine)
        cache = CostCache(counting)
        batched = CostCache(engine)
        evaluations = 0
        requests: list[tuple[AdvisorQuery, frozenset[Candidate]]] = []
        while evaluations < 5000:
            subset = frozenset(c for c in POOL if rng.random() < 0.5)
            for q in ORDER_QUERIES:
                assert cache.cost(q, subset).error is None
                requests.append((q, subset))
            evaluations += len(ORDER_QUERIES)
            if len(requests) % 100 == 0:
                batched.cost_many(ORDER_QUERIES, subset)
        assert cache.calls == counting.requests < 5000 / 4
        assert batched.calls <= cache.calls
        for q, subset in rng.sample(requests, 20):  # reused answers are the engine's own for that set
            fresh = engine.cost(q, CostCache.relevant(q, subset))
            assert cache.cost(q, subset) == fresh == batched.cost(q, subset), (engine.kind, q.name, subset)
        assert cache.calls == counting.requests
        if engine.kind is EngineKind.HYPOPG:  # the last request's set is kept for the next, until close()
            left = conn.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone()
            assert left is not None and left[0] <= len(POOL)
            engine.close()
            assert conn.execute("SELECT count(*) FROM hypopg_list_indexes").fetchone() == (0,)
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == (
            ("off",) if engine.kind is EngineKind.TRIAL_BUILD else ("on",))
    assert target.db.query("SELECT count(*) FROM pg_class") == relations_before
    assert target.db.query("SELECT count(*) FROM pg_class WHERE relname LIKE 'dbtune_trial%'") == [(0,)]


def test_a_trial_build_serves_consecutive_requests_of_one_set(target: Target) -> None:
    """The selection asks query after query for one candidate set: it is built once, the answers are those of
    a build of its own, and asking for another set (or closing) rolls it back."""
    conn = target.session(trial_builds=True)
    try:
        engine, fresh = TrialBuildEngine(conn, target.snapshot), TrialBuildEngine(conn, target.snapshot)
        pool = frozenset({BY_CUSTOMER, BY_CREATED})
        answers = [engine.cost(q, pool) for q in ORDER_QUERIES]
        assert engine.builds == 1 and conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        assert engine.size(BY_CUSTOMER) > 0 and engine.builds == 1  # its size came with the build
        assert engine.size(BY_STATUS) > 0 and engine.builds == 2  # built in a savepoint of the open build
        assert engine.cost(ORDER_QUERIES[0], pool) == answers[0] and engine.builds == 2
        engine.release()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        assert engine.cost(ORDER_QUERIES[0], pool) == answers[0] and engine.builds == 3
        assert engine.cost(ORDER_QUERIES[0], frozenset()) == Costing(engine.cost(ORDER_QUERIES[0], frozenset()).cost)
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # the build is rolled back
        engine.close()
        assert [fresh.cost(q, pool) for q in ORDER_QUERIES] == answers
        assert answers[0].used == {BY_CUSTOMER} and answers[3].used == {BY_CREATED}
        fresh.close()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    finally:
        conn.close()
    assert target.db.query("SELECT count(*) FROM pg_class WHERE relname LIKE 'dbtune_trial%'") == [(0,)]


def test_cache_sizes_are_cached_and_never_smaller_than_a_prefix(target: Target) -> None:
    for engine, _ in target.engines():
        cache = CostCache(engine)
        wide = cache.size(BY_CUSTOMER_CREATED)
        assert wide >= cache.size(BY_CUSTOMER) > 0
        calls = cache.size_calls
        assert cache.size(BY_CUSTOMER_CREATED) == wide and cache.size_calls == calls == 2


def test_the_cache_filters_to_the_query_tables(target: Target) -> None:
    """A candidate on another table changes nothing for a query: the request is answered from the cache."""
    for engine, _ in target.engines():
        cache = CostCache(engine)
        q = SERVED[0][0]
        first = cache.cost(q, [BY_CUSTOMER])
        assert cache.cost(q, [BY_CUSTOMER, BY_ORDER_ID, BODY_GIN]) == first and cache.calls == 1
        # the plan used BY_CUSTOMER only: with BY_NOTE too, or without BY_STATUS, the answer stands
        assert cache.cost(q, [BY_CUSTOMER, BY_NOTE, BY_STATUS]).used == {BY_CUSTOMER} and cache.calls == 2
        assert cache.cost(q, [BY_CUSTOMER, BY_NOTE]) == first and cache.calls == 2


def test_a_candidate_on_columns_the_query_never_references_causes_no_costing(target: Target) -> None:
    """``SELECT id, status FROM orders WHERE customer_id = $1`` with its referenced columns known: an index on
    ``note`` or ``created_at`` cannot change its plan, so the cache answers without asking the engine (whose
    own answer with them present is the same cost); an index on ``status``, which the query reads, is asked."""
    q = replace(SERVED[0][0], columns=((ORDERS, frozenset({"id", "status", "customer_id"})),))
    for engine, _ in target.engines():
        cache = CostCache(engine)
        first = cache.cost(q, [BY_CUSTOMER])
        assert cache.cost(q, [BY_CUSTOMER, BY_NOTE, BY_CREATED]) == first and cache.calls == 1
        assert engine.cost(q, frozenset({BY_CUSTOMER, BY_NOTE, BY_CREATED})).cost == first.cost
        cache.cost(q, [BY_CUSTOMER, BY_STATUS])
        assert cache.calls == 2, engine.kind


WRITE_COUNTERS = ("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0), "
                  "(SELECT count(*) FROM pg_class) FROM pg_stat_user_tables")
TRANSACTION_CONTROL = ("BEGIN", "ROLLBACK", "SAVEPOINT", "RELEASE")  # psycopg's, around each EXPLAIN


def test_the_read_only_engines_send_only_reads(target: Target) -> None:
    """Every statement the hypopg engine (on 15) and the pg_stats engine sent, as pg_stat_statements
    recorded them, is marked and is a SELECT, an EXPLAIN, or (the generic plan on 15) PREPARE/DEALLOCATE;
    nothing was inserted, updated or created; the session is read-only."""
    target.db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    kinds = []
    for engine, conn in target.read_only_engines():
        kinds.append(engine.kind)
        target.db.execute("SELECT pg_stat_force_next_flush()")
        before = target.db.query(WRITE_COUNTERS)
        target.db.execute("SELECT pg_stat_statements_reset()")
        cache = CostCache(engine)
        for q, useful, useless in SERVED:
            cache.cost(q, [useful, useless])
            cache.size(useful)
        cache.cost(BAD, [BY_CUSTOMER])
        assert conn.execute("SHOW default_transaction_read_only").fetchone() == ("on",)
        sent = [str(s) for (s,) in target.db.query(
            "SELECT query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = current_database() AND query NOT LIKE '%pg_stat_statements%'")]
        heads = {re.sub(r"^(\s*--[^\n]*\n)*\s*", "", s).split()[0].upper() for s in sent}  # leading comments
        assert all("/* dbtune */" in s for s in sent if not s.upper().startswith(TRANSACTION_CONTROL)), sent
        allowed = {"SELECT", "SHOW", "EXPLAIN", "PREPARE", "DEALLOCATE", *TRANSACTION_CONTROL}
        assert "EXPLAIN" in heads and heads <= allowed, sent
        target.db.execute("SELECT pg_stat_force_next_flush()")
        assert target.db.query(WRITE_COUNTERS) == before
    assert kinds == ([EngineKind.HYPOPG] if target.hypopg else []) + [EngineKind.STATISTICS]
