"""Issue 9, item 1: ``dbtune migrate apply`` killed with SIGKILL (seeded, at random times and as random steps
start) over one migration of concurrent builds, a partitioned index and NOT VALID + VALIDATE constraints; a
second apply always converges. The fault injection is ``benchmarks/faultparts/kill.py``, which
``benchmarks/faults.py --part kill`` runs with a hundred trials on a million rows."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbtune.db.local_server import LocalServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from faultparts import kill  # noqa: E402

SEED = 7
TRIALS = 5
ROWS = 20_000


@pytest.fixture(scope="module")
def target(pg18: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kill.Target]:
    """The template database and the migration generated from its dbtune.toml, once for the module."""
    prepared = kill.prepare(pg18, tmp_path_factory.mktemp("kill"), ROWS, template="kill_template_test")
    yield prepared
    kill.drop_database(prepared, prepared.template)


def test_killed_apply_converges_on_a_second_run(target: kill.Target) -> None:
    """Each seeded kill (some as a step starts, some at a random time, some with the orphaned server backend
    terminated as an operator would) is followed by one plain re-run: it exits 0, and the catalog has no
    INVALID index, no duplicate index, every partition's index attached, every constraint validated and the
    version table recording the head exactly when all of it exists."""
    duration, steps = kill.measure(target)
    assert steps >= 13  # 5 builds, the ON ONLY index, 2 attaches, the check, 4 constraint steps (+ ANALYZE)
    trials = kill.plan_trials(random.Random(SEED), TRIALS, duration, steps)
    results = [kill.run_trial(target, trial, f"kill_test_{n}") for n, trial in enumerate(trials)]
    report = "\n".join(r.describe() for r in results)
    assert all(r.converged for r in results), "\n\n".join(r.output for r in results if not r.converged)
    assert sum(r.partial for r in results) >= 2, report  # the kills did interrupt the migration mid-way
    assert not any(r.mismatches or r.tracebacks for r in results), report
    for r in results:
        assert r.after_rerun.recorded == (target.revision,)
        assert not (r.after_rerun.invalid or r.after_rerun.duplicates or r.after_rerun.unattached
                    or r.after_rerun.unvalidated or r.after_rerun.missing)
    figures = kill.figures("kill", results, None)
    assert all(f.met for f in figures), figures


def test_invalid_leftover_of_a_killed_build_is_dropped_and_rebuilt(target: kill.Target) -> None:
    """Apply killed while its first build waits for an old snapshot: its orphaned backend's build then fails
    at lock_timeout with nobody left to retry or clean up, leaving an INVALID index that no session holds
    (nor the migration lock). The next apply drops it, rebuilds it and converges."""
    result = kill.orphaned_invalid_leftover(target, "kill_test_leftover")
    assert result.leftover == ("orders_status_created_idx",)
    assert result.holders == 0
    assert result.rerun_code == 0, result.rerun_err
    assert "dropping INVALID index public.orders_status_created_idx left by an earlier build" in result.rerun_err
    assert result.after.complete and not result.after.duplicates, result.after.problems()
    assert "Traceback" not in result.rerun_err
