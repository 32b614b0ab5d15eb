"""Hostile identifiers: a relation, column, index or constraint may be named anything PostgreSQL accepts (a
quoted identifier holds any character but NUL, up to 63 bytes), and nothing in such a name may run when
dbtune's output about it is read, linted, applied, listed or fed to psql.

The corpus: names built from newlines, carriage returns, quotes (``"``, ``'``, ``\"\"\"``, ``'''``),
backslashes, ``#``, ``--``, ``/*``, ``*/``, ``;``, ``$$``, the Unicode line and paragraph separators,
right-to-left marks and overrides, and 63-byte names, each carrying an SQL, Python or psql payload aimed
at a sentinel table and a sentinel file. For every name, on PostgreSQL 15 and 18: audit (and its text
report), generate (SQL and Alembic), lint, status, apply through dbtune, downgrade, apply and downgrade
through ``psql -f``; afterwards the catalog holds exactly the intended indexes and constraints, the sentinel
table still exists and no sentinel file was created.
"""

from __future__ import annotations

import ast
import os
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from conftest import TestDatabase, drop_database, new_database
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from psycopg import sql

from dbtune.audit import audit
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.escape import one_line, printable, terminal_safe
from dbtune.migrate import api
from dbtune.migrate.lint import lint_paths
from dbtune.migrate.plan import MigrationPlan, Step
from dbtune.migrate.render import render_alembic, render_sql
from dbtune.migrate.runtime import ApplyOptions
from dbtune.model import Change, ChangeKind, Lock
from dbtune.report.text import render_text
from dbtune.sqlnames import qualified, quote_ident

SENTINEL_FILE = f"/tmp/dbtpwn{os.getpid() % 100000}"
SENTINEL_TABLE = "victim"
# The two names of the report that opened the issue, and payloads of every kind aimed at the sentinels.
WHY_SQL = f"y\nDROP TABLE public.{SENTINEL_TABLE}; --"
WHY_PYTHON = "x\nimport os;os.system('id')#"
PAYLOADS = [
    WHY_SQL,
    WHY_PYTHON,
    f"x\nimport os;os.system('touch {SENTINEL_FILE}')#",
    f"\"\"\"+__import__('os').system('touch {SENTINEL_FILE}')+\"\"\"",
    f"'''+__import__('os').system('touch {SENTINEL_FILE}')+'''",
    f"\r\n\\! touch {SENTINEL_FILE}\n",
    f"a */ DROP TABLE public.{SENTINEL_TABLE}; /* b",
    f"$$;DROP TABLE public.{SENTINEL_TABLE};$$",
    f"\u2028import os;os.system('touch {SENTINEL_FILE}')#",
    "\u202etxt.exe\u200f -- #",
    "back\\slash\\'q\\",
    "\x1b[2J\x1b[31mred\x07",
]
HOSTILE_CHARS = "\n\r\"'\\#;-/*$\u2028\u2029\u200f\u202e\té x"


def fit(name: str, pad: bool) -> str:
    """``name`` cut to at most 63 bytes on a character boundary; ``pad`` fills it to 63 bytes exactly."""
    out = ""
    for ch in name:
        if len((out + ch).encode()) > 63:
            break
        out += ch
    while pad and len(out.encode()) < 63:
        out += "x"
    return out


names = st.builds(lambda payload, before, after, pad: fit(before + payload + after, pad),
                  st.sampled_from(PAYLOADS), st.text(HOSTILE_CHARS, max_size=6), st.text(HOSTILE_CHARS, max_size=20),
                  st.booleans()).filter(lambda n: n.strip() != "")


def quiet() -> ApplyOptions:
    lines: list[str] = []
    return ApplyOptions(report=lines.append, backoff_s=0.2)


