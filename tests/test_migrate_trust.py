"""What a first real user hits in dbtune migrate (issue 12, items 7, 8, 11 and 15): a unique build known to
fail is left out and the rest generated; the psql file stops on a failed build and a re-run repairs it;
dbtune's own output for partitioned tables lints clean; the audit's fix SQL is the de-duplicated plan and
keeps the team's names."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import psycopg
import pytest
from cli_runner import CLI
from conftest import TestDatabase
from test_migrate import PARTITIONED, load_guide, production, quiet

from dbtune.audit import audit
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.migrate import api
from dbtune.migrate.lint import lint_paths
from dbtune.report import Format, render

PSQL = "/usr/bin/psql"

ACCOUNTS = """
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO accounts SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 200) g;
CREATE TABLE sessions (id bigint PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts (id));
INSERT INTO sessions SELECT g, 1 + g % 200 FROM generate_series(1, 400) g;
"""
EXPECT_EMAIL_KEY = {"expect": {"unique": [{"name": "accounts_email_key", "table": "accounts",
                                           "columns": ["email"]}]}}


def psql_file(db: TestDatabase, path: Path) -> subprocess.CompletedProcess[str]:
    """``psql -X -f path`` as a user runs the file: no ON_ERROR_STOP given, the file must set it."""
    return subprocess.run([PSQL, "-X", "-d", db.dsn, "-f", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def index_state(db: TestDatabase, name: str) -> list[tuple[object, ...]]:
    return db.query(f"SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('{name}')")


# --- item 7: a step known to fail is left out, the rest is generated --------------------------------------


def test_unique_build_over_duplicate_keys_is_left_out_and_the_rest_applies(db: TestDatabase, tmp_path: Path,
                                                                            cli: CLI) -> None:
    """An INVALID unique index from a failed build, its duplicates still there: the audit counts them,
    generate leaves the rebuild out (saying so, with a query that lists the duplicate keys) and generates
    the foreign key's index, which applies; nothing is left INVALID but the index left out."""
    db.execute(ACCOUNTS)
    db.execute("UPDATE accounts SET email = 'shared' || (id % 7) || '@example.com' WHERE id <= 30")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email)")
    settings = resolve(db.dsn)
    report = audit(settings, parse_config(EXPECT_EMAIL_KEY))
    invalid = next(f for f in report.findings if f.check_name == "invalid-index")
    expected_keys = db.query("SELECT count(*) FROM (SELECT email FROM accounts GROUP BY email "
                             "HAVING count(*) > 1) d")[0][0]
    assert invalid.evidence["duplicate_keys"] == expected_keys
    plan = api.plan_migration(list(report.findings))
    assert [x.index for x in plan.left_out] == ["public.accounts_email_key"]
    assert all(s.change.index != "public.accounts_email_key" for s in plan.steps)
    assert [s.change.index for s in plan.steps] == ["public.sessions_account_id_idx"]
    # The query lists exactly the duplicate keys, with how many rows hold each.
    listed = db.query(plan.left_out[0].query)
    assert sorted(listed) == sorted(db.query("SELECT email, count(*) FROM accounts GROUP BY email "
                                             "HAVING count(*) > 1"))
    # The CLI says what it left out and how to list the rows, and writes the rest.
    (tmp_path / "report.json").write_text(render(report, Format.JSON))
    run = cli("migrate", "generate", "--from", str(tmp_path / "report.json"), "--format", "sql",
              "--dir", str(tmp_path / "sql"))
    assert run.code == 0, run
    assert "left out: invalid-index public.accounts_email_key" in run.err
    assert "HAVING count(*) > 1" in run.err
    up = next(p for p in (tmp_path / "sql").iterdir() if not p.name.endswith(".down.sql"))
    assert "-- left out: invalid-index public.accounts_email_key" in up.read_text()
    api.generate(list(report.findings), tmp_path / "alembic")
    api.apply(tmp_path / "alembic", settings, quiet())
    assert index_state(db, "sessions_account_id_idx") == [(True,)]
    assert index_state(db, "accounts_email_key") == [(False,)]  # left as it was, still reported


