"""``dbtune bench``: workload files, ``$n`` discovery, plan shapes, the comparison statistics on synthetic
samples with known answers, the result file and the refusal to compare unlike runs, and real runs on
every available server (a ``$1`` sampled from the data, a Seq Scan that becomes an Index Scan, DML that is
rolled back or refused, pg_stat_statements as the workload source).

No assertion depends on how fast anything ran.
"""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import conftest
import pglast
import psycopg
import pytest
from cli_runner import Run, assert_error

from dbtune.bench import (
    RESULT_VERSION,
    TIMING_SETTINGS,
    BenchOptions,
    BenchResult,
    BenchServer,
    PlanShape,
    QueryComparison,
    QueryResult,
    ResultsDiffer,
    RoundResult,
    RunParameters,
    Verdict,
    compare,
    label,
    load_result,
    load_workload,
    parse_workload,
    run_bench,
    save_result,
)
from dbtune.bench.compare import plan_change
from dbtune.bench.plan import plan_shape
from dbtune.bench.result import CPU_BOUND, ROUND_TRIP
from dbtune.bench.stats import decode, round_ratio
from dbtune.db.local_server import free_port
from dbtune.errors import UsageError
from dbtune.report.bench import render_comparison
from dbtune.samples import guide_file
from dbtune.workload.params import analyse
from dbtune.workload.statements import statement_kind

pytestmark = pytest.mark.measures  # timed verdicts: alone under xdist (tests/conftest.py)

# --- running the CLI in this process: the ``cli`` fixture and ``assert_error`` (tests/cli_runner.py) ---


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- workload files ---------------------------------------------------------------------------------


def test_guide_workload_parses_with_names_and_params() -> None:
    queries = load_workload(guide_file("workload.sql"))
    names = [q.name for q in queries]
    assert "orders-by-status" in names and "job-queue-claim" in names
    by_name = {q.name: q for q in queries}
    assert by_name["orders-by-status"].params_sql == "SELECT 'pending' AS status"
    assert by_name["job-queue-claim"].params_sql is None  # "-- params: SELECT": no parameters
    assert "$1" in by_name["webhook-dedup-lookup"].sql and not by_name["webhook-dedup-lookup"].sql.endswith(";")
    assert statement_kind(by_name["job-queue-claim"].sql) == "write"  # FOR UPDATE SKIP LOCKED locks rows
    assert statement_kind(by_name["orders-by-status"].sql) == "read"
    # The demo reads the same format through the same function.
    from dbtune.db import demo
    assert demo.parse_workload is parse_workload


def test_plain_sql_file_is_split_by_pglast(tmp_path: Path) -> None:
    path = write(tmp_path / "mix.sql", "-- a comment\nSELECT ';' AS semi FROM t WHERE a = $1;\n\n"
                                      "SELECT 2; UPDATE t SET a = 1\n")
    queries = load_workload(path)
    assert [q.name for q in queries] == ["mix-1", "mix-2", "mix-3"]
    assert queries[0].sql == "SELECT ';' AS semi FROM t WHERE a = $1"
    assert [statement_kind(q.sql) for q in queries] == ["read", "read", "write"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"", "no SQL statement"),
    (b"-- only a comment\n\n", "no SQL statement"),
    (b"SELECT 'caf\xe9'", "not UTF-8"),
    (b"-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "used more than once"),
])
def test_bad_workload_file_is_one_error_line_exit_2(cli, tmp_path: Path, content: bytes | None,  # type: ignore[no-untyped-def]
                                                     message: str) -> None:
    path = tmp_path / "w.sql"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError, match="--workload"):
        load_workload(path)
    assert_error(cli("bench", "run", "--dsn", "host=/nonexistent", "--workload", str(path)), 2, str(path), message)


