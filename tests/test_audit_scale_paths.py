"""The audit's paths that were rewritten for large catalogs (benchmarks/audit_scale.py: 2,000 tables, 10,000
indexes): the catalog is read once per audit, even when the index advisor runs on the audit's findings; a
report finds each finding's fix steps and twins by position, with the same result as scanning the plan; a
drop is written without pglast's parse and print, as they would write it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import conftest
import pytest
from pglast import keywords

from dbtune.audit import audit
from dbtune.catalog.snapshot import take
from dbtune.checks import load_catalogue
from dbtune.checks.registry import builtin_dir
from dbtune.config.loader import parse_config
from dbtune.db.connect import read_only_snapshot, resolve
from dbtune.db.local_server import LocalServer
from dbtune.migrate.changes import drop_index, drop_index_sql, pretty
from dbtune.report import Format
from dbtune.report.model import Report
from dbtune.report.render import render

# The foreign key's index (foreign-key-without-index) is also the team's expected index: twins, built once.
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE customers (id int PRIMARY KEY);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customers (id), status text, total numeric);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_status_total_idx ON orders (status, total);
"""
# pg_stat_statements' row for the snapshot's index query (catalog/queries.py, INDEXES_V15 and INDEXES_V13).
INDEX_QUERY_CALLS = """
SELECT coalesce(sum(s.calls), 0)::int FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = current_database() AND s.query LIKE '%%AS opclass_oids%%FROM pg_catalog.pg_index i%%'
"""


@pytest.fixture(scope="module")
def twins(pg18: LocalServer) -> Iterator[tuple[conftest.TestDatabase, Report]]:
    database = conftest.new_database(pg18, "scale")
    database.execute(SCHEMA)
    config = parse_config({"checks": {"unused-index": {"min_stats_age_days": 0}},
                           "expect": {"index": [{"table": "orders", "columns": ["customer_id"]}]}}, "test")
    database.execute("SELECT pg_stat_statements_reset()")
    report = audit(resolve(database.dsn), config, catalogue=load_catalogue())
    yield database, report
    conftest.drop_database(database)


def test_the_catalog_is_read_once_when_the_advisor_runs(twins: tuple[conftest.TestDatabase, Report]) -> None:
    """The advisor judges the audit's proposals on the audit's own snapshot instead of reading the catalog
    again (about 30 statements more, and a second on 10,000 indexes)."""
    database, report = twins
    assert {f.check_name for f in report.findings} >= {"foreign-key-without-index", "expected-index-missing",
                                                        "redundant-index"}
    assert "pg_stat_statements" in report.server.extensions  # so the advisor ran on its top statements
    assert database.query(INDEX_QUERY_CALLS) == [(1,)]


def test_each_findings_steps_and_twins_are_those_of_the_plan(twins: tuple[conftest.TestDatabase, Report]) -> None:
    _, report = twins
    plan = report.fix_plan
    assert plan.folded, "the foreign key's index and the expected index are twins"
    for n in range(len(report.findings)):
        assert plan.steps_of(n) == tuple(s for s in plan.steps if s.finding == n)
        assert plan.folded_of(n) == tuple(f for f in plan.folded if f.finding == n)
    assert plan.steps_of(len(report.findings)) == () and plan.folded_of(-2) == ()


def test_a_twin_is_noted_once_under_the_step_that_builds_it(twins: tuple[conftest.TestDatabase, Report]) -> None:
    _, report = twins
    lines = render(report, Format.TEXT).splitlines()
    built = [i for i, line in enumerate(lines)
             if line.startswith("CREATE INDEX CONCURRENTLY") and "customer_id" in line]
    notes = [i for i, line in enumerate(lines) if "(this index is also the fix of #" in line]
    assert len(built) == 1 and len(notes) == 1
    # The note follows the build's statement (pretty-printed over a few lines), before the next step's comment.
    assert built[0] < notes[0] and all(not lines[i].startswith("-- #") for i in range(built[0], notes[0]))
    twin = next(f for f in report.fix_plan.folded if f.by is not None)
    assert f" {report.findings[twin.finding].check_name} " in lines[notes[0]]


# Names pglast and quote_ident quote differently (col-name keywords after a dot, ``$``), and the usual suspects.
NAMES = ("a", "Foo", "a$", "$x", "1abc", "_x", "x y", 'a"b', "é", "a.b", "a;b", "--x", "K", *sorted(
    keywords.RESERVED_KEYWORDS | keywords.UNRESERVED_KEYWORDS | keywords.COL_NAME_KEYWORDS
    | keywords.TYPE_FUNC_NAME_KEYWORDS))


@pytest.mark.parametrize("schema", ["public", "Sch", "select", "between"])
def test_a_drop_is_written_as_pglast_prints_it(twins: tuple[conftest.TestDatabase, Report], schema: str) -> None:
    """:func:`drop_index_sql` skips pglast's parse and print; the statement is the one they would give."""
    with read_only_snapshot(resolve(twins[0].dsn)) as conn:
        index = next(ix for ix in take(conn).indexes if ix.name == "orders_status_idx")
    for name in NAMES:
        renamed = replace(index, schema=schema, name=name)
        assert drop_index_sql(schema, name) == pretty(f"DROP INDEX CONCURRENTLY IF EXISTS {renamed.qualified_name}")
        assert drop_index(renamed).up == drop_index_sql(schema, name)


def test_a_check_file_runs_once_per_process_until_it_changes(tmp_path: Path) -> None:
    """The CLI loads the catalogue twice (to validate ``[checks.<name>]``, then to audit): a user's check file
    is imported once, and again only when it changed on disk."""
    marks = tmp_path / "imports.txt"
    source = (builtin_dir() / "indexes" / "unused_index.py").read_text()
    source = source.replace('id="IX005", name="unused-index"', 'id="IX901", name="scale-test-check"')
    source += f"\nwith open({str(marks)!r}, 'a') as _f:\n    _f.write('x')\n"
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "scale_test_check.py").write_text(source)
    first = load_catalogue([folder])
    second = load_catalogue([folder])
    assert marks.read_text() == "x"
    assert first.get("IX901") is second.get("IX901") is not None
    (folder / "scale_test_check.py").write_text(source.replace('severity="warning"', 'severity="info"', 1))
    third = load_catalogue([folder])
    assert marks.read_text() == "xx"
    assert third.get("IX901").meta.severity.value == "info"  # type: ignore[union-attr]
