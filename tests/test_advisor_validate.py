"""Validation on the real server (issue 7, item 5): the recommended indexes are built, the queries they serve
benchmarked before and after, and only what measurably helps is kept; the rest is dropped with its reason,
and nothing it built is left in pg_class."""

from __future__ import annotations

import re
from dataclasses import replace

import psycopg
import pytest
from conftest import TestDatabase, standby_of

from dbtune.advisor.model import Advice, Candidate, EngineKind, KeyPart, Origin, QueryCost, Recommendation, Rejected
from dbtune.advisor.validate import refuse_production, validate, validated_advice
from dbtune.bench import BenchOptions, WorkloadQuery
from dbtune.bench.compare import Latency
from dbtune.bench.plan import PlanShape
from dbtune.bench.result import QueryResult
from dbtune.catalog.snapshot import take
from dbtune.db.connect import describe, read_only_snapshot, resolve
from dbtune.db.local_server import LocalServer
from dbtune.errors import UsageError
from dbtune.migrate.changes import create_index

pytestmark = pytest.mark.measures  # timed verdicts: alone under xdist (tests/conftest.py)

# 5 executions a round: verdicts that hold on a busy machine
BENCH = BenchOptions(iterations=30, rounds=6, warmup=1, param_samples=10)


def _recommendation(db: TestDatabase, candidate: Candidate, name: str, sql: str, *,
                    with_changes: bool = True) -> Recommendation:
    """A recommendation as the advisor hands it over: the candidate, the query it serves, and (unless
    ``with_changes`` is false: then validation derives them) the migration's changes that build it."""
    changes = ()
    if with_changes:
        with read_only_snapshot(resolve(db.dsn)) as conn:
            snapshot = take(conn)
        table = next(r for r in snapshot.relations.values() if r.name == candidate.table)
        changes = create_index(snapshot, table, candidate.index_name(), candidate.columns)
    return Recommendation(candidate, (QueryCost(name, name, sql, 1.0, 100.0, 1.0),), estimated_bytes=8192,
                          benefit=99.0, write_cost=0.0, engine=EngineKind.HYPOPG, changes=changes)


def _indexes(db: TestDatabase, table: str) -> set[str]:
    rows = db.query(f"SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = '{table}'::regclass")
    return {str(r[0]) for r in rows}


def test_refused_without_yes_and_on_a_read_only_database(db18: TestDatabase) -> None:
    settings = resolve(db18.dsn)
    with pytest.raises(UsageError, match=r"^--validate builds indexes on the target: pass --yes on a "
                                         r"non-production server$"):
        refuse_production(settings, yes=False, what="--validate")
    refuse_production(settings, yes=True, what="--validate")  # a writable server with --yes: allowed
    db18.execute(f"ALTER DATABASE {db18.name} SET default_transaction_read_only = on")
    with pytest.raises(UsageError, match="looks like production \\(default_transaction_read_only is on\\)"):
        refuse_production(settings, yes=True, what="--validate")
    with pytest.raises(UsageError, match="looks like production"):
        validate(settings, [_recommendation(db18, Candidate("public", "t", (KeyPart("k"),)), "q", "SELECT 1",
                                            with_changes=False)], [], BENCH)


LOOKUPS = """
CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, flag boolean NOT NULL, pad text NOT NULL);
INSERT INTO t SELECT g, (g * 7919) % 60000, g % 2 = 0, repeat('x', 40) FROM generate_series(1, 60000) g;
CREATE INDEX t_id_copy ON t (id);
ANALYZE t;
"""


