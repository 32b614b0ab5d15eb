"""``dbtune audit`` on every published schema in ``../shared/data`` (and ``pgbench -i``), pinned by golden files.

Each schema is loaded once per server (a module-scoped fixture) and audited with no config; its findings,
as (check name, object) pairs with their multiplicity, must equal ``tests/golden/schemas/<name>.json``
exactly, on every server version the tests have. The golden holds no sizes, oids or timestamps, and
database-level findings name ``<database>``, so it is stable across runs and versions.
``tests/golden/schemas/<name>.md`` gives the reason for each kind of finding, as a DBA read it.

pagila and northwind are also pinned in ``tests/test_real_schemas.py`` with their evidence (the
unindexed columns, the duplicate kept, the skips) on the suite's two servers; here they are pinned on
every server version like the others. After a deliberate change to a check, regenerate and review the diff:

    DBTUNE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_schema_goldens.py

A schema is collected only for the servers whose ``pg_available_extensions`` has every extension it
needs (``EXTENSIONS``): musicbrainz and openstreetmap need contrib modules that pgserver's PostgreSQL 16
lacks, so they run on 15 and 18 only and are never generated (nor skipped) on 16. Each server here is
the module's own (``pg``), so the server-level findings do not depend on the tests run before.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import conftest
import psycopg
import pytest
from conftest import SHARED, drop_database, new_database
from test_real_schemas import audit_json, pairs

from dbtune.db.local_server import LocalServer, ServerStartError

DATA = SHARED / "data"
GOLDEN = Path(__file__).parent / "golden" / "schemas"
UPDATE = os.environ.get("DBTUNE_UPDATE_GOLDEN") == "1"

MUSICBRAINZ_FILES = (
    "Extensions", "CreateCollations", "CreateTypes", "CreateTables", "CreatePrimaryKeys",
    "CreateSearchConfiguration", "CreateFunctions", "CreateIndexes", "CreateFKConstraints",
    "CreateConstraints", "SetSequences", "CreateViews", "InsertDefaultRows",
)


def _load_files(*files: str) -> Callable[[LocalServer, conftest.TestDatabase, Path], None]:
    def load(pg: LocalServer, db: conftest.TestDatabase, tmp: Path) -> None:
        for file in files:
            pg.psql_file(db.name, DATA / file)
    return load


def _load_chinook(pg: LocalServer, db: conftest.TestDatabase, tmp: Path) -> None:
    """Chinook's script drops, creates and connects to its own database: those lines are left out."""
    text = (DATA / "chinook" / "Chinook_PostgreSql.sql").read_text(encoding="utf-8")
    text = re.sub(r"^(DROP DATABASE|CREATE DATABASE|\\c)\b[^\n]*\n", "", text, flags=re.MULTILINE)
    script = tmp / "chinook.sql"
    script.write_text(text, encoding="utf-8")
    pg.psql_file(db.name, script)


def _load_musicbrainz(pg: LocalServer, db: conftest.TestDatabase, tmp: Path) -> None:
    """The order of MusicBrainz's SOURCE.md, in schema ``musicbrainz`` (the database's search_path)."""
    db.execute(f"CREATE SCHEMA musicbrainz; ALTER DATABASE {db.name} SET search_path = musicbrainz, public")
    for name in MUSICBRAINZ_FILES:
        try:
            pg.psql_file(db.name, DATA / "musicbrainz" / f"{name}.sql")
        except ServerStartError as e:
            if name != "CreateCollations" or "ICU is not supported" not in str(e):
                raise
            # The embedded server is built without ICU: the collation the columns and eight indexes
            # name is made from libc's "C" instead (no check reads a collation's provider).
            db.execute('CREATE COLLATION musicbrainz.musicbrainz FROM "C"')
    db.execute("ANALYZE")


def _load_pgbench(pg: LocalServer, db: conftest.TestDatabase, tmp: Path) -> None:
    """``pgbench -i --foreign-keys`` at scale 1 (100,000 accounts), with the server's own pgbench.

    pgbench's own VACUUM ANALYZE can run before the COPY's row counts reach the cumulative statistics
    (they are flushed at most once a second), leaving ``n_mod_since_analyze`` at 100,000 or at 0 by
    chance; an ANALYZE from a new session, after pgbench has exited and flushed, makes it deterministic.
    """
    subprocess.run([str(pg.bindir / "pgbench"), "-i", "-q", "--foreign-keys", "-s", "1", db.dsn],
                   capture_output=True, text=True, check=True, timeout=120)
    db.execute("ANALYZE")


