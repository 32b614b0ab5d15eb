"""Issue 9, item 9: ``audit``, ``explain`` and ``advise`` write nothing, as a role that may only read and
as one that could write anything (the scenario and its counters are ``tests/faultkit/readonly.py``, shared
with ``benchmarks/faultparts/readonly.py``).

On a throwaway server without autovacuum (Debian's PostgreSQL 15 with hypopg): per command and role, the
database's and the tables' tuple counters do not move, the role's pg_stat_statements rows are reads only
and wrote no WAL record. ``advise`` costs its candidates with hypopg's hypothetical indexes (``SELECT …
hypopg_create_index(…)``), which live in the backend's memory: they are among the role's statements, and
the same counters show they wrote nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from faultkit import readonly

from dbtune.db.local_server import LocalServer, system_bindir


@dataclass(frozen=True)
class Measured:
    server: LocalServer
    roles: dict[str, readonly.Login]
    runs: list[readonly.CommandWrites]
    control: readonly.CommandWrites


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Measured]:
    assert system_bindir(15) is not None, "these tests need Debian's PostgreSQL 15 with hypopg (.ci/run installs it)"
    with readonly.quiet_server(15) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE readonly")
        with readonly.logins(server, "t", "readonly") as roles:
            readonly.prepare(server, "readonly", roles, hypopg=True)
            runs = readonly.run_commands(server, "readonly", roles, tmp_path_factory.mktemp("readonly"))
            control = readonly.probe_writes(server, "readonly", roles["owner"])
            yield Measured(server, roles, runs, control)


def test_the_roles_are_what_they_claim(measured: Measured) -> None:
    """The reader may not create anything (database, schema, temporary table) nor insert; the owner may;
    neither is a superuser and neither starts its sessions read-only."""
    reader = readonly.privileges(measured.server, "readonly", measured.roles["reader"].name)
    owner = readonly.privileges(measured.server, "readonly", measured.roles["owner"].name)
    assert reader == dict.fromkeys(reader, False)
    assert owner == {"create_database": True, "temp": True, "create_public": False, "create_schema": True,
                     "insert": True, "superuser": False, "read_only_default": False}


def test_each_command_succeeds_as_each_role(measured: Measured) -> None:
    assert [(w.role, w.command.args[0], w.command.code) for w in measured.runs] == [
        (role, args[0], 0) for role in ("reader", "owner") for args in readonly.COMMANDS]
    assert all("Traceback" not in w.command.err and w.command.err.count("error:") == 0 for w in measured.runs)
    advice = json.loads(next(w for w in measured.runs if w.command.args[0] == "advise").command.out)
    assert advice["recommendations"], "advise recommended nothing: the check would prove little"


def test_nothing_was_written(measured: Measured) -> None:
    """No row (a catalog row for a CREATE or a temporary table included), no statement other than a read,
    no WAL record, for any command as either role; each sent statements that were counted."""
    assert [(w.role, w.command.args[0], w.rows_written, w.writes, w.wal_records) for w in measured.runs] == [
        (w.role, w.command.args[0], 0, [], 0) for w in measured.runs]
    assert all(w.statements > 0 for w in measured.runs)


def test_advise_costs_with_hypothetical_indexes_that_write_nothing(measured: Measured) -> None:
    """hypopg's hypothetical indexes were created (in the backend's memory) by advise as the reader, which
    may create nothing: the counters above cover those calls."""
    with psycopg.connect(measured.server.dsn("readonly"), autocommit=True) as conn:
        calls = conn.execute("SELECT sum(calls) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid "
                             "WHERE r.rolname = %s AND query LIKE '%%hypopg_create_index%%'",
                             (measured.roles["reader"].name,)).fetchone()
    assert calls is not None and calls[0] and calls[0] > 0


def test_the_counters_see_a_write(measured: Measured) -> None:
    """The control: a temporary table, an INSERT and a DELETE by the owner are seen by every counter, so
    a zero above is not a counter that had not caught up."""
    control = measured.control
    assert control.rows_written > 0 and control.wal_records > 0
    assert sorted(control.writes) == ["CREATE TEMP TABLE scratch (id int)", "DELETE FROM scratch WHERE id = $1",
                                      "INSERT INTO scratch SELECT generate_series($1, $2)"]
