"""EXPLAIN collection, the plan model, the plan checks (PL…) and ``dbtune explain``, on real plans from
real servers (PostgreSQL 18 and, where installed, 15: generic plans on both sides of version 16).

Every plan check has a positive and a negative case in :data:`CASES`: a query over the tables of
:data:`SCHEMA` with the session settings that produce the condition (a tiny ``work_mem`` for spills and
lossy bitmaps, no parallel workers in the pool, JIT for everything …), explained in one database per
server that is built once for the module.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import conftest
import psycopg
import pytest
from cli_runner import CLI, assert_error

from dbtune.audit import audit
from dbtune.checks import load_catalogue
from dbtune.checks.runner import FILE_AREAS, PLAN_AREAS
from dbtune.config.model import Config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.plans import (
    NEEDS_ANALYZE,
    ExplainedQuery,
    ExplainOptions,
    Plan,
    PlanQuery,
    collect_plans,
    run_plan_checks,
)
from dbtune.plans.collect import plan_statement
from dbtune.report.explain_text import WIDTH
from dbtune.workload.statements import reads_user_relations

CATALOGUE = load_catalogue()

SCHEMA = """
CREATE TABLE big (id int PRIMARY KEY, a int, b int, c text) WITH (autovacuum_enabled = off);
INSERT INTO big SELECT g, g % 1000, g % 100, md5(g::text) FROM generate_series(1, 100000) g;
CREATE INDEX big_a ON big (a);
CREATE TABLE corr (x int, y int) WITH (autovacuum_enabled = off);
INSERT INTO corr SELECT g % 100, g % 100 FROM generate_series(1, 50000) g;
CREATE TABLE fresh (k int) WITH (autovacuum_enabled = off);
INSERT INTO fresh SELECT g FROM generate_series(1, 20000) g;
CREATE INDEX fresh_k ON fresh (k);
CREATE TABLE vacuumed (k int) WITH (autovacuum_enabled = off);
INSERT INTO vacuumed SELECT g FROM generate_series(1, 20000) g;
CREATE INDEX vacuumed_k ON vacuumed (k);
CREATE TABLE wide (k int, pad text) WITH (autovacuum_enabled = off);
INSERT INTO wide SELECT g % 100, repeat('x', 500) FROM generate_series(1, 30000) g;
CREATE INDEX wide_k ON wide (k);
CREATE TABLE small (v int) WITH (autovacuum_enabled = off);
INSERT INTO small SELECT g FROM generate_series(1, 100) g;
CREATE TABLE part (id int, created date NOT NULL, kind text) PARTITION BY RANGE (created);
CREATE TABLE part_1 PARTITION OF part FOR VALUES FROM ('2024-01-01') TO ('2024-05-01');
CREATE TABLE part_2 PARTITION OF part FOR VALUES FROM ('2024-05-01') TO ('2024-09-01');
CREATE TABLE part_3 PARTITION OF part FOR VALUES FROM ('2024-09-01') TO ('2025-01-01');
INSERT INTO part SELECT g, date '2024-01-01' + (g % 360), 'k' || (g % 50) FROM generate_series(1, 3000) g;
ANALYZE big, corr, fresh, wide, small, part;
"""

SERIAL = {"max_parallel_workers_per_gather": "0"}
TINY_MEMORY = {**SERIAL, "work_mem": "64kB"}
AMPLE_MEMORY = {**SERIAL, "work_mem": "64MB"}
NO_JOINS_BUT_NESTED_LOOP = {**SERIAL, "enable_hashjoin": "off", "enable_mergejoin": "off"}
BITMAP_ONLY = {"enable_seqscan": "off", "enable_indexscan": "off", "enable_indexonlyscan": "off"}
INDEX_ONLY = {**SERIAL, "enable_seqscan": "off", "enable_bitmapscan": "off"}
PARALLEL = {"max_parallel_workers_per_gather": "2", "parallel_setup_cost": "0", "parallel_tuple_cost": "0",
            "min_parallel_table_scan_size": "0"}
JIT_ALWAYS = {**SERIAL, "jit": "on", "jit_above_cost": "0", "jit_inline_above_cost": "0",
              "jit_optimize_above_cost": "0"}
LOOKUP_PER_ROW = "SELECT count(b2.c) FROM big b1 JOIN big b2 ON b2.id = b1.id + 1 WHERE b1.a < 20"


@dataclass(frozen=True)
class Case:
    """One query, planned (``analyze=False``) or run, and the nodes the check must report (empty: none)."""

    check: str
    name: str
    sql: str
    nodes: tuple[str, ...]
    settings: dict[str, str] = field(default_factory=dict)
    analyze: bool = True
    needs_jit: bool = False


CASES = [
    Case("PL001", "generic-plan-of-unindexed-equality", "SELECT * FROM big WHERE b = $1 AND c LIKE 'a%'",
         ("Seq Scan on public.big",), SERIAL, analyze=False),
    Case("PL001", "analyzed-unindexed-equality", "SELECT * FROM big WHERE b = 7 AND c LIKE 'a%'",
         ("Seq Scan on public.big",), SERIAL),
    Case("PL001", "filter-keeps-most-rows", "SELECT * FROM big WHERE b >= 10", (), SERIAL),
    Case("PL001", "small-table", "SELECT * FROM small WHERE v = 3", (), SERIAL),
    Case("PL002", "correlated-columns", "SELECT * FROM corr WHERE x = 1 AND y = 1", ("Seq Scan on public.corr",),
         SERIAL),
    Case("PL002", "one-column", "SELECT * FROM corr WHERE x = 1", (), SERIAL),
    Case("PL002", "limit-stops-early", "SELECT * FROM big LIMIT 5", (), SERIAL),
    Case("PL003", "external-merge", "SELECT * FROM big ORDER BY c", ("Sort",), TINY_MEMORY),
    Case("PL003", "quicksort-in-memory", "SELECT * FROM big ORDER BY c", (), AMPLE_MEMORY),
    Case("PL004", "hash-join-in-batches", "SELECT count(*) FROM big b1 JOIN big b2 ON b2.c = b1.c", ("Hash",),
         {**TINY_MEMORY, "enable_mergejoin": "off", "enable_nestloop": "off"}),
    Case("PL004", "hash-join-in-one-batch", "SELECT count(*) FROM big b1 JOIN big b2 ON b2.c = b1.c", (),
         {**AMPLE_MEMORY, "enable_mergejoin": "off", "enable_nestloop": "off"}),
    Case("PL005", "index-scan-filter-discards", "SELECT * FROM big WHERE a < 50 AND b = 1",
         ("Bitmap Heap Scan on public.big",), SERIAL),
    Case("PL005", "index-scan-filter-keeps", "SELECT * FROM big WHERE a < 50 AND b < 90", (), SERIAL),
    Case("PL006", "inner-index-scan-per-row",
         LOOKUP_PER_ROW,
         ("Nested Loop",), NO_JOINS_BUT_NESTED_LOOP),
    Case("PL006", "planned-inner-per-row",
         "SELECT count(b2.c) FROM big b1 JOIN big b2 ON b2.id = b1.id + 1 WHERE b1.a < $1",
         ("Nested Loop",), NO_JOINS_BUT_NESTED_LOOP, analyze=False),
    Case("PL006", "few-outer-rows", "SELECT count(b2.c) FROM big b1 JOIN big b2 ON b2.id = b1.id + 1 WHERE b1.a = 3",
         (), NO_JOINS_BUT_NESTED_LOOP),
    Case("PL006", "hash-join", LOOKUP_PER_ROW,
         (), SERIAL),
    Case("PL007", "bitmap-outgrows-work-mem", "SELECT count(*) FROM wide WHERE k < 50",
         ("Bitmap Heap Scan on public.wide",), {**TINY_MEMORY, **BITMAP_ONLY}),
    Case("PL007", "exact-bitmap", "SELECT count(*) FROM wide WHERE k < 50", (), {**AMPLE_MEMORY, **BITMAP_ONLY}),
    Case("PL008", "never-vacuumed", "SELECT k FROM fresh WHERE k < 5000",
         ("Index Only Scan using fresh_k on public.fresh",), INDEX_ONLY),
    Case("PL008", "vacuumed", "SELECT k FROM vacuumed WHERE k < 5000", (), INDEX_ONLY),
    Case("PL009", "pool-empty", "SELECT count(*) FROM big WHERE b = 3", ("Gather",),
         {**PARALLEL, "max_parallel_workers": "0"}),
    Case("PL009", "pool-free", "SELECT count(*) FROM big WHERE b = 3", (), {**PARALLEL, "max_parallel_workers": "8"}),
    Case("PL010", "jit-for-a-tiny-query", "SELECT sum(v), avg(v) FROM small", ("JIT",), JIT_ALWAYS,
         needs_jit=True),
    Case("PL010", "jit-off", "SELECT sum(v), avg(v) FROM small", (), {**SERIAL, "jit": "off"}),
]


@pytest.fixture(scope="module")
def plans_db(pg: LocalServer) -> Iterator[conftest.TestDatabase]:
    """One database per server with the tables of :data:`SCHEMA` (``vacuumed`` vacuumed, ``fresh`` not)."""
    database = conftest.new_database(pg, "plans")
    database.execute(SCHEMA)
    # VACUUM sets the visibility map only for tuples older than every snapshot in the database; an
    # autovacuum ANALYZE of the catalogs after the DDL may hold one for a moment, so try until it is set.
    for _ in range(100):
        database.execute("VACUUM (ANALYZE) vacuumed")
        if database.query("SELECT relallvisible = relpages FROM pg_class WHERE relname = 'vacuumed'")[0][0]:
            break
        time.sleep(0.05)
    else:
        pytest.fail("VACUUM did not set the visibility map of table vacuumed")
    yield database
    conftest.drop_database(database)


def explained(database: conftest.TestDatabase, sql: str, *, analyze: bool = True,
              settings: dict[str, str] | None = None, name: str | None = "q") -> ExplainedQuery:
    collection = collect_plans(resolve(database.dsn), [PlanQuery(sql, name)],
                               ExplainOptions(analyze=analyze, session_settings=settings or {}))
    (result,) = collection.queries
    assert result.error is None, result.error
    return result


def jit_available(database: conftest.TestDatabase) -> bool:
    return bool(database.query("SELECT pg_jit_available()")[0][0])


# --- the checks on real plans -------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[f"{c.check}-{c.name}" for c in CASES])
def test_plan_check_case(case: Case, plans_db: conftest.TestDatabase) -> None:
    result = explained(plans_db, case.sql, analyze=case.analyze, settings=case.settings)
    if case.needs_jit and not jit_available(plans_db):
        # The embedded PostgreSQL 18 is built without LLVM (the system's PostgreSQL 15 has it): there the
        # same query compiles nothing, and the check must stay silent.
        checked = run_plan_checks(CATALOGUE, [result], Config(), select=[case.check])
        assert checked.findings == [] and result.plan is not None and result.plan.jit is None
        return
    assert result.kind == ("analyzed" if case.analyze else "generic" if "$" in case.sql else "plain")
    checked = run_plan_checks(CATALOGUE, [result], Config(), select=[case.check])
    got = [f.object for f in checked.findings]
    assert got == [f"q: {node}" for node in case.nodes], _describe(result, checked.findings)
    for f in checked.findings:
        assert f.check_id == case.check and f.evidence["node"] == f.object.removeprefix("q: ")
        assert f.evidence["fingerprint"] == result.fingerprint and f.message.startswith(f.evidence["node"])
        numbers = [v for k, v in f.evidence.items() if isinstance(v, int | float) and not isinstance(v, bool)]
        assert numbers, f"no numbers in the evidence: {f.evidence}"


def _describe(result: ExplainedQuery, findings: list) -> str:  # type: ignore[type-arg]
    assert result.plan is not None
    nodes = "\n".join(f"  {n.label}: plan_rows={n.plan_rows} actual={n.actual_rows} loops={n.actual_loops}"
                      for n in result.plan.nodes())
    return "findings:\n" + "\n".join(f"  {f.object}: {f.message}" for f in findings) + "\nnodes:\n" + nodes


def test_every_plan_check_has_positive_and_negative_cases() -> None:
    plan_ids = {c.meta.id for c in CATALOGUE if c.meta.area in PLAN_AREAS}
    assert plan_ids == {f"PL{n:03d}" for n in range(1, 11)}
    for check_id in sorted(plan_ids):
        assert any(c.check == check_id and c.nodes for c in CASES), f"{check_id} has no positive case"
        assert any(c.check == check_id and not c.nodes for c in CASES), f"{check_id} has no negative case"


def test_plan_checks_stay_out_of_the_snapshot_audit() -> None:
    assert "plans" in PLAN_AREAS and not PLAN_AREAS & FILE_AREAS


def test_checks_that_need_analyze_say_so_on_plain_plans(plans_db: conftest.TestDatabase) -> None:
    result = explained(plans_db, "SELECT * FROM big ORDER BY c", analyze=False, settings=TINY_MEMORY)
    checked = run_plan_checks(CATALOGUE, [result, result], Config())
    skipped = {s.what for s in checked.skipped if s.reason == NEEDS_ANALYZE}
    assert skipped == {"row-estimate-off", "sort-spills-to-disk", "hash-spills-to-disk", "rows-removed-by-filter",
                       "lossy-bitmap-heap-scan", "index-only-scan-heap-fetches", "parallel-workers-not-launched",
                       "jit-dominates"}
    assert len(checked.skipped) == len(skipped), "each skip is recorded once"


def test_options_and_severity_come_from_the_config(plans_db: conftest.TestDatabase) -> None:
    result = explained(plans_db, "SELECT * FROM big WHERE b >= 10", settings=SERIAL)
    loose = Config(checks={"seq-scan-with-selective-filter": {"max_kept_fraction": 0.95, "severity": "error"}})
    (finding,) = run_plan_checks(CATALOGUE, [result], loose, select=["PL001"]).findings
    assert finding.severity.value == "error" and finding.evidence["kept_fraction"] == 0.9


def test_nested_loop_rescanning_a_table_is_a_warning(plans_db: conftest.TestDatabase) -> None:
    sql = "SELECT count(*) FROM big b1 JOIN small s ON s.v = b1.a WHERE b1.a < 20"
    scan = explained(plans_db, sql, settings={**NO_JOINS_BUT_NESTED_LOOP, "enable_indexscan": "off",
                                              "enable_bitmapscan": "off"})
    index = explained(plans_db, LOOKUP_PER_ROW, settings=NO_JOINS_BUT_NESTED_LOOP)
    (rescans,) = run_plan_checks(CATALOGUE, [scan], Config(), select=["PL006"]).findings
    (lookups,) = run_plan_checks(CATALOGUE, [index], Config(), select=["PL006"]).findings
    assert (rescans.severity.value, rescans.evidence["inner_uses_index"]) == ("warning", False)
    assert (lookups.severity.value, lookups.evidence["inner_uses_index"]) == ("info", True)
    assert rescans.evidence["inner_loops"] == 2000 and "a scan with no index" in rescans.message


def test_heap_fetch_fix_is_a_vacuum_outside_a_transaction(plans_db: conftest.TestDatabase) -> None:
    result = explained(plans_db, "SELECT k FROM fresh WHERE k < 5000", settings=INDEX_ONLY)
    (finding,) = run_plan_checks(CATALOGUE, [result], Config(), select=["PL008"]).findings
    (change,) = finding.changes
    assert change.up == "VACUUM public.fresh;" and change.transactional is False
    assert finding.evidence["heap_fetches"] == 4999 and finding.evidence["rows"] == 4999


# --- collection ---------------------------------------------------------------------------------------


def test_generic_plans_on_both_sides_of_16(plans_db: conftest.TestDatabase) -> None:
    """PostgreSQL 16+ through EXPLAIN (GENERIC_PLAN), older through PREPARE + force_generic_plan; the
    prepared statements are deallocated, and the parameters stay parameters in the plan."""
    queries = [PlanQuery("SELECT * FROM big WHERE id = $1", "by-id"),
               PlanQuery("SELECT count(*) FROM big WHERE a = $1 AND c LIKE $2", "two-params"),
               PlanQuery("SELECT count(*) FROM small", "no-params")]
    collection = collect_plans(resolve(plans_db.dsn), queries)
    by_id, two, plain = collection.queries
    assert [q.kind for q in collection.queries] == ["generic", "generic", "plain"]
    assert by_id.plan is not None and [n.label for n in by_id.plan.nodes()] == [
        "Index Scan using big_pkey on public.big"]
    assert by_id.plan.root.index_cond == "(big.id = $1)"
    assert two.plan is not None and "$2" in json.dumps(two.plan.raw)
    assert plain.plan is not None and plain.relation_rows == {"public.small": 100.0}
    assert collection.server.version_num == int(plans_db.query("SHOW server_version_num")[0][0])
    assert collection.server.settings["work_mem"] == "4MB"
    assert not any(q.analyzed for q in collection.queries)


def _pruned_generic_cost(database: conftest.TestDatabase, sql: str, n_params: int) -> float:
    """The generic plan's total cost as the server gives it with partition pruning on: ``EXPLAIN
    (GENERIC_PLAN)`` on 16+, ``EXPLAIN EXECUTE`` of a prepared statement with NULLs before."""
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        if conn.info.server_version >= 160000:
            row = conn.execute(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {sql}").fetchone()  # type: ignore[arg-type]
        else:
            conn.execute(f"PREPARE pruned AS {sql}")  # type: ignore[arg-type]
            conn.execute("SET plan_cache_mode = force_generic_plan")
            row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE pruned({', '.join(['NULL'] * n_params)})").fetchone()  # type: ignore[arg-type]
    assert row is not None
    return float(row[0][0]["Plan"]["Total Cost"])


def test_a_generic_plan_keeps_every_partitions_scan(plans_db: conftest.TestDatabase) -> None:
    """A partition key compared to a parameter: every partition's scan in the generic plan (before 16 the
    NULLs of ``EXPLAIN EXECUTE`` would prune them all at executor startup, "Subplans Removed: 3"), at the
    cost the server gives the pruned plan. A partition key compared to a constant is still pruned at plan
    time, alone or beside a parameter; no prepared statement is left behind."""
    by_parameter = "SELECT id FROM part WHERE kind = $1 AND created >= $2"
    queries = [PlanQuery(by_parameter, "by-parameter"),
               PlanQuery("SELECT id FROM part WHERE kind = $1 AND created >= '2024-09-01'", "by-constant"),
               PlanQuery("SELECT id FROM part WHERE kind = $1 AND created >= '2024-06-01' AND created < $2", "both"),
               PlanQuery("SELECT id FROM part WHERE created < $1 ORDER BY created LIMIT 5", "merge-append")]
    results = collect_plans(resolve(plans_db.dsn), queries).queries
    scanned = []
    for result in results:
        assert result.plan is not None, result.error
        scanned.append(sorted(n.relation for n in result.plan.nodes() if n.relation))
    assert scanned[0] == scanned[3] == ["public.part_1", "public.part_2", "public.part_3"], scanned
    assert scanned[1] == ["public.part_3"], scanned
    assert "public.part_1" not in scanned[2], scanned
    assert results[0].plan is not None
    assert results[0].plan.total_cost == pytest.approx(_pruned_generic_cost(plans_db, by_parameter, 2))
    with psycopg.connect(plans_db.dsn, autocommit=True) as conn:
        plan_statement(conn, by_parameter, conn.info.server_version, prepared="kept")
        assert conn.execute("SELECT name FROM pg_prepared_statements").fetchall() == []


def test_a_failing_query_is_reported_and_the_run_goes_on(plans_db: conftest.TestDatabase) -> None:
    queries = [PlanQuery("SELECT * FROM missing_table"), PlanQuery("SELECT 1 FROM big WHERE id = $1"),
               PlanQuery("SELECT pg_sleep(2)", "slow"), PlanQuery("SELECT count(*) FROM small", "after")]
    settings = resolve(plans_db.dsn, statement_timeout_ms=300)
    missing, generic, slow, after = collect_plans(settings, queries, ExplainOptions(analyze=True)).queries
    assert missing.error == 'relation "missing_table" does not exist' and missing.sqlstate == "42P01"
    assert missing.plan is None and missing.label == f"query {missing.fingerprint}"
    assert generic.error is None and generic.kind == "analyzed" and generic.parameters
    assert slow.error == "canceling statement due to statement timeout" and slow.sqlstate == "57014"
    assert after.error is None and after.analyzed


def test_writes_run_only_when_allowed_and_are_rolled_back(plans_db: conftest.TestDatabase) -> None:
    insert = PlanQuery("INSERT INTO small VALUES (1000)", "insert")
    (refused,) = collect_plans(resolve(plans_db.dsn), [insert], ExplainOptions(analyze=True)).queries
    assert refused.kind == "plain" and refused.plan is not None and not refused.analyzed
    assert "--allow-writes" in refused.notes[0]
    (ran,) = collect_plans(resolve(plans_db.dsn), [insert], ExplainOptions(analyze=True, allow_writes=True)).queries
    assert ran.analyzed and ran.plan is not None and ran.plan.root.label == "Insert on public.small"
    assert plans_db.query("SELECT count(*) FROM small WHERE v = 1000") == [(0,)]
    # A SELECT that tries to write in the read-only session is refused by the server.
    (read_only,) = collect_plans(resolve(plans_db.dsn), [PlanQuery("SELECT nextval('x')")],
                                 ExplainOptions(analyze=True)).queries
    assert read_only.error is not None


def test_parameters_without_values_fall_back_to_the_plan(plans_db: conftest.TestDatabase) -> None:
    (result,) = collect_plans(resolve(plans_db.dsn), [PlanQuery("SELECT $1::int + 1")],
                              ExplainOptions(analyze=True)).queries
    assert result.kind == "generic" and result.plan is not None and "no values for its parameters" in result.notes[0]


def test_plan_model_reads_labels_and_figures() -> None:
    raw = [{"Plan": {"Node Type": "Aggregate", "Strategy": "Hashed", "Partial Mode": "Partial",
                     "Plan Rows": 10, "Total Cost": 50.0, "Actual Rows": 0.5, "Actual Loops": 4,
                     "Plans": [{"Node Type": "Function Scan", "Function Name": "generate_series",
                                "Schema": "pg_catalog", "Alias": "g", "Parent Relationship": "Outer",
                                "Plan Rows": 1000, "Total Cost": 10.0, "Actual Rows": 250, "Actual Loops": 4}]}},
           {"ignored": True}]
    plan = Plan.from_json(raw)
    assert [n.label for n in plan.nodes()] == ["Partial HashAggregate", "Function Scan on pg_catalog.generate_series g"]
    assert plan.root.total_actual_rows == 2.0 and plan.root.exclusive_cost == 40.0 and plan.analyzed
    with pytest.raises(ValueError):
        Plan.from_json({"no": "plan"})


def test_pg_stat_statements_source_keeps_user_statements() -> None:
    assert reads_user_relations("SELECT * FROM orders WHERE id = $1")
    assert reads_user_relations("WITH x AS (SELECT 1) SELECT * FROM x JOIN public.t USING (id)")
    assert not reads_user_relations("SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_namespace n ON true")
    assert not reads_user_relations("WITH x AS (SELECT 1) SELECT * FROM x")
    assert not reads_user_relations("SELECT 1")


# --- dbtune explain -----------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_explain_text_is_readable(cli: CLI, plans_db: conftest.TestDatabase) -> None:
    run = cli("explain", "--dsn", plans_db.dsn, "SELECT b1.c FROM big b1 JOIN big b2 ON b2.c = b1.c WHERE b1.b = $1")
    assert run.code == 0 and run.err == "", run
    lines = run.out.splitlines()
    assert lines[0].startswith("dbtune explain of ") and lines[1].endswith("— plans only, nothing run")
    assert all(len(line) <= WIDTH for line in lines), max(lines, key=len)
    assert any(line.startswith("  Hash Join  (est ") and "% of cost)" in line for line in lines), run.out
    assert any("└─ Hash  (est " in line for line in lines) and "Hash Cond: (b2.c = b1.c)" in run.out
    assert "◀ PL001" in run.out and "warning  PL001 seq-scan-with-selective-filter" in run.out
    assert "NOT JUDGED" in run.out and "needs EXPLAIN ANALYZE" in run.out
    assert lines[-1] == "1 query: 1 explained, 0 failed; 1 finding: 0 error, 1 warning, 0 info"


def test_explain_analyze_text_shows_actual_rows_and_time(cli: CLI, plans_db: conftest.TestDatabase) -> None:
    run = cli("explain", "--dsn", plans_db.dsn, "--analyze", "SELECT * FROM corr WHERE x = 1 AND y = 1")
    assert run.code == 0, run
    assert "EXPLAIN ANALYZE: execution " in run.out and "actual 500" in run.out and "% of time)" in run.out
    assert "PL002 row-estimate-off" in run.out and "NOT JUDGED" not in run.out


def test_explain_json_and_failures(cli: CLI, plans_db: conftest.TestDatabase, tmp_path: Path) -> None:
    workload = write(tmp_path / "w.sql", """
