"""dbtune tune: the whole loop on a user's database, with confirmation before it writes."""

from __future__ import annotations

from pathlib import Path

from conftest import TestDatabase
from test_migrate import load_guide

from dbtune.samples import guide_file, samples_dir


def _index_count(db: TestDatabase) -> int:
    return int(db.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                        "AND indexname LIKE 'idx_%'")[0][0])  # type: ignore[arg-type]


def test_tune_with_yes_applies_and_compares(db: TestDatabase, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load_guide(db, scale=0.02)
    run = cli("tune", "--dsn", db.dsn, "--config", str(samples_dir() / "production.toml"),
              "--workload", str(guide_file("workload.sql")), "--iterations", "5", "--dir",
              str(tmp_path / "migrations"), "--yes", "--quiet")
    assert run.code == 0, run
    assert "expected-index-missing" in run.out
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
