"""``advise()`` end to end, on real servers: PostgreSQL 15 with hypopg (``CREATE EXTENSION hypopg``) and
PostgreSQL 18 without it (trial builds, and pg_stats). The guide's schema and workload at a small scale,
and small tables of their own for the cases with a known right answer."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import conftest
import psycopg
import pytest

from dbtune.advisor.api import AdviseOptions, advise
from dbtune.advisor.model import Advice, EngineKind
from dbtune.audit import audit
from dbtune.config.loader import load_config
from dbtune.db.connect import ConnectionSettings
from dbtune.db.local_server import LocalServer
from dbtune.errors import UsageError
from dbtune.samples import guide_file, samples_dir
from dbtune.workload.model import Query, Source
from dbtune.workload.sqlfile import parse_script

GUIDE_SCALE = 0.01  # orders 5,000 rows, webhooks 10,000, responses ~7,500
WRITE_COUNTERS = ("SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0), (SELECT count(*) FROM pg_class) "
                  "FROM pg_stat_user_tables")


def has_hypopg(server: LocalServer) -> bool:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'").fetchone()[0] > 0  # type: ignore[index]


def prepare(database: conftest.TestDatabase) -> None:
    """hypopg where the server has it, pg_stat_statements, and the statistics reset."""
    if has_hypopg(database.server):
        database.execute("CREATE EXTENSION hypopg")
    database.execute("CREATE EXTENSION pg_stat_statements")


def load(database: conftest.TestDatabase, *parts: str) -> None:
    """Run the setup SQL in one session, flush its statistics, then reset the database's statistics, so
    pg_stat_user_tables counts only what follows (the load is not the application's writes)."""
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        for sql in parts:
            conn.execute(sql)  # type: ignore[arg-type]
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")  # the flush happened when the session went idle before this
        conn.execute("SELECT pg_stat_reset()")


def activity(database: conftest.TestDatabase, statements: list[str]) -> None:
    """Run each statement once, as the application would (pg_stat_user_tables counts its reads and
    writes), and flush the session's statistics."""
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)  # type: ignore[arg-type]
        conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("SELECT 1")


def guide_queries() -> list[Query]:
    queries, errors, _ = parse_script(guide_file("workload.sql").read_text(), "workload.sql")
    assert errors == []
    return queries


RESPONSE_INSERT = ("INSERT INTO vendor_routing_responses (routing_id, vendor_id, response) "
                   "VALUES ($1, $2, 'PENDING')")


def guide_workload() -> list[Query]:
    """The guide's queries and the application's insert of a vendor's response (weight 20): each index on
    vendor_routing_responses has a write cost."""
    return [*guide_queries(), query(RESPONSE_INSERT, "record-response", weight=20)]


def guide_reads() -> list[str]:
    """The guide's queries with constants for their parameters."""
    return ["SELECT id FROM webhook_idempotency WHERE message_sid = 'x'",
            "SELECT id FROM webhook_idempotency WHERE account_sid = 'x' ORDER BY created_at DESC LIMIT 20",
            "SELECT id FROM vendor_routing_responses WHERE routing_id = 1",
            "SELECT id FROM orders WHERE retailer_id = 1 ORDER BY created_at DESC LIMIT 50",
            "SELECT id FROM orders WHERE status = 'pending' ORDER BY created_at DESC LIMIT 50",
            "SELECT id FROM jobs WHERE state = 'queued' ORDER BY priority DESC, created_at LIMIT 10"]


@dataclass
class Guide:
    database: conftest.TestDatabase
    settings: ConnectionSettings
    hypopg: bool


@pytest.fixture(scope="module")
def guide(pg: LocalServer) -> Iterator[Guide]:
    """The guide's schema and data at :data:`GUIDE_SCALE`, statistics reset after the load, then the
    workload's reads once."""
    database = conftest.new_database(pg, "guide")
    prepare(database)
    load(database, guide_file("schema.sql").read_text(),
         guide_file("data.sql").read_text().replace(":scale", repr(GUIDE_SCALE)))
    activity(database, guide_reads())
    yield Guide(database, ConnectionSettings(dsn=database.dsn), has_hypopg(pg))
    conftest.drop_database(database)


