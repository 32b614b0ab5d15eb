"""What a first real user feeds dbtune's workload sources, on real servers: statements nested too deep
for the parser, statements megabytes long, pg_stat_statements holding dbtune's own statements and the
same SQL under several query ids, normalised texts the server cannot take back as they are, and plans
over partitioned tables.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import conftest
import psycopg
import pytest
from cli_runner import CLI

from dbtune.db.local_server import LocalServer
from dbtune.pgsql import MAX_NESTING
from dbtune.plans import NEEDS_ANALYZE

TABLE = """
CREATE TABLE t (id int PRIMARY KEY, b int, c text, created timestamptz NOT NULL DEFAULT now())
  WITH (autovacuum_enabled = off);
INSERT INTO t (id, b, c) SELECT g, g % 1000, md5(g::text) FROM generate_series(1, 20000) g;
ANALYZE t;
"""


@pytest.fixture(scope="module")
def table_db(pg18: LocalServer) -> Iterator[conftest.TestDatabase]:
    """One PostgreSQL 18 database with table ``t`` (20,000 rows, ``b`` unindexed), built once."""
    database = conftest.new_database(pg18, "inputs")
    database.execute(TABLE)
    yield database
    conftest.drop_database(database)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- item 17: statements the parser cannot take -----------------------------------------------------------


def test_a_statement_nested_30000_deep_is_reported_as_too_deep_not_a_crash(
        cli: CLI, table_db: conftest.TestDatabase, tmp_path: Path) -> None:
    """pglast builds its tree recursively in C: 30,000 levels killed bench run, audit --workload and
    explain --workload with a segmentation fault. Each now names the file, line and the depth, and goes on
    with the other statements (run as processes, so a crash is an exit by signal, not a lost test run)."""
    deep = "SELECT " + " + ".join(["1"] * 30_000) + " FROM t"
    hundreds = "SELECT " + " + ".join(["b"] * (MAX_NESTING - 10)) + " FROM t WHERE id = $1"
    workload = write(tmp_path / "w.sql", f"-- name: fine\nSELECT c FROM t WHERE b = 7;\n-- name: deep\n{deep};\n"
                                         f"-- name: hundreds\n{hundreds};\n")
    where = f"{workload}:4"
    explain = cli("explain", "--dsn", table_db.dsn, "--workload", str(workload), "--format", "json", process=True)
    assert explain.code == 2, explain
    entries = {e["name"]: e for e in json.loads(explain.out)["queries"]}
    assert entries["fine"]["plan"] is not None and entries["hundreds"]["plan"] is not None
    assert entries["deep"]["error"]["message"].startswith(f"{where}: statement nested too deep to read: about 29,999")
    assert "nested too deep" in explain.err and "Traceback" not in explain.err

    audit = cli("audit", "--dsn", table_db.dsn, "--workload", str(workload), "--format", "json", "--select", "PL001",
                process=True)
    assert audit.code == 0 and "Traceback" not in audit.err, audit
    report = json.loads(audit.out)
    assert [f["object"] for f in report["findings"]] == ["fine: Seq Scan on public.t"]
    (skip,) = [s for s in report["skipped"] if s["what"] == "plans: deep"]
    assert skip["reason"].startswith(f"EXPLAIN failed: {where}: statement nested too deep")

    out = tmp_path / "bench.json"
    bench = cli("bench", "run", "--dsn", table_db.dsn, "--workload", str(workload), "--iterations", "5",
                "--warmup", "0", "--out", str(out), process=True)
    assert bench.code == 0 and "Traceback" not in bench.err, bench
    result = json.loads(out.read_text())
    assert [q["name"] for q in result["queries"]] == ["fine"]
    skipped = {s["name"]: s["reason"] for s in result["skipped"]}
    assert skipped["deep"].startswith(f"does not parse: {where}: statement nested too deep")
    assert "nests too deep" in skipped["hundreds"]


def test_a_finding_quoting_a_huge_filter_is_cut_in_the_text_report(
        cli: CLI, table_db: conftest.TestDatabase, tmp_path: Path) -> None:
    """A 1.6 MB statement took the text audit 38.6 s: tabulate wrapped the finding's message, which quotes
    the plan's whole Filter, quadratically. Text reports cut messages at a stated size; JSON keeps them."""
    ids = ", ".join(str(100_000 + i) for i in range(3_000))
    workload = write(tmp_path / "big.sql", f"-- name: big\nSELECT * FROM t WHERE b = 1 AND id <> ALL (ARRAY[{ids}]);\n")
    text = cli("audit", "--dsn", table_db.dsn, "--workload", str(workload), "--select", "PL001")
    assert text.code == 0, text
    assert "more characters; the JSON report has them all)" in " ".join(text.out.split())
    assert "102999" not in text.out
    explain = cli("explain", "--dsn", table_db.dsn, "--workload", str(workload))
    assert "more characters; the JSON report has them all)" in " ".join(explain.out.split())
    assert "102999" not in explain.out
    report = json.loads(cli("audit", "--dsn", table_db.dsn, "--workload", str(workload), "--select", "PL001",
                            "--format", "json").out)
    (finding,) = report["findings"]
    assert "102999" in finding["message"] and "102999" in finding["evidence"]["filter"]


