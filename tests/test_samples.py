"""The shipped samples (``sample_configs/``) load, encode the guide, and fit the guide's schema.

Every ``*.toml`` there is loaded (the list is a glob, so a new sample is covered without editing this
file); the production profile is checked against the guide's checklist, ``env.production`` and
``pgbouncer.ini`` against the profiles that encode them; ``extends`` misuse is a ConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import conftest
import pytest
from conftest import SHARED

from dbtune.appconfig import read_app_config
from dbtune.audit import audit
from dbtune.config import load_config
from dbtune.config.model import Config, PoolConfig
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.errors import ConfigError
from dbtune.samples import guide_file, samples_dir

SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"
TOMLS = sorted(SAMPLES.glob("*.toml"))
PROFILES = {"development", "staging", "production", "enterprise"}
GUIDE = SHARED / "guide" / "performance-tuning-guide.md"

# The guide's Phase 2 / Step 1 (scripts/performance/add-indexes.sql): table, columns, predicate.
GUIDE_INDEXES = [
    ("webhook_idempotency", ["message_sid"], None),
    ("webhook_idempotency", ["account_sid", "created_at DESC"], None),
    ("vendor_routing_responses", ["routing_id"], None),
    ("vendor_routing_responses", ["routing_id", "response"], "response = 'ACCEPTED'"),
    ("orders", ["retailer_id", "created_at DESC"], None),
    ("orders", ["status", "created_at DESC"], None),
    ("jobs", ["state", "priority DESC", "created_at"], None),
]


def test_the_glob_finds_the_samples() -> None:
    names = {p.stem for p in TOMLS}
    assert PROFILES | {"guide-checklist", "production-pgbouncer"} <= names
    assert samples_dir().resolve() == SAMPLES.resolve()  # what `dbtune demo --profile` reads


@pytest.mark.parametrize("path", TOMLS, ids=[p.name for p in TOMLS])
def test_every_sample_loads(path: Path) -> None:
    config, origin = load_config(path)
    assert isinstance(config, Config) and origin == path
    if path.stem in PROFILES:
        assert config.profile is not None and config.profile.name == path.stem
        assert config.pool, f"{path.name} has no [[pool]]"
    # Every profile carries the guide's checklist, through `extends`.
    assert [(e.table, e.columns, e.where) for e in config.expect.index] == GUIDE_INDEXES


def production() -> Config:
    config, _ = load_config(SAMPLES / "production.toml")
    return config


def test_production_encodes_the_guide() -> None:
    config = production()
    assert config.profile is not None and (config.profile.name, config.profile.servers) == ("production", 5)
    assert len(config.expect.index) == 7
    assert [(e.table, e.columns, e.where) for e in config.expect.index] == GUIDE_INDEXES
    unique = [(e.table, e.columns, e.where) for e in config.expect.unique]
    assert ("vendor_routing_responses", ["routing_id"], "response = 'ACCEPTED'") in unique
    assert config.pool == [PoolConfig(name="app", role="app", size=30, max=50, idle_timeout=30_000,
                                      connection_timeout=5_000, instances=5, via="direct")]
    assert config.pgbouncer is None
    assert config.isolation.required == "read committed"
    assert config.database.statement_timeout == 30_000


def test_env_production_matches_the_production_pool() -> None:
    """Read by dbtune's own .env reader, ``env.production`` is the production profile's pool."""
    [app_pool] = read_app_config([SAMPLES / "env.production"]).pools
    [pool] = production().pool
    assert (app_pool.name, app_pool.size, app_pool.max, app_pool.idle_timeout_ms, app_pool.connection_timeout_ms) \
        == (pool.name, pool.size, pool.max, pool.idle_timeout, pool.connection_timeout)


def test_pgbouncer_ini_matches_production_pgbouncer() -> None:
    [bouncer] = read_app_config([SAMPLES / "pgbouncer.ini"]).poolers
    config, _ = load_config(SAMPLES / "production-pgbouncer.toml")
    assert config.pgbouncer is not None
    assert bouncer.pool_mode == config.pgbouncer.pool_mode == "transaction"
    for key in ("max_client_conn", "default_pool_size", "min_pool_size", "reserve_pool_size"):
        assert getattr(bouncer, key) == getattr(config.pgbouncer, key), key
    assert bouncer.reserve_pool_timeout_ms == config.pgbouncer.reserve_pool_timeout
    assert [p.via for p in config.pool] == ["pgbouncer"]
    assert config.profile is not None and config.profile.name == "production"  # from production.toml


def test_the_guide_still_says_so() -> None:
    """The pinned indexes are the guide's own ``CREATE INDEX`` statements."""
    if not GUIDE.is_file():
        pytest.skip(f"the guide is absent ({GUIDE}); set DBTUNE_SHARED to the shared folder")
    text = GUIDE.read_text()
    found = []
    for table, cols, where in re.findall(
            r"CREATE INDEX IF NOT EXISTS \w+\s+ON (\w+)\(([^)]*)\)\s*(?:WHERE ([^;]+))?;", text):
        found.append((table, [c.strip() for c in cols.split(",")], where.strip() or None))
    assert found == GUIDE_INDEXES
    assert re.search(r"DATABASE_POOL_SIZE=30\b", text) and re.search(r"DATABASE_POOL_MAX=50\b", text)
    assert re.search(r"DATABASE_IDLE_TIMEOUT=30000\b", text)
    assert re.search(r"DATABASE_CONNECTION_TIMEOUT=5000\b", text)
    assert "UNIQUE (routing_id)" in text and "WHERE response = 'ACCEPTED'" in text