def test_what_helps_is_kept_with_figures_and_what_changes_nothing_is_dropped(db: TestDatabase) -> None:
    """An index on the looked-up column is kept with its measured speed-up and real size; a copy of an
    existing index (the A/A case) and an index no plan takes (a 50 % boolean) report nothing faster and
    are dropped, with nothing of them left."""
    db.execute(LOOKUPS)
    by_k = "SELECT pad FROM t WHERE k = $1"
    by_id = "SELECT pad FROM t WHERE id = $1"
    by_flag = "SELECT count(*) FROM t WHERE flag"
    helps = _recommendation(db, Candidate("public", "t", (KeyPart("k"),)), "by-k", by_k, with_changes=False)
    copy = _recommendation(db, Candidate("public", "t", (KeyPart("id"),)), "by-id", by_id)
    unused = _recommendation(db, Candidate("public", "t", (KeyPart("flag"),)), "by-flag", by_flag)
    workload = [WorkloadQuery("by-k", by_k), WorkloadQuery("by-id", by_id), WorkloadQuery("by-flag", by_flag)]
    kept, rejected = validate(resolve(db.dsn), [helps, copy, unused], workload, BENCH)
    assert [r.candidate for r in kept] == [helps.candidate], rejected
    (measured,) = kept[0].measured
    assert (measured.name, measured.verdict) == ("by-k", "faster")
    assert measured.after_ms < measured.before_ms and measured.ratio < 1
    assert kept[0].real_bytes is not None and kept[0].real_bytes > 8192
    assert [(r.candidate, r.stage) for r in rejected] == [(copy.candidate, "validation"),
                                                          (unused.candidate, "validation")]
    assert "an identical index already exists" in rejected[0].reason
    assert rejected[1].reason.startswith("no plan of the queries it serves uses it"), rejected[1].reason
    assert all(m.verdict != "faster" for r in rejected for m in r.measured)
    assert _indexes(db, "t") == {"t_pkey", "t_id_copy", "t_k_idx"}


def _index_scans_forced(db: TestDatabase) -> None:
    """A 60,000-row table ``t (id, k, pad)`` with ``k`` in random heap order, in a database whose sessions
    have sequential and bitmap scans disabled (and JIT, which the disabled scan's cost would trigger)."""
    db.execute("""
        CREATE TABLE t (id int NOT NULL, k int NOT NULL, pad text NOT NULL);
        INSERT INTO t SELECT g, (g * 7919) % 60000, repeat('x', 300) FROM generate_series(1, 60000) g;
        ANALYZE t;
    """)
    for setting in ("enable_seqscan", "enable_bitmapscan", "jit"):
        db.execute(f"ALTER DATABASE {db.name} SET {setting} = off")


def test_an_index_that_makes_its_query_slower_is_dropped(db: TestDatabase) -> None:
    """With sequential and bitmap scans disabled for the database (and JIT, which the disabled scan's cost
    would trigger), the planner takes an index for a range that 90 % of the rows match, and fetches them in
    key order, which is random in the heap: slower than the sequential scan. The index is dropped, the
    reason names the query that got slower, and the index is gone from pg_class."""
    _index_scans_forced(db)
    sql = "SELECT count(pad) FROM t WHERE k >= 6000"
    bad = _recommendation(db, Candidate("public", "t", (KeyPart("k"),)), "most-rows", sql)
    kept, rejected = validate(resolve(db.dsn), [bad], [WorkloadQuery("most-rows", sql)],
                              BenchOptions(iterations=30, rounds=6, warmup=1))
    assert kept == ()
    (r,) = rejected
    assert r.stage == "validation" and re.fullmatch(r"made most-rows [\d.]+ → [\d.]+ ms significantly slower",
                                                    r.reason), r.reason
    assert [m.verdict for m in r.measured] == ["slower"]
    assert _indexes(db, "t") == set()


def test_a_query_that_timed_out_before_and_finishes_after_counts_as_faster(db18: TestDatabase) -> None:
    """Each execution runs under statement_timeout: a sequential scan that evaluates a 1 ms function for
    each of 1,000 rows times out (300 ms) every time; with the expression index it finishes, and the index
    is kept. keep=False drops it at the end all the same."""
    db18.execute("""
        CREATE FUNCTION slow(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
            $$ BEGIN PERFORM pg_sleep(0.001); RETURN x; END $$;
        CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL);
        INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;
        ANALYZE t;
    """)
    sql = "SELECT id FROM t WHERE slow(k) = 42"
    rec = _recommendation(db18, Candidate("public", "t", (KeyPart("slow(k)", expression=True),)), "slow", sql)
    kept, rejected = validate(resolve(db18.dsn), [rec], [WorkloadQuery("slow", sql)],
                              BenchOptions(iterations=3, rounds=3, warmup=1), timeout_ms=300, keep=False)
    assert rejected == ()
    (measured,) = kept[0].measured
    assert measured.verdict == "faster" and measured.reason.startswith("timed out before"), measured
    assert measured.before_ms == 300
    assert _indexes(db18, "t") == {"t_pkey"}


