"""Progress bars on stderr and the terminal's width (issue 11, item 5), run for real: ``dbtune`` in a
subprocess whose stderr (or stdout) is a pseudo-terminal of 80 columns, against the test servers.

A bar is drawn only when stderr is a terminal; a pipe gets the one-line notes; ``--quiet`` shows nothing;
``NO_COLOR`` (any value) and ``--no-color`` leave no ANSI style; stdout never holds a bar. Every text table
fits 80 columns on an 80-column terminal and keeps 120 when stdout is a pipe.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import conftest
import pytest
from cli_runner import _clean_env

SGR = re.compile(r"\x1b\[[0-9;]*m")  # Select Graphic Rendition: colour and style
BAR = "statements run"
WORKLOAD = "-- name: count\nSELECT count(*) FROM child WHERE parent_id = 7;\n-- name: one\nSELECT 1;\n"
# A migration whose findings carry long messages and fixes.
MIGRATION = """\
CREATE INDEX orders_customer_with_a_rather_long_index_name ON orders (customer_id);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
"""


@dataclass
class Ran:
    code: int
    out: str
    err: str


def _terminal(columns: int) -> tuple[int, int]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    return master, slave


def run(*args: str, cwd: Path, tty_out: bool = False, tty_err: bool = False, env: dict[str, str] | None = None,
        columns: int = 80, command: tuple[str, ...] = (sys.executable, "-m", "dbtune")) -> Ran:
    """``python -m dbtune ARGS`` (or ``command ARGS``) with stdout and/or stderr on an 80-column
    pseudo-terminal (else pipes), ``TERM=xterm-256color`` and ``COLUMNS``; reads both to the end."""
    fds: dict[str, tuple[int, int]] = {}
    for name, tty in (("out", tty_out), ("err", tty_err)):
        fds[name] = _terminal(columns) if tty else os.pipe()
    environment = {**_clean_env(), "TERM": "xterm-256color", "COLUMNS": str(columns), **(env or {})}
    if "NO_COLOR" not in (env or {}):
        environment.pop("NO_COLOR", None)
    proc = subprocess.Popen([*command, *args], cwd=cwd, env=environment,
                            stdin=subprocess.DEVNULL, stdout=fds["out"][1], stderr=fds["err"][1])
    for _, write_end in fds.values():
        os.close(write_end)
    chunks: dict[int, list[bytes]] = {fd: [] for fd, _ in fds.values()}
    open_fds = set(chunks)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 60)
        assert ready, "dbtune wrote nothing for 60 s"
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                data = b""
            if data:
                chunks[fd].append(data)
            else:
                open_fds.discard(fd)
                os.close(fd)
    code = proc.wait(timeout=60)

    def text(name: str) -> str:
        return b"".join(chunks[fds[name][0]]).decode().replace("\r\n", "\n")

    return Ran(code, text("out"), text("err"))


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "workload.sql"
    path.write_text(WORKLOAD)
    return path


def bench(dsn: str, workload: Path, *extra: str, **kw: object) -> Ran:
    return run("bench", "run", "--dsn", dsn, "--workload", str(workload), "--clients", "2", "--iterations", "10",
               "--warmup", "1", "--rounds", "3", *extra, cwd=workload.parent, **kw)  # type: ignore[arg-type]


def test_bench_run_draws_a_bar_on_a_terminal_and_never_on_stdout(findings_db: conftest.TestDatabase,
                                                                  workload: Path) -> None:
    ran = bench(findings_db.dsn, workload, tty_err=True)
    assert ran.code == 0, ran
    # The bar: what is counted, done/total (2 queries and the reference statements x 3 rounds), colour.
    done = re.findall(rf"{BAR}.*?(\d+)/(\d+)", ran.err)
    assert done and done[-1][0] == done[-1][1] and int(done[-1][1]) % 3 == 0, ran.err
    assert SGR.search(ran.err), "a terminal's bar is coloured"
    assert "benchmarking 2 queries" in ran.err, "the notes are still shown, above the bar"
    assert BAR not in ran.out and "\x1b" not in ran.out
    assert "count" in ran.out


def test_bench_run_to_a_pipe_prints_the_notes_and_no_bar(findings_db: conftest.TestDatabase, workload: Path) -> None:
    ran = bench(findings_db.dsn, workload)
    assert ran.code == 0, ran
    assert "benchmarking 2 queries" in ran.err and "round 3/3 done" in ran.err
    assert BAR not in ran.err and "\x1b" not in ran.err and "\r" not in ran.err


@pytest.mark.parametrize("how", ["NO_COLOR=1", "NO_COLOR=", "--no-color"])
def test_no_color_leaves_the_bar_without_ansi_style(findings_db: conftest.TestDatabase, workload: Path,
                                                    how: str) -> None:
    env = dict([how.split("=", 1)]) if how.startswith("NO_COLOR") else {}
    extra = () if env else (how,)
    ran = bench(findings_db.dsn, workload, *extra, tty_err=True, env=env)
    assert ran.code == 0, ran
    assert BAR in ran.err, "the bar is drawn, without colour"
    assert not SGR.search(ran.err), ran.err


def test_quiet_shows_nothing_even_on_a_terminal(findings_db: conftest.TestDatabase, workload: Path) -> None:
    ran = bench(findings_db.dsn, workload, "--quiet", tty_err=True)
    assert ran.code == 0, ran
    assert ran.err == ""
    assert "count" in ran.out


def widest(text: str) -> int:
    return max(len(line) for line in text.splitlines())


@pytest.fixture(scope="module")
def long_findings_db(pg18: conftest.LocalServer) -> Iterator[conftest.TestDatabase]:
    """The findings schema with long names, so that the audit's lines would pass 80 columns."""
    database = conftest.new_database(pg18, "wide")
    database.execute(conftest.FINDINGS_SCHEMA.replace("parent", "parent_relation_with_a_long_descriptive_name"))
    yield database
    conftest.drop_database(database)