# --- extends ----------------------------------------------------------------------------------------


def test_extends_merges_tables_and_replaces_arrays(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(
        '[database]\nstatement_timeout = "10s"\napplication_roles = ["app"]\n'
        '[[pool]]\nname = "a"\nsize = 1\nmax = 2\n[[pool]]\nname = "b"\nsize = 1\nmax = 2\n')
    (tmp_path / "child.toml").write_text(
        'extends = "base.toml"\n[database]\nstatement_timeout = "20s"\n'
        '[[pool]]\nname = "c"\nsize = 3\nmax = 4\n')
    config, _ = load_config(tmp_path / "child.toml")
    assert config.database.statement_timeout == 20_000
    assert config.database.application_roles == ["app"]
    assert [p.name for p in config.pool] == ["c"]


def test_extends_loop_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ConfigError, match=r"'extends' loops back to .*a\.toml"):
        load_config(tmp_path / "a.toml")
    (tmp_path / "self.toml").write_text('extends = "self.toml"\n')
    with pytest.raises(ConfigError, match=r"self\.toml: 'extends' loops back"):
        load_config(tmp_path / "self.toml")


def test_extends_missing_or_broken_base_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "child.toml").write_text('extends = "no-such-base.toml"\n')
    with pytest.raises(ConfigError, match=r"child\.toml: 'extends': .*no-such-base\.toml not found"):
        load_config(tmp_path / "child.toml")
    (tmp_path / "broken.toml").write_text("[database\n")
    (tmp_path / "uses-broken.toml").write_text('extends = "broken.toml"\n')
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_config(tmp_path / "uses-broken.toml")
    (tmp_path / "number.toml").write_text("extends = 3\n")
    with pytest.raises(ConfigError, match=r"number\.toml: 'extends': expected a file name"):
        load_config(tmp_path / "number.toml")


def test_a_base_key_error_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text("[database]\nstatment_timeout = 5\n")
    (tmp_path / "child.toml").write_text('extends = "base.toml"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'database\.statment_timeout'"):
        load_config(tmp_path / "child.toml")


# --- the samples fit the guide's schema -------------------------------------------------------------


@pytest.fixture(scope="module")
def guide_db(pg18: LocalServer) -> Iterator[conftest.TestDatabase]:
    database = conftest.new_database(pg18, "samples")
    pg18.psql_file(database.name, guide_file("schema.sql"))
    yield database
    conftest.drop_database(database)


@pytest.mark.parametrize("path", TOMLS, ids=[p.name for p in TOMLS])
def test_every_sample_audits_the_guide_schema(path: Path, guide_db: conftest.TestDatabase) -> None:
    """Every table and column a sample names exists in ``guide/schema.sql`` (else ConfigError), and the
    bare schema lacks exactly the guide's indexes."""
    config, _ = load_config(path)
    report = audit(resolve(guide_db.dsn), config, config_path=path)
    missing = [f for f in report.findings if f.check_name == "expected-index-missing"]
    assert len(missing) == len(GUIDE_INDEXES)
    assert {f.object for f in missing} == {f"public.{t}" for t, _, _ in GUIDE_INDEXES}
