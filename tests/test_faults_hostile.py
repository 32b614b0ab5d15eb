"""Issue 9, item 6: hostile identifiers through the real CLI, checked in the catalog and the server log
(the scenario is ``tests/faultkit/hostile.py``, shared with ``benchmarks/faultparts/hostile.py``).

One throwaway server (Debian's PostgreSQL 15 with hypopg where installed, else the embedded 18) logs every
statement; ``audit``, ``migrate generate`` (SQL and Alembic), ``migrate apply``, ``advise``, ``migrate
generate --from advice.json`` and ``migrate apply`` run over a schema, tables, columns, indexes and a
constraint named with quotes, ``;``, ``--``, ``/*``, reserved words, non-ASCII, emoji and 63-byte names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from faultkit import hostile

from dbtune.db.local_server import system_bindir


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[hostile.HostileRun]:
    major = 15 if system_bindir(15) is not None else None
    with hostile.logging_server(major) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE hostile")
        if major == 15:
            with psycopg.connect(server.dsn("hostile"), autocommit=True) as conn:
                conn.execute("CREATE EXTENSION hypopg")
        yield hostile.run_hostile(server, "hostile", tmp_path_factory.mktemp("hostile"))


def test_every_command_finishes_without_a_traceback(run: hostile.HostileRun) -> None:
    codes = {" ".join(c.args[:2]): c.code for c in run.commands}
    assert [c.code for c in run.commands] == [1, 1, 0, 0, 0, 0, 0, 0, 0], codes
    assert run.tracebacks == 0


def test_audit_migration_creates_exactly_the_intended_indexes_and_constraint(run: hostile.HostileRun) -> None:
    """The team's expected indexes under their own names, one index per unindexed foreign key under a
    generated name of at most 63 bytes, all distinct (two 63-byte tables alike but for their last
    character; ``audit log`` and ``audit_log``), the CHECK constraint validated; nothing else created,
    nothing dropped."""
    assert run.before is not None and run.after_audit is not None
    assert set(run.before.indexes) <= set(run.after_audit.indexes), "an index was dropped"
    wanted = hostile.audit_indexes()
    assert hostile.new_indexes(run.before, run.after_audit) == wanted
    generated = [n for t, n, _, _ in wanted if t in hostile.REFERENCING]
    assert len(set(generated)) == len(generated) == 5
    assert all(len(n.encode()) <= 63 for n in generated)
    assert set(run.before.constraints) <= set(run.after_audit.constraints)
    assert set(run.after_audit.constraints) - set(run.before.constraints) == {hostile.audit_constraint()}
    made = set(run.after_audit.relations) - set(run.before.relations)
    assert made == {(hostile.SCHEMA, n) for _, n, _, _ in wanted} | {
        ("public", "dbtune_version"), ("public", "dbtune_version_pkc")}


def test_advice_migration_builds_exactly_the_recommendations(run: hostile.HostileRun) -> None:
    """Each recommended index is built with its columns under the advice's name, which is not the name of
    another index: the one on ``🎉`` does not take the name of the foreign key's index on ``🙂``."""
    assert run.after_audit is not None and run.after_advice is not None
    wanted = hostile.advice_indexes(run)
    assert len(wanted) == len(hostile.WORKLOAD)
    assert set(run.after_audit.indexes) <= set(run.after_advice.indexes), "an index was dropped"
    assert hostile.new_indexes(run.after_audit, run.after_advice) == wanted
    assert {(t, cols) for t, _, cols, _ in wanted} == {(t, (c,)) for t, _, c in hostile.WORKLOAD}
    names = [n for _, n, _, _ in run.after_advice.indexes]
    assert len(names) == len(set(names))


def test_every_object_is_exact_after_both_applies(run: hostile.HostileRun) -> None:
    intended, exact = hostile.objects_exact(run)
    assert (intended, exact) == (len(hostile.audit_indexes()) + len(hostile.WORKLOAD) + 1,) * 2


def test_no_statement_ran_that_was_not_intended(run: hostile.HostileRun) -> None:
    """From the server's log: audit, advise and generate wrote nothing; apply ran the planned statements
    and its version-table bookkeeping only; no logged text held a second statement."""
    assert all(run.sent[label] for label in ("audit", "advise", "apply", "apply-advice"))
    assert hostile.unintended(run) == []


def test_the_second_audit_finds_every_expectation_met(run: hostile.HostileRun) -> None:
    report = json.loads(run.commands[-1].out)
    left = [(f["check_name"], f["object"]) for f in report["findings"]
            if f["check_name"] in ("expected-index-missing", "expected-constraint-missing",
                                   "foreign-key-without-index")]
    assert left == []


@pytest.mark.parametrize(("key", "entry"), [
    ("expect.index[0].name", '[[expect.index]]\nname = "{n}"\ntable = "t"\ncolumns = ["a"]\n'),
    ("expect.constraint[0].name", '[[expect.constraint]]\nname = "{n}"\ntable = "t"\ndefinition = "CHECK (a > 0)"\n'),
])
def test_a_name_postgresql_would_truncate_is_a_config_error(key: str, entry: str, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """62 bytes and a two-byte character: PostgreSQL would keep the 62 (it never splits a character), so
    two such names could name one index; refused before connecting, naming the key and the truncation."""
    from cli_runner import assert_error

    (tmp_path / "dbtune.toml").write_text(entry.format(n="i" * 62 + "é"))
    run = cli("audit", "--dsn", "postgresql://nobody@127.0.0.1:1/none", cwd=tmp_path)
    assert_error(run, 2, key, "64 bytes", repr("i" * 62))
