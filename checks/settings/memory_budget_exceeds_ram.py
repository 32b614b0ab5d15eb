"""The worst-case memory the settings allow is more than the machine's RAM.

## What it does
Adds up what the settings let PostgreSQL take at once, as postgresqltuner does (the survey's SET-05):
`shared_buffers` + `max_connections` × `work_mem` × 1.5 (a query often runs more than one sort or hash)
+ `autovacuum_max_workers` × `autovacuum_work_mem` (`maintenance_work_mem` when it is -1). Above the RAM
is a warning; above `max_share` of it (default 0.8) information. The RAM comes from `[server] ram`: without
it the check is skipped and assumes nothing. Reads the audit session's values from `pg_settings`, which
any role (`pg_monitor` included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
When the connections all sort at once, the kernel's out-of-memory killer ends a backend, and PostgreSQL
restarts every session to recover: a full outage. Before that, the OS cache the planner counts on
(`effective_cache_size`) is gone.

## Example
```toml
[server]
ram = "512MB"     # 128MB + 100 × 4MB × 1.5 + 3 × 64MB = 920 MB
```

## What to do instead
Lower `max_connections` (put PgBouncer in front), or `work_mem` server-wide while raising it per role for
the queries that need it; or give the machine more memory.

## How the fix is applied safely
No SQL fix is generated: which of the settings to lower is a decision about the workload.

## Options
- `max_share` (default 0.8, from 0.1 to 1): the share of the RAM above which the budget is information.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html
- https://www.postgresql.org/docs/current/kernel-resources.html#LINUX-MEMORY-OVERCOMMIT
- https://github.com/jfcoz/postgresqltuner
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import machine, ram_text, setting_bytes, setting_number
from dbtune.model import Finding, Severity
from dbtune.units import size_pretty


@check(id="ST018", name="memory-budget-exceeds-ram", area="settings", severity="warning",
       options={"max_share": 0.8}, option_ranges={"max_share": (0.1, 1.0)})
def memory_budget_exceeds_ram(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "ram")
    shared, work_mem = setting_bytes(ctx, "shared_buffers"), setting_bytes(ctx, "work_mem")
    connections = setting_number(ctx, "max_connections")
    workers = setting_number(ctx, "autovacuum_max_workers") or 0
    vacuum_mem = setting_bytes(ctx, "autovacuum_work_mem") or setting_bytes(ctx, "maintenance_work_mem") or 0
    if facts is None or shared is None or work_mem is None or not connections:
        return
    ram = facts["ram"]
    budget = int(shared + connections * work_mem * 1.5 + workers * vacuum_mem)
    if budget <= ctx.options["max_share"] * ram:
        return
    over = budget > ram
    yield ctx.finding(
        "work_mem",
        f"the settings allow {size_pretty(budget)} at once, {budget / ram:.0%} of {ram_text(ram)}: shared_buffers "
        f"{size_pretty(shared)} + max_connections {connections:.0f} × work_mem {size_pretty(work_mem)} × 1.5 + "
        f"autovacuum_max_workers {workers:.0f} × {size_pretty(vacuum_mem)}"
        + ("; a busy hour can end in the out-of-memory killer" if over else ""),
        evidence={"budget_bytes": budget, "ram_bytes": ram, "shared_buffers_bytes": shared,
                  "work_mem_bytes": work_mem, "max_connections": int(connections),
                  "autovacuum_max_workers": int(workers), "autovacuum_work_mem_bytes": vacuum_mem},
        severity=None if over else Severity.INFO)