-- name: by-b
SELECT * FROM big WHERE b = $1;
-- name: gone
SELECT * FROM no_such_table;
-- name: slow
SELECT pg_sleep(2);
-- name: small
SELECT count(*) FROM small;
""")
    out = tmp_path / "plans.json"
    run = cli("explain", "--dsn", plans_db.dsn, "--workload", str(workload), "--analyze", "--format", "json",
              "--statement-timeout", "300ms", "--output", str(out), "--fail-on", "warning")
    assert run.code == 2 and run.out == "", run
    assert run.err.splitlines() == [f"error: 2 of 4 queries could not be explained (first: gone ({workload}:5): "
                                    'relation "no_such_table" does not exist)']
    entries = json.loads(out.read_text())["queries"]
    assert [e["name"] for e in entries] == ["by-b", "gone", "slow", "small"]
    by_b, gone, slow, small = entries
    assert set(by_b) == {"name", "text", "fingerprint", "kind", "analyzed", "parameters", "notes", "error", "plan",
                         "findings", "skipped", "not_judged"}
    assert by_b["analyzed"] and by_b["plan"][0]["Plan"]["Node Type"] == "Seq Scan" and by_b["error"] is None
    assert [f["object"] for f in by_b["findings"]] == ["by-b: Seq Scan on public.big"]
    assert by_b["findings"][0]["evidence"]["rows_read_per_scan"] == 100000
    assert gone["error"] == {"message": 'relation "no_such_table" does not exist', "sqlstate": "42P01"}
    assert gone["plan"] is None and gone["findings"] == []
    assert slow["error"]["message"] == "canceling statement due to statement timeout"
    assert small["error"] is None and small["plan"][0]["Execution Time"] >= 0


def test_explain_reads_statements_from_stdin(cli: CLI, plans_db: conftest.TestDatabase,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("SELECT count(*) FROM small;\nSELECT * FROM big WHERE id = $1;\n"))
    run = cli("explain", "--dsn", plans_db.dsn, "--format", "json", "-")
    assert run.code == 0, run
    entries = json.loads(run.out)["queries"]
    assert [(e["text"], e["kind"]) for e in entries] == [("SELECT count(*) FROM small", "plain"),
                                                         ("SELECT * FROM big WHERE id = $1", "generic")]


def test_explain_exit_codes(cli: CLI, plans_db: conftest.TestDatabase) -> None:
    sql = "SELECT * FROM big WHERE b = 3"
    assert cli("explain", "--dsn", plans_db.dsn, sql).code == 0  # --fail-on never by default
    assert cli("explain", "--dsn", plans_db.dsn, "--fail-on", "warning", sql).code == 1
    assert_error(cli("explain", "--dsn", plans_db.dsn), 2, "exactly one of SQL")
    assert_error(cli("explain", "--dsn", plans_db.dsn, "--allow-writes", sql), 2, "--allow-writes")
    assert_error(cli("explain", "--dsn", plans_db.dsn, "--fail-on", "bad", sql), 2, "--fail-on")
    bad_dsn = f"host={plans_db.server.socket_dir} port=1 dbname=x"
    assert_error(cli("explain", "--dsn", bad_dsn, sql), 3, "cannot connect")


# --- the audit ----------------------------------------------------------------------------------------


def test_audit_includes_plan_findings_from_pg_stat_statements(cli: CLI, db: conftest.TestDatabase) -> None:
    db.execute(SCHEMA + "CREATE EXTENSION pg_stat_statements;")
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        for value in (3, 4, 5):  # pg_stat_statements normalises the constant to $1
            conn.execute(f"SELECT * FROM big WHERE b = {value} AND c LIKE 'a%'")  # type: ignore[arg-type]
        conn.execute("SELECT count(*) FROM pg_catalog.pg_class")
    report = audit(resolve(db.dsn), Config())
    plans = [f for f in report.findings if f.check_id.startswith("PL")]
    assert [(f.check_id, f.object.split(": ", 1)[1]) for f in plans] == [("PL001", "Seq Scan on public.big")]
    (finding,) = plans
    assert finding.object.startswith("pgss:") and finding.evidence["plan_kind"] == "generic"
    assert finding.evidence["query"].startswith("pgss:")
    assert any(s.what == "sort-spills-to-disk" and s.reason == NEEDS_ANALYZE for s in report.skipped)
    # The data load is in pg_stat_statements too, normalised to `generate_series($3, $4)`: its generic plan
    # fails (the parameters' types are unknown), is reported, and the other statements are still planned.
    loads = [s for s in report.skipped if "generate_series" in s.reason]
    assert loads and all(s.what.startswith("plans: pgss:") and "is not unique" in s.reason for s in loads)
    # The same workload through dbtune explain: only statements on user tables.
    run = cli("explain", "--dsn", db.dsn, "--from-pg-stat-statements", "5", "--format", "json")
    assert run.code == 2 and "could not be explained" in run.err, run
    entries = {e["text"]: e for e in json.loads(run.out)["queries"]}
    assert entries["SELECT * FROM big WHERE b = $1 AND c LIKE $2"]["plan"] is not None
    assert any(t.startswith("INSERT INTO big") and e["error"] for t, e in entries.items())
    assert all(e["name"].startswith("pgss:") and "pg_class" not in t for t, e in entries.items())
    # Selecting other checks plans nothing; plan_queries = 0 turns plans off.
    assert not [f for f in audit(resolve(db.dsn), Config(), select=["IX001"]).findings if f.check_id == "PL001"]
    off = Config.model_validate({"audit": {"plan_queries": 0}})
    assert not [f for f in audit(resolve(db.dsn), off).findings if f.check_id.startswith("PL")]


def test_audit_plans_a_workload_file(cli: CLI, plans_db: conftest.TestDatabase, tmp_path: Path) -> None:
    workload = write(tmp_path / "w.sql", "-- name: by-b\nSELECT * FROM big WHERE b = $1;\n"
                                         "-- name: gone\nSELECT * FROM no_such_table;\n")
    run = cli("audit", "--dsn", plans_db.dsn, "--workload", str(workload), "--select", "PL001", "--format", "json")
    assert run.code == 0 and run.err == "", run
    report = json.loads(run.out)
    assert [f["object"] for f in report["findings"]] == ["by-b: Seq Scan on public.big"]
    assert {"what": "plans: gone", "reason": 'EXPLAIN failed: relation "no_such_table" does not exist',
            "privilege": None} in report["skipped"]
    assert_error(cli("audit", "--dsn", plans_db.dsn, "--workload", str(tmp_path / "nope.sql")), 2, "nope.sql")


def test_one_plan_node_labeller_serves_explain_and_bench() -> None:
    """explain's tree and bench's plan shapes name nodes with the same labeller: the same node kinds
    (a partial aggregate, a backward scan, a quoted index name), with or without schema and alias."""
    from dbtune.bench.plan import node_label as bench_label
    from dbtune.plans.model import node_label

    scan = {"Node Type": "Index Scan", "Index Name": "Orders Idx", "Relation Name": "orders", "Schema": "sales",
            "Alias": "o", "Scan Direction": "Backward"}
    assert node_label(scan) == 'Index Scan Backward using "Orders Idx" on sales.orders o'
    assert bench_label(scan) == 'Index Scan Backward using "Orders Idx" on orders'
    partial = {"Node Type": "Aggregate", "Strategy": "Hashed", "Partial Mode": "Partial"}
    assert node_label(partial) == bench_label(partial) == "Partial HashAggregate"