_ADVICE: dict[tuple[str, bool], Advice] = {}


def guide_advice(guide: Guide, *, trial_builds: bool = False) -> Advice:
    """The guide workload's advice with the audit's findings under the guide's checklist (computed once
    per server and engine)."""
    key = (guide.database.name, trial_builds)
    if key not in _ADVICE:
        config, path = load_config(samples_dir() / "guide-checklist.toml")
        findings = audit(guide.settings, config, config_path=path).findings
        _ADVICE[key] = advise(guide.settings, config, guide_workload(),
                              AdviseOptions(trial_builds=trial_builds, yes=trial_builds), findings=findings)
    return _ADVICE[key]


def planner_advice(guide: Guide) -> Advice:
    """hypopg on the server that has it; trial builds (planner costs too) on the one that does not."""
    return guide_advice(guide, trial_builds=not guide.hypopg)


def test_the_guide_workload_gets_indexes_that_serve_every_guide_query_and_none_that_serves_none(guide: Guide) -> None:
    advice = planner_advice(guide)
    assert advice.engine is (EngineKind.HYPOPG if guide.hypopg else EngineKind.TRIAL_BUILD)
    assert advice.problems == () and advice.queries == len(guide_workload())
    served = {q.name for r in advice.recommendations for q in r.queries}
    assert served == {q.name for q in guide_queries()}
    for rec in advice.recommendations:
        assert rec.queries and all(q.after < q.before for q in rec.queries), rec.candidate.describe()
        assert rec.benefit > 0 and rec.estimated_bytes > 0 and rec.engine is advice.engine
        (build,) = rec.changes
        assert build.up.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS") and rec.candidate.index_name() in build.up
    assert sum(r.estimated_bytes for r in advice.recommendations) <= advice.budget_bytes
    assert advice.budget_bytes == int(0.5 * advice.database_bytes)
    assert advice.whatif_calls > 0
    recommended = {r.candidate for r in advice.recommendations}
    assert all(r.candidate not in recommended and r.reason for r in advice.rejected)


def test_without_hypopg_or_trial_builds_the_advice_says_how_it_ranked(guide: Guide) -> None:
    if guide.hypopg:
        database = conftest.new_database(guide.database.server, "nohypo")  # the same server, no extension
        try:
            database.execute("CREATE TABLE t (id int PRIMARY KEY, a int); "
                             "INSERT INTO t SELECT g, g % 500 FROM generate_series(1, 5000) g; ANALYZE t")
            advice = advise(ConnectionSettings(dsn=database.dsn), load_config(None, search=False)[0],
                            [query("SELECT id FROM t WHERE a = $1")], AdviseOptions())
        finally:
            conftest.drop_database(database)
    else:
        advice = guide_advice(guide)
    assert advice.engine is EngineKind.STATISTICS
    assert advice.engine_note.startswith("ranked by pg_stats selectivity; planner costs not available")
    assert all(r.engine is EngineKind.STATISTICS for r in advice.recommendations)


