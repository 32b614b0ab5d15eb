"""Issue 9, item 7: fuzzed input, thousands of examples per kind (tests/faultkit/fuzz.py), through the real
CLI against a throwaway PostgreSQL 18 holding the guide's schema: examples run, tracebacks (0), runs that
broke another rule (an exit code outside 0/1/2, two error lines, an error not naming the file: 0), runs
that changed the target (0), and the exit codes seen. ``--fuzz-failures FILE`` keeps each bad example."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from faultparts import Figure

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fuzz-examples", type=int, default=2000, help="examples per input kind (default 2000)")
    parser.add_argument("--fuzz-kind", action="append", help="only these input kinds (default: every kind)")
    parser.add_argument("--fuzz-failures", type=Path, help="write every bad example (input and output) here")


def _fuzz_kind(kind: Any, examples: int, seed_: int, dsn: str, seeds: dict[str, bytes], work: Path) -> list[Any]:
    """``examples`` runs of one input kind (hypothesis, seeded); every :class:`~faultkit.fuzz.Example`."""
    from faultkit.fuzz import example_strategy, run_example, target_state
    from hypothesis import HealthCheck, given, seed, settings

    done: list[Any] = []
    before = target_state(dsn)

    @seed(seed_)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(drawn=example_strategy(kind, seeds))
    def one(drawn: object) -> None:
        nonlocal before
        done.append(run_example(kind, drawn, dsn, work / "run", before))
        if done[-1].problems:
            before = target_state(dsn)  # count each change once

    one()
    return done


def run(args: argparse.Namespace) -> list[Figure]:
    import psycopg
    from faultkit.fuzz import KINDS, TARGET_SCHEMA, make_report_seeds

    from dbtune.db.local_server import LocalServer, embedded_bindir

    server = LocalServer.create(embedded_bindir())
    server.init()
    server.start()
    done: list[Any] = []
    try:
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE fuzz")
        dsn = server.dsn("fuzz")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TARGET_SCHEMA)  # type: ignore[arg-type]
        work = Path(tempfile.mkdtemp(prefix="dbtune-fuzz-"))
        seeds = make_report_seeds(dsn, work / "seeds")
        for name, kind in KINDS.items():
            if not args.fuzz_kind or name in args.fuzz_kind:
                print(f"fuzz: {name}: {args.fuzz_examples} examples", file=sys.stderr, flush=True)
                done += _fuzz_kind(kind, args.fuzz_examples, args.seed, dsn, seeds, work)
    finally:
        server.destroy()
    bad = [e for e in done if e.problems]
    if args.fuzz_failures:
        args.fuzz_failures.write_text("".join(
            f"== {e.kind} {e.name} {e.breakages}\n{e.data[:3000]!r}\n{e.problems}\n{e.outcome.err[-3000:]}\n"
            for e in bad))
    tracebacks = sum(e.outcome.traceback for e in done)
    changed = sum("the target changed" in e.problems for e in done)
    codes = Counter(e.outcome.code for e in done)
    return [
        Figure("fuzz", "examples run", len(done), "", f"{args.fuzz_examples} per kind", bool(done)),
        Figure("fuzz", "tracebacks", tracebacks, "", "0", tracebacks == 0),
        Figure("fuzz", "runs breaking a rule (exit, error lines, file named)", len(bad), "", "0", not bad),
        Figure("fuzz", "runs that changed the target", changed, "", "0", changed == 0),
        Figure("fuzz", "exit codes seen", " ".join(f"{c}:{n}" for c, n in sorted(codes.items(), key=str)), "",
               "only 0, 1, 2", set(codes) <= {0, 1, 2}),
    ]