def test_a_failed_build_leaves_nothing(db18: TestDatabase) -> None:
    """A unique index over duplicate keys cannot be built: it is rejected with the server's reason and no
    INVALID index is left behind."""
    db18.execute("CREATE TABLE t (id int PRIMARY KEY, k int); INSERT INTO t SELECT g, g % 3 FROM "
                 "generate_series(1, 100) g; ANALYZE t;")
    sql = "SELECT id FROM t WHERE k = $1"
    candidate = Candidate("public", "t", (KeyPart("k"),), unique=True)
    rec = _recommendation(db18, candidate, "by-k", sql, with_changes=False)
    kept, rejected = validate(resolve(db18.dsn), [rec], [WorkloadQuery("by-k", sql)], BENCH)
    assert kept == ()
    (r,) = rejected
    assert r.reason.startswith("its build failed, nothing of it is left:") and "duplicate keys" in r.reason, r.reason
    assert _indexes(db18, "t") == {"t_pkey"}


def test_an_index_on_a_partitioned_table_is_built_through_its_partitions_and_dropped_whole(
        db18: TestDatabase) -> None:
    """The parent's index ``ON ONLY``, each partition's built concurrently and attached (the migration's
    changes, run by its runtime): its queries' plans use the partitions' indexes, so it counts as faster
    and is kept, its real size the sum of its partitions'; ``keep=False`` then drops the parent's index
    and the partitions' with it."""
    db18.execute("""
        CREATE TABLE p (id int NOT NULL, k int NOT NULL, pad text NOT NULL) PARTITION BY RANGE (id);
        CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (1) TO (30001);
        CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (30001) TO (60001);
        INSERT INTO p SELECT g, (g * 7919) % 60000, repeat('x', 40) FROM generate_series(1, 60000) g;
        ANALYZE p;
    """)
    sql = "SELECT pad FROM p WHERE k = $1"
    rec = _recommendation(db18, Candidate("public", "p", (KeyPart("k"),)), "by-k", sql)
    assert [c.kind.value for c in rec.changes] == ["create_index", "create_index", "attach_index", "create_index",
                                                   "attach_index"]
    kept, rejected = validate(resolve(db18.dsn), [rec], [WorkloadQuery("by-k", sql)], BENCH, keep=False)
    assert rejected == ()
    (measured,) = kept[0].measured
    assert measured.verdict == "faster", measured
    sizes = [int(str(r[0])) for r in db18.query("SELECT pg_relation_size(oid) FROM pg_class WHERE relname IN "
                                                "('p1', 'p2')")]
    assert kept[0].real_bytes is not None and 0 < kept[0].real_bytes < sum(sizes)
    assert _indexes(db18, "p") == _indexes(db18, "p1") == _indexes(db18, "p2") == set()


def test_a_proposal_served_only_by_a_reverted_recommendation_is_needed_again(db18: TestDatabase) -> None:
    """The judgement "not needed: served by the recommended (flag)" rests on an index that validation
    drops (no plan takes it): after validation the expected index is no longer listed as not needed."""
    db18.execute("CREATE TABLE t (id int, flag boolean NOT NULL); INSERT INTO t SELECT g, g % 2 = 0 FROM "
                 "generate_series(1, 20000) g; ANALYZE t;")
    sql = "SELECT count(*) FROM t WHERE flag"
    unused = _recommendation(db18, Candidate("public", "t", (KeyPart("flag"),)), "by-flag", sql)
    expected = Candidate("public", "t", (KeyPart("flag"), KeyPart("id")), origin=Origin.CHECKLIST)
    other = Rejected(Candidate("public", "t", (KeyPart("id"),)), "not needed", "served by the existing index x")
    advice = Advice("t", "18", EngineKind.TRIAL_BUILD, "", 0, None, 0, (unused,), not_needed=(
        Rejected(expected, "not needed", f"served by the recommended {unused.candidate.describe()}",
                 served_by=unused.candidate), other))
    after = validated_advice(resolve(db18.dsn), advice, [WorkloadQuery("by-flag", sql)], BENCH)
    assert after.validated and after.recommendations == ()
    assert [r.candidate for r in after.rejected] == [unused.candidate]
    assert after.not_needed == (other,)


