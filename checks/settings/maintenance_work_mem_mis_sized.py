"""`maintenance_work_mem` far from pgtune's rule for the machine's RAM.

## What it does
Computes pgtune's rule (le0pard/pgtune, the survey's SET-04): RAM/16 (RAM/8 for `workload = "dw"`), at
most 8 GB. Below rule / `tolerance` is information (vacuum and index builds run slower than they could);
above `tolerance` × the rule is a warning (each of the `autovacuum_max_workers` may take that much, when
`autovacuum_work_mem` is -1). The RAM comes from `[server] ram`: without it the check is skipped and
assumes nothing (the 64 MB default on an unknown machine is no finding). Reads the audit session's value
from `pg_settings`, which any role (`pg_monitor` included) can read.
It runs in full on a role with only `pg_monitor`.

## Why it matters
`VACUUM` keeps the dead tuple IDs it collects in this memory: too little, and it scans every index of a
large table several times. `CREATE INDEX` sorts in it.

## Example
```toml
[server]
ram = "4GB"       # maintenance_work_mem = 64MB is below RAM/32
```

## What to do instead
Set it near RAM/16; raise it per session for a large index build.

## How the fix is applied safely
`ALTER SYSTEM SET maintenance_work_mem = '…'` (or `ALTER DATABASE … SET` where the database sets it) is
shown, never applied by `dbtune migrate`; a reload or new sessions pick it up.

## Options
- `tolerance` (default 2.0, from 1 to 10): how many times away from the rule a value may be.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-MAINTENANCE-WORK-MEM
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, band, config_size, machine, ram_text, setting_bytes
from dbtune.model import Finding, Severity
from dbtune.units import size_pretty

_CAP = 8 << 30


@check(id="ST007", name="maintenance-work-mem-mis-sized", area="settings", severity="warning", fix=True,
       options={"tolerance": 2.0}, option_ranges={"tolerance": (1.0, 10.0)})
def maintenance_work_mem_mis_sized(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "ram")
    value = setting_bytes(ctx, "maintenance_work_mem")
    if facts is None or value is None:
        return
    ram = facts["ram"]
    divisor = 8 if ctx.config.server.workload == "dw" else 16
    target = min(_CAP, ram // divisor)
    rule = band(target, ctx.options["tolerance"])
    verdict = rule.judge(value)
    if verdict is None:
        return
    yield ctx.finding(
        "maintenance_work_mem",
        f"maintenance_work_mem is {size_pretty(value)}, {verdict} pgtune's rule for {ram_text(ram)}: "
        f"RAM/{divisor}{', at most 8 GB' if target == _CAP else ''} = {size_pretty(target)}",
        evidence={"maintenance_work_mem_bytes": value, "rule_bytes": target, "ram_bytes": ram},
        changes=(alter_system(ctx, "maintenance_work_mem", config_size(target)),),
        severity=None if verdict == "above" else Severity.INFO,
    )