def test_audit_text_fits_an_80_column_terminal_and_keeps_120_in_a_pipe(
        long_findings_db: conftest.TestDatabase, tmp_path: Path) -> None:
    args = ("audit", "--dsn", long_findings_db.dsn, "--fail-on", "never")
    piped = run(*args, cwd=tmp_path)
    assert piped.code == 0, piped
    assert widest(piped.out) > 80, "in a pipe the report is laid out for 120 columns"
    narrow = run(*args, cwd=tmp_path, tty_out=True)
    assert narrow.code == 0, narrow
    assert widest(narrow.out) <= 80, narrow.out
    assert "parent_relation_with_a_long_descriptive_name" in narrow.out.replace("\n", "").replace(" ", "")


def test_lint_text_fits_an_80_column_terminal(tmp_path: Path) -> None:
    path = tmp_path / "0001_orders.sql"
    path.write_text(MIGRATION)
    piped = run("migrate", "lint", str(path), cwd=tmp_path)
    assert piped.code == 1 and widest(piped.out) > 80, piped
    narrow = run("migrate", "lint", str(path), cwd=tmp_path, tty_out=True)
    assert narrow.code == 1, narrow
    assert widest(narrow.out) <= 80, narrow.out
    rules = re.findall(r"\bMG\d{3}\b", piped.out)
    assert rules and re.findall(r"\bMG\d{3}\b", narrow.out) == rules, "the same findings, wrapped"


def test_bench_compare_fits_an_80_column_terminal(findings_db: conftest.TestDatabase, workload: Path,
                                                  tmp_path: Path) -> None:
    results = []
    for side in ("before", "after"):
        out = tmp_path / f"{side}.json"
        ran = bench(findings_db.dsn, workload, "--quiet", "--out", str(out))
        assert ran.code == 0, ran
        results.append(str(out))
    piped = run("bench", "compare", *results, cwd=tmp_path)
    assert piped.code == 0 and widest(piped.out) > 80, piped
    narrow = run("bench", "compare", *results, cwd=tmp_path, tty_out=True)
    assert narrow.code == 0, narrow
    assert widest(narrow.out) <= 80, narrow.out
    assert narrow.out.count("count") == piped.out.count("count")


# --- The other long steps' bars, and the other text reports' width -----------------------------------------------

LONG = "parent_relation_with_a_long_descriptive_name"  # long_findings_db's parent table (and child's column prefix)
LONG_WORKLOAD = (f"-- name: {LONG}_children\n"
                 f"SELECT c.note FROM child c JOIN {LONG} p ON p.id = c.{LONG}_id WHERE c.{LONG}_id = 7;\n")
# The demo's load through its library function on a bar of its own (the demo itself starts a server).
LOAD_SCRIPT = """
import sys
import psycopg
from dbtune.cli.progress import ProgressDisplay
from dbtune.db.demo import load_guide_data

with ProgressDisplay() as display, psycopg.connect(sys.argv[1], autocommit=True) as conn:
    display.note("loading the guide's data")
    rows = load_guide_data(conn, 0.002, display.count)
print(rows)
"""


def last_count(what: str, err: str, total: str = r"\d+") -> tuple[int, str]:
    """The last ``done/total`` the bar of ``what`` showed (``?`` for a total not known)."""
    found = re.findall(rf"{what}\W.*?(\d+)/({total}|\?)", err)
    assert found, f"no bar {what!r} in {err!r}"
    return int(found[-1][0]), found[-1][1]


def no_bar(ran: Ran, *bars: str) -> None:
    """A pipe: no bar, no escape sequence, no carriage return on stderr."""
    assert not any(b in ran.err for b in bars) and "\x1b" not in ran.err and "\r" not in ran.err, ran.err