def test_an_index_whose_query_could_not_be_measured_is_dropped_saying_so(db18: TestDatabase) -> None:
    """``k = $1 + 0`` gives the bench no column to sample ``$1`` from, so the query is not measured: its
    index is dropped, and the reason says it could not be measured and why, not that no plan uses it."""
    db18.execute(LOOKUPS)
    sql = "SELECT pad FROM t WHERE k = $1 + 0"
    rec = _recommendation(db18, Candidate("public", "t", (KeyPart("k"),)), "by-k", sql)
    kept, rejected = validate(resolve(db18.dsn), [rec], [WorkloadQuery("by-k", sql)], BENCH)
    assert kept == ()
    (r,) = rejected
    assert r.stage == "validation" and r.reason.startswith("could not measure by-k: no values for its parameters: "
                                                           "$1 is not compared with a table column"), r.reason
    assert _indexes(db18, "t") == {"t_pkey", "t_id_copy"}


def test_an_index_that_saves_less_than_it_costs_elsewhere_is_dropped_with_the_figures(db18: TestDatabase) -> None:
    """With sequential and bitmap scans disabled, an index on ``k`` makes the lookup much faster but the
    90 % range that then reads through it several times slower. The range's executions fail but for one
    round (its ``-- params:`` rows are mostly not integers), so its verdict is "not enough data", not
    "slower": only the net sum of the medians tells the loss, and the index is dropped, naming both."""
    _index_scans_forced(db18)
    lookup, most = "SELECT pad FROM t WHERE k = $1", "SELECT count(pad) FROM t WHERE k >= $1"
    rec = _recommendation(db18, Candidate("public", "t", (KeyPart("k"),)), "lookup", lookup)
    rec = replace(rec, queries=(*rec.queries, QueryCost("most-rows", "most-rows", most, 1.0, 100.0, 1.0)))
    mostly_bad = "SELECT v FROM (VALUES ('6000'), ('x'), ('x'), ('x'), ('x'), ('x'), ('x')) AS p(v)"
    workload = [WorkloadQuery("lookup", lookup), WorkloadQuery("most-rows", most, mostly_bad)]
    kept, rejected = validate(resolve(db18.dsn), [rec], workload,
                              BenchOptions(iterations=7, rounds=7, warmup=1, param_samples=10))
    assert kept == ()
    (r,) = rejected
    verdicts = {m.name: m.verdict for m in r.measured}
    assert verdicts == {"lookup": "faster", "most-rows": "not enough data"}, r.measured
    assert re.fullmatch(r"lookup [\d.]+ → [\d.]+ ms faster, but most-rows [\d.]+ → [\d.]+ ms: a net loss of [\d.]+ ms",
                        r.reason), r.reason
    assert _indexes(db18, "t") == set()