SCHEMAS: dict[str, Callable[[LocalServer, conftest.TestDatabase, Path], None]] = {
    "pagila": _load_files("pagila/pagila-schema.sql", "pagila/pagila-data.sql"),
    "northwind": _load_files("northwind/northwind.sql"),
    "chinook": _load_chinook,
    "job": _load_files("job/schema.sql", "job/fkindexes.sql"),
    "musicbrainz": _load_musicbrainz,
    "openstreetmap": _load_files("openstreetmap/structure-pre-postgis.sql"),
    "pgbench": _load_pgbench,
    "tpch": _load_files("tpch/tpch-create.sql", "tpch/tpch-pkeys.sql", "tpch/tpch-alter.sql",
                        "tpch/tpch-index.sql"),
}


# The contrib extensions a schema's DDL creates. A schema is run (and has a golden) only on the servers
# whose pg_available_extensions has them all: pgserver's PostgreSQL 16 ships no contrib modules, so
# musicbrainz and openstreetmap are never generated for it (not collected, so not a skip).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "musicbrainz": ("cube", "earthdistance", "unaccent"),
    "openstreetmap": ("btree_gist",),
}


def runs_on(server: str, schema: str) -> bool:
    """Whether ``schema`` loads on ``server``: every extension it needs is available there."""
    return set(EXTENSIONS.get(schema, ())) <= conftest.available_extensions(server)


SERVER_SCHEMAS = [(server, schema) for server in conftest.available_versions() for schema in SCHEMAS
                  if runs_on(server, schema)]


@pytest.fixture(scope="module")
def pg(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    """This module's own servers, one per version (the suite's and pgserver's PostgreSQL 16).

    Not the shared ones: the goldens pin server-level findings (``synchronous-commit-off``,
    ``timeout-unset``), which read ``pg_file_settings`` and ``pg_db_role_setting`` at audit time, so any
    test before them that changes the shared server's settings (a check case's ``ALTER SYSTEM`` and reload)
    would change them; on a server of their own they do not depend on the order of the tests.
    """
    server = conftest.create_server(request.param)
    try:
        yield server
    finally:
        server.destroy()


def golden_form(report: dict[str, Any]) -> list[list[Any]]:
    """The findings as sorted ``[check name, object, count]`` rows: nothing that differs between runs."""
    return [[check, obj, count] for (check, obj), count in sorted(Counter(pairs(report)).items())]


@pytest.fixture(scope="module")
def schema_reports(pg: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every schema loaded once on this server, audited once; the databases dropped at the end."""
    if not DATA.is_dir():
        pytest.skip(f"the shared sample data is absent ({DATA}); set DBTUNE_SHARED to the shared folder")
    tmp = tmp_path_factory.mktemp("schemas")
    with psycopg.connect(pg.dsn()) as conn:
        available = {row[0] for row in conn.execute("SELECT name FROM pg_catalog.pg_available_extensions")}
    loaded: list[conftest.TestDatabase] = []
    reports: dict[str, Any] = {}
    try:
        for name, load in SCHEMAS.items():
            if not set(EXTENSIONS.get(name, ())) <= available:  # not collected on this server either
                continue
            db = new_database(pg, name)
            loaded.append(db)
            load(pg, db, tmp)
            reports[name] = audit_json(db.dsn, tmp)
        yield reports
    finally:
        for db in loaded:
            drop_database(db)


@pytest.mark.parametrize(("pg", "schema"), SERVER_SCHEMAS, indirect=["pg"])
def test_schema_findings_match_golden(schema_reports: dict[str, Any], schema: str) -> None:
    path = GOLDEN / f"{schema}.json"
    found = golden_form(schema_reports[schema])
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        # One finding a line, so that a regenerated golden's diff reads finding by finding.
        path.write_text("[\n" + ",\n".join(json.dumps(row) for row in found) + "\n]\n", encoding="utf-8")
    assert found == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_finding_kind_has_a_reason(schema: str) -> None:
    """The companion notes name every check that reports on the schema (one line per finding kind)."""
    checks = {row[0] for row in json.loads((GOLDEN / f"{schema}.json").read_text(encoding="utf-8"))}
    notes = (GOLDEN / f"{schema}.md").read_text(encoding="utf-8")
    assert not [c for c in sorted(checks) if f"`{c}`" not in notes]
