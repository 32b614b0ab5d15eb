"""Issue 9, item 2: the server restarted (fast and immediate shutdown) during ``migrate apply`` and during
``bench run``: one ``error:`` line, exit 3, no traceback, and a re-run converges. The fault injection is in
:mod:`faultparts.kill` (``bench compare`` reads two files and never connects, so it has no restart case)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from faultparts import Figure
from faultparts.kill import prepare, restart_cases, restart_figures, throwaway_server


def add_arguments(parser: Any) -> None:
    parser.add_argument("--restart-rows", type=int, default=1_000_000,
                        help="rows of orders and events for the restart cases (default 1,000,000)")


def run(args: Any) -> list[Figure]:
    with throwaway_server() as server, tempfile.TemporaryDirectory(prefix="dbtune-restart-") as work:
        print(f"   loading {args.restart_rows:,} rows", file=sys.stderr, flush=True)
        target = prepare(server, Path(work), args.restart_rows)
        return restart_figures("restart", restart_cases(target))
