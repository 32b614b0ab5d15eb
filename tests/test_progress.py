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
        columns: int = 80) -> Ran:
    """``python -m dbtune ARGS`` with stdout and/or stderr on an 80-column pseudo-terminal (else pipes),
    ``TERM=xterm-256color`` and ``COLUMNS``; reads both to the end."""
    fds: dict[str, tuple[int, int]] = {}
    for name, tty in (("out", tty_out), ("err", tty_err)):
        fds[name] = _terminal(columns) if tty else os.pipe()
    environment = {**_clean_env(), "TERM": "xterm-256color", "COLUMNS": str(columns), **(env or {})}
    if "NO_COLOR" not in (env or {}):
        environment.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "dbtune", *args], cwd=cwd, env=environment,
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
