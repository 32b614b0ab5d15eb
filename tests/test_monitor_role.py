"""Auditing as the roles a DBA would hand out: a login role granted only ``pg_monitor``, and a plain login
role with no predefined role at all, both over TCP with a password, on every server.

The guide's schema is loaded without ``CREATE EXTENSION pg_stat_statements`` (the servers preload it), so
the ``pg-stat-statements-missing`` check has something to judge; the superuser's audit of the same
database is the reference. Neither role may read a sequence's last value without ``SELECT`` (or
``USAGE``) on it, which no predefined role grants: ``sequence-near-overflow`` says so, naming the privilege.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import conftest
import psycopg
import pytest

from dbtune.db.local_server import LocalServer
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
