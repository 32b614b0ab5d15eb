"""A planner method (`enable_seqscan`, `enable_nestloop` …) is switched off for every query.

## What it does
Reports the `enable_*` settings that are on by default but off for the audit's sessions, from the server's
configuration or an `ALTER DATABASE … SET` (the survey's SET-10, postgresqltuner's "bad"), in one finding.
Settings that are off by default (`enable_partitionwise_join` …) are not reported. Reads `pg_settings`,
which any role (`pg_monitor` included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
These switches exist to debug a plan in one session. Left off for every query, they make the planner
price the method as prohibitively expensive, so queries that need it (a nested loop for a small join, a
sequential scan of a tiny table) get a worse plan, and a PostgreSQL upgrade cannot fix it.

## Example
`enable_nestloop = off` in postgresql.conf, left from an investigation.

## What to do instead
Turn it back on and fix the query or its statistics instead (`ANALYZE`, extended statistics, an index); if
one statement needs it, `SET LOCAL` it in that transaction.

## How the fix is applied safely
`ALTER SYSTEM SET enable_… = 'on'` (or `ALTER DATABASE … SET` where the database sets it) is shown, never
applied by `dbtune migrate`; a reload or new sessions pick it up. Compare the plans of the important
queries before and after (`dbtune bench`).

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-query.html#RUNTIME-CONFIG-QUERY-ENABLE
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system
from dbtune.model import Finding


@check(id="ST020", name="planner-method-disabled", area="settings", severity="warning", fix=True)
def planner_method_disabled(ctx: CheckContext) -> Iterator[Finding]:
    off = sorted(s.name for s in ctx.snapshot.settings.values()
                 if s.name.startswith("enable_") and s.boot_val == "on" and s.setting == "off")
    if off:
        one = len(off) == 1
        yield ctx.finding(
            "enable_*",
            f"{', '.join(off)} {'is' if one else 'are'} off for every query: the planner avoids "
            f"{'that method' if one else 'those methods'} even where {'it is' if one else 'they are'} the best plan",
            evidence={"off": off}, changes=[alter_system(ctx, name, "on") for name in off])
