"""dbtune migrate beside an application's own Alembic history: dbtune records its revisions in its own
version table and never reads or writes ``alembic_version``; a revision run inside a transaction that the
caller opened is refused with an error that says why and how to run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import assert_error
from conftest import TestDatabase
from test_migrate import load_guide, quiet

from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.errors import ConfigError, UsageError
from dbtune.migrate import api
from dbtune.samples import guide_file, samples_dir

APP_REVISION = "a1b2c3d4e5f6"  # the application's own Alembic head, unknown to dbtune
APP_HISTORY = ("CREATE TABLE alembic_version (version_num varchar(32) NOT NULL PRIMARY KEY);"
               f"INSERT INTO alembic_version VALUES ('{APP_REVISION}');")
FK_SCHEMA = ("CREATE TABLE parent (id bigint PRIMARY KEY);"
             "CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent);"
             "INSERT INTO parent SELECT generate_series(1, 50);"
             "INSERT INTO child SELECT g, 1 + g % 50 FROM generate_series(1, 500) g;")


def test_application_alembic_history_is_left_alone(db18: TestDatabase, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """On a database an application already migrates with Alembic, generate, status, apply --dry-run,
    tune --yes and apply all work; dbtune's revision is recorded in dbtune_version and the application's
    alembic_version row is untouched. A revision in dbtune_version that --dir does not hold is one error
    line naming it, exit 2."""
    load_guide(db18)
    db18.execute(APP_HISTORY)
    directory = str(tmp_path / "migrations")
    config = str(samples_dir() / "production.toml")
    common = ("--dsn", db18.dsn, "--config", config, "--dir", directory)
    generated = cli("migrate", "generate", *common)
    assert generated.code == 0, generated
    revision = Path(generated.out.split()[0]).name.split("_")[0]
    status = cli("migrate", "status", *common)
    assert status.code == 0, status
    assert f"{revision}  pending" in status.out
    dry_run = cli("migrate", "apply", "--dry-run", *common)
    assert dry_run.code == 0, dry_run
    assert "would build" in dry_run.out
    tuned = cli("tune", *common, "--workload", str(guide_file("workload.sql")), "--iterations", "2",
                "--yes", "--quiet")
    assert tuned.code == 0, tuned
    assert "BEFORE / AFTER" in tuned.out
    status = cli("migrate", "status", *common)
    assert f"{revision}  applied" in status.out, status
    again = cli("migrate", "apply", *common)
    assert again.code == 0, again
    assert "nothing to apply" in again.err and revision in again.err
    assert db18.query("SELECT version_num FROM alembic_version") == [(APP_REVISION,)]
    assert db18.query("SELECT version_num FROM dbtune_version") == [(revision,)]

    # dbtune_version names a revision that --dir does not hold (another directory, a deleted file).
    db18.execute("UPDATE dbtune_version SET version_num = 'feedfacecafe'")
    for command in (("status",), ("apply", "--quiet"), ("apply", "--downgrade-to", "base", "--quiet")):
        assert_error(cli("migrate", *command, *common), 2, "feedfacecafe", "dbtune_version", directory)
    assert db18.query("SELECT version_num FROM alembic_version") == [(APP_REVISION,)]


def test_version_table_from_the_config(db18: TestDatabase, tmp_path: Path) -> None:
    """``[migrate] version_table`` names the table, for dbtune's API and for a plain ``alembic upgrade``
    run in the project (which reads the same dbtune.toml); a bad name is a config error."""
    db18.execute(FK_SCHEMA + APP_HISTORY)
    settings = resolve(db18.dsn)
    cfg = parse_config({"migrate": {"version_table": "ops_dbtune_revisions"}})
    assert cfg.migrate.version_table == "ops_dbtune_revisions"
    assert parse_config({}).migrate.version_table == "dbtune_version"
    for bad in ("", "x" * 64, "a\x00b"):
        with pytest.raises(ConfigError, match="version_table"):
            parse_config({"migrate": {"version_table": bad}})
    from dbtune.audit import audit

    findings = list(audit(settings, cfg).findings)
    generated = api.generate(findings, tmp_path / "migrations").generated
    assert generated is not None
    api.apply(tmp_path / "migrations", settings, quiet(), version_table="ops_dbtune_revisions")
    assert [s.applied for s in api.status(tmp_path / "migrations", settings,
                                          version_table="ops_dbtune_revisions")] == [True]
    assert db18.query("SELECT version_num FROM ops_dbtune_revisions") == [(generated.revision,)]
    assert db18.query("SELECT to_regclass('dbtune_version')") == [(None,)]
    # A plain `alembic downgrade` in the project directory: dbtune's env.py reads dbtune.toml from there.
    (tmp_path / "dbtune.toml").write_text('[migrate]\nversion_table = "ops_dbtune_revisions"\n')
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    run = subprocess.run([sys.executable, "-m", "alembic", "downgrade", "base"], cwd=tmp_path, text=True,
                         capture_output=True, env={"PATH": "/usr/bin:/bin", "DATABASE_URL": db18.dsn}, timeout=120)
    assert run.returncode == 0, run.stderr
    assert db18.query("SELECT count(*) FROM ops_dbtune_revisions") == [(0,)]
    assert db18.query("SELECT to_regclass('dbtune_version')") == [(None,)]
    assert db18.query("SELECT version_num FROM alembic_version") == [(APP_REVISION,)]
    assert db18.query("SELECT to_regclass('child_parent_id_idx')") == [(None,)]


# An application's env.py that runs Alembic inside its own outer transaction.
OUTER_TRANSACTION_ENV = '''
import os

import psycopg
from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(os.environ["APP_DSN"]),
                       poolclass=NullPool)
with engine.begin() as connection:
    context.configure(connection=connection, version_table="dbtune_version")
    with context.begin_transaction():
        context.run_migrations()
'''


def test_revision_inside_the_callers_transaction(db18: TestDatabase, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A dbtune revision run by an application's Alembic inside the application's own transaction is
    refused with one clear error (concurrent index builds cannot run inside a transaction; how to run it),
    which Alembic's command line prints as one ``FAILED:`` line; nothing is built or recorded. Run as the
    error says, the same revision applies."""
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    db18.execute(FK_SCHEMA)
    settings = resolve(db18.dsn)
    from dbtune.audit import audit

    directory = tmp_path / "migrations"
    assert api.generate(list(audit(settings, parse_config({})).findings), directory).generated is not None
    (directory / "env.py").write_text(OUTER_TRANSACTION_ENV)
    monkeypatch.setenv("APP_DSN", db18.dsn)
    cfg = Config()
    cfg.set_main_option("script_location", str(directory))
    with pytest.raises(CommandError) as refused:
        command.upgrade(cfg, "head")
    assert isinstance(refused.value, UsageError)
    message = str(refused.value)
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in message
    assert "dbtune migrate apply" in message and "transaction_per_migration" in message
    assert "\n" not in message
    assert db18.query("SELECT to_regclass('child_parent_id_idx'), to_regclass('dbtune_version')") == [(None, None)]
    (directory / "env.py").write_text((Path(api.__file__).parent / "templates" / "env.py").read_text())
    assert len(api.apply(directory, settings, quiet())) == 1
    assert db18.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'child_parent_id_idx'::regclass") \
        == [(True,)]