@pytest.fixture(scope="module")
def guide_db(pg18: conftest.LocalServer) -> Iterator[conftest.TestDatabase]:
    """The guide's schema and data at scale 0.002 (a few thousand rows): the demo's load and the race."""
    import psycopg

    from dbtune.db.demo import load_guide_data
    from dbtune.samples import guide_file

    database = conftest.new_database(pg18, "guide")
    database.execute(guide_file("schema.sql").read_text())
    with psycopg.connect(database.dsn, autocommit=True) as conn:
        load_guide_data(conn, 0.002)
    yield database
    conftest.drop_database(database)


def test_demo_load_counts_the_rows_loaded_on_a_terminal_only(guide_db: conftest.TestDatabase, tmp_path: Path) -> None:
    python = (sys.executable,)
    shown = run("-c", LOAD_SCRIPT, guide_db.dsn, cwd=tmp_path, tty_err=True, command=python)
    assert shown.code == 0, shown
    assert last_count("rows loaded", shown.err) == (int(shown.out), "?"), "every row counted, no total known"
    assert int(shown.out) > 4000 and "loading the guide's data" in shown.err
    piped = run("-c", LOAD_SCRIPT, guide_db.dsn, cwd=tmp_path, command=python)
    assert piped.code == 0 and piped.out == shown.out, piped
    assert "loading the guide's data" in piped.err
    no_bar(piped, "rows loaded")


