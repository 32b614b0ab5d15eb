"""Issue 9, item 5: two ``migrate apply`` at once on one database. The migration lock serialises them: the
second waits, saying whom for (the first's pid and application), then finds nothing left to do; with
``--no-wait`` a third exits 3 at once naming the first. Then pairs started at the same moment: never both
apply the revision. The fault injection is in :mod:`faultparts.kill`."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from faultparts import Figure
from faultparts.kill import prepare, simultaneous_appliers, throwaway_server, two_appliers


def add_arguments(parser: Any) -> None:
    parser.add_argument("--appliers-trials", type=int, default=10,
                        help="pairs of appliers started at the same moment (default 10)")
    parser.add_argument("--appliers-rows", type=int, default=1_000_000,
                        help="rows of orders and events (default 1,000,000)")


def run(args: Any) -> list[Figure]:
    part = "appliers"
    with throwaway_server() as server, tempfile.TemporaryDirectory(prefix="dbtune-appliers-") as work:
        print(f"   loading {args.appliers_rows:,} rows", file=sys.stderr, flush=True)
        target = prepare(server, Path(work), args.appliers_rows)
        held = two_appliers(target)
        pairs = [simultaneous_appliers(target, f"appliers_pair_{n}") for n in range(args.appliers_trials)]
    named = f"dbtune migrate apply: pid {held.first_pid} " in held.second[1]
    waited = held.second[0] == 0 and named and "nothing left to apply" in held.second[1]
    refused = held.refused[0] == 3 and f"dbtune migrate apply: pid {held.first_pid} " in held.refused[1] \
        and "connected since" in held.refused[1]
    return [
        Figure(part, "second applier waited (naming the first), then found nothing left", "yes" if waited else "no",
               "", "yes", waited),
        Figure(part, "--no-wait: exit 3 naming the first (pid, since when)", "yes" if refused else "no", "", "yes",
               refused),
        Figure(part, "--no-wait: time to refuse (process start included)", round(held.refused_ms), "ms",
               "before the first releases the lock", held.refused_while_held),
        Figure(part, "pairs started together", len(pairs), "", "as asked", bool(pairs)),
        Figure(part, "pairs where both applied the revision", sum(a > 1 for a, _, _ in pairs), "", "0",
               not any(a > 1 for a, _, _ in pairs)),
        Figure(part, "pairs with a failed applier or a catalog not converged",
               sum(bool(f) or not ok for _, f, ok in pairs), "", "0", all(not f and ok for _, f, ok in pairs)),
    ]
