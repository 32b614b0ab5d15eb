#!/usr/bin/env python
"""Reliability under faults, measured: kill, restart, lock contention, locked tables in the audit, two
appliers, hostile identifiers, fuzzed input, secrets and the read-only promise (issue 9).

Each part lives in ``benchmarks/faultparts/<part>.py`` and exposes ``run(args) -> list[Figure]``, with
``add_arguments(parser)`` for its own options (the kill trials' count, the table sizes, …). The test suite
runs the same code with smaller counts (tests/test_faults_*.py); this script runs the full counts and
prints every figure with its target:

    python benchmarks/faults.py                    # every part, full counts
    python benchmarks/faults.py --part kill --kill-trials 100 --seed 7
    python benchmarks/faults.py --json

Exit status: 0 when every figure meets its target, 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultparts import Figure  # noqa: E402


def _parts() -> dict[str, object]:
    """The part modules under ``benchmarks/faultparts/``, by name, in name order."""
    import faultparts
    return {m.name: importlib.import_module(f"faultparts.{m.name}")
            for m in sorted(pkgutil.iter_modules(faultparts.__path__), key=lambda m: m.name)}


def main() -> int:
    parts = _parts()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", action="append", choices=sorted(parts), help="run only these parts")
    parser.add_argument("--seed", type=int, default=7, help="seed for every random choice (default 7)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    for module in parts.values():
        add = getattr(module, "add_arguments", None)
        if add is not None:
            add(parser)
    args = parser.parse_args()
    figures: list[Figure] = []
    for name, module in parts.items():
        if args.part and name not in args.part:
            continue
        print(f"== {name}", file=sys.stderr, flush=True)
        figures += module.run(args)  # type: ignore[attr-defined]
    rows = [{"part": f.part, "figure": f.name, "value": f.value, "unit": f.unit, "target": f.target,
             "met": "yes" if f.met else "NO"} for f in figures]
    print(json.dumps(rows, indent=2) if args.json else tabulate(rows, headers="keys"))
    return 0 if all(f.met for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
