"""The ``dbtune`` command line, run as a user runs it (a subprocess of ``python -m dbtune``).

Bad input gives exactly one ``error:`` line on stderr that names the culprit, the documented exit code
(DESIGN.md: 0 clean, 1 findings at or above ``--fail-on``, 2 usage/config/input error, 3 cannot connect or
the server refused), no traceback, and never a password.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import conftest
import psycopg
import pytest
from cli_runner import CLI, Run, assert_error

import dbtune
from dbtune.checks import load_catalogue
from dbtune.db.local_server import LocalServer, free_port

ALL_CHECKS = {
    "CN001": "table-without-primary-key", "CN002": "constraint-not-validated",
    "CN003": "expected-unique-missing", "CN004": "expected-constraint-missing",
    "IX001": "foreign-key-without-index", "IX002": "duplicate-index",
    "IX003": "redundant-index", "IX004": "invalid-index", "IX005": "unused-index",
    "IX006": "expected-index-missing", "IX007": "seq-scan-heavy-table",
    "IX008": "index-recommended", "PO001": "connection-budget", "PO002": "pool-timeout-unbounded",
    "PO003": "idle-timeout-beyond-server", "PO004": "session-state-behind-transaction-pooler",
    "PO005": "prepared-statements-behind-transaction-pooler", "PO006": "session-timeout-behind-transaction-pooler",
    "PO007": "pool-pressure", "CC001": "deadlocks-and-session-failures", "CC002": "check-then-insert-without-unique",
    "CC003": "on-conflict-target-unmatched", "CC004": "version-column-unused",
    "ST001": "pg-stat-statements-missing", "ST002": "timeout-unset", "ST003": "isolation-level",
    "PL001": "seq-scan-with-selective-filter", "PL002": "row-estimate-off", "PL003": "sort-spills-to-disk",
    "PL004": "hash-spills-to-disk", "PL005": "rows-removed-by-filter", "PL006": "nested-loop-many-loops",
    "PL007": "lossy-bitmap-heap-scan", "PL008": "index-only-scan-heap-fetches",
    "PL009": "parallel-workers-not-launched", "PL010": "jit-dominates",
    "ST004": "shared-buffers-mis-sized", "ST005": "effective-cache-size-mis-sized", "ST006": "work-mem-mis-sized",
    "ST007": "maintenance-work-mem-mis-sized", "ST008": "random-page-cost-mismatches-storage",
    "ST009": "checkpoint-completion-target-low", "ST010": "max-wal-size-small", "ST011": "fsync-off",
    "ST012": "full-page-writes-off", "ST013": "synchronous-commit-off",
    "ST014": "superuser-reserved-connections-low", "ST015": "observability-settings-off",
    "ST016": "temp-file-limit-unset", "ST017": "parallel-workers-exceed-cpus",
    "ST018": "memory-budget-exceeds-ram", "ST019": "effective-io-concurrency-low",
    "ST020": "planner-method-disabled", "ST021": "statement-logging-verbose", "ST022": "jit-on-oltp",
    "QS001": "query-high-mean-time", "QS002": "query-high-shared-block-reads", "QS003": "query-high-temp-blocks",
    "MT001": "table-bloat", "MT002": "xid-wraparound-risk", "MT003": "multixact-wraparound-risk",
    "MT004": "database-wraparound-risk", "MT005": "table-never-vacuumed-or-analyzed", "MT006": "stale-statistics",
    "MT007": "autovacuum-disabled-on-table", "MT008": "autovacuum-off", "MT009": "dead-tuples-high",
    "MT010": "table-cache-hit-ratio-low", "MT011": "unlogged-table", "MT012": "sequence-near-overflow",
    "MT013": "temp-files-heavy", "MT014": "checkpoints-requested-often",
    "CN005": "foreign-key-type-mismatch", "CN006": "foreign-key-to-weak-key",
    "CN007": "not-null-held-by-check-constraint", "CN008": "unique-key-allows-duplicate-nulls",
    "CN009": "duplicate-foreign-key", "CN010": "foreign-key-partially-null",
    "RP001": "replica-identity-missing", "RP002": "inactive-replication-slot", "CC005": "long-running-transaction",
    "CC006": "prepared-transaction-left-open",
    "IX009": "index-bloat", "IX010": "index-on-mostly-null-column", "IX011": "boolean-column-index",
    "IX012": "btree-on-array-or-jsonb", "IX013": "index-overlaps-include-index",
    "IX014": "index-cache-hit-ratio-low", "IX015": "too-many-indexes-on-write-heavy-table",
    "IX016": "hot-update-ratio-low", "IX017": "brin-candidate", "IX018": "index-predicate-not-null-redundant",
}
DOC_SECTIONS = ["What it does", "Why it matters", "Example", "What to do instead",
                "How the fix is applied safely", "Options", "References"]

SCHEMA = conftest.FINDINGS_SCHEMA


def audit_ok(run: Run, code: int | None = None) -> dict[str, Any]:
    """A completed JSON audit: exit 0 or 1 (or exactly ``code``), a quiet stderr, a parsable report."""
    assert run.code == code if code is not None else run.code in (0, 1), run
    assert run.err == "", run.err
    return json.loads(run.out)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# --- connecting -------------------------------------------------------------------------------------


def test_unreachable_host_exits_3(cli: CLI) -> None:
    port = free_port()
    dsn = f"host=127.0.0.1 port={port} dbname=x user=x password=SECRET123 connect_timeout=2"
    assert_error(cli("audit", "--dsn", dsn, process=True), 3, f"127.0.0.1:{port}", "--dsn",
                 secrets=("SECRET123",))


def test_wrong_password_exits_3_without_showing_it(cli: CLI, pg: LocalServer) -> None:
    dsn = pg.dsn("postgres", tcp=True, password="wrong-Secret!")
    line = assert_error(cli("audit", "--dsn", dsn, process=True), 3, f"postgres@127.0.0.1:{pg.port}/postgres",
                        "password authentication failed", secrets=("wrong-Secret", pg.password))
    assert "password=" not in line


def test_missing_database_exits_3(cli: CLI, pg: LocalServer) -> None:
    dsn = pg.dsn("no_such_database", tcp=True, password=pg.password)
    assert_error(cli("audit", "--dsn", dsn), 3, "no_such_database", "does not exist",
                 secrets=(pg.password,))


@pytest.mark.parametrize("dsn", [
    "host=x port",
    "host=x password=PW-s3cret port",
    "postgresql://u:PW-s3cret@[bad",
])
def test_malformed_dsn_exits_2(cli: CLI, dsn: str) -> None:
    assert_error(cli("audit", "--dsn", dsn), 2, "--dsn", "not a valid connection string",
                 secrets=("PW-s3cret",))


def test_database_url_is_used_without_dsn_and_masked(cli: CLI, pg18: LocalServer,
                                                     findings_db: conftest.TestDatabase) -> None:
    url = f"postgresql://postgres:{pg18.password}@127.0.0.1:{pg18.port}/{findings_db.name}"
    report = audit_ok(cli("audit", "--format", "json", env={"DATABASE_URL": url}, process=True))
    assert report["server"]["database"] == findings_db.name
    assert report["target"] == f"postgres@127.0.0.1:{pg18.port}/{findings_db.name}"
    text = cli("audit", env={"DATABASE_URL": url})
    assert text.code in (0, 1) and findings_db.name in text.out
    assert pg18.password not in text.out + text.err + json.dumps(report)

    wrong = f"postgresql://postgres:wrong-Secret@127.0.0.1:{pg18.port}/{findings_db.name}"
    assert_error(cli("audit", env={"DATABASE_URL": wrong}), 3, "DATABASE_URL",
                 "password authentication failed", secrets=("wrong-Secret",))
    assert_error(cli("audit", env={"DATABASE_URL": "postgresql://u:PW-s3cret@[bad"}), 2,
                 "DATABASE_URL", secrets=("PW-s3cret",))


def test_dsn_option_wins_over_database_url(cli: CLI, findings_db: conftest.TestDatabase) -> None:
    run = cli("audit", "--dsn", findings_db.dsn, "--format", "json",
                     env={"DATABASE_URL": "postgresql://nobody:PW-s3cret@127.0.0.1:1/nowhere"})
    assert audit_ok(run)["server"]["database"] == findings_db.name
    assert "PW-s3cret" not in run.out


def test_server_refusing_a_catalog_query_exits_3(cli: CLI, findings_db: conftest.TestDatabase) -> None:
    """A catalog query the server cancels (here at a 1 ms statement_timeout) stops the audit with exit 3 and
    one error line, not a traceback. (A table held in ACCESS EXCLUSIVE no longer does: it is skipped,
    tests/test_faults_locks.py.)"""
    run = cli("audit", "--dsn", findings_db.dsn, "--statement-timeout", "1ms")
    assert_error(run, 3, findings_db.name, "statement timeout")


# --- config -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("toml", "culprit"), [
    ('[database]\nstatment_timeout = "5s"\n', "unknown key 'database.statment_timeout'"),
    ("[reporting]\nformat = 'json'\n", "unknown key 'reporting'"),
    ('[[pool]]\nname = "app"\nsize = 10\nmax = 20\nmin = 1\n', "unknown key 'pool[0].min'"),
])
def test_config_unknown_key_exits_2(cli: CLI, toml: str, culprit: str, findings_db: conftest.TestDatabase,
                                    tmp_path: Path) -> None:
    write(tmp_path / "dbtune.toml", toml)  # found by walking up from the working directory
    assert_error(cli("audit", "--dsn", findings_db.dsn), 2, "dbtune.toml", culprit)


@pytest.mark.parametrize(("toml", "culprit"), [
    ('[[pool]]\nname = "app"\nsize = "thirty"\nmax = 50\n', "'pool[0].size'"),
    ('[database]\nstatement_timeout = "soon"\n', "'database.statement_timeout'"),
    ("[audit]\nfail_on = 3\n", "'audit.fail_on'"),
    ('[audit]\nfail_on = "sometimes"\n', "'audit.fail_on'"),
    ('[[expect.index]]\ntable = "orders"\ncolumns = []\n', "'expect.index[0].columns'"),
])
def test_config_wrong_type_exits_2(cli: CLI, toml: str, culprit: str, findings_db: conftest.TestDatabase,
                                   tmp_path: Path) -> None:
    config = write(tmp_path / "custom.toml", toml)
    assert_error(cli("audit", "--dsn", findings_db.dsn, "--config", str(config)), 2,
                 str(config), culprit)


@pytest.mark.parametrize(("toml", "culprits"), [
    ('[[expect.index]]\ntable = "no_such_table"\ncolumns = ["id"]\n',
     ("'no_such_table'", "expect.index[0]")),
    ('[[expect.unique]]\ntable = "no_such_table"\ncolumns = ["id"]\n',
     ("'no_such_table'", "expect.unique[0]")),
    ("[checks.xyz]\nseverity = 'info'\n", ("'xyz'",)),
    ("[checks.duplicate-index]\nbogus = 1\n", ("checks.duplicate-index.bogus",)),
    ("[checks.seq-scan-heavy-table]\nmin_seq_scans = 'many'\n",
     ("checks.seq-scan-heavy-table.min_seq_scans",)),
    ("[audit]\nselect = ['no-such-check']\n", ("'no-such-check'",)),
])
def test_config_naming_what_does_not_exist_exits_2(cli: CLI, toml: str, culprits: tuple[str, ...],
                                                   findings_db: conftest.TestDatabase,
                                                   tmp_path: Path) -> None:
    config = write(tmp_path / "dbtune.toml", toml)
    assert_error(cli("audit", "--dsn", findings_db.dsn, "--config", str(config)), 2,
                 *culprits)


@pytest.mark.parametrize(("toml", "culprit"), [
    ("[checks.query-high-mean-time]\ntop = 0\n",
     "'checks.query-high-mean-time.top': must be between 1 and 50, got 0"),
    ("[checks.checkpoint-completion-target-low]\nmin_target = 1.5\n",
     "'checks.checkpoint-completion-target-low.min_target': must be between 0.0 and 1.0, got 1.5"),
    ("[checks.query-high-mean-time]\nmin_calls = true\n",
     "'checks.query-high-mean-time.min_calls': expected int, got True"),
    ("[checks.seq-scan-heavy-table]\nmin_seq_scans = -5\n",
     "'checks.seq-scan-heavy-table.min_seq_scans': must be at least 0, got -5"),
    ("[checks.prepared-transaction-left-open]\nmax_age_s = 1e9\n",
     "'checks.prepared-transaction-left-open.max_age_s': must be between 0.0 and 604800.0, got 1000000000.0"),
    ('[server]\nram = "lots"\n', "'server.ram'"),
])
def test_check_option_of_wrong_type_or_out_of_range_exits_2(cli: CLI, toml: str, culprit: str,
                                                            findings_db: conftest.TestDatabase,
                                                            tmp_path: Path) -> None:
    """A check option outside the range its check declares (a number without one may not be negative), a
    bool where a number is expected, or a machine fact that is no size: one error line naming it, exit 2."""
    config = write(tmp_path / "dbtune.toml", toml)
    assert_error(cli("audit", "--dsn", findings_db.dsn, "--config", str(config)), 2, culprit)


def test_config_file_missing_or_not_toml_exits_2(cli: CLI, tmp_path: Path) -> None:
    dsn = "host=127.0.0.1 port=1 dbname=x"
    missing = tmp_path / "absent.toml"
    assert_error(cli("audit", "--dsn", dsn, "--config", str(missing)), 2, str(missing),
                 "not found")
    broken = write(tmp_path / "broken.toml", "[database\n")
    assert_error(cli("audit", "--dsn", dsn, "--config", str(broken)), 2, str(broken),
                 "not valid TOML")


# --- --fail-on and exit codes -----------------------------------------------------------------------


EXPECT_CHILD_INDEX = '[[expect.index]]\ntable = "child"\ncolumns = ["note"]\n'


@pytest.mark.parametrize(("select", "config", "fail_on", "worst", "code"), [
    ("IX001", "", "error", "warning", 0),
    ("IX001", "", "warning", "warning", 1),
    ("IX001", "", "info", "warning", 1),
    ("IX001", "", "never", "warning", 0),
    ("IX001", "", None, "warning", 0),  # the default threshold is error
    ("ST003", "", "warning", "info", 0),
    ("ST003", "", "info", "info", 1),
    ("IX004", "", "info", None, 0),  # no finding at all
    ("IX006", EXPECT_CHILD_INDEX, "error", "error", 1),
    ("IX006", EXPECT_CHILD_INDEX, "never", "error", 0),
    ("IX001", '[audit]\nfail_on = "warning"\n', None, "warning", 1),
    ("IX001", '[audit]\nfail_on = "warning"\n', "error", "warning", 0),  # the command line wins
])
def test_fail_on(cli: CLI, select: str, config: str, fail_on: str | None, worst: str | None, code: int,
                 findings_db: conftest.TestDatabase, tmp_path: Path) -> None:
    write(tmp_path / "dbtune.toml", config)
    args = ["audit", "--dsn", findings_db.dsn, "--format", "json", "--select", select]
    report = audit_ok(cli(*args, *(["--fail-on", fail_on] if fail_on else [])), code)
    severities = {f["severity"] for f in report["findings"]}
    order = ["info", "warning", "error"]
    assert max(severities, key=order.index, default=None) == worst


def test_fail_on_from_the_environment(cli: CLI, findings_db: conftest.TestDatabase) -> None:
    args = ["audit", "--dsn", findings_db.dsn, "--select", "IX001"]
    assert cli(*args, env={"DBTUNE_FAIL_ON": "warning"}).code == 1
    assert cli(*args, "--fail-on", "never", env={"DBTUNE_FAIL_ON": "warning"}).code == 0
    assert_error(cli(*args, env={"DBTUNE_FAIL_ON": "often"}), 2, "DBTUNE_FAIL_ON", "'often'")


def test_invalid_fail_on_exits_2(cli: CLI) -> None:
    assert_error(cli("audit", "--dsn", "host=127.0.0.1 port=1", "--fail-on", "warnings"),
                 2, "--fail-on", "'warnings'")


@pytest.mark.parametrize(("args", "culprit"), [
    (["audit", "--format", "xml"], "--format"),
    (["audit", "--no-such-option"], "--no-such-option"),
    (["audit", "--statement-timeout", "soon"], "--statement-timeout"),
    (["frobnicate"], "frobnicate"),
    (["checks", "show"], "name"),
])
def test_usage_errors_exit_2_on_one_line(cli: CLI, args: list[str], culprit: str) -> None:
    assert_error(cli(*args), 2, culprit)


# --- reports ----------------------------------------------------------------------------------------


def test_json_report_contract(cli: CLI, findings_db: conftest.TestDatabase) -> None:
    report = audit_ok(cli("audit", "--dsn", findings_db.dsn, "--format", "json"))
    assert report["report_version"] == 1
    assert report["dbtune_version"] == dbtune.__version__
    [(server_version, version_num)] = findings_db.query(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int")
    assert report["server"]["version"] == str(server_version).split()[0]
    assert report["server"]["version_num"] == version_num
    assert report["server"]["database"] == findings_db.name
    assert report["findings"], "the database has known findings"
    for f in report["findings"]:
        assert {"check_id", "check_name", "severity", "object", "message", "evidence", "fix"} <= set(f)
        assert ALL_CHECKS[f["check_id"]] == f["check_name"]
        assert f["severity"] in ("error", "warning", "info")
        assert isinstance(f["object"], str) and f["object"]
        assert isinstance(f["message"], str) and f["message"]
        assert isinstance(f["evidence"], dict)
        assert isinstance(f["fix"]["sql"], list) and all(isinstance(s, str) for s in f["fix"]["sql"])
    [fk] = [f for f in report["findings"] if f["check_id"] == "IX001"]
    assert fk["object"] == "public.child"
    assert fk["evidence"]["columns"] == ["parent_id"]
    assert any("CREATE INDEX CONCURRENTLY" in sql and "public.child (parent_id)" in sql
               for sql in fk["fix"]["sql"])
    counts = Counter(f["severity"] for f in report["findings"])
    assert report["summary"] == {"error": counts["error"], "warning": counts["warning"],
                                 "info": counts["info"], "total": len(report["findings"])}


def test_output_file(cli: CLI, findings_db: conftest.TestDatabase, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    run = cli("audit", "--dsn", findings_db.dsn, "--format", "json", "--output", str(out))
    assert run.code in (0, 1) and run.out == "" and run.err == ""
    report = json.loads(out.read_text())
    assert report["report_version"] == 1
    assert [f["object"] for f in report["findings"] if f["check_id"] == "IX001"] == ["public.child"]
    assert not list(tmp_path.glob("*.tmp"))
    nowhere = tmp_path / "no" / "such" / "dir" / "report.json"
    assert_error(cli("audit", "--dsn", findings_db.dsn, "--output", str(nowhere)), 2,
                 "--output", str(nowhere))


def test_text_report(cli: CLI, findings_db: conftest.TestDatabase) -> None:
    run = cli("audit", "--dsn", findings_db.dsn, "--select", "IX001")
    assert run.code == 0 and run.err == ""
    assert "0 error, 1 warning, 0 info" in run.out.splitlines()[1]
    assert "foreign-key-without-index" in run.out and "public.child" in run.out
    assert "FIX SQL" in run.out


# --- the catalogue ----------------------------------------------------------------------------------


def test_checks_list(cli: CLI) -> None:
    run = cli("checks", "list")
    assert run.code == 0 and run.err == ""
    listed = {line.split()[0]: line.split()[1] for line in run.out.splitlines()
              if line[:5] in ALL_CHECKS}
    assert listed == ALL_CHECKS
    assert {c.meta.id: c.meta.name for c in load_catalogue() if c.meta.area != "migrations"} == ALL_CHECKS


@pytest.mark.parametrize("name", ["IX001", "foreign-key-without-index"])
def test_checks_show_prints_every_doc_section(cli: CLI, name: str) -> None:
    run = cli("checks", "show", name)
    assert run.code == 0 and run.err == ""
    lines = run.out.splitlines()
    assert lines[0] == "IX001 foreign-key-without-index"
    headings = [line[3:] for line in lines if line.startswith("## ")]
    assert headings == DOC_SECTIONS
    sections = run.out.split("\n## ")[1:]
    for section in sections:
        title, _, body = section.partition("\n")
        assert body.strip(), f"section {title!r} is empty"
    assert "CREATE INDEX CONCURRENTLY" in run.out
    assert "https://www.postgresql.org/docs/" in run.out


def test_checks_show_unknown_exits_2(cli: CLI) -> None:
    assert_error(cli("checks", "show", "nope"), 2, "'nope'")


def test_version(cli: CLI) -> None:
    run = cli("--version", process=True)
    assert (run.code, run.out, run.err) == (0, f"dbtune {dbtune.__version__}\n", "")
    assert version("dbtune") == dbtune.__version__


# --- the audit is read-only -------------------------------------------------------------------------


WRITE_COUNTERS = ("SELECT count(*), coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0), "
                  "(SELECT count(*) FROM pg_class) FROM pg_stat_user_tables")


def test_audit_sends_only_reads_in_a_read_only_transaction(cli: CLI, pg: LocalServer,
                                                           tmp_path: Path) -> None:
    """Every statement the audit's role sent, as pg_stat_statements recorded them, is a read or the
    transaction control of one ``READ ONLY`` transaction; nothing was inserted, updated or created."""
    database = conftest.new_database(pg, "ro")
    role = f"dbtune_ro_{os.getpid()}_{database.name.rsplit('_', 1)[-1]}"
    try:
        database.execute(SCHEMA + f"""
            CREATE EXTENSION pg_stat_statements;
            CREATE ROLE {role} LOGIN IN ROLE pg_monitor;
            SELECT pg_stat_force_next_flush();
        """)
        before = database.query(WRITE_COUNTERS)
        database.execute("SELECT pg_stat_statements_reset()")
        config = write(tmp_path / "dbtune.toml", EXPECT_CHILD_INDEX)  # every check runs, fixes included
        report = audit_ok(cli("audit", "--dsn", pg.dsn(database.name, user=role), "--config", str(config),
                                     "--format", "json"))
        assert report["server"]["user"] == role and report["findings"]
        sent = [str(q) for (q,) in database.query(
            f"SELECT query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            f"WHERE s.userid = '{role}'::regrole AND d.datname = current_database()")]
        unmarked = ("SAVEPOINT", "RELEASE", "ROLLBACK")
        assert [q for q in sent if "/* dbtune */" not in q and not q.startswith(unmarked)] == []
        sent = [q.replace(" /* dbtune */", "", 1) for q in sent]  # the marker after each statement's first word
        assert any(q.startswith("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") for q in sent), sent
        statements = [re.sub(r"^(\s*--[^\n]*\n)*\s*", "", q).upper() for q in sent]  # leading comments
        reads = ("SELECT", "WITH", "BEGIN", "SET LOCAL", "SHOW", "SAVEPOINT", "RELEASE", "ROLLBACK")
        assert [q for q in statements if not q.startswith(reads)] == []
        assert database.query(WRITE_COUNTERS) == before
    finally:
        conftest.drop_database(database)
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {role}")  # type: ignore[arg-type]


@pytest.mark.parametrize("dsn", ["host=127.0.0.1 sslmode=bogus password=Pw-secret-9",
                                 "postgresql://u:Pw-secret-9@localhost:99999/db"])
def test_invalid_connection_parameter_is_an_input_error(cli: CLI, dsn: str) -> None:
    """A parameter libpq refuses before connecting (sslmode, port) is the user's input: exit 2."""
    assert_error(cli("audit", "--dsn", dsn), 2, "--dsn has an invalid parameter", secrets=("Pw-secret-9",))