def _setup(db: TestDatabase, schema: str, table: str, column: str) -> None:
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE public.{} (id bigint)").format(sql.Identifier(SENTINEL_TABLE)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE {}.parent (id bigint PRIMARY KEY)").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("INSERT INTO {}.parent SELECT generate_series(1, 20)").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("CREATE TABLE {}.{} (id bigint PRIMARY KEY, {} bigint REFERENCES {}.parent)").format(
            sql.Identifier(schema), sql.Identifier(table), sql.Identifier(column), sql.Identifier(schema)))
        conn.execute(sql.SQL("INSERT INTO {}.{} SELECT g, 1 + g % 20 FROM generate_series(1, 200) g").format(
            sql.Identifier(schema), sql.Identifier(table)))
        conn.execute("ANALYZE")


def _state(db: TestDatabase, schema: str, table: str) -> tuple[set[tuple[str, bool]], set[tuple[str, str, bool]]]:
    """The table's (index name, valid) pairs and (constraint name, type, validated) triples."""
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        oid = conn.execute("SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                           "WHERE n.nspname = %s AND c.relname = %s", (schema, table)).fetchone()
        assert oid is not None
        indexes = conn.execute("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c "
                               "ON c.oid = i.indexrelid WHERE i.indrelid = %s", (oid[0],)).fetchall()
        constraints = conn.execute("SELECT conname, contype::text, convalidated FROM pg_constraint "
                                   "WHERE conrelid = %s", (oid[0],)).fetchall()
    return {(str(n), bool(v)) for n, v in indexes}, {(str(n), str(t), bool(v)) for n, t, v in constraints}


def _bare(qualified_name: str | None) -> str:
    """The index name of ``schema.index`` as PostgreSQL reads it."""
    from pglast import parse_sql

    stmt = parse_sql(f"DROP INDEX {qualified_name}")[0].stmt
    return str(stmt.objects[0][-1].sval)


def _sentinels_intact(db: TestDatabase) -> None:
    assert db.query(f"SELECT to_regclass('public.{SENTINEL_TABLE}') IS NOT NULL") == [(True,)]
    assert not Path(SENTINEL_FILE).exists(), "a payload in a name ran"


def _psql(db: TestDatabase, path: Path) -> None:
    result = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.dsn, "-f", str(path)],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr


def _one_name_through_everything(server: LocalServer, schema: str, table: str, column: str, index: str,
                                 constraint: str) -> None:
    db = new_database(server, "hostile")
    try:
        _setup(db, schema, table, column)
        settings_ = resolve(db.dsn)
        where = qualified(schema, table)
        config = parse_config({"expect": {
            "index": [{"name": index, "table": where, "columns": ["id", f"{quote_ident(column)} DESC"]}],
            "constraint": [{"name": constraint, "table": where,
                            "definition": f"CHECK ({quote_ident(column)} >= 0)"}]}})
        before = _state(db, schema, table)
        report = audit(settings_, config)
        shown = terminal_safe(render_text(report))
        for name in (schema, table, column, index, constraint):  # a name with a control character is
            if one_line(name) != name:                                # shown escaped, never raw
                assert name not in shown
        assert not any(ch in shown for ch in "\r\x1b\x07\u2028\u2029\u202e\u200f")
        with tempfile.TemporaryDirectory() as tmp:
            alembic_dir, sql_dir = Path(tmp) / "alembic", Path(tmp) / "sql"
            revision = api.generate(list(report.findings), alembic_dir).generated
            files = api.generate(list(report.findings), sql_dir, fmt="sql").generated
            assert revision is not None and files is not None
            plan = api.plan_migration(list(report.findings))
            built = {_bare(s.change.index) for s in plan.steps if s.change.kind == ChangeKind.CREATE_INDEX}
            assert index in built and len(built) == 2, built  # the team's index and the foreign key's
            up, down = files.files
            linted = lint_paths([*revision.files, up, down], include_downgrade=True)
            assert [f for f in linted.findings if f.source == "dbtune"] == [], linted.findings
            assert [s.applied for s in api.status(alembic_dir, settings_)] == [False]
            _sentinels_intact(db)

            api.apply(alembic_dir, settings_, quiet())
            assert [s.applied for s in api.status(alembic_dir, settings_)] == [True]
            after = _state(db, schema, table)
            assert after[0] == before[0] | {(n, True) for n in built}
            assert after[1] == before[1] | {(constraint, "c", True)}
            _sentinels_intact(db)
            api.downgrade(alembic_dir, settings_, "base", quiet())
            assert _state(db, schema, table) == before
            _sentinels_intact(db)

            _psql(db, up)
            assert _state(db, schema, table) == after
            _sentinels_intact(db)
            _psql(db, down)
            assert _state(db, schema, table) == before
            _sentinels_intact(db)
    finally:
        drop_database(db)


