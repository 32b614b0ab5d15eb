"""Issue 13, items 10 and 11, on real servers: statements that fingerprint alike but read other relations
(schemas, ``search_path``), and the workload files of the common tools (TPC-H qgen templates, pgbench
scripts, psql scripts and plain SQL), read by explain, audit and bench.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import conftest
import psycopg
import pytest
from cli_runner import CLI

from dbtune.catalog.snapshot import take
from dbtune.db.connect import ConnectionSettings, read_only_snapshot
from dbtune.db.local_server import LocalServer
from dbtune.workload import UsageAnalyzer, WorkloadSchema, load_queries, pg_stat_statements_queries, read_views

TPCH = conftest.SHARED / "data" / "tpch"

# The same table name in two schemas: sales.orders is large (a sequential scan for one b is a finding),
# other.orders is small (no finding); public has none.
SCHEMAS = """
CREATE SCHEMA sales;
CREATE SCHEMA other;
CREATE TABLE sales.orders (id int PRIMARY KEY, b int, c text) WITH (autovacuum_enabled = off);
CREATE TABLE other.orders (id int PRIMARY KEY, b int, note text) WITH (autovacuum_enabled = off);
INSERT INTO sales.orders SELECT g, g % 1000, md5(g::text) FROM generate_series(1, 20000) g;
INSERT INTO other.orders SELECT g, g, 'x' FROM generate_series(1, 20) g;
ANALYZE sales.orders;
ANALYZE other.orders;
"""

# pgbench's built-in "TPC-B (sort of)" script, as `pgbench --show-script tpcb-like` prints it, with a pause.
TPCB = r"""\set aid random(1, 100000 * :scale)
\set bid random(1, 1 * :scale)
\set tid random(1, 10 * :scale)
\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
\sleep 1 ms
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
END;
"""

PGBENCH_TABLES = """
CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84));
CREATE TABLE pgbench_tellers (tid int PRIMARY KEY, bid int, tbalance int, filler char(84));
CREATE TABLE pgbench_history (tid int, bid int, aid int, delta int, mtime timestamp, filler char(22));
INSERT INTO pgbench_accounts SELECT g, 1, 0, '' FROM generate_series(1, 1000) g;
INSERT INTO pgbench_tellers SELECT g, 1, 0, '' FROM generate_series(1, 10) g;
ANALYZE;
"""


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def schemas_db(pg18: LocalServer) -> Iterator[conftest.TestDatabase]:
    """PostgreSQL 18: ``sales.orders`` (20,000 rows) and ``other.orders`` (20 rows), the pgbench tables and
    the TPC-H tables in ``public``, built once."""
    database = conftest.new_database(pg18, "formats")
    database.execute(SCHEMAS + PGBENCH_TABLES + (TPCH / "tpch-create.sql").read_text())
    yield database
    conftest.drop_database(database)


# --- item 10: statements that look alike but are not ------------------------------------------------------


def test_same_statement_on_other_schemas_is_kept_apart_by_explain_and_audit(
        cli: CLI, schemas_db: conftest.TestDatabase, tmp_path: Path) -> None:
    """pglast's fingerprint ignores schemas: other.orders, sales.orders and an unqualified orders after
    ``SET search_path TO sales`` were merged into the first, so the large table's finding was lost. Each
    is its own statement now, and the unqualified one is planned under its session's search_path."""
    workload = write(tmp_path / "w.sql", "SELECT * FROM other.orders WHERE b = 7;\n"
                                         "SELECT * FROM sales.orders WHERE b = 7;\n"
                                         "SET search_path TO sales;\n"
                                         "SELECT * FROM orders WHERE b = 8;\n"
                                         "SELECT * FROM other.orders WHERE b = 9;\n")
    loaded = load_queries(workload)
    assert [(q.location.rpartition(":")[2], q.relations, q.occurrences) for q in loaded.queries] == [
        ("1", ("other.orders",), 2), ("2", ("sales.orders",), 1), ("3", (), 1),
        ("4", ("orders (search_path sales)",), 1)]
    explain = cli("explain", "--dsn", schemas_db.dsn, "--workload", str(workload), "--format", "json")
    entries = json.loads(explain.out)["queries"]
    scanned = [e["plan"][0]["Plan"].get("Schema") for e in entries if e["plan"] is not None]
    assert scanned == ["other", "sales", "sales"], explain
    findings = [f["object"] for e in entries for f in e["findings"] if f["check_id"] == "PL001"]
    assert findings == ["query " + entries[1]["fingerprint"] + ": Seq Scan on sales.orders",
                        "query " + entries[3]["fingerprint"] + ": Seq Scan on sales.orders"], findings

    audit = cli("audit", "--dsn", schemas_db.dsn, "--workload", str(workload), "--format", "json",
                "--select", "PL001")
    assert audit.code == 0, audit  # PL001 is a warning; audit.fail_on is error
    objects = sorted(f["object"] for f in json.loads(audit.out)["findings"])
    assert len(objects) == 2 and all(o.endswith("Seq Scan on sales.orders") for o in objects), objects


