#!/usr/bin/env python
"""How long the CLI takes to start: ``dbtune --help``, ``dbtune audit --help`` and ``dbtune migrate lint`` of
one small migration (squawk included), each run ``--runs`` times as a subprocess of the ``dbtune`` beside
this interpreter. Prints the median and best wall time, the median CPU time of the child (user + system)
and the number of modules imported by ``dbtune --help``.

    python benchmarks/startup.py            # 10 runs each
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIGRATION = "CREATE INDEX orders_customer_idx ON orders (customer_id);\n"


def timed(args: list[str]) -> tuple[float, float]:
    """One run of ``args``: (wall seconds, CPU seconds of the child)."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = os.times()
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def modules_at_help() -> int:
    """How many modules ``dbtune --help`` has imported when it exits."""
    code = ("import sys\nsys.argv = ['dbtune', '--help']\nfrom dbtune.cli.app import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint(len(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    return int(done.stderr.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    dbtune = str(Path(sys.executable).with_name("dbtune"))
    with tempfile.TemporaryDirectory(prefix="dbtune-startup-") as work:
        migration = Path(work) / "0001_index.sql"
        migration.write_text(MIGRATION)
        commands = {"dbtune --help": [dbtune, "--help"],
                    "dbtune audit --help": [dbtune, "audit", "--help"],
                    "dbtune migrate lint <one file>": [dbtune, "migrate", "lint", str(migration)]}
        print(f"{'command':32} {'median':>8} {'best':>8} {'CPU':>8}")
        for name, command in commands.items():
            timed(command)  # warm the file cache
            runs = [timed(command) for _ in range(args.runs)]
            walls = [w for w, _ in runs]
            cpus = [c for _, c in runs]
            print(f"{name:32} {statistics.median(walls) * 1000:6.0f}ms {min(walls) * 1000:6.0f}ms "
                  f"{statistics.median(cpus) * 1000:6.0f}ms")
    print(f"modules imported by dbtune --help: {modules_at_help()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