def test_the_guides_redundant_expected_index_and_unneeded_foreign_key_indexes_are_not_needed(guide: Guide) -> None:
    advice = planner_advice(guide)
    by_name = {(r.candidate.table, tuple(k.text for k in r.candidate.keys), r.candidate.predicate): r
               for r in advice.not_needed}
    redundant = by_name[("vendor_routing_responses", ("routing_id", "response"), "response = 'ACCEPTED'")]
    assert redundant.stage == "not needed"
    assert re.fullmatch(r"served by the (proposed UNIQUE|recommended) public\.vendor_routing_responses "
                        r"\(routing_id\)( INCLUDE \(.*\))? WHERE response = 'ACCEPTED'", redundant.reason), \
        redundant.reason
    # the judgement carries the index that serves it, so validation can match it by candidate, not by text
    assert redundant.served_by is not None and redundant.reason.endswith(redundant.served_by.describe())
    assert redundant.write_cost > 0  # the workload inserts into its table
    vendor_fk = by_name[("vendor_routing_responses", ("vendor_id",), None)]
    assert vendor_fk.reason.startswith("public.vendors is never deleted from (n_tup_del = 0), no workload "
                                       "statement updates its key (id), and no workload query joins or filters")
    assert vendor_fk.write_cost == redundant.write_cost
    # The plain expected index on message_sid is served by the expected unique one on the same column.
    plain_sid = by_name[("webhook_idempotency", ("message_sid",), None)]
    assert plain_sid.reason == "served by the proposed UNIQUE public.webhook_idempotency (message_sid)"
    assert plain_sid.served_by is not None and plain_sid.served_by.unique and vendor_fk.served_by is None
    # The expected indexes that nothing else serves stay needed: the team named them.
    needed = {("orders", ("retailer_id", "created_at")), ("jobs", ("state", "priority", "created_at"))}
    assert not {(t, k) for t, k, _ in by_name} & needed


def test_budget_and_max_indexes_are_honoured(guide: Guide) -> None:
    full = planner_advice(guide)
    assert len(full.recommendations) >= 3
    capped = advise(guide.settings, load_config(None, search=False)[0], guide_workload(),
                    AdviseOptions(max_indexes=2, trial_builds=not guide.hypopg, yes=not guide.hypopg))
    assert len(capped.recommendations) == 2
    assert any(r.reason == "beyond --max-indexes 2" for r in capped.rejected)
    smallest = min(r.estimated_bytes for r in full.recommendations)
    tight = advise(guide.settings, load_config(None, search=False)[0], guide_workload(),
                   AdviseOptions(budget=smallest, trial_builds=not guide.hypopg, yes=not guide.hypopg))
    assert 1 <= len(tight.recommendations) < len(full.recommendations)
    assert sum(r.estimated_bytes for r in tight.recommendations) <= smallest == tight.budget_bytes
    assert any(r.reason.startswith("over budget") for r in tight.rejected)


# --- small cases with a known right answer ----------------------------------------------------------------


def query(sql: str, name: str | None = None, weight: float | None = None) -> Query:
    from dbtune.plans.collect import fingerprint
    from dbtune.workload.statements import SessionPaths

    return Query(text=sql, source=Source.SQL, location=f"test:{name or sql[:20]}", fingerprint=fingerprint(sql),
                 name=name, weight=weight, relations=SessionPaths().resolve(sql)[0])


@pytest.fixture
def small(db: conftest.TestDatabase) -> conftest.TestDatabase:
    """``t(a, b, c)``: 20,000 rows, ``a`` 200 values, ``b`` 100 values (neither in the rows' physical
    order); ``events``: written only;
    ``u(k)``: 20,000 rows, 2,000 values; statistics reset after the load."""
    prepare(db)
    load(db, """
        CREATE TABLE t (id int PRIMARY KEY, a int NOT NULL, b int NOT NULL, c text NOT NULL);
        INSERT INTO t SELECT g, g % 200, abs(hashint4(g)) % 100, md5(g::text) FROM generate_series(1, 20000) g;
        CREATE TABLE u (id int PRIMARY KEY, k int NOT NULL, note text);
        INSERT INTO u SELECT g, g % 2000, 'n' FROM generate_series(1, 20000) g;
        CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text NOT NULL,
                             created_at timestamptz NOT NULL DEFAULT now());
        ANALYZE t; ANALYZE u;""")
    activity(db, ["INSERT INTO events (kind, created_at) SELECT 'k' || g % 5, now() - g * interval '1 minute' "
                  "FROM generate_series(1, 3000) g", "ANALYZE events",
                  "SELECT c FROM t WHERE a = 1",
                  "SELECT c FROM t WHERE a = 1 AND b = 2", "SELECT note FROM u WHERE k = 3"])
    return db


