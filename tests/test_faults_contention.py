"""Issue 9, item 3: ``migrate apply`` behind a session holding a conflicting lock, with a writer inserting
all along. Apply retries under ``lock_timeout``, naming the blocker's pid and query each time, and succeeds
once the blocker lets go; a blocker that outlasts the retry budget ends apply with exit 3 and one
``error:`` line naming it. The scenario is ``benchmarks/faultparts/contention.py``; the writer's longest
stall against ``lock_timeout`` is that benchmark's figure (``benchmarks/faults.py --part contention``),
not asserted here: a timed assertion would test the machine."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbtune.db.local_server import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from faultparts import contention, kill  # noqa: E402


@pytest.fixture(scope="module")
def target(pg18: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kill.Target]:
    prepared = kill.prepare(pg18, tmp_path_factory.mktemp("contention"), 5_000, template="contention_template_test",
                            config=contention.CONFIG)
    yield prepared
    kill.drop_database(prepared, prepared.template)


def test_apply_retries_behind_a_blocker_naming_it_then_succeeds(target: kill.Target) -> None:
    result = contention.behind_a_blocker(target, "contention_wait_test", hold_s=2.5, lock_timeout_ms=500,
                                         retries=10, writer_s=120)
    assert result.code == 0, result.lines
    assert result.retries >= 1, result.lines
    # Each retry names the blocker (pid, state, query); the lock queue bounds what writers wait at lock_timeout.
    retry_lines = [line for line in result.lines if " retry " in line]
    assert retry_lines and all(f"pid {result.blocker_pid} (idle in transaction" in line
                               and "UPDATE orders SET total = total WHERE id = 1" in line
                               for line in retry_lines), retry_lines
    assert result.converged and result.inserts > 0 and result.tracebacks == 0


def test_a_blocker_that_outlasts_the_retry_budget_is_one_error_line(target: kill.Target) -> None:
    result = contention.behind_a_blocker(target, "contention_give_up_test", hold_s=0, lock_timeout_ms=300,
                                         retries=1, writer_s=120)
    assert result.code == 3, result.lines
    [error] = result.error_lines
    assert "after 1 retries" in error, error
    assert f"pid {result.blocker_pid} (idle in transaction, ROW EXCLUSIVE on orders): UPDATE orders SET total = " \
        "total WHERE id = 1" in error, error
    assert result.tracebacks == 0
