"""Issue 9, item 2: the server restarted with a fast and with an immediate shutdown during ``migrate apply``
and during ``bench run``: one ``error:`` line naming what was cut short, exit 3, no traceback; a re-run
converges. The fault injection is ``benchmarks/faultparts/kill.py`` (``bench compare`` never connects)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from faultparts import kill  # noqa: E402

ROWS = 20_000


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kill.Target]:
    """A server of this module alone (the tests restart it), holding the template and its migration."""
    with kill.throwaway_server() as server:
        yield kill.prepare(server, tmp_path_factory.mktemp("restart"), ROWS)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_during_apply_is_one_error_line_and_a_rerun_converges(target: kill.Target, mode: str) -> None:
    """The error names the step the restart cut short and the INVALID index it left, which the re-run drops
    and rebuilds (not SQLAlchemy's "Can't reconnect until invalid transaction is rolled back")."""
    result = kill.restart_during_apply(target, mode)
    assert result.clean, (result.err, result.rerun_err)
    (line,) = result.error_lines
    assert line.startswith("error: the server ended the session during step CREATE INDEX CONCURRENTLY IF NOT "
                           "EXISTS orders_status_created_idx"), line
    assert "the INVALID index public.orders_status_created_idx it left could not be dropped (the session is " \
           "gone): the next run drops it first" in line
    assert "rolled back" not in line and "sqlalche.me" not in line
    # After an immediate shutdown, crash recovery may lose the build's catalog entry (the test servers run
    # with synchronous_commit off), so the INVALID index may not survive to be dropped.
    assert "dropping INVALID index public.orders_status_created_idx left by an earlier build" in result.rerun_err \
        or mode == "immediate", result.rerun_err
    assert result.after is not None and result.after.recorded == (target.revision,)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_restart_during_bench_run_is_one_error_line_and_a_rerun_succeeds(target: kill.Target, mode: str) -> None:
    result = kill.restart_during_bench(target, mode)
    assert result.clean, (result.err, result.rerun_err)
    (line,) = result.error_lines
    assert line.startswith("error: lost benchmark session 1: "), line
