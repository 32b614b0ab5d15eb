"""``migrate generate --from advice.json``: the recommendations' changes become the migration, the file read
as untrusted input exactly as a report is (strict schema, unknown keys refused, every statement re-parsed
and printed again from its parse tree, names checked), and an advice file told apart from a report by
``advice_version``/``report_version``. The round trip advise → generate → lint → apply runs on both
servers."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from advice_data import sample_advice
from cli_runner import assert_error
from conftest import TestDatabase, load_as_history

from dbtune.advisor.model import Advice, EngineKind
from dbtune.config.model import Config
from dbtune.db.connect import resolve
from dbtune.errors import UsageError
from dbtune.migrate import api
from dbtune.migrate.runtime import ApplyOptions
from dbtune.model import ChangeKind


def _advice_json(advice: Advice | None = None) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps((advice or sample_advice()).to_json()))
    return data


def _generate(cli, tmp_path: Path, data: dict[str, Any] | str, fmt: str = "alembic"):  # type: ignore[no-untyped-def]
    path = tmp_path / "advice.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return cli("migrate", "generate", "--from", str(path), "--dir", str(tmp_path / "out"), "--format", fmt)


def _edit(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """Set the dotted ``path`` (list indexes as numbers) of the advice to ``value``."""
    def edit(data: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        node: Any = data
        for p in parents:
            node = node[p]
        node[last] = value
    return edit


INJECTED = ("CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_created_at_idx ON public.orders "
            "(customer_id); DROP TABLE public.victim")
TAMPERED = [
    pytest.param(_edit("recommendations.0.changes.0.up", INJECTED),
                 "recommendation 1 (on orders): changes[0].up", "2 statements where one is expected",
                 id="sql-injected"),
    pytest.param(_edit("recommendations.0.changes.0.up", "DROP TABLE public.orders"),
                 "recommendation 1 (on orders): changes[0].up", "expected one CREATE INDEX statement", id="other-sql"),
    pytest.param(_edit("recommendations.0.estimated_bytes", "big"),
                 "recommendation 1 (on orders): estimated_bytes", "expected an integer, got 'big'", id="wrong-type"),
    pytest.param(_edit("recommendations.1.changes.0.transactional", "false"),
                 "recommendation 2 (on orders): changes[0].transactional", "expected true or false", id="wrong-bool"),
    pytest.param(_edit("surprise", 1), "surprise", "unknown key", id="unknown-key"),
    pytest.param(_edit("recommendations.0.index.evil", "x"), "recommendation 1 (on orders): index.evil",
                 "unknown key", id="unknown-nested-key"),
    pytest.param(_edit("recommendations.0.changes.0.kind", "drop_index"),
                 "recommendation 1 (on orders): changes[0].kind", "a recommendation builds an index", id="drop"),
    pytest.param(_edit("recommendations.0.changes.0.table", "public.victim"),
                 "recommendation 1 (on orders): changes[0].table", "is not the recommended index's table",
                 id="other-table"),
]


@pytest.mark.parametrize(("edit", "key", "says"), TAMPERED)
def test_tampered_advice_is_refused_naming_the_key(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path, edit: Callable[[dict[str, Any]], None], key: str, says: str) -> None:
    data = _advice_json()
    edit(data)
    line = assert_error(_generate(cli, tmp_path, data), 2, "advice.json", key, says)
    assert "DROP TABLE public.victim" not in line or "statements" in line
    assert not (tmp_path / "out").exists()  # nothing written


def test_advice_and_report_are_told_apart(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = _advice_json()
    assert_error(_generate(cli, tmp_path, {**data, "command": "audit"}), 2, "advice.json",
                 '"command" must be "audit" with report_version, or "advise" with advice_version')
    assert_error(_generate(cli, tmp_path, {k: v for k, v in data.items() if k != "advice_version"}), 2,
                 "not a dbtune audit report or advice file")
    assert_error(_generate(cli, tmp_path, {k: v for k, v in data.items() if k != "command"}), 2,
                 "not a dbtune audit report or advice file")
    assert_error(_generate(cli, tmp_path, {**data, "dbtune_version": "0.0.1"}), 2, "written by dbtune 0.0.1",
                 "advise again")
    assert_error(_generate(cli, tmp_path, "[1, 2]"), 2, "not a dbtune audit report or advice file")


def test_recommendations_read_back_as_written(tmp_path: Path) -> None:
    advice = sample_advice()
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(advice.to_json()))
    findings = api.findings_from_file(path)
    assert [(f.check_id, f.check_name, f.severity.value, f.object) for f in findings] == [
        ("IX008", "index-recommended", "info", "public.orders")] * 2
    # printed again from their parse trees, the changes are the advisor's own
    assert [f.changes for f in findings] == [r.changes for r in advice.recommendations]
    assert findings[0].evidence["queries_served"][0] == {"name": "recent-orders", "weight": 1200.0,
                                                          "cost_before": 1834.5, "cost_after": 12.75}
    copy.deepcopy(findings)  # plain data


def test_a_newline_in_a_table_name_reaches_no_comment(tmp_path: Path) -> None:
    advice = sample_advice(table="y\nDROP TABLE public.victim; --")
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(advice.to_json()))
    generated = api.generate(api.findings_from_file(path), tmp_path / "sql", fmt="sql").generated
    assert generated is not None
    lines = "\n".join(p.read_text() for p in generated.files).splitlines()
    # the step comments name the table escaped, on their own line; the raw newline is only inside the
    # quoted identifier of the statements themselves (which is the table's real name)
    comments = [line for line in lines if "index-recommended" in line]
    assert comments and all(line.startswith("-- ") and '"y\\nDROP TABLE public.victim; --"' in line
                            for line in comments)


GUIDE_LIKE = """
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Order" (id bigint PRIMARY KEY, "customerId" bigint NOT NULL, created_at timestamptz NOT NULL,
                              status text NOT NULL);
