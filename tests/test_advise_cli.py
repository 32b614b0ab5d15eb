"""``dbtune advise``: bad input is one ``error:`` line and exit 2, an unreachable server exit 3 (no password
shown), and on both servers a workload file's queries get their recommendations as text and as JSON, the
database left as it was (read-only: no index built, no hypothetical index left)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import CLI, assert_error
from conftest import TestDatabase, load_as_history

from dbtune.cli.advise import parse_budget
from dbtune.db.local_server import free_port
from dbtune.errors import UsageError

SCHEMA = """
CREATE TABLE public.orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, status text NOT NULL,
                            created_at timestamptz NOT NULL, note text);
INSERT INTO public.orders SELECT g, g % 1000, CASE WHEN g % 100 = 0 THEN 'pending' ELSE 'done' END,
       timestamptz '2025-01-01' + g * interval '1 minute', 'n' FROM generate_series(1, 30000) g;
ANALYZE public.orders;
"""
WORKLOAD = """-- name: customer-orders
SELECT id, created_at FROM public.orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 10;
-- name: broken
SELECT * FROM public.no_such_table WHERE id = $1;
"""


@pytest.mark.parametrize(("value", "says"), [
    ("-1", "'-1' is not a size"), ("abc", "'abc' is not a size"), ("2.5", "'2.5' is not a fraction"),
    ("0", "'0' is not a fraction"), ("0MB", "is no room for an index"), ("12 parsecs", "is not a size"),
])
def test_bad_budget_is_a_usage_error(cli: CLI, value: str, says: str) -> None:
    assert_error(cli("advise", "--budget", value, "--dsn", "host=/nonexistent dbname=x"), 2, "--budget", says)


def test_budget_forms() -> None:
    assert parse_budget("0.5") == 0.5 and isinstance(parse_budget("1"), float)
    assert parse_budget("200MB") == 200 * 1024 * 1024 and parse_budget("1.5GB") == 1536 * 1024 * 1024
    assert parse_budget("64kB") == 65536 and parse_budget("8192b") == 8192
    with pytest.raises(UsageError, match="--budget"):
        parse_budget("1.01")


def test_other_bad_input_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    nodb = ("--dsn", "host=/nonexistent dbname=x")
    assert_error(cli("advise", "--workload", str(tmp_path / "missing.sql"), *nodb), 2, "missing.sql")
    assert_error(cli("advise", "--workload", "w.sql", "--top", "5", *nodb), 2, "--workload", "--top")
    assert_error(cli("advise", "--top", "0", *nodb), 2, "--top")
    assert_error(cli("advise", "--max-indexes", "0", *nodb), 2, "--max-indexes")
    assert_error(cli("advise", "--yes", *nodb), 2, "--yes")
    assert_error(cli("advise", "--validate", *nodb), 2, "--validate", "pass --yes")
    assert_error(cli("advise", "--trial-builds", *nodb), 2, "--trial-builds", "pass --yes")
    assert_error(cli("advise", "--format", "xml", *nodb), 2, "--format")
    assert_error(cli("advise", "--workload-format", "psql", *nodb), 2, "--workload-format")


def test_unreachable_server_exits_3_without_the_password(cli: CLI) -> None:
    port = free_port()
    dsn = f"host=127.0.0.1 port={port} dbname=x user=x password=SECRET123 connect_timeout=2"
    assert_error(cli("advise", "--dsn", dsn), 3, f"127.0.0.1:{port}", secrets=("SECRET123",))


def test_validate_refused_on_what_looks_like_production(cli: CLI, db: TestDatabase, tmp_path: Path) -> None:
    load_as_history(db, SCHEMA)
    (tmp_path / "w.sql").write_text(WORKLOAD)
    db.execute(f"ALTER DATABASE {db.name} SET default_transaction_read_only = on")
    assert_error(cli("advise", "--dsn", db.dsn, "--workload", "w.sql", "--validate", "--yes"), 2,
                 "--validate refused", "looks like production")


def _index_count(db: TestDatabase) -> int:
    rows = db.query("SELECT count(*) FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indrelid "
                    "WHERE c.relname = 'orders'")
    return int(rows[0][0])  # type: ignore[call-overload]


def test_advise_text_and_json(cli: CLI, db: TestDatabase, tmp_path: Path) -> None:
    load_as_history(db, SCHEMA)
    (tmp_path / "w.sql").write_text(WORKLOAD)
    before = _index_count(db)
    text = cli("advise", "--dsn", db.dsn, "--workload", "w.sql", "--quiet")
    assert text.code == 0, text
    assert "engine: " in text.out and "RECOMMENDED (" in text.out
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id" in text.out
    assert "customer-orders" in text.out  # the query it serves, with its cost before → after
    assert "PROBLEMS (1" in text.out and "no_such_table" in text.out  # reported, the rest went on
    out = cli("advise", "--dsn", db.dsn, "--workload", "w.sql", "--format", "json", "--output", "advice.json",
              "--budget", "50MB", "--max-indexes", "1", "--quiet")
    assert out.code == 0 and out.out == "", out
    data = json.loads((tmp_path / "advice.json").read_text())
    assert data["advice_version"] == 1 and data["budget_bytes"] == 50 * 1024 * 1024 and data["max_indexes"] == 1
    assert len(data["recommendations"]) == 1
    rec = data["recommendations"][0]
    assert rec["index"]["table"] == "orders" and rec["index"]["keys"][0]["text"] == "customer_id"
    assert [q["name"] for q in rec["queries"]] == ["customer-orders"]
    assert rec["queries"][0]["cost_after"] < rec["queries"][0]["cost_before"]
    assert [p["name"] for p in data["problems"]] == ["broken"]
    # read-only: no index was built, and no hypothetical index is left in any backend
    assert _index_count(db) == before


def test_audit_shows_the_top_recommendations_as_findings(cli: CLI, db: TestDatabase, tmp_path: Path) -> None:
    """``dbtune audit --workload FILE`` runs the advisor read-only on that workload: its recommendation is an
    info finding ``IX008 index-recommended`` with its evidence and the recommendation's changes as its fix
    (so the audit's fix SQL builds it); ``[audit] recommendations = 0`` turns it off."""
    load_as_history(db, SCHEMA)
    (tmp_path / "w.sql").write_text(WORKLOAD)
    before = _index_count(db)
    run = cli("audit", "--dsn", db.dsn, "--workload", "w.sql", "--format", "json", "--select", "IX008")
    assert run.code == 0, run  # info findings do not fail the audit
    (finding,) = json.loads(run.out)["findings"]
    assert (finding["check_id"], finding["check_name"], finding["severity"], finding["object"]) == (
        "IX008", "index-recommended", "info", "public.orders")
    # the latest rows of one customer: the key that also gives the ORDER BY (and covers the select list)
    assert finding["message"].startswith("index public.orders (customer_id, created_at DESC) INCLUDE (id) serves 1 "
                                         "query of the workload")
    evidence = finding["evidence"]
    assert {"benefit", "queries_served", "estimated_bytes", "engine"} <= set(evidence)
    assert [q["name"] for q in evidence["queries_served"]] == ["customer-orders"]
    assert [c["kind"] for c in finding["fix"]["changes"]] == ["create_index"]
    assert finding["fix"]["sql"][0].startswith(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_created_at_idx")
    text = cli("audit", "--dsn", db.dsn, "--workload", "w.sql", "--select", "IX008")
    assert "index-recommended" in text.out and "CREATE INDEX CONCURRENTLY IF NOT EXISTS" in text.out
    (tmp_path / "dbtune.toml").write_text("[audit]\nrecommendations = 0\n")
    off = cli("audit", "--dsn", db.dsn, "--workload", "w.sql", "--format", "json", "--select", "IX008")
    assert off.code == 0 and json.loads(off.out)["findings"] == []
    assert _index_count(db) == before  # read-only