def engine_options(db: conftest.TestDatabase, **more: object) -> AdviseOptions:
    planner = not has_hypopg(db.server)  # trial builds where hypopg is missing: planner costs on both
    return AdviseOptions(trial_builds=planner, yes=planner or bool(more.get("validate")), **more)  # type: ignore[arg-type]


def test_one_wider_index_is_chosen_over_the_narrower_one_it_serves(small: conftest.TestDatabase) -> None:
    advice = advise(ConnectionSettings(dsn=small.dsn), load_config(None, search=False)[0],
                    [query("SELECT c FROM t WHERE a = $1", "by-a"),
                     query("SELECT c FROM t WHERE a = $1 AND b = $2", "by-a-and-b"),
                     query("INSERT INTO t VALUES ($1, $2, $3, $4)", "add", weight=5)], engine_options(small))
    on_t = [r for r in advice.recommendations if r.candidate.table == "t"]
    assert len(on_t) == 1, [r.candidate.describe() for r in on_t]
    (wide,) = on_t
    assert {k.text for k in wide.candidate.keys[:2]} == {"a", "b"}
    assert {q.name for q in wide.queries} == {"by-a", "by-a-and-b"}
    narrow = [r for r in advice.rejected if [k.text for k in r.candidate.keys] == ["a"]]
    assert narrow and all(r.reason == f"served by {wide.candidate.describe()}" for r in narrow), \
        [(r.candidate.describe(), r.reason) for r in narrow]


def test_a_write_only_table_gets_nothing(small: conftest.TestDatabase) -> None:
    advice = advise(ConnectionSettings(dsn=small.dsn), load_config(None, search=False)[0],
                    [query("INSERT INTO events (kind) VALUES ($1)", "log", weight=1000),
                     query("DELETE FROM events WHERE created_at < $1", "purge"),
                     query("SELECT note FROM u WHERE k = $1", "by-k")], engine_options(small))
    assert [r.candidate.table for r in advice.recommendations] == ["u"]
    on_events = [r for r in advice.rejected if r.candidate.table == "events"]
    assert on_events and all(r.reason.startswith("write-only table") for r in on_events)
    assert advice.problems == ()


def test_weights_decide_which_index_is_worth_the_only_slot(small: conftest.TestDatabase) -> None:
    config = load_config(None, search=False)[0]
    script = """-- name: by-a
-- weight: {a}
SELECT c FROM t WHERE a = $1 AND b = $2;
-- name: by-k
-- weight: {k}
SELECT note FROM u WHERE k = $1;
"""
    _, bad, _ = parse_script("-- weight: often\nSELECT 1;\n-- weight: -2\nSELECT 2;\n", "w.sql")
    assert [(e.location, e.message) for e in bad] == [
        ("w.sql:2", "-- weight: must be a positive number, got 'often'"),
        ("w.sql:4", "-- weight: must be a positive number, got '-2'")]
    for a, k, table in ((1, 5000, "u"), (5000, 1, "t")):
        queries, errors, _ = parse_script(script.format(a=a, k=k), "w.sql")
        assert errors == [] and [q.weight for q in queries] == [a, k]
        advice = advise(ConnectionSettings(dsn=small.dsn), config, queries, engine_options(small, max_indexes=1))
        assert [r.candidate.table for r in advice.recommendations] == [table]


def test_a_query_that_fails_on_the_server_or_does_not_parse_is_a_problem_and_the_rest_goes_on(
        small: conftest.TestDatabase) -> None:
    advice = advise(ConnectionSettings(dsn=small.dsn), load_config(None, search=False)[0],
                    [query("SELECT c FROM t WHERE nonexistent = $1", "broken"),
                     Query(text="SELEC c FROM t", source=Source.SQL, location="w.sql:3", fingerprint="x", name="typo"),
                     query("SELECT note FROM u WHERE k = $1", "by-k")], engine_options(small))
    problems = {p.name: p.message for p in advice.problems}
    assert set(problems) == {"broken", "typo"}
    assert 'column "nonexistent" does not exist' in problems["broken"]
    assert problems["typo"].startswith("does not parse")
    assert [r.candidate.table for r in advice.recommendations] == ["u"]


