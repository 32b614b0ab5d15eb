"""Auditing as the roles a DBA would hand out: a login role granted only ``pg_monitor``, and a plain login
role with no predefined role at all, both over TCP with a password, on every server.

The guide's schema is loaded without ``CREATE EXTENSION pg_stat_statements`` (the servers preload it), so
the ``pg-stat-statements-missing`` check has something to judge; the superuser's audit of the same
database is the reference. Neither role may read a sequence's last value without ``SELECT`` (or
``USAGE``) on it, which no predefined role grants: ``sequence-near-overflow`` says so, naming the privilege.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import conftest
import psycopg
import pytest
from pglast import split

from dbtune.audit import audit as run_audit
from dbtune.catalog.model import Skip
from dbtune.checks import load_catalogue, runner
from dbtune.checks.registry import Check
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.report.model import Report
from dbtune.samples import guide_file

PREDEFINED_ROLES = {"pg_monitor", "pg_read_all_settings", "pg_read_all_stats", "pg_stat_scan_tables"}
SEQUENCES_SKIP = ("sequence-near-overflow", "SELECT on the sequences")


@dataclass(frozen=True)
class Login:
    name: str
    password: str


def audit(dsn: str, cwd: Path) -> tuple[dict[str, Any], str]:
    """``dbtune audit --format json`` with no config: the report, and everything the command printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTUNE_")) and k != "DATABASE_URL"}
    result = subprocess.run([sys.executable, "-m", "dbtune", "audit", "--dsn", dsn, "--format", "json"],
                            capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout), result.stdout + result.stderr