# --- item 8: the psql file stops on a failed build, and a re-run repairs it -------------------------------


def test_sql_file_stops_on_failed_build_and_a_rerun_after_the_fix_leaves_it_valid(db: TestDatabase,
                                                                                  tmp_path: Path) -> None:
    """Generated while the keys are unique, run after duplicates arrived: psql stops with a non-zero exit
    and the server's message; run again with the duplicates still there it stops again (the INVALID
    leftover is dropped and the build retried, never skipped by IF NOT EXISTS); once they are removed, a
    re-run leaves the index VALID and builds the steps after it."""
    db.execute(ACCOUNTS)
    settings = resolve(db.dsn)
    report = audit(settings, parse_config(EXPECT_EMAIL_KEY))
    generated = api.generate(list(report.findings), tmp_path, fmt="sql").generated
    assert generated is not None
    up, down = generated.files
    text = up.read_text()
    assert text.splitlines()[1].startswith("-- Generated by dbtune") and "For psql" in text.splitlines()[1]
    assert "\\set ON_ERROR_STOP on" in text
    db.execute("UPDATE accounts SET email = 'same@example.com' WHERE id IN (1, 2)")
    first = psql_file(db, up)
    assert first.returncode != 0
    assert "could not create unique index" in first.stderr
    assert index_state(db, "accounts_email_key") == [(False,)]
    assert index_state(db, "sessions_account_id_idx") == []  # stopped: the later step did not run
    again = psql_file(db, up)
    assert again.returncode != 0 and "could not create unique index" in again.stderr
    db.execute("UPDATE accounts SET email = 'user2@example.com' WHERE id = 2")
    fixed = psql_file(db, up)
    assert fixed.returncode == 0, fixed.stderr
    assert index_state(db, "accounts_email_key") == [(True,)]
    assert index_state(db, "sessions_account_id_idx") == [(True,)]
    assert psql_file(db, up).returncode == 0  # a re-run after success changes nothing
    assert psql_file(db, down).returncode == 0
    assert index_state(db, "accounts_email_key") == []


def test_check_after_build_stops_psql_when_the_index_is_not_valid(db: TestDatabase, tmp_path: Path) -> None:
    """The check after a build, with names that need quoting (a quote, a dollar tag, a newline): psql
    stops with dbtune's message when the index is not valid, and passes when it is."""
    name = 'e$dbtune$\'"\nmail_key'
    db.execute('CREATE SCHEMA "Odd $$ schema"; CREATE TABLE "Odd $$ schema"."a\'b" (id bigint PRIMARY KEY, '
               "email text);")
    db.execute('INSERT INTO "Odd $$ schema"."a\'b" SELECT g, \'x\' || g FROM generate_series(1, 50) g')
    config = parse_config({"expect": {"unique": [{"name": name, "table": '"Odd $$ schema"."a\'b"',
                                                  "columns": ["email"]}]}})
    report = audit(resolve(db.dsn), config)
    generated = api.generate(list(report.findings), tmp_path, fmt="sql").generated
    assert generated is not None
    up = generated.files[0]
    assert psql_file(db, up).returncode == 0
    [(oid,)] = db.query('SELECT indexrelid FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid '
                        "WHERE c.relname = 'a''b' AND NOT i.indisprimary")
    # The state a killed build leaves; only the check block (the DO statement) is run here.
    db.execute(f"UPDATE pg_index SET indisvalid = false WHERE indexrelid = {oid}")
    check = re.search(r"^DO (\$[a-z_0-9]*\$).*?\1;", up.read_text(), re.MULTILINE | re.DOTALL)
    assert check is not None and check.group(1) == "$dbtune_1$"  # the name holds $dbtune$
    script = tmp_path / "check.sql"
    script.write_text("\\set ON_ERROR_STOP on\n" + check.group(0) + "\n")
    stopped = psql_file(db, script)
    assert stopped.returncode != 0
    message = stopped.stderr.split("ERROR:", 1)[1].splitlines()[0]
    assert "is not valid after step 1" in message and "\\nmail_key" in message  # the newline shown escaped
    db.execute(f"UPDATE pg_index SET indisvalid = true WHERE indexrelid = {oid}")
    assert psql_file(db, script).returncode == 0