# --- item 6: dbtune's own statements, and one statement under several query ids --------------------------


def test_pg_stat_statements_leaves_dbtune_out_and_groups_by_fingerprint(
        cli: CLI, db: conftest.TestDatabase, tmp_path: Path) -> None:
    """Every statement dbtune sends carries its marker (psycopg sessions, the bench's measured queries,
    Alembic's through SQLAlchemy); pg_stat_statements sources leave those out, and version tables, and
    list one statement per fingerprint. With --analyze a check that judged some plans is not NOT JUDGED."""
    db.execute(TABLE + "CREATE EXTENSION pg_stat_statements;"
               "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);"
               "SELECT pg_stat_statements_reset();")
    app = {"SELECT * FROM t WHERE id = $1", "SELECT c FROM t WHERE b = $1", "UPDATE t SET c = c WHERE id = $1",
           "SELECT version_num FROM alembic_version"}
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        raw = psycopg.RawCursor(conn)
        raw.execute("SELECT * FROM t WHERE id = $1", (3,))  # an int parameter …
        raw.execute("SELECT * FROM t WHERE id = $1", ("3",))  # … and a text one: two query ids
        raw.execute("SELECT c FROM t WHERE b = $1", (7,))
        raw.execute("UPDATE t SET c = c WHERE id = $1", (5,))
        conn.execute("SELECT version_num FROM alembic_version")
    workload = write(tmp_path / "w.sql", "-- name: by-b\nSELECT c FROM t WHERE b = $1;\n-- params: SELECT 42\n")
    assert cli("explain", "--dsn", db.dsn, "--workload", str(workload), "--analyze").code == 0
    assert cli("audit", "--dsn", db.dsn, "--fail-on", "never").code == 0
    assert cli("bench", "run", "--dsn", db.dsn, "--workload", str(workload), "--iterations", "6", "--warmup", "1",
               "--out", str(tmp_path / "b.json"), "--quiet").code == 0
    from sqlalchemy import text

    from dbtune.db.connect import MARKER, resolve
    from dbtune.migrate.env import engine_for
    from dbtune.workload import pg_stat_statements_queries
    with engine_for(resolve(db.dsn)).connect() as connection:  # Alembic's statements go through this engine
        connection.execute(text("SELECT count(*) FROM alembic_version")).all()

    texts = {row[0] for row in db.query("SELECT query FROM pg_stat_statements")}
    unmarked = {t for t in texts if MARKER not in t}
    control = {t for t in unmarked if t.split()[0].upper() in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE",
                                                                "SHOW")}
    assert unmarked - control - app == {"SELECT pg_stat_statements_reset()"}, unmarked - control - app
    assert any(t.startswith(f"SELECT {MARKER} count(*) FROM alembic_version") for t in texts), texts

    queries = pg_stat_statements_queries(resolve(db.dsn), 10)
    assert sorted(q.text for q in queries) == sorted(app - {"SELECT version_num FROM alembic_version"})
    by_id = next(q for q in queries if q.text == "SELECT * FROM t WHERE id = $1")
    assert (by_id.occurrences, by_id.calls) == (2, 2)

    run = cli("explain", "--dsn", db.dsn, "--from-pg-stat-statements", "10", "--analyze")
    assert run.code == 0, run
    assert run.out.count("SELECT * FROM t WHERE id = $1") == 1 and "alembic_version" not in run.out
    assert "NOT JUDGED" not in run.out, run.out
    assert "not judged for this query: row-estimate-off" in " ".join(run.out.split())
    entries = json.loads(cli("explain", "--dsn", db.dsn, "--from-pg-stat-statements", "10", "--analyze",
                             "--format", "json").out)["queries"]
    update = next(e for e in entries if e["text"].startswith("UPDATE"))
    assert not update["analyzed"] and {"check": "row-estimate-off", "reason": NEEDS_ANALYZE} in update["not_judged"]
    assert all(e["not_judged"] == [] for e in entries if e["analyzed"])


# --- item 12: texts the server cannot take back as they are -----------------------------------------------