def pairs(report: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((f["check_name"], f["object"]) for f in report["findings"])


@pytest.fixture(scope="module")
def guide_db(pg: LocalServer) -> Iterator[conftest.TestDatabase]:
    database = conftest.new_database(pg, "guide")
    pg.psql_file(database.name, guide_file("schema.sql"))
    yield database
    conftest.drop_database(database)


@pytest.fixture(scope="module")
def logins(pg: LocalServer, guide_db: conftest.TestDatabase) -> Iterator[dict[str, Login]]:
    """Two password logins, unique to this run (roles are cluster-wide): ``monitor`` in pg_monitor only,
    ``plain`` in no role."""
    tag = f"{os.getpid()}_{guide_db.name.rsplit('_', 1)[-1]}"
    made = {"monitor": Login(f"dbtune_monitor_{tag}", f"Mon-{os.urandom(6).hex()}"),
            "plain": Login(f"dbtune_plain_{tag}", f"Plain-{os.urandom(6).hex()}")}
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        for kind, login in made.items():
            conn.execute(f"CREATE ROLE {login.name} LOGIN NOSUPERUSER PASSWORD '{login.password}'"  # type: ignore[arg-type]
                         + (" IN ROLE pg_monitor" if kind == "monitor" else ""))
    try:
        yield made
    finally:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            for login in made.values():
                conn.execute(f"DROP ROLE IF EXISTS {login.name}")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def superuser_report(guide_db: conftest.TestDatabase,
                     tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    report, _ = audit(guide_db.dsn, tmp_path_factory.mktemp("su"))
    assert report["server"]["user"] == "postgres"
    return report


def test_the_roles_are_what_they_claim(guide_db: conftest.TestDatabase, logins: dict[str, Login]) -> None:
    for kind, member_of in (("monitor", [("pg_monitor",)]), ("plain", [])):
        name = logins[kind].name
        assert guide_db.query(f"SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = '{name}'") == [
            (False, True)]
        assert guide_db.query(
            "SELECT m.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.roleid "
            f"JOIN pg_roles r ON r.oid = a.member WHERE r.rolname = '{name}'") == member_of


def test_pg_monitor_role_sees_what_the_superuser_sees(pg: LocalServer, guide_db: conftest.TestDatabase,
                                                      logins: dict[str, Login],
                                                      superuser_report: dict[str, Any],
                                                      tmp_path: Path) -> None:
    login = logins["monitor"]
    dsn = pg.dsn(guide_db.name, user=login.name, tcp=True, password=login.password)
    report, printed = audit(dsn, tmp_path)
    assert report["server"]["user"] == login.name
    assert report["target"] == f"{login.name}@127.0.0.1:{pg.port}/{guide_db.name}"
    assert login.password not in printed
    assert pairs(report) == pairs(superuser_report)
    assert ("foreign-key-without-index", "public.orders") in pairs(report)
    assert [f["message"] for f in report["findings"] if f["check_name"] == "pg-stat-statements-missing"] == [
        f"pg_stat_statements is loaded but the extension is not created in database {guide_db.name}"]
    needs = [s for s in report["skipped"] if s["privilege"]]
    assert [(s["what"], s["privilege"]) for s in needs] == [SEQUENCES_SKIP]
    assert [s for s in report["skipped"] if not s["privilege"]] == superuser_report["skipped"]


def test_plain_role_completes_and_says_what_it_skipped(pg: LocalServer, guide_db: conftest.TestDatabase,
                                                       logins: dict[str, Login],
                                                       superuser_report: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """Without pg_monitor, shared_preload_libraries is hidden: the audit cannot tell whether
    pg_stat_statements is loaded, says so and names the privilege, and does not report it as missing from
    shared_preload_libraries (nor propose an ALTER SYSTEM that would overwrite the real list)."""
    login = logins["plain"]
    dsn = pg.dsn(guide_db.name, user=login.name, tcp=True, password=login.password)
    report, printed = audit(dsn, tmp_path)
    assert report["server"]["user"] == login.name
    assert login.password not in printed
    assert pairs(report) == pairs(superuser_report)
    [pgss] = [f for f in report["findings"] if f["check_name"] == "pg-stat-statements-missing"]
    assert pgss["message"] == f"the pg_stat_statements extension is not created in database {guide_db.name}"
    assert not [sql for sql in pgss["fix"]["sql"] if "shared_preload_libraries" in sql]
    needs = [s for s in report["skipped"] if s["privilege"]]
    assert sorted((s["what"], s["privilege"]) for s in needs) == sorted([
        ("pg-stat-statements-missing", "pg_read_all_settings"), SEQUENCES_SKIP])
    assert {s["privilege"] for s in needs} <= PREDEFINED_ROLES | {SEQUENCES_SKIP[1]}
    [settings] = [s for s in needs if s["what"] == "pg-stat-statements-missing"]
    assert "shared_preload_libraries" in settings["reason"] and login.name in settings["reason"]
    others = [s for s in report["skipped"] if not s["privilege"]]
    assert others == superuser_report["skipped"]


# --- The whole catalogue as a pg_monitor-only role (issue 10, item 5) ---------------------------------
#
# One database per server holds, each in a schema of its own, the first positive case of every database
# check (tests/cases/<ID>.toml) that a shared database can hold: no teardown (cluster-wide roles, ALTER
# SYSTEM), no workload or application files, a config that merges with the others'. It is audited as the
# superuser and as a login in pg_monitor only (not the owner, no other grant); check by check over the
# registry, the monitor's findings are the superuser's, or the check recorded a skip naming what it lacks.

CATALOGUE = load_catalogue()
# A skip "names the privilege or role it lacks": a predefined role, superuser, or a grant on an object.
_PRIVILEGE = re.compile(r"^(pg_[a-z_]+|superuser|(SELECT|USAGE|EXECUTE)( or [A-Z]+)? on .+)$")
_FIGURES = re.compile(r"\d[\d.,]*")
# The plan checks' workload: statements on the case tables, schema-qualified.
_WORKLOAD = """
SELECT * FROM k_ix007.events WHERE payload = 'x';
SELECT count(*) FROM k_mt001.events WHERE id > 10;
"""


@dataclass(frozen=True)
class CatalogueDatabase:
    database: conftest.TestDatabase
    config: dict[str, Any]
    cases: dict[str, str]  # check id -> the case set up in schema k_<id>


def _merge(into: dict[str, Any], add: dict[str, Any]) -> dict[str, Any] | None:
    """``into`` and ``add`` merged (tables key by key, the expectation lists concatenated), or ``None``
    where they give one key two values."""
    out = dict(into)
    for key, value in add.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            merged = _merge(out[key], value)
            if merged is None:
                return None
            out[key] = merged
        elif isinstance(value, list) and key in ("unique", "constraint", "index", "version_column"):
            out[key] = [*out[key], *value]
        elif out[key] != value:
            return None
    return out


def _in_schema(config: dict[str, Any], schema: str) -> dict[str, Any]:
    """A case's config with the tables its ``expect`` entries name qualified by the case's schema."""
    if "expect" not in config:
        return config
    expect = {kind: [{**e, "table": e["table"] if "." in e["table"] else f"{schema}.{e['table']}"}
                     for e in entries] for kind, entries in config["expect"].items()}
    return {**config, "expect": expect}


def _set_up(conn: psycopg.Connection, schema: str, case: Any) -> bool:
    """Run ``case``'s setup in ``schema``; ``False`` (and the schema dropped) where it does not fit."""
    try:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
        conn.execute(f"SET search_path = {schema}, public")  # type: ignore[arg-type]
        for stmt in split(case.setup) if case.setup.strip() else ():
            try:
                conn.execute(stmt)  # type: ignore[arg-type]
            except psycopg.errors.DuplicateObject:
                if "EXTENSION" not in stmt.upper():  # another case created it
                    raise
        for sql in case.setup_fails:
            for stmt in split(sql):
                with contextlib.suppress(psycopg.Error):
                    conn.execute(stmt)  # type: ignore[arg-type]
    except psycopg.Error:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]
        return False
    finally:
        conn.execute("RESET search_path")
    return True


@pytest.fixture(scope="module")
def catalogue_db(pg: LocalServer) -> Iterator[CatalogueDatabase]:
    from test_checks import CASES

    database = conftest.new_database(pg, "catalogue")
    config: dict[str, Any] = {}
    cases: dict[str, str] = {}
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        version = conn.info.server_version
        for case in CASES:
            check = CATALOGUE.get(case.check_id)
            if (check is None or check.meta.area in runner.FILE_AREAS | runner.PLAN_AREAS
                    or case.check_id in cases or not case.positive or case.teardown or case.workload
                    or case.app_files or case.expect_error or case.min_version > version):
                continue
            schema = f"k_{case.check_id.lower()}"
            merged = _merge(config, _in_schema(case.config, schema))
            if merged is not None and _set_up(conn, schema, case):
                config, cases[case.check_id] = merged, case.name
        conn.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
    config.setdefault("database", {})["search_path"] = [*(f"k_{i.lower()}" for i in cases), "public"]
    yield CatalogueDatabase(database, config, cases)
    conftest.drop_database(database)


def _audit_as(dsn: str, catalogue_db: CatalogueDatabase, tmp_path: Path) -> Report:
    workload = tmp_path / "workload.sql"
    workload.write_text(_WORKLOAD)
    return run_audit(resolve(dsn), parse_config(catalogue_db.config, "the merged case configs"),
                 catalogue=CATALOGUE, workload=workload)


def _findings(report: Report, check: Check) -> list[tuple[str, str, str]]:
    """A check's findings: object, severity and message, its figures masked (a rate since stats_reset,
    an age, moves between the two audits)."""
    return sorted((f.object, f.severity.value, _FIGURES.sub("#", f.message))
                  for f in report.findings if f.check_id == check.meta.id)


def _skips(report: Report, check: Check) -> list[Skip]:
    """The skips that speak for ``check``: its own, or for a plan check those of the plans."""
    plans = check.meta.area in runner.PLAN_AREAS
    return [s for s in report.skipped if s.what == check.meta.name or (plans and s.what.startswith("plans"))]


def test_every_check_as_a_pg_monitor_only_role(pg: LocalServer, catalogue_db: CatalogueDatabase,
                                               logins: dict[str, Login], tmp_path: Path) -> None:
    login = logins["monitor"]
    owner = catalogue_db.database.query(
        f"SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database "
        f"WHERE datname = '{catalogue_db.database.name}'")
    assert owner != [(login.name,)]
    monitor_dsn = pg.dsn(catalogue_db.database.name, user=login.name, tcp=True, password=login.password)
    monitor = _audit_as(monitor_dsn, catalogue_db, tmp_path)  # first: the superuser's probes read the tables
    superuser = _audit_as(catalogue_db.database.dsn, catalogue_db, tmp_path)
    assert monitor.server.current_user == login.name and not monitor.server.is_superuser
    assert superuser.server.is_superuser
    fired = {f.check_id for f in superuser.findings}
    database_checks = [c for c in CATALOGUE if c.meta.area not in runner.FILE_AREAS]
    # The database makes most of the catalogue fire (as the superuser).
    assert len(fired & set(catalogue_db.cases)) >= len(database_checks) // 2, sorted(fired)
    defects = []
    for check in database_checks:
        mine, reference = _findings(monitor, check), _findings(superuser, check)
        if mine == reference:
            continue
        named = [s for s in _skips(monitor, check) if s.privilege and _PRIVILEGE.match(s.privilege)]
        if not named:
            defects.append(f"{check.meta.id} {check.meta.name}: monitor {mine} superuser {reference} "
                           f"skips {_skips(monitor, check)}")
    assert not defects, "\n".join(defects)
    # Whatever the server refused the monitor names the grant it lacks (the plans' EXPLAIN included).
    refused = [s for s in monitor.skipped if "permission denied" in s.reason]
    assert refused and all(s.privilege and _PRIVILEGE.match(s.privilege) for s in refused), refused
    # Checks that read migration files never touch a database: nothing to compare.
    assert all(c.meta.area in runner.FILE_AREAS for c in CATALOGUE if c not in database_checks)


def test_every_database_check_page_says_what_it_does_on_a_pg_monitor_only_role() -> None:
    """Each page of a check that reads a database says, in "What it does", what it does on a role with only
    ``pg_monitor`` (runs in full, or what it skips and the grant it names)."""
    database_checks = [c for c in CATALOGUE if c.meta.area not in runner.FILE_AREAS]
    silent = [c.meta.id for c in database_checks
              if "only `pg_monitor`" not in " ".join(c.doc.get("What it does", "").split())]
    assert database_checks and not silent, silent