@pytest.mark.parametrize("lookup_weight", [1.0, 1000.0])
def test_a_query_made_slower_costs_the_index_its_place_unless_the_gain_outweighs_it(db18: TestDatabase,
                                                                                    lookup_weight: float) -> None:
    """With sequential and bitmap scans disabled, an index on ``k`` makes the lookup much faster and the
    90 % range that then reads through it significantly slower. At equal weights the range loses more than
    the lookup saves: dropped, naming both with their figures. When the lookup runs 1,000 times as often
    (its weight), what it saves outweighs the range's loss by far (TPC-H's Q17 and Q20 against Q9): kept,
    and its measurements say the range got slower."""
    _index_scans_forced(db18)
    lookup, most = "SELECT pad FROM t WHERE k = $1", "SELECT count(pad) FROM t WHERE k >= 6000"
    rec = _recommendation(db18, Candidate("public", "t", (KeyPart("k"),)), "lookup", lookup)
    rec = replace(rec, queries=(replace(rec.queries[0], weight=lookup_weight),
                                QueryCost("most-rows", "most-rows", most, 1.0, 100.0, 1.0)))
    workload = [WorkloadQuery("lookup", lookup), WorkloadQuery("most-rows", most)]
    kept, rejected = validate(resolve(db18.dsn), [rec], workload,
                              BenchOptions(iterations=7, rounds=7, warmup=1, param_samples=10))
    measured = (kept[0].measured if kept else rejected[0].measured)
    assert {m.name: m.verdict for m in measured} == {"lookup": "faster", "most-rows": "slower"}, measured
    if lookup_weight == 1.0:
        assert kept == () and _indexes(db18, "t") == set()
        assert re.fullmatch(r"made most-rows [\d.]+ → [\d.]+ ms significantly slower; what lookup [\d.]+ → "
                            r"[\d.]+ ms saved \([\d.]+ ms\) is less than 3 times that loss \([\d.]+ ms\)",
                            rejected[0].reason), rejected[0].reason
    else:
        assert rejected == () and [r.candidate for r in kept] == [rec.candidate]
        assert _indexes(db18, "t") == {"t_k_idx"}


def test_a_query_the_index_does_not_serve_but_whose_plan_takes_it_is_measured_too(db18: TestDatabase) -> None:
    """The recommendation serves only the lookup (the planner's costing counted no other query), but the
    workload's 90 % range on the same table also takes the index once it is built, and gets slower (as
    TPC-H's Q5 takes ``orders (o_custkey)`` built for Q13 and Q22). Validation measures every workload query
    on the recommended tables, so the range is measured, named and costs the index its place."""
    _index_scans_forced(db18)
    lookup, most = "SELECT pad FROM t WHERE k = $1", "SELECT count(pad) FROM public.t WHERE k >= 6000"
    rec = _recommendation(db18, Candidate("public", "t", (KeyPart("k"),)), "lookup", lookup)
    workload = [WorkloadQuery("lookup", lookup), WorkloadQuery("most-rows", most),
                WorkloadQuery("elsewhere", "SELECT 1 FROM pg_catalog.pg_class LIMIT 1")]
    kept, rejected = validate(resolve(db18.dsn), [rec], workload,
                              BenchOptions(iterations=7, rounds=7, warmup=1, param_samples=10))
    assert kept == () and _indexes(db18, "t") == set()
    (r,) = rejected
    assert {m.name: m.verdict for m in r.measured} == {"lookup": "faster", "most-rows": "slower"}, r.measured
    assert re.match(r"made most-rows [\d.]+ → [\d.]+ ms significantly slower", r.reason), r.reason


def test_a_hot_standby_is_refused(pg18: LocalServer) -> None:
    """A real hot standby of the test server (``pg_is_in_recovery()``; its sessions are read-only, which is
    not listed a second time)."""
    standby = standby_of(pg18)
    try:
        settings = resolve(standby.dsn())
        with pytest.raises(UsageError) as refused:
            refuse_production(settings, yes=True, what="--validate")
        assert str(refused.value) == (f"--validate refused: {describe(settings)} looks like production (it is a hot "
                                      "standby (pg_is_in_recovery() is true)); it builds indexes only on a "
                                      "non-production server")
    finally:
        standby.destroy()


def test_a_fresh_session_that_is_read_only_is_refused(db18: TestDatabase) -> None:
    """``default_transaction_read_only`` set for the database (``ALTER DATABASE … SET``) is the sign named;
    a login event trigger that makes every new session read-only (its ``reset_val`` stays off) is caught
    by the fresh session's ``transaction_read_only``."""
    settings = resolve(db18.dsn)
    db18.execute(f"ALTER DATABASE {db18.name} SET default_transaction_read_only = on")
    with pytest.raises(UsageError) as refused:
        refuse_production(settings, yes=True, what="--validate")
    assert str(refused.value) == (f"--validate refused: {describe(settings)} looks like production "
                                  "(default_transaction_read_only is on); it builds indexes only on a "
                                  "non-production server")
    with psycopg.connect(db18.server.dsn(), autocommit=True) as conn:  # from another database: this one is read-only
        conn.execute(f"ALTER DATABASE {db18.name} RESET default_transaction_read_only")  # type: ignore[arg-type]
    refuse_production(settings, yes=True, what="--validate")
    db18.execute("""
        CREATE FUNCTION read_only_sessions() RETURNS event_trigger LANGUAGE plpgsql AS
            $$ BEGIN SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; END $$;
        CREATE EVENT TRIGGER read_only_login ON login EXECUTE FUNCTION read_only_sessions();
    """)
    with pytest.raises(UsageError) as refused:
        refuse_production(settings, yes=True, what="--validate")
    assert "looks like production (transaction_read_only is on);" in str(refused.value), refused.value


