"""What a first real user types (issue 12, items 4, 5, 16 and part of 17): a bare command, the DSN forms
applications keep in ``DATABASE_URL``, config files with several mistakes, option values that are refused,
a folder of migrations, a database with nothing pending, sizes, and where squawk comes from.

Every DSN is tried against a real server (the embedded PostgreSQL 18): a DSN that dbtune accepts must
reach it, and none may ever show up, whole or in part, in what dbtune prints.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import requires
from pathlib import Path

import conftest
import pytest
from cli_runner import CLI, assert_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbtune.config import load_config
from dbtune.db.connect import connect, describe, mask, resolve
from dbtune.db.local_server import LocalServer
from dbtune.errors import ConnectionFailed, DbtuneError, UsageError
from dbtune.migrate import squawk
from dbtune.units import kb_pretty, size_pretty

# --- item 4: a bare command prints its usage ----------------------------------------------------------


@pytest.mark.parametrize(("args", "commands"), [
    ((), ("audit", "explain", "migrate", "bench", "checks", "demo")),
    (("migrate",), ("generate", "lint", "apply", "status")),
    (("bench",), ("run", "compare")),
    (("checks",), ("list", "show")),
    (("probe",), ("race",)),
])
def test_bare_command_prints_its_usage(cli: CLI, args: tuple[str, ...], commands: tuple[str, ...]) -> None:
    run = cli(*args, process=True)
    assert run.code == 2 and run.out == "", run
    assert run.err.startswith(f"Usage: dbtune {' '.join(args)}".rstrip() + " [OPTIONS] COMMAND"), run.err
    listed = run.err.split("Commands:", 1)[1]
    for command in commands:
        assert re.search(rf"^\s+{command}\b", listed, re.MULTILINE), (command, run.err)


# --- item 5: DSNs ---------------------------------------------------------------------------------------


def _url(pg: LocalServer, dbname: str, scheme: str, password: str) -> str:
    return f"{scheme}://postgres:{password}@127.0.0.1:{pg.port}/{dbname}"


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql+asyncpg", "postgres+psycopg2",
                                    "POSTGRESQL", "Postgres"])
def test_sqlalchemy_and_upper_case_urls_are_the_libpq_url_they_name(
        cli: CLI, pg18: LocalServer, findings_db: conftest.TestDatabase, scheme: str) -> None:
    url = _url(pg18, findings_db.name, scheme, pg18.password)
    run = cli("audit", "--format", "json", env={"DATABASE_URL": url})
    assert run.code in (0, 1) and run.err == "", run
    report = json.loads(run.out)
    assert report["server"]["database"] == findings_db.name
    assert report["target"] == f"postgres@127.0.0.1:{pg18.port}/{findings_db.name}"
    assert pg18.password not in run.out

    wrong = _url(pg18, findings_db.name, scheme, "S3cr3t-wrong")
    assert_error(cli("audit", env={"DATABASE_URL": wrong}), 3, "DATABASE_URL", "password authentication failed",
                 f"postgres@127.0.0.1:{pg18.port}/{findings_db.name}", secrets=("S3cr3t",))


@pytest.mark.parametrize(("dsn", "culprits", "secrets"), [
    ("jdbc:postgresql://127.0.0.1:{port}/shop?user=tuner&password=S3cr3t", ("JDBC", "without the jdbc:"),
     ("S3cr3t", "tuner")),
    ("JDBC:postgresql://127.0.0.1:{port}/shop?password=S3cr3t&user=tuner", ("JDBC",), ("S3cr3t",)),
    ("postgresql://postgres:p@ss:w0rd@127.0.0.1:{port}/db", ("%40", "percent-encode"), ("ss:w0rd", "w0rd")),
    ("postgresql://postgres:p@ss@127.0.0.1:{port}/db", ("%40",), ("ss@127",)),
    ("postgresql://postgres:pa/ssW0rd@127.0.0.1:{port}/db", ("%2F",), ("ssW0rd", "pa/")),
    ("postgresql://postgres@127.0.0.1:{port}/db?PASSWORD=S3cr3t", ("lower case",), ("S3cr3t",)),
    ("postgresql://postgres@127.0.0.1:{port}/db?password=S3cr3t&Sslmode=off", ("lower case",), ("S3cr3t",)),
    ("PASSWORD=S3cr3t host=127.0.0.1 port={port}", ("lower case",), ("S3cr3t",)),
    ("host=127.0.0.1 port={port} password=S3cr3t extra", ('missing "="',), ("S3cr3t", "extra")),
    ("host=127.0.0.1 password='S3cr3t port={port}", ("unterminated",), ("S3cr3t",)),
    ("postgresql://postgres:S3cr3t%zz@127.0.0.1:{port}/db", ("%25",), ("S3cr3t",)),
    ("postgresql://postgres:S3cr3t@[::1:{port}/db", ("IPv6",), ("S3cr3t",)),
    ("mysql://root:S3cr3t@127.0.0.1:{port}/shop", ("mysql://",), ("S3cr3t",)),
])
def test_a_dsn_that_cannot_be_used_is_never_repeated(cli: CLI, pg18: LocalServer, dsn: str,
                                                      culprits: tuple[str, ...], secrets: tuple[str, ...]) -> None:
    dsn = dsn.format(port=pg18.port)
    for source, args, env in (("--dsn", ("--dsn", dsn), {}), ("DATABASE_URL", (), {"DATABASE_URL": dsn})):
        line = assert_error(cli("audit", *args, env=env), 2, source, *culprits, secrets=secrets)
        assert "Traceback" not in line and dsn not in line


# Pieces of the passwords below: none of them occurs in any message dbtune could print on its own.
TOKENS = ("Qz7", "Wx4", "Kj2", "Vb9")
SPECIALS = list("@:/?#&=%+ '\"\\[],;$!")
PASSWORDS = st.lists(st.sampled_from(TOKENS) | st.sampled_from(SPECIALS), min_size=1, max_size=8).map(
    lambda parts: "".join(parts)).filter(lambda p: any(t in p for t in TOKENS))
SCHEMES = st.sampled_from(["postgresql", "postgres", "POSTGRESQL", "PostgreSQL", "postgresql+psycopg",
                           "postgresql+asyncpg", "postgres+pg8000", "jdbc:postgresql", "JDBC:PostgreSQL",
                           "mysql", "redis", ""])
KEYS = st.sampled_from(["password", "PASSWORD", "Password", "sslpassword", "pass word", "passwd"])


@st.composite
def dsn_with_password(draw: st.DrawFn, port: int) -> tuple[str, str, bool]:
    """A DSN in one of the shapes applications keep, with the password written raw (unencoded), and
    whether it has a DSN's shape (so :func:`mask` must hide the password once libpq parses it) or is text
    that only holds it."""
    pw = draw(PASSWORDS)
    scheme = draw(SCHEMES)
    key = draw(KEYS)
    query = draw(st.sampled_from(["", "?sslmode=disable", f"?application_name={pw}", "?connect_timeout=2&x"]))
    shape = draw(st.integers(0, 4))
    prefix = f"{scheme}://" if scheme else ""
    if shape == 0:
        dsn = f"{prefix}postgres:{pw}@127.0.0.1:{port}/postgres{query}"
    elif shape == 1:
        dsn = f"{prefix}postgres@127.0.0.1:{port}/postgres?{key}={pw}&sslmode=disable"
    elif shape == 2:
        dsn = f"host=127.0.0.1 port={port} user=postgres {key}={pw} dbname=postgres"
    elif shape == 3:
        quoted = pw.replace("\\", "\\\\").replace("'", "\\'")
        dsn = f"host=127.0.0.1 port={port} {key} = '{quoted}' connect_timeout=2"
    else:
        dsn = draw(st.sampled_from([pw, f"host=127.0.0.1 {pw}", f"{pw}={pw}", f"{prefix}{pw} host=127.0.0.1"]))
    return dsn, pw, shape < 4


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_part_of_a_password_ever_appears_in_any_output(pg18: LocalServer, data: st.DataObject) -> None:
    """Whatever its shape, a DSN's password (its tokens) is in no error message, no target label and no
    masked form; a DSN that is accepted is sent to the real server, which refuses the password. (A user
    name or database name is not a password: the shapes put the password where a password goes, or make
    the whole string unparsable.)"""
    dsn, pw, dsn_shaped = data.draw(dsn_with_password(pg18.port))
    outputs = []
    try:
        conn_settings = resolve(dsn, connect_timeout_s=2)
        outputs.append(describe(conn_settings))
        if dsn_shaped:  # a DSN libpq parses, as it may appear inside a message
            outputs += [mask(dsn), mask(f"connecting to {dsn} failed")]
        connect(conn_settings).close()
        outputs.append("connected")
    except DbtuneError as exc:
        outputs.append(str(exc))
        assert isinstance(exc, UsageError | ConnectionFailed), exc
    leaked = [t for t in TOKENS if t in pw for out in outputs if t in out]
    assert not leaked, (dsn, outputs)
    assert "connected" not in outputs


# --- item 16: config errors, option values, lint DIR, dry run, sizes, squawk ---------------------------


@pytest.mark.parametrize(("toml", "culprits"), [
    ('[database]\nstatment_timeout = "5s"\n'
     '[audit]\nfail_on = "sometimes"\nplan_queries = -1\n'
     '[[expect.index]]\ntabel = "orders"\ncolumns = ["id"]\n'
     '[[pool]]\nname = "app"\nsize = "thirty"\nmax = 50\n'
     '[profil]\nname = "x"\n',
     ("6 problems", "unknown key 'database.statment_timeout' (did you mean 'statement_timeout'?)",
      "'audit.fail_on': expected 'error', 'warning', 'info' or 'never', got 'sometimes'",
      "'audit.plan_queries': must be at least 0, got -1",
      "unknown key 'expect.index[0].tabel' (did you mean 'table'?)",
      "'pool[0].size': expected an integer, got 'thirty'", "unknown key 'profil' (did you mean 'profile'?)")),
    # check names and options are reported with the file's other problems
    ('[[expect.index]]\ntabel = "child"\ncolumns = ["note"]\n'
     '[audit]\nselect = ["duplicat-index"]\n'
     '[checks.unused-index]\nmin_stats_age_dys = 3\nseverity = "loud"\n'
     '[checks.foreign-key-without-indx]\n',
     ("5 problems", "unknown key 'expect.index[0].tabel' (did you mean 'table'?)",
      "'audit.select': no check named 'duplicat-index' (did you mean 'duplicate-index'?)",
      "unknown key 'checks.unused-index.min_stats_age_dys' (did you mean 'min_stats_age_days'?)",
      "'checks.unused-index.severity': must be error, warning or info, got 'loud'",
      "'checks.foreign-key-without-indx': no check named 'foreign-key-without-indx' "
      "(did you mean 'foreign-key-without-index'?)")),
])
def test_every_config_problem_in_one_go_with_did_you_mean(cli: CLI, findings_db: conftest.TestDatabase,
                                                          tmp_path: Path, toml: str,
                                                          culprits: tuple[str, ...]) -> None:
    (tmp_path / "dbtune.toml").write_text(toml)
    line = assert_error(cli("audit", "--dsn", findings_db.dsn), 2, "dbtune.toml", *culprits)
    assert "'table'" not in line.replace("(did you mean 'table'?)", "")  # not also "table required"
    assert "Input should" not in line and "Value error" not in line


def test_an_unknown_check_name_gets_did_you_mean(cli: CLI) -> None:
    assert_error(cli("checks", "show", "duplicat-index"), 2,
                 "no check named 'duplicat-index' (did you mean 'duplicate-index'?)")


@pytest.mark.parametrize(("args", "expected"), [
    (["audit", "--format", "xml"], "--format xml: dbtune audit writes text, json, markdown, sarif, github"),
    (["migrate", "lint", "--format", "html", "x.sql"], "--format html: dbtune migrate lint writes text, json"),
    (["migrate", "apply", "--retries", "many"], "--retries: expected an integer, got 'many'"),
    (["bench", "run", "--clients", "two"], "--clients: expected an integer, got 'two'"),
    (["bench", "run", "--duration", "1e"], "--duration: expected a number, got '1e'"),
])
def test_refused_option_values_in_plain_words(cli: CLI, args: list[str], expected: str) -> None:
    line = assert_error(cli(*args), 2, expected)
    assert "Value error" not in line and "Input should" not in line and "unable to parse" not in line


def test_lint_a_folder_and_apply_dry_run_with_nothing_pending(cli: CLI, pg18: LocalServer,
                                                              tmp_path: Path) -> None:
    database = conftest.new_database(pg18, "drydir")
    try:
        database.execute(conftest.FINDINGS_SCHEMA)
        migrations = tmp_path / "migrations"
        run = cli("migrate", "generate", "--dsn", database.dsn, "--dir", str(migrations), "--verbose")
        assert run.code == 0, run
        [revision_file] = [Path(p) for p in run.out.split() if p.endswith(".py")]
        revision = revision_file.name.split("_", 1)[0]

        # The folder is linted as the files in it: the revision, not env.py.
        lint = cli("migrate", "lint", str(migrations), "--format", "json")
        assert lint.code == 0, lint
        report = json.loads(lint.out)
        assert report["files"] == [str(revision_file)]
        assert report["squawk"]["ran"] is True

        # A dry run with a step pending: the table's size as pg_size_pretty prints it, from relpages (heap,
        # TOAST and indexes; no lock taken, so a locked table does not stall the dry run).
        [(pretty,)] = database.query(
            "SELECT pg_size_pretty(sum(relpages)::bigint * current_setting('block_size')::bigint) FROM pg_class "
            "WHERE oid IN (SELECT 'public.child'::regclass UNION SELECT reltoastrelid FROM pg_class WHERE oid = "
            "'public.child'::regclass UNION SELECT indexrelid FROM pg_index WHERE indrelid = 'public.child'::regclass)")
        dry = cli("migrate", "apply", "--dsn", database.dsn, "--dir", str(migrations), "--dry-run", "--verbose")
        assert dry.code == 0, dry
        assert f"public.child is {pretty})" in dry.out and "bytes)" not in dry.out.replace(f"{pretty})", "")
        assert revision in dry.err

        assert cli("migrate", "apply", "--dsn", database.dsn, "--dir", str(migrations), "--verbose",
                   "--quiet").code == 0
        again = cli("migrate", "apply", "--dsn", database.dsn, "--dir", str(migrations), "--dry-run")
        assert again.code == 0 and again.err == "", again
        assert again.out.startswith("nothing to apply:") and revision in again.out, again.out
        status = cli("migrate", "status", "--dsn", database.dsn, "--dir", str(migrations), "--verbose")
        assert status.code == 0 and revision in status.out
    finally:
        conftest.drop_database(database)


def test_lint_of_a_folder_without_migrations_is_a_usage_error(cli: CLI, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here\n")
    assert_error(cli("migrate", "lint", str(tmp_path)), 2, str(tmp_path), "no migration file")


SIZES = [0, 1, 8191, 10239, 10240, 10241, 16384, 20479 * 512, 20480 * 512 - 1, 20480 * 512, 10 * 1024 ** 2 - 1,
         10 * 1024 ** 2 + 511, 10 * 1024 ** 2 + 512, 123_456_789, 20 * 1024 ** 3, 7 * 1024 ** 4 + 5, 3 * 1024 ** 5,
         40 * 1024 ** 5, 2 ** 62, -1, -10240, -10 * 1024 ** 2 - 512]


def test_sizes_are_printed_as_pg_size_pretty_prints_them(findings_db: conftest.TestDatabase) -> None:
    values = ", ".join(f"({n}::bigint)" for n in SIZES)
    rows = findings_db.query(f"SELECT n, pg_size_pretty(n) FROM (VALUES {values}) v (n)")
    assert [(n, size_pretty(int(str(n)))) for n, _ in rows] == rows
    [(kb,)] = findings_db.query("SELECT pg_size_pretty(4912::bigint * 1024)")
    assert kb_pretty(4912) == kb


def test_squawk_is_installed_with_dbtune(cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """squawk-cli is a dependency, and is found beside the interpreter even when that folder is not on
    PATH (a venv used without activating it)."""
    assert any(r.split(";")[0].replace(" ", "").startswith("squawk-cli") and "extra" not in r
               for r in requires("dbtune") or [])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert squawk.find_squawk() is not None
    sql = tmp_path / "m.sql"
    sql.write_text("CREATE INDEX child_note_idx ON child (note);\n")
    run = cli("migrate", "lint", str(sql), "--format", "json", env={"PATH": "/usr/bin:/bin"})
    assert run.code == 1 and json.loads(run.out)["squawk"]["ran"] is True, run


# --- item 17 (part): extends, timeouts ------------------------------------------------------------------


@pytest.mark.parametrize("base", ["folder", "latin1.toml"])
def test_extends_naming_a_directory_or_a_non_utf8_file(cli: CLI, findings_db: conftest.TestDatabase, tmp_path: Path,
                                                       base: str) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "latin1.toml").write_bytes("[profile]\nname = 'développement'\nservers = 1\n".encode("latin-1"))
    (tmp_path / "dbtune.toml").write_text(f'extends = "{base}"\n')
    expected = "is a directory" if base == "folder" else "is not UTF-8"
    assert_error(cli("audit", "--dsn", findings_db.dsn), 2, "'extends'", str(tmp_path / base), expected)
    with pytest.raises(DbtuneError, match=expected):
        load_config(tmp_path / "dbtune.toml")


@pytest.mark.parametrize("value", ['"100000000d"', "-1", '"25d"', "2147483648"])
def test_statement_timeout_out_of_range_is_a_config_error(cli: CLI, findings_db: conftest.TestDatabase, tmp_path: Path,
                                                          value: str) -> None:
    (tmp_path / "dbtune.toml").write_text(f"[database]\nstatement_timeout = {value}\n")
    assert_error(cli("audit", "--dsn", findings_db.dsn), 2, "dbtune.toml", "'database.statement_timeout'",
                 "out of range", "2147483647 ms")
    (tmp_path / "dbtune.toml").write_text('[database]\nstatement_timeout = "24d"\n')  # in range: runs
    assert cli("audit", "--dsn", findings_db.dsn, "--format", "json").code in (0, 1)


def test_statement_timeout_option_out_of_range_is_a_usage_error(cli: CLI, findings_db: conftest.TestDatabase) -> None:
    assert_error(cli("audit", "--dsn", findings_db.dsn, "--statement-timeout", "30d"), 2, "--statement-timeout",
                 "out of range")
    assert_error(cli("migrate", "apply", "--dsn", findings_db.dsn, "--lock-timeout", "30d"), 2, "--lock-timeout",
                 "out of range")

