"""Issue 9, item 5: two ``migrate apply`` at once. The migration lock serialises them: the second waits,
saying so in one line naming the first (its pid and application), then finds nothing left to do (not
"applied 1 revision", which the other run applied); ``--no-wait`` exits 3 at once with one ``error:`` line
naming the first and since when it holds the lock. The fault injection is
``benchmarks/faultparts/kill.py``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbtune.db.local_server import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from faultparts import kill  # noqa: E402


@pytest.fixture(scope="module")
def target(pg18: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kill.Target]:
    prepared = kill.prepare(pg18, tmp_path_factory.mktemp("appliers"), 2_000, template="kill_template_appliers")
    yield prepared
    kill.drop_database(prepared, prepared.template)


def test_second_applier_waits_naming_the_first_and_no_wait_refuses(target: kill.Target) -> None:
    result = kill.two_appliers(target, "kill_test_appliers")
    first_code, first_err = result.first
    second_code, second_err = result.second
    refused_code, refused_err = result.refused
    named = f"(dbtune migrate apply: pid {result.first_pid} on "
    assert first_code == 0 and f"applied 1 revision(s): {target.revision}" in first_err, first_err
    waits = [line for line in second_err.splitlines() if line.startswith("waiting for the dbtune migration lock")]
    assert len(waits) == 1 and named in waits[0] and "connected since" in waits[0], second_err
    assert second_code == 0, second_err
    assert second_err.splitlines()[-1] == f"nothing left to apply: another run applied {target.revision} while " \
        "this one waited for the migration lock"
    assert "applied 1 revision" not in second_err
    assert refused_code == 3 and "Traceback" not in refused_err and result.refused_while_held
    errors = [line for line in refused_err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: another migration run holds the dbtune migration "
                                                     "lock (--no-wait): pid "), refused_err
    assert named in errors[0] and "connected since" in errors[0] and " UTC" in errors[0]
    assert result.after.complete and not result.after.duplicates
    assert result.after.recorded == (target.revision,)
