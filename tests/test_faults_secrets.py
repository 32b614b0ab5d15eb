"""Issue 9, item 8: the test password, given through a DSN, ``PGPASSWORD``, ``.pgpass`` and a service file
against a server that requires ``scram-sha-256`` over TCP, never appears (as is, URL-encoded or base64) in
any stdout, stderr or file of any command, failing runs included (tests/faultkit/secrets.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import conftest
import pytest
from faultkit.fuzz import TARGET_SCHEMA
from faultkit.secrets import Scan, commands, create_role, failing_commands, failing_ways, run_and_scan, ways

from dbtune.db.local_server import LocalServer


@pytest.fixture(scope="module")
def secret_target(pg18: LocalServer) -> Iterator[conftest.TestDatabase]:
    database = conftest.new_database(pg18, "secret")
    database.execute(TARGET_SCHEMA)
    create_role(pg18, database.name)
    yield database
    conftest.drop_database(database)


def test_no_command_leaks_the_password_given_any_way(secret_target: conftest.TestDatabase, tmp_path: Path) -> None:
    scan = Scan()
    for way in ways(secret_target.server, secret_target.name, tmp_path / "auth"):
        run_and_scan(way, commands(way, full=False), tmp_path / "run", scan)
        # the way connected: audit exits 0 or 1, never 3
        assert scan.outcomes[-15].code in (0, 1), (way.name, scan.outcomes[-15])
    for way in failing_ways(secret_target.server, secret_target.name):
        run_and_scan(way, failing_commands(way), tmp_path / "run", scan)
        assert all(o.code in (2, 3) for o in scan.outcomes[-8:]), (way.name, scan.outcomes[-8:])
    assert scan.commands == 4 * 15 + 6 * 8 and scan.files > 20 and scan.bytes > 100_000, scan
    assert scan.leaks == [], scan.leaks