def test_normalised_and_utility_texts_are_rewritten_or_skipped_with_a_reason(
        cli: CLI, db: conftest.TestDatabase, tmp_path: Path) -> None:
    """pg_stat_statements writes `interval '1 day'` as `interval $1`, which the server refuses: it is sent
    as `$1::interval`. `DO $1` and other utility statements are skipped with a reason; a psql variable
    inside a string literal (qgen's `interval ':1' day`) is a warning naming file and line."""
    db.execute(TABLE + "CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset();")
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute("SELECT count(*) FROM t WHERE created > now() - interval '1 day'")
        conn.execute("SELECT c FROM t WHERE created > date '2020-01-01' + interval '1' day LIMIT 3")
    run = cli("explain", "--dsn", db.dsn, "--from-pg-stat-statements", "5", "--format", "json")
    assert run.code == 0, run
    entries = {e["text"]: e for e in json.loads(run.out)["queries"]}
    assert set(entries) == {"SELECT count(*) FROM t WHERE created > now() - $1::interval",
                            "SELECT c FROM t WHERE created > $1::date + $2::interval day LIMIT $3"}
    assert all(e["plan"] is not None and e["error"] is None for e in entries.values())

    workload = write(tmp_path / "q.sql", "DO $1;\nVACUUM t;\n-- name: qgen\n"
                                         "SELECT count(*) FROM t WHERE created > now() - interval ':1' day;\n"
                                         "SELECT count(*) FROM t WHERE created > '2024-01-01 12:30:00';\n")
    run = cli("explain", "--dsn", db.dsn, "--workload", str(workload), "--format", "json")
    assert run.code == 0, run
    do, vacuum, qgen, clock = json.loads(run.out)["queries"]
    assert do["skipped"].startswith("not explained: DO is a utility statement") and do["error"] is None
    assert vacuum["skipped"].startswith("not explained: VACUUM is a utility statement")
    assert qgen["plan"] is not None and qgen["notes"] == [
        f"{workload}:4: :1 inside the string literal ':1' is not a psql variable (psql substitutes variables "
        "only outside quotes): the server gets the text as written"]
    assert clock["notes"] == [] and clock["skipped"] is None
    text = cli("explain", "--dsn", db.dsn, "--workload", str(workload))
    assert "4 queries: 2 explained, 0 failed, 2 skipped;" in text.out and "syntax error" not in text.out + text.err
    audit = json.loads(cli("audit", "--dsn", db.dsn, "--workload", str(workload), "--format", "json").out)
    reasons = [s["reason"] for s in audit["skipped"] if s["what"].startswith("plans: ")]
    assert any(r.startswith("not explained: DO is a utility statement") for r in reasons)
    assert any(r.startswith(f"read with a warning: {workload}:4: :1 inside") for r in reasons)


# --- item 14: plan findings on partitions ------------------------------------------------------------------


def test_plan_findings_on_partitions_are_reported_once_at_the_partitioned_table(
        cli: CLI, table_db: conftest.TestDatabase, tmp_path: Path) -> None:
    table_db.execute("""
CREATE TABLE ev (id int, b int, at date) PARTITION BY RANGE (at);
CREATE TABLE ev_2023 PARTITION OF ev FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01') PARTITION BY RANGE (at);
CREATE TABLE ev_2024_h1 PARTITION OF ev_2024 FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE ev_2024_h2 PARTITION OF ev_2024 FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
INSERT INTO ev SELECT g, g % 1000, date '2023-01-01' + (g % 730) FROM generate_series(1, 90000) g;
ANALYZE ev;
""")
    workload = write(tmp_path / "p.sql", "-- name: by-b\nSELECT * FROM ev WHERE b = $1;\n")
    report = json.loads(cli("audit", "--dsn", table_db.dsn, "--workload", str(workload), "--select", "PL001",
                            "--format", "json").out)
    (finding,) = report["findings"]
    partitions = ["public.ev_2023", "public.ev_2024_h1", "public.ev_2024_h2"]
    assert finding["object"] == "by-b: Seq Scan on public.ev"
    assert finding["evidence"]["relation"] == "public.ev" and finding["evidence"]["partitions"] == partitions
    assert [p["relation"] for p in finding["evidence"]["per_partition"]] == partitions
    assert finding["message"].startswith("Seq Scan on public.ev: on 3 of its partitions (public.ev_2023, ")
    run = cli("explain", "--dsn", table_db.dsn, "--workload", str(workload))
    assert run.out.count("◀ PL001") == 3 and "1 finding: 0 error, 1 warning" in run.out, run.out


def test_migrate_lint_reports_a_statement_nested_too_deep(cli: CLI, tmp_path: Path) -> None:
    """``migrate lint`` reads SQL and revision files with the same guarded parser: a 30,000-deep statement is
    one syntax finding naming the depth, not a segmentation fault (run as a process to tell)."""
    deep = "SELECT " + " + ".join(["1"] * 30_000)
    sql = write(tmp_path / "m.sql", f"SET lock_timeout = '2s';\n{deep};\n")
    revision = write(tmp_path / "r.py", "from alembic import op\n\n\ndef upgrade():\n"
                                        f"    op.execute({deep!r})\n")
    for path in (sql, revision):
        run = cli("migrate", "lint", str(path), "--format", "json", process=True)
        assert run.code == 1 and "Traceback" not in run.err, run
        messages = [f["message"] for f in json.loads(run.out)["findings"]]
        assert any("nested too deep" in m for m in messages), messages