def test_rebuild_of_an_invalid_index_has_no_if_not_exists(db: TestDatabase, tmp_path: Path) -> None:
    """The audit's fix for an INVALID index is DROP … CONCURRENTLY then CREATE … CONCURRENTLY without IF NOT
    EXISTS; its psql file leaves the index valid."""
    db.execute(ACCOUNTS)
    db.execute("UPDATE accounts SET email = 'same@example.com' WHERE id IN (1, 2)")
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email)")
    db.execute("UPDATE accounts SET email = 'user2@example.com' WHERE id = 2")
    report = audit(resolve(db.dsn), parse_config({}))
    invalid = next(f for f in report.findings if f.check_name == "invalid-index")
    assert invalid.fix_sql[0].startswith("DROP INDEX CONCURRENTLY IF EXISTS public.accounts_email_key")
    assert invalid.fix_sql[1].startswith("CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key\n  ON")
    generated = api.generate([invalid], tmp_path, fmt="sql").generated
    assert generated is not None
    assert psql_file(db, generated.files[0]).returncode == 0
    assert index_state(db, "accounts_email_key") == [(True,)]


# --- item 11: dbtune's own output lints clean, partitioned tables included ---------------------------------


def test_generated_files_for_a_partitioned_table_lint_clean_and_run(db: TestDatabase, tmp_path: Path) -> None:
    """The down file drops the partitioned parent's index without CONCURRENTLY (PostgreSQL refuses it
    there): no lint rule of dbtune's or squawk's reports it, alone or beside the up file, nor in the
    revision's downgrade; both files run with psql; the partitioned table's size is not negative."""
    db.execute(PARTITIONED)
    db.execute('CREATE TABLE "Sales"."Line" (id bigint, placed date NOT NULL) PARTITION BY RANGE (placed);'
               'CREATE TABLE "Sales"."Line_2025" PARTITION OF "Sales"."Line" '
               "FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
               "INSERT INTO \"Sales\".\"Line\" SELECT g, date '2025-01-01' + g % 300 FROM generate_series(1, 3000) g;"
               'ANALYZE "Sales"."Line"')
    settings = resolve(db.dsn)
    report = audit(settings, parse_config({}))
    fk = [f for f in report.findings if f.check_name == "foreign-key-without-index"]
    sql = api.generate(fk, tmp_path / "sql", fmt="sql").generated
    revision = api.generate(fk, tmp_path / "alembic").generated
    assert sql is not None and revision is not None
    up, down = sql.files
    assert "DROP INDEX IF EXISTS \"Sales\".\"Order_customerId_idx\"" in down.read_text()
    for paths in ([down], [up, down]):
        result = lint_paths(paths)
        assert result.squawk.ran
        assert result.findings == [], [(f.rule, f.line) for f in result.findings]
    alembic = lint_paths(list(revision.files), include_downgrade=True)
    assert alembic.squawk.ran and alembic.findings == [], [(f.rule, f.line) for f in alembic.findings]
    assert psql_file(db, up).returncode == 0
    assert index_state(db, '"Sales"."Order_customerId_idx"') == [(True,)]
    ran = psql_file(db, down)
    assert ran.returncode == 0, ran.stderr
    assert index_state(db, '"Sales"."Order_customerId_idx"') == []
    [line] = [f for f in report.findings if f.check_name == "table-without-primary-key"
              and f.object == '"Sales"."Line"']
    [(leaves,)] = db.query("SELECT sum(relpages)::bigint * current_setting('block_size')::bigint FROM pg_class "
                           "WHERE oid IN (SELECT relid FROM pg_partition_tree('\"Sales\".\"Line\"') WHERE isleaf)")
    assert line.evidence["size_bytes"] == leaves and leaves > 0