def test_pg_stat_statements_keeps_schemas_apart(db: conftest.TestDatabase) -> None:
    """The same text on sales.orders and other.orders: two query ids on PostgreSQL 15, which grouping by
    fingerprint merged into one. PostgreSQL 18 jumbles relation names, not OIDs, so the server itself
    counts both under one query id and one text: nothing downstream can tell them apart."""
    db.execute(SCHEMAS + "CREATE EXTENSION pg_stat_statements; SELECT pg_stat_statements_reset();")
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        version = int(conn.execute("SHOW server_version_num").fetchall()[0][0])
        raw = psycopg.RawCursor(conn)
        raw.execute("SELECT id FROM sales.orders WHERE b = $1", (7,))
        raw.execute("SELECT id FROM other.orders WHERE b = $1", (7,))
        raw.execute("SELECT id FROM other.orders WHERE b = $1", (8,))
    found = pg_stat_statements_queries(ConnectionSettings(dsn=db.dsn), 10)
    calls = {q.relations: q.calls for q in found if "orders" in q.text}
    assert calls == ({("sales.orders",): 1, ("other.orders",): 2} if version < 180000 else {("sales.orders",): 3})


def test_server_log_sessions_keep_their_own_search_path(pg18: LocalServer) -> None:
    """Two sessions of a csvlog/jsonlog run the same unqualified text after setting other search paths:
    two statements, each under its session's path (they were one, under the first's)."""
    server = LocalServer.create(pg18.bindir)
    server.init({"logging_collector": "on", "log_destination": "'csvlog,jsonlog'", "log_directory": "'log'",
                 "log_filename": "'server.log'", "log_statement": "'all'"})
    server.start()
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(SCHEMAS)
        with psycopg.connect(server.dsn(), autocommit=True) as a, psycopg.connect(server.dsn(), autocommit=True) as b:
            a.execute("SET search_path TO sales")
            b.execute("SET search_path TO other, public")
            for conn in (a, b, a):
                conn.execute("SELECT id FROM orders WHERE b = 7")
    finally:
        server.stop()
    try:
        for name in ("server.csv", "server.json"):
            loaded = load_queries(server.datadir / "log" / name)
            found = {q.relations: q.occurrences for q in loaded.queries
                     if q.text == "SELECT id FROM orders WHERE b = 7"}
            assert found == {("orders (search_path sales)",): 2, ("orders (search_path other, public)",): 1}, name
    finally:
        server.destroy()


def test_column_usage_cache_keeps_schemas_apart(schemas_db: conftest.TestDatabase) -> None:
    """The usage cache was keyed by fingerprint: other.orders got the columns of sales.orders."""
    with read_only_snapshot(ConnectionSettings(dsn=schemas_db.dsn)) as conn:
        analyzer = UsageAnalyzer(WorkloadSchema.from_snapshot(take(conn), read_views(conn)))
    sales = analyzer.usage("SELECT id FROM sales.orders WHERE b = $1")
    other = analyzer.usage("SELECT id FROM other.orders WHERE b = $1")
    assert [t.table for t in sales.tables] == ["sales.orders"] and set(sales.tables[0].columns) == {"b"}
    assert [t.table for t in other.tables] == ["other.orders"] and set(other.tables[0].columns) == {"b"}


# --- item 11: workload files of the common tools ------------------------------------------------------------


def test_qgen_templates_are_read_as_such_and_planned(cli: CLI, schemas_db: conftest.TestDatabase,
                                                      tmp_path: Path) -> None:
    """Every TPC-H qgen template reads without error: the ``:x``/``:o`` lines stripped, the markers (inside
    literals too) as ``$n``; explain plans Q1, Q13 and Q16 with their generic plans, detected or asked for.
    Before, ``:x`` and ``:o`` became ``$1 $2`` in front of the query, which did not parse."""
    for n in range(1, 23):
        loaded = load_queries(TPCH / "templates" / f"{n}.sql")
        assert loaded.errors == () and loaded.script_format == "qgen", (n, loaded.errors)
        assert all(":" not in q.text.replace("::", "") for q in loaded.queries), n
    (q13,) = load_queries(TPCH / "templates" / "13.sql").queries
    assert "o_comment not like ('%' || $1 || '%' || $2 || '%')" in q13.text
    (q1,) = load_queries(TPCH / "templates" / "1.sql").queries
    assert "- $1::interval day" in q1.text

    for fmt in ((), ("--workload-format", "qgen")):
        for n in (1, 13, 16):
            explain = cli("explain", "--dsn", schemas_db.dsn, "--workload", str(TPCH / "templates" / f"{n}.sql"),
                          *fmt, "--format", "json")
            assert explain.code == 0, (n, explain)
            (entry,) = json.loads(explain.out)["queries"]
            assert entry["kind"] == "generic" and entry["plan"] is not None, (n, entry)
    forced = cli("explain", "--dsn", schemas_db.dsn, "--workload", str(TPCH / "templates" / "1.sql"),
                 "--workload-format", "plain", "--format", "json")
    assert forced.code == 2 and "syntax error" in json.loads(forced.out)["queries"][0]["error"]["message"], forced