@settings(max_examples=10, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schema=names, table=names, column=names, index=names, constraint=names)
@example(schema="app", table=WHY_SQL, column="pid", index="idx_app", constraint="chk_app")
@example(schema="app", table=WHY_PYTHON, column="pid", index="idx_app", constraint="chk_app")
@example(schema=WHY_PYTHON, table=WHY_SQL, column=WHY_PYTHON, index=WHY_SQL + "i", constraint=WHY_PYTHON + "c")
def test_hostile_names_run_nothing(pg: LocalServer, schema: str, table: str, column: str,
                                   index: str, constraint: str) -> None:
    """Every name of the corpus, on PostgreSQL 15 and 18, through audit, generate, lint, status, apply,
    downgrade and psql: exactly the intended indexes and constraints, and the sentinels untouched."""
    assume(column != "id" and table != "parent" and len({schema, table, column, index, constraint}) == 5)
    assume(index not in (table, "parent") and not index.endswith("_pkey") and constraint not in (index,))
    assume(not constraint.endswith(("_pkey", "_fkey")))
    _one_name_through_everything(pg, schema, table, column, index, constraint)


# --- each generator's escaping, with the two names of the report --------------------------------------


def _plan(name: str) -> MigrationPlan:
    table = qualified("public", name)
    up = f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote_ident(name + '_idx')} ON {table} (pid);"
    change = Change(up=up, down=f"DROP INDEX CONCURRENTLY IF EXISTS {qualified('public', name + '_idx')};",
                    transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE, kind=ChangeKind.CREATE_INDEX,
                    table=table, index=qualified("public", name + "_idx"))
    return MigrationPlan((Step(change, "foreign-key-without-index", table),), (table,))


@pytest.mark.parametrize("name", [WHY_SQL, WHY_PYTHON])
def test_sql_file_comments_hold_no_statement(name: str) -> None:
    """In the SQL files, the name stays inside its quoted identifier and its comment: the statements of
    the file are exactly the settings, the step and the ANALYZE."""
    from dbtune.migrate.sqlfile import split_statements

    up, down = render_sql(_plan(name), version="0", title=name)
    # The settings, the drop of an INVALID leftover (a SELECT that psql's \gexec runs), the build, the
    # check that it left a valid index (DO), and the ANALYZE.
    for text, kinds in ((up, ["VariableSetStmt", "VariableSetStmt", "SelectStmt", "IndexStmt", "DoStmt",
                              "VacuumStmt"]),
                        (down, ["VariableSetStmt", "VariableSetStmt", "DropStmt"])):
        statements = split_statements(text)
        assert [type(s.node).__name__ for s in statements if s.node is not None] == kinds
        assert all(s.error is None for s in statements)
        comments = [line for line in text.splitlines() if line.startswith("--")]
        assert any(printable(name) in line for line in comments)