@pytest.fixture(scope="module")
def migrations(findings_db: conftest.TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The revision ``migrate generate`` writes for the findings schema: child's foreign key indexed."""
    directory = tmp_path_factory.mktemp("apply") / "migrations"
    ran = run("migrate", "generate", "--dsn", findings_db.dsn, "--dir", str(directory), cwd=directory.parent)
    assert ran.code == 0, ran
    return directory


def apply(db: conftest.TestDatabase, migrations: Path, *extra: str, **kw: bool) -> Ran:
    """``migrate apply`` of :func:`migrations` on ``db``, given the findings schema first."""
    db.execute(conftest.FINDINGS_SCHEMA)
    return run("migrate", "apply", "--dsn", db.dsn, "--dir", str(migrations), *extra, cwd=migrations.parent, **kw)


def test_migrate_apply_counts_steps_and_index_builds_on_a_terminal(db18: conftest.TestDatabase,
                                                                    migrations: Path) -> None:
    ran = apply(db18, migrations, tty_err=True)
    assert ran.code == 0, ran
    steps, total = last_count("steps run", ran.err)
    assert steps == int(total) >= 2, "the build and the ANALYZE after it, of the total the revision calls"
    assert last_count("indexes built", ran.err) == (1, "1")
    assert "building public.child_parent_id_idx" in ran.err and "applied 1 revision(s)" in ran.err
    assert db18.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'child_parent_id_idx'") == [(1,)]


def test_migrate_apply_to_a_pipe_prints_the_notes_and_no_bar(db18: conftest.TestDatabase, migrations: Path) -> None:
    ran = apply(db18, migrations)
    assert ran.code == 0, ran
    assert "building public.child_parent_id_idx" in ran.err and "applied 1 revision(s)" in ran.err
    no_bar(ran, "steps run", "indexes built")


def test_migrate_apply_quiet_shows_nothing_on_a_terminal(db18: conftest.TestDatabase, migrations: Path) -> None:
    ran = apply(db18, migrations, "--quiet", tty_err=True)
    assert ran.code == 0 and ran.err == "", ran
    assert db18.query("SELECT count(*) FROM pg_indexes WHERE indexname = 'child_parent_id_idx'") == [(1,)]


@pytest.fixture(scope="module")
def long_workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "workload.sql"
    path.write_text(LONG_WORKLOAD)
    return path


def test_advise_counts_planning_and_trial_builds_and_fits_80_columns(long_findings_db: conftest.TestDatabase,
                                                                     long_workload: Path) -> None:
    long_findings_db.execute("ANALYZE")  # the advisor proposes no index on a table without statistics
    args = ("advise", "--dsn", long_findings_db.dsn, "--workload", str(long_workload), "--trial-builds", "--yes")
    piped = run(*args, cwd=long_workload.parent)
    assert piped.code == 0, piped
    assert widest(piped.out) > 80, "in a pipe the advice is laid out for 100 columns"
    assert "candidates: " in piped.err
    no_bar(piped, "statements planned", "trial indexes built")
    shown = run(*args, cwd=long_workload.parent, tty_out=True, tty_err=True)
    assert shown.code == 0, shown
    assert last_count("statements planned", shown.err)[0] >= 1
    assert last_count("trial indexes built", shown.err)[0] >= 1
    assert "candidates: " in shown.err, "the notes are still shown, above the bars"
    assert widest(shown.out) <= 80, shown.out
    assert "statements planned" not in shown.out and "\x1b" not in shown.out
    assert "RECOMMENDED (1," in piped.out and "RECOMMENDED (1," in shown.out
    ddl = [re.search(r"CREATE INDEX CONCURRENTLY [^;]*;", " ".join(ran.out.split())) for ran in (piped, shown)]
    assert ddl[0] and ddl[1] and ddl[0].group() == ddl[1].group(), "the same statement, wrapped on the terminal"
    assert f"child_{LONG}_id_idx" in ddl[0].group()


def test_explain_text_fits_an_80_column_terminal(long_findings_db: conftest.TestDatabase, long_workload: Path) -> None:
    args = ("explain", "--dsn", long_findings_db.dsn, "--workload", str(long_workload), "--fail-on", "never")
    piped = run(*args, cwd=long_workload.parent)
    assert piped.code == 0 and widest(piped.out) > 80, piped
    narrow = run(*args, cwd=long_workload.parent, tty_out=True)
    assert narrow.code == 0, narrow
    assert widest(narrow.out) <= 80, narrow.out
    assert f"{LONG}_children" in narrow.out and "1 query: 1 explained" in narrow.out


def test_probe_load_counts_its_seconds_and_fits_80_columns(long_findings_db: conftest.TestDatabase,
                                                           long_workload: Path) -> None:
    args = ("probe", "load", "--dsn", long_findings_db.dsn, "--workload", str(long_workload), "--clients", "1",
            "--duration", "1", "--profile", "development")
    piped = run(*args, cwd=long_workload.parent)
    assert piped.code in (0, 1), piped
    assert widest(piped.out) > 80 and "load on " in piped.err
    no_bar(piped, "seconds run")
    shown = run(*args, cwd=long_workload.parent, tty_out=True, tty_err=True)
    assert shown.code == piped.code, shown
    assert last_count("seconds run", shown.err) == (1, "1")
    assert widest(shown.out) <= 80, shown.out
    assert "parent_relation" in shown.out and "children" in shown.out, "the statement's name, wrapped in its cell"


def test_probe_race_counts_its_rounds_and_fits_80_columns(guide_db: conftest.TestDatabase, tmp_path: Path) -> None:
    args = ("probe", "race", "--dsn", guide_db.dsn, "--yes", "--rounds", "12", "--sessions", "2")
    piped = run(*args, cwd=tmp_path)
    assert piped.code in (0, 1), piped
    assert widest(piped.out) > 80 and "racing 2 sessions × 12 rounds" in piped.err
    no_bar(piped, "rounds run")
    shown = run(*args, cwd=tmp_path, tty_out=True, tty_err=True)
    assert shown.code in (0, 1), shown
    assert last_count("rounds run", shown.err) == (12, "12")
    assert widest(shown.out) <= 80, shown.out
    assert "vendor win rate" in shown.out


def test_tune_shows_the_loop_bars_on_a_terminal_and_its_stages_on_stdout(db18: conftest.TestDatabase,
                                                                         workload: Path) -> None:
    db18.execute(conftest.FINDINGS_SCHEMA)
    args = ("tune", "--dsn", db18.dsn, "--workload", str(workload), "--yes", "--no-advisor", "--iterations", "3",
            "--dir", str(workload.parent / "tune"))
    ran = run(*args, cwd=workload.parent, tty_out=True, tty_err=True)  # the bars cleared for each stage's result
    assert ran.code == 0, ran
    done, total = last_count("statements run", ran.err)
    assert done == int(total) > 0, "the benchmarks' bar, through the LoopObserver"
    assert last_count("indexes built", ran.err) == (1, "1") and "steps run" in ran.err
    assert "== benchmark before" in ran.err, "the stages' notes, above the bars"
    assert "BEFORE / AFTER" in ran.out and "\x1b" not in ran.out and "statements run" not in ran.out


def test_a_target_longer_than_the_terminal_breaks_after_a_slash_and_quoted_sql_stays_whole() -> None:
    """A socket directory deep enough to make the report's target one word wider than the terminal (the
    tests' own servers in ``/dev/shm/…`` did): it is broken just after a slash; a quoted literal never is."""
    from dbtune.report.width import wrap_line

    target = "postgres@/dev/shm/abcdefghij/dbtune-tests-hkjqmr0w/dbtune-pg-awt78htz:52053/wide_27606_0"
    lines = wrap_line(f"dbtune explain of {target} — PostgreSQL 18.6", 80)
    assert max(map(len, lines)) <= 80 and "".join(s.strip() for s in lines).startswith("dbtune explain of" + target)
    literal = "'/a/path/" + "x" * 80 + "'"
    assert wrap_line(f"  SELECT 1 WHERE path = {literal}", 60)[-1].strip() == literal