def test_pgbench_script_meta_commands_and_begin_end_are_skipped_with_a_reason(
        cli: CLI, schemas_db: conftest.TestDatabase, tmp_path: Path) -> None:
    """pgbench's tpcb-like script: each ``\\set``, the ``\\sleep``, BEGIN and END are listed as skipped with
    why (they were dropped silently, or refused as "not a SELECT …"), the four statements are planned and
    benchmarked with ``:var`` as ``$n``."""
    script = write(tmp_path / "tpcb.sql", TPCB)
    explain = cli("explain", "--dsn", schemas_db.dsn, "--workload", str(script), "--format", "json")
    assert explain.code == 0, explain
    entries = json.loads(explain.out)["queries"]
    skipped = [e["skipped"] for e in entries if e["skipped"]]
    assert skipped == [f"{script}:{n}: pgbench meta-command \\set skipped: it sets a pgbench variable; dbtune "
                       "samples the values of the statements' $n from the data" for n in (1, 2, 3, 4)] + [
        f"{script}:5: BEGIN skipped: pgbench's transaction control; dbtune plans and runs each statement on its own",
        f"{script}:9: pgbench meta-command \\sleep skipped: it runs in pgbench, not on the server",
        f"{script}:11: END skipped: pgbench's transaction control; dbtune plans and runs each statement on its own"]
    planned = [e["text"] for e in entries if e["plan"] is not None]
    assert planned[1] == "SELECT abalance FROM pgbench_accounts WHERE aid = $1" and len(planned) == 4

    out = tmp_path / "bench.json"
    bench = cli("bench", "run", "--dsn", schemas_db.dsn, "--workload", str(script), "--workload-format", "pgbench",
                "--iterations", "2", "--rounds", "1", "--warmup", "0", "--out", str(out))
    assert bench.code == 0, bench
    result = json.loads(out.read_text())
    assert [q["name"] for q in result["queries"]] == ["tpcb-7"]  # the SELECT; the writes need --allow-writes
    reasons = {s["name"]: s["reason"] for s in result["skipped"]}
    assert reasons["tpcb-1"].startswith("pgbench meta-command \\set skipped")
    assert reasons["tpcb-5"].startswith("BEGIN skipped: pgbench's transaction control")
    assert reasons["tpcb-11"].startswith("END skipped")


def test_workload_format_is_chosen_explicitly_or_detected(
        cli: CLI, schemas_db: conftest.TestDatabase, tmp_path: Path) -> None:
    """``--workload-format`` overrides detection: a psql ``:b`` is a parameter for psql and a syntax error
    as plain SQL; a plain file with a colon in a literal stays plain; an unknown format is a usage error."""
    psql = write(tmp_path / "p.sql", "\\timing on\nSELECT id FROM sales.orders WHERE b = :b;\n")
    assert load_queries(psql).script_format == "psql"
    scaled = write(tmp_path / "s.sql", "\\set n 10\nSELECT id FROM sales.orders WHERE b < 10 * :scale;\n")
    assert load_queries(scaled).script_format == "psql"  # :scale and a plain \set are psql's too
    assert load_queries(write(tmp_path / "b.sql", "\\set n 10 * :scale\nSELECT :n;\n")).script_format == "pgbench"
    detected = json.loads(cli("explain", "--dsn", schemas_db.dsn, "--workload", str(psql), "--format",
                              "json").out)["queries"]
    assert detected[0]["kind"] == "generic" and detected[0]["text"] == "SELECT id FROM sales.orders WHERE b = $1"
    plain = cli("explain", "--dsn", schemas_db.dsn, "--workload", str(psql), "--workload-format", "plain",
                "--format", "json")
    assert plain.code == 2 and "syntax error" in json.loads(plain.out)["queries"][0]["error"]["message"], plain
    literal = write(tmp_path / "l.sql", "SELECT id FROM other.orders WHERE note = 'a:b';\n")
    assert load_queries(literal).script_format == "plain"
    bad = cli("explain", "--dsn", schemas_db.dsn, "--workload", str(psql), "--workload-format", "sqlplus")
    assert bad.code == 2 and "sqlplus" in bad.err, bad
    alone = cli("audit", "--dsn", schemas_db.dsn, "--workload-format", "pgbench")
    assert alone.code == 2 and "error: --workload-format only matters with --workload FILE" in alone.err, alone
