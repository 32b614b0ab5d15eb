"""dbtune tune: the whole loop on a user's database, with confirmation before it writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import TestDatabase
from test_migrate import load_guide

from dbtune.samples import guide_file, samples_dir

pytestmark = pytest.mark.measures  # timed verdicts: alone under xdist (tests/conftest.py)


def _index_count(db: TestDatabase) -> int:
    return int(db.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                        "AND indexname LIKE 'idx_%'")[0][0])  # type: ignore[arg-type]


def test_tune_with_yes_applies_and_compares(db: TestDatabase, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_guide(db, scale=0.02)
    run = cli("tune", "--dsn", db.dsn, "--config", str(samples_dir() / "production.toml"),
              "--workload", str(guide_file("workload.sql")), "--iterations", "15", "--dir",
              str(tmp_path / "migrations"), "--yes", "--quiet",
              "--app-config", str(guide_file(".env.production")), "--app-config", str(guide_file("pgbouncer.ini")))
    assert run.code == 0, run
    assert "expected-index-missing" in run.out
    # the application's config is audited with the database: the pools through PgBouncer, 55 of 97
    assert f"- {guide_file('pgbouncer.ini')} (pgbouncer)" in run.out
    assert "- connection budget: pgbouncer 55 of 97 server connections" in run.out
    assert "BEFORE / AFTER" in run.out
    assert "Seq Scan on webhook_idempotency → Index Scan using" in run.out
    assert "faster" in run.out
    assert _index_count(db) == 6  # the guide's seven, less (message_sid): the unique index serves it
    assert "change(s) will be applied to" in run.err


def test_tune_without_confirmation_changes_nothing(db: TestDatabase, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_guide(db, scale=0.02)
    run = cli("tune", "--dsn", db.dsn, "--config", str(samples_dir() / "production.toml"),
              "--workload", str(guide_file("workload.sql")), "--iterations", "3", "--dir",
              str(tmp_path / "migrations"), "--quiet")
    assert run.code == 2, run
    assert "confirm with --yes" in run.err.splitlines()[-1]
    assert _index_count(db) == 0


def test_tune_with_an_unreadable_app_config_stops_before_anything(db: TestDatabase, cli,  # type: ignore[no-untyped-def]
                                                                  tmp_path: Path) -> None:
    load_guide(db, scale=0.01)
    broken = tmp_path / ".env"
    broken.write_text("DATABASE_POOL_MAX=50\nthis is not a setting\n")
    run = cli("tune", "--dsn", db.dsn, "--workload", str(guide_file("workload.sql")), "--dir",
              str(tmp_path / "migrations"), "--yes", "--app-config", str(broken))
    assert run.code == 2, run
    [line] = run.err.splitlines()
    assert line.startswith("error:") and f"{broken}:2" in line, line
    assert _index_count(db) == 0 and not (tmp_path / "migrations").exists()



ADVISOR_SCHEMA = """
CREATE TABLE items (id int NOT NULL, code int NOT NULL, k int NOT NULL, pad text NOT NULL);
ALTER TABLE items ALTER k SET STATISTICS 0;
INSERT INTO items SELECT g, g, (g * 7919) % 60000, repeat('x', 300) FROM generate_series(1, 60000) g;
"""

ADVISOR_WORKLOAD = """-- name: by-code
SELECT pad FROM items WHERE code = $1;
-- name: most-rows
SELECT count(pad) FROM items WHERE k BETWEEN 6000 AND 1000000;
"""


def test_tune_keeps_what_helps_and_reverts_what_does_not(db: TestDatabase, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``k`` has no statistics (``SET STATISTICS 0``), so the planner takes the range that 90 % of the rows
    match for 0.5 % of them and costs an index on ``k`` far below the sequential scan: the advisor
    recommends it. Built and measured, it does not make the query faster (with bitmap scans off for the
    database, it fetches the rows in random heap order: slower), and tune reverts it and says why. The
    index on ``code`` makes its lookup faster: kept, and the migration builds it."""
    db.execute(ADVISOR_SCHEMA)
    db.execute("ANALYZE items")  # after the load's commit: the advisor does not count the load as writes
    db.execute("SELECT count(*) FROM items WHERE code = 1")  # read: not a write-only table
    db.execute(f"ALTER DATABASE {db.name} SET enable_bitmapscan = off")
    if db.query("SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg'"):
        db.execute("CREATE EXTENSION hypopg")
    workload = tmp_path / "workload.sql"
    workload.write_text(ADVISOR_WORKLOAD)
    run = cli("tune", "--dsn", db.dsn, "--workload", str(workload), "--iterations", "10",
              "--dir", str(tmp_path / "migrations"), "--yes", "--quiet")
    assert run.code == 0, run
    stage = run.out[run.out.index("ADVISOR: ranked by "):run.out.index("\nMIGRATION")]
    kept, _, reverted = stage.partition("\n  reverted ")
    assert "kept 1 (measured faster on the server; the migration builds them):" in kept, stage
    assert "public.items (code" in kept and "public.items (k" not in kept, stage
    assert re.match(r"\d+ \(built, measured, dropped again\):\n    public\.items \(k", reverted), stage
    reason = " ".join(reverted.split()).split(":", 2)[2]
    assert reason.startswith((" made most-rows ",
                              " no query that uses it got significantly faster")), stage
    indexes = {str(r[0]) for r in db.query("SELECT indexname FROM pg_indexes WHERE tablename = 'items'")}
    assert len(indexes) == 1 and indexes.pop().startswith("items_code"), run.out


def test_tune_refuses_to_build_on_a_server_that_looks_like_production(db18: TestDatabase, cli,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    """``default_transaction_read_only`` on for the database: even with ``--yes``, the advisor's builds are
    refused with one error line (exit 2), and nothing is built."""
    db18.execute(ADVISOR_SCHEMA)
    db18.execute(f"ALTER DATABASE {db18.name} SET default_transaction_read_only = on")
    workload = tmp_path / "workload.sql"
    workload.write_text(ADVISOR_WORKLOAD)
    run = cli("tune", "--dsn", db18.dsn, "--workload", str(workload), "--iterations", "3",
              "--dir", str(tmp_path / "migrations"), "--yes", "--quiet")
    assert run.code == 2, run
    assert run.err.splitlines()[-1].startswith("error: the advisor's validation refused: "), run.err
    assert "looks like production (default_transaction_read_only is on)" in run.err.splitlines()[-1]
    assert db18.query("SELECT count(*) FROM pg_indexes WHERE tablename = 'items'") == [(0,)]