def test_statement_that_does_not_parse_is_skipped_and_the_rest_runs(db18, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A workload statement with a syntax error is listed as skipped with its line and the parser's
    message; the other queries are measured."""
    db18.execute("CREATE TABLE t (a int); INSERT INTO t SELECT generate_series(1, 100)")
    path = tmp_path / "w.sql"
    path.write_text("-- name: good\nSELECT count(*) FROM t;\n-- name: broken\nSELECT FROM WHERE;\n")
    queries = load_workload(path)
    assert [(q.name, q.parse_error is not None) for q in queries] == [("good", False), ("broken", True)]
    out = tmp_path / "r.json"
    run = cli("bench", "run", "--dsn", db18.dsn, "--workload", str(path), "--iterations", "5", "--out", str(out),
              "--quiet")
    assert run.code == 0, run
    result = load_result(out)
    assert [q.name for q in result.queries] == ["good"]
    (skipped,) = result.skipped
    assert skipped.name == "broken" and f"does not parse: {path}:4: syntax error" in skipped.reason


def test_workload_source_is_required_exactly_once(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path / "w.sql", "SELECT 1;")
    assert_error(cli("bench", "run"), 2, "--workload", "--from-pg-stat-statements")
    assert_error(cli("bench", "run", "--workload", str(path), "--from-pg-stat-statements", "3"), 2, "exactly one")
    assert_error(cli("bench", "run", "--workload", str(path), "--iterations", "0"), 2, "--iterations")
    assert_error(cli("bench", "run", "--workload", str(path), "--clients", "0"), 2, "--clients")


def test_cannot_connect_exits_3(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path / "w.sql", "SELECT 1;")
    port = free_port()
    dsn = f"host=127.0.0.1 port={port} dbname=x user=x password=PW-s3cret connect_timeout=2"
    line = assert_error(cli("bench", "run", "--dsn", dsn, "--workload", str(path)), 3, f"127.0.0.1:{port}")
    assert "PW-s3cret" not in line


# --- finding the column of each $n --------------------------------------------------------------------


def _uses(sql: str) -> dict[int, tuple[str, ...]]:
    found = analyse(sql)
    out: dict[int, tuple[str, ...]] = {}
    for use in found.uses:
        out.setdefault(use.number, use.names)
    return out


def test_parameters_are_found_in_every_supported_predicate() -> None:
    sql = ("SELECT o.id FROM public.orders o JOIN customers c ON c.id = o.customer_id "
           "WHERE o.status = $1 AND $2 < o.created_at AND c.region IN ($3, $4) AND c.name LIKE $5 "
           "AND o.total BETWEEN $6 AND $7 AND o.id = ANY($8) AND o.qty = $9::int AND note ILIKE $10 "
           "ORDER BY o.created_at LIMIT $11 OFFSET $12")
    found = analyse(sql)
    assert found.numbers == set(range(1, 13))
    uses = _uses(sql)
    assert uses == {1: ("o", "status"), 2: ("o", "created_at"), 3: ("c", "region"), 4: ("c", "region"),
                    5: ("c", "name"), 6: ("o", "total"), 7: ("o", "total"), 8: ("o", "id"), 9: ("o", "qty"),
                    10: ("note",)}
    assert [u.array for u in found.uses if u.number == 8] == [True]
    assert found.fixed == {11: ("100", "LIMIT (sent as 100)"), 12: ("0", "OFFSET (sent as 0)")}
    scope = next(u for u in found.uses if u.number == 1).scopes[0]
    assert scope.tables == {"o": ("public", "orders"), "c": (None, "customers")}


def test_parameters_of_dml_map_to_the_target_columns() -> None:
    assert _uses("INSERT INTO s.t (a, b) VALUES ($1, $2)") == {1: ("a",), 2: ("b",)}
    assert _uses("UPDATE t SET qty = $1 WHERE code = $2") == {1: ("qty",), 2: ("code",)}
    assert _uses("DELETE FROM t x USING u WHERE x.a = $1 AND u.b = $2") == {1: ("x", "a"), 2: ("u", "b")}


def test_subquery_columns_are_scoped_and_not_followed() -> None:
    found = analyse("SELECT * FROM (SELECT code FROM items) s WHERE s.code = $1 "
                    "AND EXISTS (SELECT 1 FROM other WHERE other.k = $2)")
    use1 = next(u for u in found.uses if u.number == 1)
    assert use1.scopes[0].derived == {"s"} and use1.scopes[0].tables == {}
    use2 = next(u for u in found.uses if u.number == 2)
    assert use2.scopes[0].tables == {"other": (None, "other")}
    assert _uses("SELECT $1::int + 1") == {}


# --- plan shapes -----------------------------------------------------------------------------------


EXPLAIN_JSON = [{"Plan": {
    "Node Type": "Limit", "Total Cost": 12.5, "Plans": [{
        "Node Type": "Hash Join", "Join Type": "Left", "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "orders", "Parallel Aware": True},
            {"Node Type": "Hash", "Plans": [
                {"Node Type": "Index Scan", "Index Name": "customers_pkey", "Relation Name": "customers"}]},
        ]}]}}]


def test_plan_shape_is_compact_and_lists_scans() -> None:
    shape = plan_shape(EXPLAIN_JSON, "generic")
    assert shape.shape == ("Limit > Hash Left Join > [Parallel Seq Scan on orders, "
                           "Hash > Index Scan using customers_pkey on customers]")
    assert shape.scans == ("Index Scan using customers_pkey on customers", "Seq Scan on orders")
    assert shape.total_cost == 12.5 and shape.kind == "generic"


def test_plan_change_names_the_scans_that_changed() -> None:
    seq = PlanShape("Limit > Sort > Seq Scan on orders", ("Seq Scan on orders",), "generic", 100.0)
    idx = PlanShape("Limit > Index Scan using idx_orders_status_created on orders",
                    ("Index Scan using idx_orders_status_created on orders",), "generic", 8.0)
    assert plan_change(seq, idx) == "Seq Scan on orders → Index Scan using idx_orders_status_created on orders"
    assert plan_change(seq, seq) is None
    assert plan_change(seq, None) is None
    hashed = PlanShape("HashAggregate > Seq Scan on orders", ("Seq Scan on orders",), "generic", 1.0)
    sorted_ = PlanShape("GroupAggregate > Sort > Seq Scan on orders", ("Seq Scan on orders",), "generic", 1.0)
    assert plan_change(hashed, sorted_) == ("HashAggregate > Seq Scan on orders → "
                                            "GroupAggregate > Sort > Seq Scan on orders")


# --- the statistics, on synthetic round medians with known answers ----------------------------------


def lognormal(n: int, median_ms: float, sigma: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median_ms * rng.lognormvariate(0.0, sigma) for _ in range(n)]


def query_result(name: str, rounds: list[float], plan: PlanShape | None = None) -> QueryResult:
    """A query whose round medians are ``rounds`` (ms), 5 executions a round."""
    s = sorted(rounds)
    sql = f"SELECT * FROM \"{name}\" WHERE id = $1"
    return QueryResult(
        name=name, sql=sql, fingerprint=pglast.fingerprint(sql), kind="read", count=5 * len(rounds), errors=0,
        p50_ms=s[len(s) // 2], p95_ms=s[-1], p99_ms=s[-1], mean_ms=sum(rounds) / len(rounds), min_ms=s[0],
        max_ms=s[-1], throughput_qps=1000.0 / (sum(rounds) / len(rounds)), histogram="", samples=tuple(rounds),
        plan=plan, rounds=tuple(RoundResult(5, 0, x, x, 5 * x / 1000) for x in rounds))


def make_result(queries: dict[str, list[float]], *, version_num: int = 180001, database: str = "app",
                settings: dict[str, str] | None = None, plans: dict[str, PlanShape] | None = None,
                round_trip: list[float] | None = None, cpu: list[float] | None = None,
                **run: object) -> BenchResult:
    """A result with the given round medians per query and, optionally, for the reference statements."""
    references = tuple(query_result(name, xs) for name, xs in ((ROUND_TRIP, round_trip), (CPU_BOUND, cpu)) if xs)
    params = {"iterations": 25, "duration_s": None, "clients": 1, "warmup": 5, "allow_writes": False,
              "started_at": "2025-01-01T00:00:00+00:00", "rounds": 5} | run
    return BenchResult(
        server=BenchServer("18.1", version_num, database, "app@db:5432/app"),
        settings=settings or {name: "default" for name in TIMING_SETTINGS},
        run=RunParameters(**params),  # type: ignore[arg-type]
        queries=tuple(query_result(name, xs, (plans or {}).get(name)) for name, xs in queries.items()),
        references=references)


def verdict_of(before: list[float], after: list[float], **refs: list[float]) -> QueryComparison:
    b = {k.removesuffix("_before"): v for k, v in refs.items() if k.endswith("_before")}
    a = {k.removesuffix("_after"): v for k, v in refs.items() if k.endswith("_after")}
    return compare(make_result({"q": before}, **b), make_result({"q": after}, **a)).queries[0]  # type: ignore[arg-type]


def test_identical_rounds_are_no_significant_change_with_ratio_1() -> None:
    xs = lognormal(5, 2.0, 0.2, seed=1)
    q = verdict_of(xs, xs)
    assert q.ratio is not None and q.ratio.point == pytest.approx(1.0)
    assert q.ratio.low < 1.0 < q.ratio.high
    assert q.verdict is Verdict.NO_CHANGE and "includes 1" in q.reason


def test_twice_as_fast_is_faster_and_the_reverse_is_slower() -> None:
    before, after = lognormal(5, 2.0, 0.05, seed=4), lognormal(5, 1.0, 0.05, seed=5)
    q = verdict_of(before, after)
    assert q.ratio is not None and 1.0 < q.ratio.low <= q.ratio.point <= q.ratio.high and q.ratio.contains(2.0)
    assert q.verdict is Verdict.FASTER and q.noise_floor == pytest.approx(1.05)
    back = verdict_of(after, before)
    assert back.ratio is not None and back.ratio.high < 1.0 and back.verdict is Verdict.SLOWER


def test_drift_between_rounds_is_noise_even_with_many_executions() -> None:
    """Each side's rounds wander by ±30 %: pooled, thousands of executions would make a 15 % difference
    'significant'; over the rounds it is not."""
    before = [1.00, 1.30, 0.95, 1.25, 1.05]
    after = [x / 1.15 for x in (1.25, 0.95, 1.30, 1.00, 1.05)]
    q = verdict_of(before, after)
    assert q.ratio is not None and q.ratio.point == pytest.approx(1.15) and q.ratio.contains(1.0)
    assert q.verdict is Verdict.NO_CHANGE


def test_drift_of_the_machine_between_runs_is_the_noise_floor() -> None:
    """Every statement ran 1.4 times slower in the second run, the CPU-bound reference too: the query's
    tight 1.4× is the machine's, not a change. Without the references it would be called slower."""
    before = [1.00, 1.01, 0.99, 1.00, 1.02]
    after = [x * 1.4 for x in before]
    assert verdict_of(before, after).verdict is Verdict.SLOWER
    cpu = [2.0, 2.02, 1.98, 2.01, 1.99]
    q = verdict_of(before, after, cpu_before=cpu, cpu_after=[x * 1.4 for x in cpu])
    assert q.verdict is Verdict.NO_CHANGE and q.noise_floor is not None and q.noise_floor > 1.4
    assert "noise floor" in q.reason


def test_a_delay_added_by_a_busy_machine_explains_short_latencies_only() -> None:
    """The before run waited ~0.3 ms more on every statement (its round trip took 0.35 ms, the after run's
    0.05 ms): that explains 0.4 → 0.1 ms, but not 20 → 0.1 ms."""
    trip_before, trip_after = [0.35, 0.34, 0.36, 0.35, 0.33], [0.05, 0.051, 0.049, 0.05, 0.052]
    refs = {"round_trip_before": trip_before, "round_trip_after": trip_after}
    short = verdict_of([0.40, 0.41, 0.39, 0.40, 0.42], [0.10, 0.101, 0.099, 0.10, 0.102], **refs)
    assert short.verdict is Verdict.NO_CHANGE
    assert short.noise_floor is not None and short.noise_floor > short.ratio.point  # type: ignore[union-attr]
    long = verdict_of([20.0, 20.2, 19.8, 20.1, 19.9], [0.10, 0.101, 0.099, 0.10, 0.102], **refs)
    assert long.verdict is Verdict.FASTER and long.noise_floor is not None and long.noise_floor < 1.1
    # The delay was in the before run: it explains nothing about a query that got slower.
    assert verdict_of([0.10, 0.101, 0.099, 0.10, 0.102], [0.40, 0.41, 0.39, 0.40, 0.42],
                      **refs).verdict is Verdict.SLOWER


def test_a_difference_of_a_few_microseconds_is_never_a_change() -> None:
    before = [0.020, 0.0201, 0.0199, 0.020, 0.0201]
    after = [x - 0.003 for x in before]  # 3 µs faster, 17 %, with a tight interval
    q = verdict_of(before, after)
    assert q.ratio is not None and q.ratio.low > 1.1
    assert q.verdict is Verdict.NO_CHANGE and "µs" in q.reason


def test_the_interval_covers_the_truth_about_95_percent_of_the_time() -> None:
    """Same distribution on both sides, 400 pairs of 5 rounds: a 95 % interval that is too narrow (a wrong
    t quantile or standard error) would miss 1 far more often than 20 times in 400."""
    misses = 0
    for trial in range(400):
        r = round_ratio(lognormal(5, 2.0, 0.3, seed=1000 + trial), lognormal(5, 2.0, 0.3, seed=5000 + trial))
        misses += not r.contains(1.0)
    assert 5 <= misses <= 32


def test_too_few_rounds_give_no_verdict() -> None:
    q = verdict_of([1.0], [2.0])
    assert q.ratio is None and q.verdict is Verdict.NO_DATA and "2 rounds" in q.reason


def test_queries_are_matched_by_fingerprint_then_name() -> None:
    before = make_result({"a": [1.0, 2.0], "b": [1.0, 2.0]})
    after = make_result({"a": [1.0, 2.0], "c": [1.0, 2.0]})
    renamed = replace(after.queries[0], name="a-renamed")
    after = replace(after, queries=(renamed, after.queries[1]))
    c = compare(before, after)
    assert [q.name for q in c.queries] == ["a / a-renamed"]
    assert c.only_before == ("b",) and c.only_after == ("c",)


def test_pg_stat_statements_queries_are_shown_with_their_sql() -> None:
    sql = "SELECT qty\n  FROM items WHERE code = $1"
    assert label("pgss:-42", sql) == "pgss:-42 SELECT qty…"
    assert label("pgss:7", "SELECT 1") == "pgss:7 SELECT 1"
    assert label("pgss:7", "SELECT '\x1b[2J' || " + "x" * 80).startswith("pgss:7 SELECT '\\x1b[2J'")
    assert label("orders-by-status", sql) == "orders-by-status"


# --- refusing to compare unlike runs -------------------------------------------------------------------


def test_different_servers_or_settings_are_refused_unless_forced() -> None:
    xs = lognormal(5, 1.0, 0.2, seed=11)
    base = make_result({"q": xs})
    other_version = make_result({"q": xs}, version_num=150010)
    with pytest.raises(ResultsDiffer, match="server_version_num 180001 before, 150010 after"):
        compare(base, other_version)
    with pytest.raises(ResultsDiffer, match="database 'app' before, 'other' after"):
        compare(base, make_result({"q": xs}, database="other"))
    changed = dict(base.settings, work_mem="64MB", jit="off")
    with pytest.raises(ResultsDiffer) as refused:
        compare(base, make_result({"q": xs}, settings=changed))
    assert "setting work_mem 'default' before, '64MB' after" in str(refused.value)
    assert "setting jit" in str(refused.value) and "--force" in str(refused.value)
    forced = compare(base, other_version, force=True)
    assert forced.forced == ("server_version_num 180001 before, 150010 after",)
    assert "COMPARED DESPITE (--force)" in render_comparison(forced)
    assert compare(base, make_result({"q": xs})).forced == ()


@pytest.mark.parametrize(("run", "message"), [
    ({"clients": 4}, "clients 1 before, 4 after"),
    ({"iterations": 100}, "iterations 25 before, 100 after"),
    ({"iterations": None, "duration_s": 30.0}, "duration_s None before, 30.0 after"),
    ({"rounds": 3}, "rounds 5 before, 3 after"),
    ({"warmup": 0}, "warmup 5 before, 0 after"),
])
def test_runs_made_differently_are_refused_unless_forced(run: dict[str, object], message: str) -> None:
    xs = lognormal(5, 1.0, 0.2, seed=12)
    with pytest.raises(ResultsDiffer, match=message):
        compare(make_result({"q": xs}), make_result({"q": xs}, **run))
    assert message in compare(make_result({"q": xs}), make_result({"q": xs}, **run), force=True).forced


def test_compare_cli_refuses_and_force_overrides(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    xs = lognormal(5, 1.0, 0.2, seed=12)
    save_result(make_result({"q": xs}), tmp_path / "before.json")
    save_result(make_result({"q": xs}, settings={n: "x" for n in TIMING_SETTINGS}, clients=2),
                tmp_path / "after.json")
    assert_error(cli("bench", "compare", "before.json", "after.json"), 2, "shared_buffers", "clients 1 before, 2",
                 "--force")
    forced = cli("bench", "compare", "before.json", "after.json", "--force", "--format", "json")
    assert forced.code == 0, forced
    data = json.loads(forced.out)
    assert len(data["forced"]) == len(TIMING_SETTINGS) + 1
    assert data["queries"][0]["verdict"] == "no significant change"


# --- the result file ---------------------------------------------------------------------------------


def test_result_file_round_trips(tmp_path: Path) -> None:
    plan = PlanShape("Seq Scan on q", ("Seq Scan on q",), "generic", 3.5)
    result = make_result({"q": lognormal(10, 1.0, 0.2, seed=13)}, plans={"q": plan})
    save_result(result, tmp_path / "r.json")
    assert load_result(tmp_path / "r.json") == result
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["kind"] == "dbtune-bench-result" and data["result_version"] == RESULT_VERSION


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    (b"{not json", "invalid JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (json.dumps({"report_version": 1, "findings": []}).encode(), "not a dbtune bench result"),
    (json.dumps({"kind": "dbtune-bench-result", "result_version": 99}).encode(), "version 99 is not supported"),
    (json.dumps({"kind": "dbtune-bench-result", "result_version": RESULT_VERSION}).encode(), "missing key"),
])
def test_a_file_that_is_not_a_bench_result_is_one_error_line(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                             content: bytes | None, message: str) -> None:
    save_result(make_result({"q": [1.0, 2.0]}), tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_bytes(content)
    with pytest.raises(UsageError, match=message):
        load_result(bad)
    assert_error(cli("bench", "compare", "good.json", "bad.json"), 2, "bad.json", message)


# --- real runs on every available server -----------------------------------------------------------------


ITEMS = """
CREATE TABLE items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, code text NOT NULL, qty int NOT NULL,
                    cat int NOT NULL);
INSERT INTO items (code, qty, cat) SELECT 'c' || g, g % 97, g % 7 FROM generate_series(1, 5000) g;
ANALYZE items;
"""

ITEMS_CHECKSUM = ("SELECT count(*), sum(qty), md5(string_agg(id || ':' || code || ':' || qty, ',' ORDER BY id)) "
                  "FROM items")


def bench_run(cli, *args: str) -> Run:  # type: ignore[no-untyped-def]
    run = cli("bench", "run", "--quiet", *args)
    assert run.code == 0, run
    assert run.err == ""
    return run


def test_run_samples_parameters_records_plans_and_compare_shows_the_index(cli, db: conftest.TestDatabase,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:
    db.execute(ITEMS)
    sql = "SELECT id, qty FROM items WHERE code = $1"
    write(tmp_path / "w.sql", f"-- name: item-by-code\n{sql};\n")
    run = bench_run(cli, "--dsn", db.dsn, "--workload", "w.sql", "--iterations", "20", "--warmup", "2",
                     "--out", "before.json")
    assert "item-by-code" in run.out and "Seq Scan on items" in run.out  # the summary table on stdout

    data = json.loads((tmp_path / "before.json").read_text())
    version_num = int(db.query("SELECT current_setting('server_version_num')")[0][0])  # type: ignore[arg-type]
    assert data["kind"] == "dbtune-bench-result" and data["result_version"] == RESULT_VERSION
    assert data["server"]["version_num"] == version_num and data["server"]["database"] == db.name
    assert set(data["settings"]) == set(TIMING_SETTINGS)
    assert data["settings"]["work_mem"] == db.query("SHOW work_mem")[0][0]
    assert data["run"] | {"started_at": None} == {
        "iterations": 20, "duration_s": None, "clients": 1, "warmup": 2, "allow_writes": False,
        "started_at": None, "workload": "w.sql", "param_samples": 100, "seed": 1, "rounds": 5}
    assert data["run"]["started_at"].startswith("20")
    assert data["skipped"] == []
    (q,) = data["queries"]
    assert q["name"] == "item-by-code" and q["sql"] == sql and q["kind"] == "read"
    assert q["fingerprint"] == pglast.fingerprint(sql)
    assert q["count"] == 20 and q["errors"] == 0 and q["first_error"] is None
    assert 0 < q["min_ms"] <= q["p50_ms"] <= q["p95_ms"] <= q["p99_ms"] <= q["max_ms"] * 1.001
    assert q["min_ms"] <= q["mean_ms"] <= q["max_ms"] and q["throughput_qps"] > 0
    assert len(q["samples"]) == 20 and min(q["samples"]) == pytest.approx(q["min_ms"], abs=1e-3)
    assert [r["count"] for r in q["rounds"]] == [4] * 5  # 20 iterations over 5 rounds
    assert all(q["min_ms"] <= r["p50_ms"] <= q["max_ms"] for r in q["rounds"])
    assert [r["name"] for r in data["references"]] == ["reference-round-trip", "reference-cpu"]
    assert all(len(r["rounds"]) == 5 and r["count"] >= 5 * 10 for r in data["references"])
    histogram = decode(q["histogram"])
    assert histogram.get_total_count() == 20
    # $1 took values from items.code, and every one of them exists: exactly one row per execution.
    assert q["parameters"] == ["$1: public.items.code (100 distinct values, ORDER BY random())"]
    assert q["rows"] == 1.0
    assert "Seq Scan on items" in q["plan"]["shape"] and q["plan"]["scans"] == ["Seq Scan on items"]
    assert q["plan"]["kind"] == ("generic" if version_num >= 160000 else "custom")

    db.execute("CREATE INDEX items_code_idx ON items (code); ANALYZE items")
    bench_run(cli, "--dsn", db.dsn, "--workload", "w.sql", "--iterations", "20", "--warmup", "2",
               "--out", "after.json")
    after = load_result(tmp_path / "after.json")
    assert after.queries[0].plan is not None and "items_code_idx" in after.queries[0].plan.shape

    text = cli("bench", "compare", "before.json", "after.json")
    assert text.code == 0, text
    assert "Seq Scan on items →" in text.out and "items_code_idx on items" in text.out
    as_json = cli("bench", "compare", "before.json", "after.json", "--format", "json")
    (cq,) = json.loads(as_json.out)["queries"]
    assert cq["plan_change"].startswith("Seq Scan on items → ") and "items_code_idx" in cq["plan_change"]
    assert cq["before"]["count"] == cq["after"]["count"] == 20
    assert cq["ratio"]["ci_low"] <= cq["ratio"]["point"] <= cq["ratio"]["ci_high"]
    assert cq["verdict"] in {v.value for v in Verdict} and cq["reason"]
    markdown = cli("bench", "compare", "before.json", "after.json", "--format", "markdown")
    (row,) = [line for line in markdown.out.splitlines() if line.startswith("| item-by-code")]
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[7].strip("*") == cq["verdict"] and "items_code_idx" in cells[8]
    assert cells[1] == text.out.split("item-by-code", 1)[1].split()[0] + " → " + \
        text.out.split("item-by-code", 1)[1].split()[2], "the p50 cell is the text table's"


def test_allow_writes_runs_dml_and_rolls_every_execution_back(cli, db: conftest.TestDatabase,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    db.execute(ITEMS)
    checksum = db.query(ITEMS_CHECKSUM)
    write(tmp_path / "dml.sql", "-- name: bump\nUPDATE items SET qty = qty + 1 WHERE code = $1;\n"
                                "-- name: remove\nDELETE FROM items WHERE code = $1;\n"
                                "-- name: add\nINSERT INTO items (code, qty, cat) VALUES ($1, $2, $3);\n"
                                "-- name: claim\nSELECT id FROM items WHERE cat = $1 LIMIT 1 FOR UPDATE;\n")
    bench_run(cli, "--dsn", db.dsn, "--workload", "dml.sql", "--iterations", "10", "--warmup", "1",
               "--clients", "2", "--allow-writes", "--out", "w.json")
    result = load_result(tmp_path / "w.json")
    assert result.run.allow_writes and result.skipped == ()
    for q in result.queries:
        assert (q.kind, q.count, q.errors) == ("write", 20, 0), q
        assert q.rows == 1.0, q  # each execution did change (or lock) one row before its rollback
    assert db.query(ITEMS_CHECKSUM) == checksum


def test_without_allow_writes_dml_is_skipped_and_nothing_changes(cli, db: conftest.TestDatabase,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path) -> None:
    db.execute(ITEMS)
    checksum = db.query(ITEMS_CHECKSUM)
    write(tmp_path / "mixed.sql", """
-- name: read
SELECT count(*) FROM items WHERE cat = $1;
-- name: bump
UPDATE items SET qty = 0 WHERE code = $1;
-- name: cte-delete
WITH d AS (DELETE FROM items RETURNING id) SELECT count(*) FROM d;
-- name: no-column
SELECT $1::int + 1;
-- name: from-subquery
SELECT * FROM (SELECT code FROM items) s WHERE s.code = $1;
-- name: missing-table
SELECT * FROM no_such_table WHERE x = 1;
""")
    bench_run(cli, "--dsn", db.dsn, "--workload", "mixed.sql", "--iterations", "5", "--out", "r.json")
    result = load_result(tmp_path / "r.json")
    assert [q.name for q in result.queries] == ["read"]
    assert result.queries[0].rows == 1.0 and result.queries[0].count == 5
    reasons = {s.name: s.reason for s in result.skipped}
    assert reasons["bump"].startswith("it writes (UPDATE); pass --allow-writes")
    assert reasons["cte-delete"].startswith("it locks or modifies rows") and "--allow-writes" in reasons["cte-delete"]
    assert "$1 is not compared with a table column" in reasons["no-column"]
    assert "subquer" in reasons["from-subquery"]
    assert "no_such_table" in reasons["missing-table"]
    assert db.query(ITEMS_CHECKSUM) == checksum

    write(tmp_path / "only-dml.sql", "DELETE FROM items WHERE code = $1;")
    assert_error(cli("bench", "run", "-q", "--dsn", db.dsn, "--workload", "only-dml.sql"), 2,
                 "no query could be run", "--allow-writes")
    assert db.query(ITEMS_CHECKSUM) == checksum


def test_duration_and_clients(cli, db: conftest.TestDatabase, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db.execute(ITEMS)
    write(tmp_path / "w.sql", "SELECT qty FROM items WHERE id = $1 AND cat IN ($2, $3);")
    bench_run(cli, "--dsn", db.dsn, "--workload", "w.sql", "--duration", "0.2", "--clients", "2",
               "--warmup", "0", "--out", "r.json")
    result = load_result(tmp_path / "r.json")
    assert result.run.iterations is None and result.run.duration_s == 0.2 and result.run.clients == 2
    (q,) = result.queries
    assert q.count >= 2 and q.errors == 0 and len(q.samples) == q.count  # at least one per client
    assert decode(q.histogram).get_total_count() == q.count
    assert len(q.parameters) == 3 and q.parameters[0].startswith("$1: public.items.id")
    assert q.parameters[1].startswith("$2: public.items.cat")


def test_from_pg_stat_statements(cli, db: conftest.TestDatabase, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db.execute(ITEMS)
    write(tmp_path / "w.sql", "SELECT 1;")
    assert_error(cli("bench", "run", "--dsn", db.dsn, "--from-pg-stat-statements", "3"), 2,
                 "pg_stat_statements is not created")
    db.execute("CREATE EXTENSION pg_stat_statements")
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        for code in ("c17", "c18", "c19"):  # literals: pg_stat_statements normalises them to $1
            conn.execute(f"SELECT qty FROM items WHERE code = '{code}'")  # type: ignore[arg-type]
    bench_run(cli, "--dsn", db.dsn, "--from-pg-stat-statements", "10", "--iterations", "5", "--out", "r.json")
    result = load_result(tmp_path / "r.json")
    assert result.run.workload == "pg_stat_statements top 10"
    ours = [q for q in result.queries if q.sql == "SELECT qty FROM items WHERE code = $1"]
    assert len(ours) == 1, [q.sql for q in result.queries]
    assert ours[0].name.startswith("pgss:") and ours[0].count == 5 and ours[0].rows == 1.0
    run = cli("bench", "run", "--dsn", db.dsn, "--from-pg-stat-statements", "10", "--iterations", "5")
    # The summary table names it with its SQL (wrapped at 40 characters, where depends on the id's length).
    assert ours[0].name in run.out and "SELECT" in run.out.split(ours[0].name, 1)[1].split("\n", 1)[0]
    assert f"  {ours[0].name} SELECT qty FROM items WHERE code = $1: 5 runs" in run.err  # the progress
    assert ours[0].parameters[0].startswith("$1: public.items.code")
    # The data load (an INSERT) is among the top statements, and is not run without --allow-writes.
    assert any(s.sql.startswith("INSERT INTO items") and "--allow-writes" in s.reason for s in result.skipped)


def test_progress_says_what_runs_per_query_and_how_long_it_takes(cli, db: conftest.TestDatabase,  # type: ignore[no-untyped-def]
                                                                tmp_path: Path) -> None:
    db.execute(ITEMS)
    write(tmp_path / "w.sql", "-- name: a\nSELECT qty FROM items WHERE code = $1;\n"
                              "-- name: b\nSELECT count(*) FROM items;\n")
    run = cli("bench", "run", "--dsn", db.dsn, "--workload", "w.sql", "--duration", "0.25", "--rounds", "5")
    assert run.code == 0, run
    assert "5 rounds, 0.25 s per query (0.05 s a round), 1 client, warm-up 5" in run.err
    assert "expected run time 0.5 s (2 queries x 0.25 s)" in run.err
    assert "round 5/5 done" in run.err
    run = cli("bench", "run", "--dsn", db.dsn, "--workload", "w.sql", "--iterations", "12", "--rounds", "4")
    assert run.code == 0, run
    assert "4 rounds, 12 iterations per query and client (3 a round)" in run.err
    assert "expected run time about " in run.err and "(2 queries x 12 iterations, at the warm-up's pace)" in run.err
    assert "4 rounds, 12 iterations per query and client" in run.out
    assert_error(cli("bench", "run", "--dsn", db.dsn, "--workload", "w.sql", "--iterations", "3"), 2,
                 "--iterations must be at least --rounds (5)")


# --- the method against the guide's demo: A/A and the real migration ------------------------------------


def test_a_a_is_no_change_and_the_demo_migration_is_faster(db18: conftest.TestDatabase, tmp_path: Path) -> None:
    """Twenty comparisons of two runs on the same, unchanged database (after the demo's migration) find no
    significant change for any query in at least 19 of them; the migration itself is "faster" for every
    guide query. Few iterations a round and a small database keep it quick; the verdicts, not the
    timings, are asserted."""
    from test_migrate import load_guide, production, quiet

    from dbtune.audit import audit
    from dbtune.db.connect import resolve
    from dbtune.migrate import api

    load_guide(db18, scale=0.2)
    settings = resolve(db18.dsn)
    workload = load_workload(guide_file("workload.sql"))
    options = BenchOptions(iterations=25, rounds=5, warmup=5, param_samples=20, allow_writes=True)
    before = run_bench(settings, workload, options)
    report = audit(settings, production())
    api.generate(list(report.findings), tmp_path / "m", existing_index_names=set(report.index_names))
    api.apply(tmp_path / "m", settings, quiet())
    after = run_bench(settings, workload, options)
    migration = compare(before, after)
    assert {q.name for q in migration.queries} == {q.name for q in workload}
    assert migration.verdicts() == {q.name: Verdict.FASTER for q in workload}, render_comparison(migration)

    options = replace(options, iterations=10)  # 2 a round: enough for "no change"
    changed = []
    for _ in range(20):
        a_a = compare(run_bench(settings, workload, options), run_bench(settings, workload, options))
        assert len(a_a.queries) == len(workload)
        called = [f"{q.name}: {q.verdict.value} ({q.reason})" for q in a_a.queries
                  if q.verdict is not Verdict.NO_CHANGE]
        if called:
            changed.append(called)
    assert len(changed) <= 1, changed


# --- parameters compared through an IMMUTABLE function (issue 7) ------------------------------------------


def test_a_parameter_compared_through_an_immutable_function_is_sampled(db: conftest.TestDatabase) -> None:
    """``lower(email) = lower($1)`` and ``lower(email) = $1`` get values of ``lower(email)``,
    ``email = lower($1)`` values of ``email``; a VOLATILE function is never called to sample, and the
    query is skipped with the reason."""
    from dbtune.workload.params import ParameterUnresolved, sample_parameters

    db.execute("""
        CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL);
        INSERT INTO people SELECT g, 'User' || g || '@Example.com' FROM generate_series(1, 500) g;
        CREATE FUNCTION noisy(text) RETURNS text LANGUAGE sql VOLATILE AS 'SELECT $1';
    """)
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        emails = {str(r[0]) for r in conn.execute("SELECT email FROM people")}
        for sql in ("SELECT id FROM people WHERE lower(email) = lower($1)",
                    "SELECT id FROM people p WHERE lower(p.email) = $1::text"):
            params = sample_parameters(conn, sql, k=5)
            assert len(params.sets) == 5 and {v.lower() for (v,) in params.sets} <= {e.lower() for e in emails}
            assert all(v == v.lower() for (v,) in params.sets), params.sets
            assert params.sources[0].startswith("$1: lower(email) of public.people (5 distinct values"), params
        params = sample_parameters(conn, "SELECT id FROM people WHERE email = lower($1)", k=5)
        assert {v for (v,) in params.sets} <= emails and params.sources[0].startswith("$1: public.people.email")
        for sql in ("SELECT id FROM people WHERE noisy(email) = $1", "SELECT id FROM people WHERE email = noisy($1)"):
            with pytest.raises(ParameterUnresolved, match=r"^\$1: noisy is not IMMUTABLE"):
                sample_parameters(conn, sql, k=5)


# --- validation's measurement: a timed-out query stops, the drift bound at 80 % (issue 7) ---------------


def test_stop_on_timeout_does_not_run_a_timed_out_query_again(db18: conftest.TestDatabase) -> None:
    """With ``stop_on_timeout`` a query cancelled by statement_timeout in the warm-up is not run in the
    rounds: each round counts one failed execution with the timeout's message; a query that finishes is
    measured in every round."""
    from dbtune.db.connect import resolve

    settings = replace(resolve(db18.dsn), statement_timeout_ms=50)
    workload = parse_workload("-- name: sleeps\nSELECT pg_sleep(1);\n-- name: quick\nSELECT 1;\n", "w.sql")
    options = BenchOptions(iterations=3, rounds=3, warmup=1, stop_on_timeout=True)
    result = run_bench(settings, workload, options)
    sleeps, quick = result.queries
    assert (sleeps.count, sleeps.errors) == (0, 3)
    assert "statement timeout (not run again after it timed out)" in (sleeps.first_error or ""), sleeps.first_error
    assert [r.errors for r in sleeps.rounds] == [1, 1, 1]
    assert (quick.count, quick.errors) == (3, 0)
    plain = run_bench(settings, workload, replace(options, stop_on_timeout=False))
    assert plain.queries[0].errors == 3 and "not run again" not in (plain.queries[0].first_error or "")


def test_validation_drift_bound_is_narrower_and_an_a_a_run_still_finds_nothing(db18: conftest.TestDatabase) -> None:
    """The same two runs compared with the drift interval at 80 % (validation's) get a noise floor no higher
    than at 95 % (``bench compare``'s), and the comparison says which it used; with validation's
    measurement, A/A runs on an unchanged database call a change at most once in eight."""
    from dbtune.advisor.validate import DRIFT_CONFIDENCE, VALIDATION_BENCH
    from dbtune.db.connect import resolve

    db18.execute("CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL); "
                 "INSERT INTO t SELECT g, g % 100 FROM generate_series(1, 20000) g; ANALYZE t;")
    settings = resolve(db18.dsn)
    workload = parse_workload("-- name: scan\nSELECT count(*) FROM t WHERE k = $1;\n"
                              "-- name: lookup\nSELECT k FROM t WHERE id = $1;\n", "w.sql")
    runs = [run_bench(settings, workload, VALIDATION_BENCH) for _ in range(9)]
    changed = []
    for before, after in zip(runs, runs[1:], strict=False):
        strict, validation = compare(before, after), compare(before, after, drift_confidence=DRIFT_CONFIDENCE)
        assert (strict.drift_confidence, validation.drift_confidence) == (0.95, 0.80)
        assert validation.to_json()["method"]["drift_confidence"] == 0.80
        for s, v in zip(strict.queries, validation.queries, strict=True):
            assert s.noise_floor is not None and v.noise_floor is not None and v.noise_floor <= s.noise_floor
        changed += [f"{q.name}: {q.reason}" for q in validation.queries if q.verdict is not Verdict.NO_CHANGE]
    assert len(changed) <= 1, changed
