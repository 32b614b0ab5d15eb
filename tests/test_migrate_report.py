"""``migrate generate --from report.json`` reads the report as untrusted input: validated against its
schema before anything is written, no SQL copied from it (each statement checked to be the one its kind
says, naming the change's own table, index and constraint, and printed again from its parse tree), and a
newline in a finding's ``object`` reaches no comment."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cli_runner import assert_error
from conftest import TestDatabase, drop_database, new_database

from dbtune.audit import audit
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.migrate import api
from dbtune.report import Format, render

SCHEMA = """
CREATE TABLE public.parent (id bigint PRIMARY KEY);
CREATE TABLE public.child (id bigint PRIMARY KEY, parent_id bigint REFERENCES public.parent, total bigint);
INSERT INTO public.parent SELECT generate_series(1, 20);
INSERT INTO public.child SELECT g, 1 + g % 20, g FROM generate_series(1, 200) g;
CREATE INDEX child_total_a ON public.child (total);
CREATE INDEX child_total_b ON public.child (total);
CREATE TABLE public.events (id bigint, parent_id bigint REFERENCES public.parent, at date NOT NULL)
    PARTITION BY RANGE (at);
CREATE TABLE public.events_2025 PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
"""
CONFIG = {"expect": {"constraint": [{"name": "child_total_check", "table": "child",
                                     "definition": "CHECK (total >= 0)"}]},
          "database": {"application_roles": ["report_app"]}}  # timeout-unset proposes its role settings


@pytest.fixture(scope="module")
def target(pg18: LocalServer) -> Iterator[TestDatabase]:
    """One database for the module: a foreign key without an index and an expected check constraint."""
    db = new_database(pg18, "report")
    db.execute(SCHEMA)
    db.execute("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'report_app') "
               "THEN CREATE ROLE report_app LOGIN; END IF; END $$")
    with pytest.raises(psycopg.errors.UniqueViolation):  # leaves the index INVALID
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY child_total_parity ON public.child ((total % 2))")
    yield db
    drop_database(db)


@pytest.fixture(scope="module")
def report(target: TestDatabase) -> dict[str, Any]:
    """The audit's JSON report of ``target``."""
    data: dict[str, Any] = json.loads(render(audit(resolve(target.dsn), parse_config(CONFIG)), Format.JSON))
    return data


def _change(data: dict[str, Any], kind: str) -> tuple[int, int, dict[str, Any]]:
    """(finding number, change number, change) of the first change of ``kind`` on public.child."""
    for n, finding in enumerate(data["findings"]):
        for m, change in enumerate(finding["fix"]["changes"]):
            if change["kind"] == kind and change["table"] == "public.child":
                return n, m, change
    raise AssertionError(f"no {kind} change in the report")


def _edited(report: dict[str, Any], kind: str, edit: Callable[[dict[str, Any]], object]) -> tuple[dict[str, Any], str]:
    """A copy of ``report`` with ``edit`` applied to its first ``kind`` change; and the label the error
    names that finding and change by (``finding 2 (…): fix.changes[0]``)."""
    data = copy.deepcopy(report)
    n, m, change = _change(data, kind)
    edit(change)
    finding = data["findings"][n]
    return data, f"finding {n + 1} ({finding['check_name']} {finding['object']}): fix.changes[{m}]"


def _generate(cli, tmp_path: Path, data: dict[str, Any] | str, fmt: str = "alembic",  # type: ignore[no-untyped-def]
              out: str = "out"):
    path = tmp_path / "report.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return cli("migrate", "generate", "--from", str(path), "--dir", str(tmp_path / out), "--format", fmt)