def test_advise_sends_no_write_and_leaves_no_hypothetical_index(pg: LocalServer) -> None:
    """Every statement the advisor's role sent (pg_stat_statements) is a read, an EXPLAIN, hypopg's
    functions or transaction control; nothing was inserted, updated or created; hypopg was reset."""
    database = conftest.new_database(pg, "ro")
    role = f"dbtune_adv_{os.getpid()}_{database.name.rsplit('_', 1)[-1]}"
    try:
        prepare(database)
        load(database, f"""
            CREATE TABLE u (id int PRIMARY KEY, k int NOT NULL, note text);
            INSERT INTO u SELECT g, g % 2000, 'n' FROM generate_series(1, 20000) g; ANALYZE u;
            CREATE ROLE {role} LOGIN IN ROLE pg_monitor; GRANT SELECT, UPDATE ON u TO {role};""")
        before = database.query(WRITE_COUNTERS)
        database.execute("SELECT pg_stat_statements_reset()")
        advice = advise(ConnectionSettings(dsn=pg.dsn(database.name, user=role)), load_config(None, search=False)[0],
                        [query("SELECT note FROM u WHERE k = $1", "by-k"),
                         query("UPDATE u SET note = $2 WHERE k = $1", "touch")], AdviseOptions())
        assert advice.recommendations
        sent = [str(q) for (q,) in database.query(
            f"SELECT query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            f"WHERE s.userid = '{role}'::regrole AND d.datname = current_database()")]
        assert sent
        assert all("/* dbtune */" in q for q in sent if not q.startswith(
            ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "DEALLOCATE")))
        statements = [re.sub(r"^(\s*--[^\n]*\n)*\s*", "", q.replace(" /* dbtune */", "", 1)).upper() for q in sent]
        reads = ("SELECT", "WITH", "EXPLAIN", "BEGIN", "SET TRANSACTION", "SHOW", "SAVEPOINT", "RELEASE",
                 "ROLLBACK", "COMMIT", "PREPARE", "DEALLOCATE", "/*")
        assert [q for q in statements if not q.startswith(reads)] == []
        if has_hypopg(pg):
            assert advice.engine is EngineKind.HYPOPG
            assert any("HYPOPG_RESET()" in q for q in statements), statements
        assert database.query(WRITE_COUNTERS) == before
    finally:
        conftest.drop_database(database)
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


def test_trial_builds_are_refused_without_yes(small: conftest.TestDatabase) -> None:
    with pytest.raises(UsageError, match="--trial-builds"):
        advise(ConnectionSettings(dsn=small.dsn), load_config(None, search=False)[0],
               [query("SELECT note FROM u WHERE k = $1")], AdviseOptions(trial_builds=True))


def test_validate_proves_the_choice_on_the_server(small: conftest.TestDatabase) -> None:
    """With ``validate``, every chosen index is built and measured: kept with its measurements, or rejected
    at the validation stage with the reason; nothing of a rejected one is left."""
    workload = [query("SELECT note FROM u WHERE k = $1", "by-k")]
    planned = advise(ConnectionSettings(dsn=small.dsn), load_config(None, search=False)[0], workload,
                     engine_options(small))
    proven = advise(ConnectionSettings(dsn=small.dsn), load_config(None, search=False)[0], workload,
                    engine_options(small, validate=True))
    assert planned.recommendations and not planned.validated and proven.validated
    validation = [r for r in proven.rejected if r.stage == "validation"]
    assert {r.candidate for r in proven.recommendations} | {r.candidate for r in validation} == \
        {r.candidate for r in planned.recommendations}
    assert all(r.measured and r.real_bytes for r in proven.recommendations)
    assert all(r.reason for r in validation)
    built = {name for (name,) in small.query("SELECT indexname FROM pg_indexes WHERE tablename = 'u'")}
    assert built == {"u_pkey", *(r.candidate.index_name() for r in proven.recommendations)}