def test_lint_still_flags_a_plain_drop_of_an_ordinary_index(tmp_path: Path) -> None:
    """Only partitioned indexes the files show are spared: an ordinary DROP INDEX is still MG003."""
    path = tmp_path / "m.sql"
    path.write_text("SET lock_timeout = '1s';\nCREATE INDEX p_idx ON ONLY s.p (a);\nDROP INDEX s.p_idx;\n"
                    "DROP INDEX s.other_idx;\n")
    result = lint_paths([path], use_squawk=False)
    assert [(f.rule_id, f.line) for f in result.findings if f.rule_id == "MG003"] == [("MG003", 4)]


# --- item 15: the audit's fix SQL is the de-duplicated plan, and the team's names are kept -------------


def _fix_sql_block(text: str) -> str:
    """The FIX SQL section of a text report, as printed."""
    section = text.split("\nFIX SQL", 1)[1].split("\n", 1)[1]
    return section.split("\n\n", 1)[0]


def test_audit_fix_sql_pasted_into_psql_builds_no_twins(db18: TestDatabase, tmp_path: Path) -> None:
    """The text report's FIX SQL, pasted into psql as printed, builds each index once, under the
    team's name; audited again there is no duplicate or redundant index to drop. The JSON report's fix
    SQL is the same plan as migrate generate's."""
    db = db18
    load_guide(db)
    settings = resolve(db.dsn)
    report = audit(settings, production())
    plan = api.plan_migration(list(report.findings))
    creates = [s.change.up for s in plan.steps]
    fix = _fix_sql_block(render(report, Format.TEXT))
    code = "\n".join(line for line in fix.splitlines() if not line.startswith("--"))
    statements = [s.strip().rstrip(";") + ";" for s in code.split(";\n") if s.strip()]
    printed = [s for s in statements if re.match(r"CREATE (UNIQUE )?INDEX", s)]
    assert printed == creates
    data = json.loads(render(report, Format.JSON))
    assert [s["sql"] for s in data["fix_plan"]["steps"] if s["kind"] == "create_index"] == creates
    json_creates = [sql for f in data["findings"] for sql in f["fix"]["sql"] if "CREATE" in sql and "INDEX" in sql]
    assert sorted(json_creates) == sorted(creates)
    script = tmp_path / "fix.sql"
    script.write_text("\\set ON_ERROR_STOP on\n" + fix + "\n")
    ran = psql_file(db, script)
    assert ran.returncode == 0, ran.stderr
    after = audit(settings, production())
    leftovers = [(f.check_name, f.object) for f in after.findings
                 if f.check_name in ("duplicate-index", "redundant-index", "expected-index-missing",
                                     "expected-unique-missing", "foreign-key-without-index")]
    assert leftovers == []


def test_duplicate_index_keeps_the_team_name(db18: TestDatabase) -> None:
    """Twins built by an earlier paste (the foreign key's name first, then the checklist's): the one to
    drop is the foreign key's, never the one the checklist names."""
    db = db18
    db.execute(ACCOUNTS)
    db.execute("CREATE INDEX sessions_account_id_idx ON sessions (account_id)")
    db.execute("CREATE INDEX idx_sessions_account ON sessions (account_id)")
    config = parse_config({"expect": {"index": [{"name": "idx_sessions_account", "table": "sessions",
                                                 "columns": ["account_id"]}]}})
    report = audit(resolve(db.dsn), config)
    [dup] = [f for f in report.findings if f.check_name == "duplicate-index"]
    assert dup.object == "public.sessions_account_id_idx"
    assert dup.evidence["duplicate_of"] == "public.idx_sessions_account"