INSERT INTO "Sales"."Order" SELECT g, g % 500, now() - g * interval '1 minute', CASE WHEN g % 100 = 0 THEN 'pending'
    ELSE 'done' END FROM generate_series(1, 20000) g;
ANALYZE "Sales"."Order";
"""
WORKLOAD = """-- name: customer-orders
SELECT id, created_at FROM "Sales"."Order" WHERE "customerId" = $1 ORDER BY created_at DESC LIMIT 10;
"""


def test_round_trip_advise_generate_lint_apply(db: TestDatabase, tmp_path: Path) -> None:
    """advise → JSON → migrate generate --from (Alembic and SQL) → lint (dbtune's rules and squawk: no
    finding) → apply → the recommended index exists and is valid, exactly quoted."""
    from dbtune.advisor.api import AdviseOptions, advise
    from dbtune.migrate.lint import lint_paths
    from dbtune.workload import load_queries

    load_as_history(db, GUIDE_LIKE)
    # costed by hypopg on 15 (Debian's package), ranked by pg_stats on 18 (no hypopg there)
    hypopg = db.query("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'") == [(1,)]
    assert hypopg is (int(str(db.query("SHOW server_version_num")[0][0])) < 160000)
    if hypopg:
        db.execute("CREATE EXTENSION hypopg")
    (tmp_path / "workload.sql").write_text(WORKLOAD)
    queries = load_queries(tmp_path / "workload.sql").queries
    advice = advise(resolve(db.dsn), Config(), queries, AdviseOptions())
    assert advice.recommendations, advice
    assert advice.engine is (EngineKind.HYPOPG if hypopg else EngineKind.STATISTICS)
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(advice.to_json()))
    findings = api.findings_from_file(path)
    assert all(c.kind in (ChangeKind.CREATE_INDEX, ChangeKind.ATTACH_INDEX) for f in findings for c in f.changes)
    alembic = api.generate(findings, tmp_path / "migrations").generated
    sql = api.generate(findings, tmp_path / "sql", fmt="sql").generated
    assert alembic is not None and sql is not None
    linted = lint_paths([*alembic.files, *sql.files])
    assert linted.squawk.ran and linted.findings == []
    api.apply(tmp_path / "migrations", resolve(db.dsn), ApplyOptions(report=lambda _: None))
    names = [c.index.split(".", 1)[1].strip('"') for f in findings for c in f.changes if c.index]
    rows = db.query("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'Sales' AND NOT i.indisprimary")
    assert sorted(rows) == sorted((name, True) for name in names)
    assert any(r.candidate.keys[0].text == "customerId" for r in advice.recommendations)


def test_missing_advice_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="file not found"):
        api.findings_from_advice(tmp_path / "nope.json")


def test_hostile_names_from_advise_to_apply(db: TestDatabase, tmp_path: Path) -> None:
    """A table and a column named with test_hostile_names' payloads: the advice's text report stays
    terminal-safe, and its JSON read back, generated (SQL and Alembic) and applied builds exactly the
    recommended index, quoted exactly; the sentinel table is still there."""
    from psycopg import sql
    from test_hostile_names import SENTINEL_TABLE, WHY_SQL

    from dbtune.advisor.api import AdviseOptions, advise
    from dbtune.escape import terminal_safe
    from dbtune.report import Format
    from dbtune.report.advice import render_advice
    from dbtune.workload import load_queries

    table, column = sql.Identifier(WHY_SQL).as_string(None), sql.Identifier('a"b\\c').as_string(None)
    load_as_history(db, f"CREATE TABLE public.{SENTINEL_TABLE} (id int); "
                        f"CREATE TABLE public.{table} (id bigint PRIMARY KEY, {column} bigint NOT NULL, note text); "
                        f"INSERT INTO public.{table} SELECT g, g % 1000, 'n' FROM generate_series(1, 30000) g; "
                        f"ANALYZE public.{table};")
    (tmp_path / "w.sql").write_text(f"-- name: hostile\nSELECT * FROM public.{table} WHERE {column} = $1;\n")
    advice = advise(resolve(db.dsn), Config(), load_queries(tmp_path / "w.sql").queries, AdviseOptions())
    text = render_advice(advice, Format.TEXT)
    assert terminal_safe(text) == text and '"y\\nDROP TABLE public.victim; --"' in text
    (rec,) = advice.recommendations
    path = tmp_path / "advice.json"
    path.write_text(render_advice(advice, Format.JSON))
    findings = api.findings_from_file(path)
    assert api.generate(findings, tmp_path / "sql", fmt="sql").generated is not None
    assert api.generate(findings, tmp_path / "migrations").generated is not None
    api.apply(tmp_path / "migrations", resolve(db.dsn), ApplyOptions(report=lambda _: None))
    rows = db.query(f"SELECT format('%I.%I', n.nspname, c.relname), i.indisvalid FROM pg_index i "
                    f"JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                    f"WHERE i.indrelid = 'public.{table.replace(chr(39), chr(39) * 2)}'::regclass "
                    "AND NOT i.indisprimary")
    assert rows == [(rec.changes[0].index, True)]
    assert db.query(f"SELECT to_regclass('public.{SENTINEL_TABLE}') IS NOT NULL") == [(True,)]


PARTITIONED = """
CREATE TABLE public.ev (id bigint, created date NOT NULL, kind text, n int) PARTITION BY RANGE (created);
CREATE TABLE public.ev_1 PARTITION OF public.ev FOR VALUES FROM ('2024-01-01') TO ('2024-07-01');
CREATE TABLE public.ev_2 PARTITION OF public.ev FOR VALUES FROM ('2024-07-01') TO ('2025-01-01');
INSERT INTO public.ev SELECT g, date '2024-01-01' + (g % 360), 'k' || (g % 50), g FROM generate_series(1, 20000) g;
CREATE INDEX ev_1_kind ON public.ev_1 (kind);
ANALYZE public.ev;
"""


def test_partitioned_table_advice_round_trip(db: TestDatabase, tmp_path: Path) -> None:
    """A recommendation on a partitioned table builds the index ON ONLY the parent, attaches a partition's
    matching index and builds the missing one on the other partition (a create_index on the partition):
    ``--from advice.json`` takes those steps (it refused the partition's build as "not the recommended
    index's table"), and applied, the parent's index is valid on every partition."""
    from dbtune.advisor.api import AdviseOptions, advise
    from dbtune.workload.sqlfile import parse_script

    load_as_history(db, PARTITIONED)
    if int(str(db.query("SHOW server_version_num")[0][0])) < 160000:
        db.execute("CREATE EXTENSION hypopg")
    queries, _, _ = parse_script("SELECT n FROM public.ev WHERE kind = 'k3';\n", "w.sql")
    advice = advise(resolve(db.dsn), Config(), queries, AdviseOptions())
    (rec,) = [r for r in advice.recommendations if r.candidate.table == "ev"]
    assert {c.table for c in rec.changes if c.kind is ChangeKind.CREATE_INDEX} > {"public.ev"}
    path = tmp_path / "advice.json"
    path.write_text(json.dumps(advice.to_json()))
    findings = api.findings_from_file(path)
    api.generate(findings, tmp_path / "migrations")
    api.apply(tmp_path / "migrations", resolve(db.dsn), ApplyOptions(report=lambda _: None))
    rows = db.query("SELECT i.indisvalid, (SELECT count(*) FROM pg_inherits h WHERE h.inhparent = i.indexrelid) "
                    "FROM pg_index i WHERE i.indrelid = 'public.ev'::regclass")
    assert rows == [(True, 2)]