@pytest.mark.parametrize("name", [WHY_SQL, WHY_PYTHON])
def test_alembic_revision_holds_no_code_from_a_name(name: str) -> None:
    """In an Alembic revision, every value from the catalog is a ``repr()`` literal: the upgrade and
    downgrade bodies are calls of dbtune's step helpers and nothing else, and the SQL each call passes is
    the step's statement exactly."""
    imports, upgrade, downgrade = render_alembic(_plan(name))
    source = f"{imports}\n\ndef upgrade():\n    {upgrade.replace(chr(10), chr(10) + '    ')}\n\n" \
             f"def downgrade():\n    {downgrade.replace(chr(10), chr(10) + '    ')}\n"
    tree = ast.parse(source)
    calls = []
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        for stmt in fn.body:
            assert isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call), ast.dump(stmt)
            calls.append(stmt.value)
    assert [c.func.id for c in calls] == ["build_index", "analyze", "run_step"]  # type: ignore[attr-defined]
    assert calls[0].args[1].value == qualified("public", name + "_idx")  # type: ignore[attr-defined]
    assert quote_ident(name + "_idx") in calls[0].args[2].value  # type: ignore[attr-defined]
    assert not any(isinstance(n, ast.Import | ast.ImportFrom) for fn in tree.body if isinstance(fn, ast.FunctionDef)
                   for n in ast.walk(fn))


@pytest.mark.parametrize("name", [WHY_SQL, WHY_PYTHON])
def test_text_report_and_terminal_show_names_escaped(name: str) -> None:
    """A text report, and anything else the CLI prints, shows such a name on one line, escaped."""
    from dbtune.escape import sql_comment

    assert "\n" not in one_line(name) and "\n" not in printable(name) and "\n" not in sql_comment(name)
    assert terminal_safe("a\x1b[31mb\nc") == "a\\x1b[31mb\nc"
    assert printable("a\\nb") != printable("a\nb")


@pytest.mark.parametrize(("key", "value"), [
    ("where", "state = 'PAID'; DROP TABLE public.customers"),
    ("where", "state = 'PAID')"),
    ("where", "true GROUP BY 1"),
    ("method", "btree (id); DROP TABLE public.customers; --"),
    ("columns", ["id); DROP TABLE public.customers; --"]),
    ("columns", ["id) WHERE (true"]),
])
def test_config_values_pasted_into_ddl_are_one_expression(key: str, value: object, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A predicate, key column or method from the config is parsed as exactly one of its kind; anything else
    is one config error naming the key, exit 2 — before any connection is made."""
    from cli_runner import assert_error

    entry = {"table": "customers", "columns": ["id"], key: value}
    toml = "[[expect.index]]\n" + "\n".join(f"{k} = {_toml(v)}" for k, v in entry.items()) + "\n"
    (tmp_path / "dbtune.toml").write_text(toml)
    run = cli("audit", "--dsn", "postgresql://nobody@127.0.0.1:1/none", cwd=tmp_path)
    assert_error(run, 2, f"expect.index[0].{key}")


def _toml(value: object) -> str:
    import json

    return json.dumps(value)


def test_unknown_access_method_is_a_config_error(db18: TestDatabase, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A method the server does not have is named, with the methods it has."""
    from cli_runner import assert_error

    db18.execute("CREATE TABLE customers (id bigint)")
    (tmp_path / "dbtune.toml").write_text('[[expect.index]]\ntable = "customers"\ncolumns = ["id"]\n'
                                          'method = "nosuchmethod"\n')
    run = cli("audit", "--dsn", db18.dsn, cwd=tmp_path)
    assert_error(run, 2, "expect.index[0].method", "nosuchmethod", "btree")


def test_constraint_definition_with_a_second_statement_is_refused(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cli_runner import assert_error

    (tmp_path / "dbtune.toml").write_text('[[expect.constraint]]\nname = "c"\ntable = "t"\n'
                                          'definition = "CHECK (a > 0); DROP TABLE public.customers"\n')
    run = cli("audit", "--dsn", "postgresql://nobody@127.0.0.1:1/none", cwd=tmp_path)
    assert_error(run, 2, "expect.constraint[0].definition")