def _set(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda change: change.__setitem__(key, value)


def _case(case_id: str, kind: str, edit: Callable[[dict[str, Any]], object], key: str, says: str) -> Any:
    """A case: edit the first ``kind`` change; the error names ``key`` and says ``says``."""
    return pytest.param(kind, edit, key, says, id=case_id)


SCHEMA_ERRORS = [
    _case("up-int", "create_index", _set("up", 123), ".up", "expected a string, got 123"),
    _case("table-list", "create_index", _set("table", ["a"]), ".table", "expected a string"),
    _case("transactional-string", "create_index", _set("transactional", "false"), ".transactional",
          "expected true or false, got 'false'"),
    _case("relation_bytes-string", "add_constraint", _set("relation_bytes", "big"), ".relation_bytes",
          "expected an integer, got 'big'"),
    _case("lock-unknown", "create_index", _set("lock", "NO LOCK AT ALL"), ".lock", "expected 'none', "),
    _case("unknown-key", "create_index", _set("surprise", 1), ".surprise", "unknown key"),
]


@pytest.mark.parametrize(("kind", "edit", "key", "says"), SCHEMA_ERRORS)
@pytest.mark.parametrize("fmt", ["alembic", "sql"])
def test_schema_violations_are_refused_before_anything_is_written(  # type: ignore[no-untyped-def]
        report: dict[str, Any], cli, tmp_path: Path, kind: str, edit: Callable[[dict[str, Any]], object],
        key: str, says: str, fmt: str) -> None:
    data, label = _edited(report, kind, edit)
    line = assert_error(_generate(cli, tmp_path, data, fmt), 2, label + key, says)
    assert "report.json" in line
    assert not (tmp_path / "out").exists()  # no env.py, no versions/, nothing


def test_report_nested_too_deeply(report: dict[str, Any], cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deep = "[" * 200_000 + "]" * 200_000
    text = json.dumps({**report, "findings": []}).replace('"findings": []', f'"findings": [{deep}]')
    assert_error(_generate(cli, tmp_path, text), 2, "report.json", "nested too deeply")
    assert not (tmp_path / "out").exists()


def _append(key: str, text: str) -> Callable[[dict[str, Any]], object]:
    return lambda change: change.__setitem__(key, change[key].rstrip() + text)


def _replace(key: str, old: str, new: str) -> Callable[[dict[str, Any]], object]:
    return lambda change: change.__setitem__(key, change[key].replace(old, new))


SQL_PAYLOADS = [
    _case("up-drop-table", "create_index", _set("up", "DROP TABLE public.parent"), ".up",
          "expected one CREATE INDEX statement for kind create_index, got DROP TABLE public.parent"),
    _case("up-second-statement", "create_index", _append("up", " DROP TABLE public.parent;"), ".up",
          "2 statements"),
    _case("down-drop-table", "create_index", _set("down", "DROP TABLE public.parent"), ".down",
          "expected one DROP INDEX statement"),
    _case("down-second-statement", "create_index", _append("down", " DROP TABLE public.parent;"), ".down",
          "2 statements"),
    _case("up-not-concurrent", "create_index", _replace("up", " CONCURRENTLY", ""), ".up", "blocks writes"),
    _case("up-other-table", "create_index", _replace("up", "public.child", "public.parent"), ".up",
          "but the change's table is public.child"),
    _case("index-field-other-index", "create_index", _set("index", "public.parent_pkey"), ".up",
          "but the change's index is public.parent_pkey"),
    _case("table-field-injection", "create_index", _set("table", "public.child; DROP TABLE public.parent"),
          ".table", "not a schema-qualified identifier"),
    _case("index-field-newline", "create_index", _set("index", 'public."x\nDROP TABLE public.parent; --"'),
          ".up", "but the change's index"),
    _case("down-cascade", "create_index", _replace("down", ";", " CASCADE;"), ".down", "CASCADE"),
    _case("constraint-up-drop-column", "add_constraint",
          _set("up", "ALTER TABLE public.child DROP COLUMN parent_id"), ".up",
          "expected one ALTER TABLE … ADD CONSTRAINT statement for kind add_constraint, got ALTER TABLE "
          "public.child DROP COLUMN parent_id"),
    _case("constraint-down-other-cascade", "add_constraint",
          _set("down", "ALTER TABLE public.child DROP CONSTRAINT child_pkey CASCADE"), ".down",
          "DROP CONSTRAINT must drop exactly child_total_check"),
    _case("validate-other-table", "validate_constraint",
          _set("up", "ALTER TABLE public.parent VALIDATE CONSTRAINT child_total_check"), ".up",
          "but the change's table is public.child"),
    _case("up-30000-deep", "create_index", _set("up", "SELECT " + "1 + " * 30_000 + "1"), ".up",
          "longer than 16384 bytes"),
    _case("up-1000-deep-predicate", "create_index",
          _replace("up", ";", " WHERE " + " + ".join(["total"] * 1000) + " > 0;"), ".up", "nested too deeply"),
    _case("validate-down", "validate_constraint", _set("down", "DROP TABLE public.parent"), ".down",
          "has no down step"),
]


@pytest.mark.parametrize(("kind", "edit", "key", "says"), SQL_PAYLOADS)
def test_sql_payloads_in_a_report_are_refused(  # type: ignore[no-untyped-def]
        report: dict[str, Any], target: TestDatabase, cli, tmp_path: Path, kind: str,
        edit: Callable[[dict[str, Any]], object], key: str, says: str) -> None:
    """A report edited to carry a statement other than the one its change's kind and names say is one
    error line naming the finding and the key, exit 2, and nothing is written."""
    data, label = _edited(report, kind, edit)
    for fmt in ("alembic", "sql"):
        assert_error(_generate(cli, tmp_path, data, fmt), 2, label + key, says)
        assert not (tmp_path / "out").exists()


def test_accepted_report_is_printed_again_from_its_parse_tree(  # type: ignore[no-untyped-def]
        report: dict[str, Any], target: TestDatabase, cli, tmp_path: Path) -> None:
    """What a report's SQL says is kept, in dbtune's own printing: a comment or odd layout in the report's
    text does not reach the migration; the lock comes from the statement, not the report."""
    def reformat(change: dict[str, Any]) -> None:
        change["up"] = "/* from the report */ create   index\nconcurrently IF NOT EXISTS " + \
            change["up"].split("IF NOT EXISTS ", 1)[1].replace("\n", " ") + " -- trailing comment"
        change["lock"] = "none"

    data, _ = _edited(report, "create_index", reformat)
    run = _generate(cli, tmp_path, data, "sql")
    assert run.code == 0, run
    original = _change(report, "create_index")[2]["up"]
    [up_file] = [p for p in (tmp_path / "out").glob("*.sql") if not p.name.endswith(".down.sql")]
    text = up_file.read_text()
    assert original in text
    assert "from the report" not in text and "trailing comment" not in text
    assert "(SHARE UPDATE EXCLUSIVE lock)" in text


def test_newline_in_object_reaches_no_comment(  # type: ignore[no-untyped-def]
        report: dict[str, Any], target: TestDatabase, cli, tmp_path: Path) -> None:
    """A finding's ``object`` holding a newline and a statement shows escaped in every comment of the
    generated SQL files and Alembic revision; applied, the revision builds the index and drops nothing."""
    data = copy.deepcopy(report)
    n, _, _ = _change(data, "create_index")
    data["findings"] = [data["findings"][n]]
    data["findings"][0]["object"] = "x\nDROP TABLE public.parent"
    for fmt in ("sql", "alembic"):
        run = _generate(cli, tmp_path, data, fmt, out=fmt)
        assert run.code == 0, run
    files = [p for p in tmp_path.rglob("*") if p.suffix in (".sql", ".py")]
    assert len(files) == 4  # up and down SQL, env.py, the revision
    lines = [line for p in files for line in p.read_text().splitlines()]
    assert not [line for line in lines if "DROP TABLE" in line and "x\\nDROP TABLE public.parent" not in line]
    assert any(line.startswith(("-- step", "# step")) and "x\\nDROP TABLE public.parent" in line for line in lines)
    settings = resolve(target.dsn)
    try:
        assert len(api.apply(tmp_path / "alembic", settings)) == 1
        assert target.query("SELECT to_regclass('public.parent') IS NOT NULL, "
                            "to_regclass('public.child_parent_id_idx') IS NOT NULL") == [(True, True)]
    finally:
        api.downgrade(tmp_path / "alembic", settings, "base")


def test_every_kind_of_change_reads_back_as_generated(report: dict[str, Any], tmp_path: Path) -> None:
    """Each kind of change dbtune writes (an index, ON ONLY a partitioned table, per partition and
    attached; a drop; the rebuild of an INVALID index; a constraint added NOT VALID and validated; a
    database setting) reads back from the report exactly as the audit generated it; server changes are
    not read."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    read = [c for f in api.findings_from_report(path) for c in f.changes]
    written = [c for f in report["findings"] for c in f["fix"]["changes"] if c["kind"] != "server"]
    assert [c.to_json() for c in read] == written
    assert {c.kind.value for c in read} == {"create_index", "attach_index", "drop_index", "rebuild_index",
                                           "add_constraint", "validate_constraint", "set_parameter"}