def test_a_proposal_served_by_a_kept_recommendation_stays_not_needed(db18: TestDatabase) -> None:
    """The match is by candidate, not by the judge's text: ``UNIQUE (k)`` is kept (its lookup gets faster)
    and a plain ``(k)`` is rejected (an index of that name, the unique one, already exists). Both read
    ``public.t (k)``; the proposal served by the kept unique one stays not needed."""
    db18.execute(LOOKUPS)
    sql = "SELECT pad FROM t WHERE k = $1"
    unique = _recommendation(db18, Candidate("public", "t", (KeyPart("k"),), unique=True), "by-k", sql,
                             with_changes=False)
    plain = _recommendation(db18, Candidate("public", "t", (KeyPart("k"),)), "by-k", sql)
    assert unique.candidate.describe() == plain.candidate.describe() and unique.candidate != plain.candidate
    expected = Candidate("public", "t", (KeyPart("k"), KeyPart("id")), origin=Origin.CHECKLIST)
    judged = Rejected(expected, "not needed", f"served by the recommended {unique.candidate.describe()}",
                      served_by=unique.candidate)
    advice = Advice("t", "18", EngineKind.TRIAL_BUILD, "", 0, None, 0, (unique, plain), not_needed=(judged,))
    after = validated_advice(resolve(db18.dsn), advice, [WorkloadQuery("by-k", sql)], BENCH)
    assert [r.candidate for r in after.recommendations] == [unique.candidate], after.rejected
    assert [r.candidate for r in after.rejected] == [plain.candidate]
    assert after.not_needed == (judged,)


def _side(p50_ms: float, plan: PlanShape) -> tuple[QueryResult, Latency]:
    result = QueryResult("q", "SELECT 1", "f", "plain", 7, 0, p50_ms, p50_ms, p50_ms, p50_ms, p50_ms, p50_ms,
                         100.0, "", (), plan)
    return result, Latency(p50_ms, p50_ms, p50_ms, p50_ms, 7, 0, 7)


def test_faster_with_the_same_plan_is_not_the_indexs_doing() -> None:
    """A query the comparison calls faster whose plan reads the same scans before and after (no new index
    in it) is no change for validation: only the machine changed (caches, load). With an index scan in the
    plan after, the same figures stay faster. (The judgement of one comparison, on its figures.)"""
    from dbtune.advisor.validate import _outcome
    from dbtune.bench.compare import QueryComparison, Verdict

    seq = PlanShape("Seq Scan on t", ("Seq Scan on t",), "plain", 100.0)
    idx = PlanShape("Index Scan using t_k_idx on t", ("Index Scan using t_k_idx on t",), "plain", 8.0)
    for after_plan, change, expected in ((seq, None, Verdict.NO_CHANGE),
                                         (idx, "Seq Scan on t → Index Scan using t_k_idx on t", Verdict.FASTER)):
        (b, lb), (a, la) = _side(2.0, seq), _side(1.0, after_plan)
        c = QueryComparison("q", "q", "f", lb, la, None, 1.1, Verdict.FASTER, "2.00× faster", seq, after_plan,
                            change)
        outcome = _outcome(c, b, a, 10_000)
        assert outcome.verdict is expected, outcome
        assert (outcome.reason.endswith("its plan is the same before and after: not the index's doing")
                == (expected is Verdict.NO_CHANGE)), outcome.reason
