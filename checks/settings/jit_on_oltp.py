"""JIT compilation on for a web or OLTP workload.

## What it does
With `[server] workload` set to `web`, `oltp` or `mixed` in the config, reports `jit` on for the audit's
sessions (pgtune turns it off for these, the survey's SET-20). Information. Without `workload` the check
is skipped and assumes nothing; for `dw` and `desktop` JIT is left alone. Reads `pg_settings`, which any
role (`pg_monitor` included) can read. The plan check `jit-dominates` (PL010) reports the plans where JIT
took most of the time. It runs in full on a role with only `pg_monitor`.

## Why it matters
JIT compiles expressions when a plan's cost is above `jit_above_cost`; for the short queries of a web
application the compilation (tens to hundreds of ms) costs more than it saves, and the planner's cost,
not the run time, decides, so a misestimated query pays it on every call.

## Example
```toml
[server]
workload = "oltp"   # jit = on (the default)
```

## What to do instead
Turn JIT off server-wide and on per role or per session for the reports that profit from it.

## How the fix is applied safely
`ALTER SYSTEM SET jit = 'off'` (or `ALTER DATABASE … SET` where the database sets it) is shown, never
applied by `dbtune migrate`; a reload or new sessions pick it up.

## Options
None.

## References
- https://www.postgresql.org/docs/current/jit-decision.html
- https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-JIT
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, machine
from dbtune.model import Finding


@check(id="ST022", name="jit-on-oltp", area="settings", severity="info", fix=True)
def jit_on_oltp(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "workload")
    if facts is None or facts["workload"] not in ("web", "oltp", "mixed") or ctx.snapshot.setting("jit") != "on":
        return
    yield ctx.finding(
        "jit", f"jit is on for a {facts['workload']} workload: compiling short queries costs more than it saves",
        evidence={"jit": "on", "workload": facts["workload"]}, changes=(alter_system(ctx, "jit", "off"),))
