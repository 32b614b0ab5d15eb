"""`work_mem` far from pgtune's rule for the machine's RAM and the connection count.

## What it does
Computes pgtune's rule (le0pard/pgtune, the survey's SET-03): `(RAM − shared_buffers) / ((max_connections
+ max_worker_processes) × 3)`, halved for `workload = "dw"` or `"mixed"`, divided by 6 for `"desktop"`, and
never below 4 MB. A `work_mem` above `tolerance` × the rule is a warning (each sort or hash node of each
connection may use that much, so the server can run out of memory), one below rule / `tolerance` is
information (sorts and hashes spill to disk sooner than they need to). The RAM comes from `[server] ram`:
without it the check is skipped and assumes nothing. Reads the audit session's values (an `ALTER
DATABASE … SET` counts) from `pg_settings`, which any role (`pg_monitor` included) can read.
It runs in full on a role with only `pg_monitor`.

## Why it matters
`work_mem` is per sort or hash operation, not per connection: a value sized for one query multiplies by
every connection and every node. Too small, and `ORDER BY`, hash joins and aggregates write temporary
files instead.

## Example
```toml
[server]
ram = "1GB"       # with work_mem = '64MB' and max_connections = 100
```

## What to do instead
Keep the server-wide value near the rule, and raise `work_mem` per role or per transaction (`SET LOCAL
work_mem`) for the reports that need more.

## How the fix is applied safely
`ALTER SYSTEM SET work_mem = '…'` (or `ALTER DATABASE … SET` where the database sets it) is shown, never
applied by `dbtune migrate`; a reload or new sessions pick it up.

## Options
- `tolerance` (default 2.0, from 1 to 10): how many times away from the rule a value may be.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, band, config_size, machine, ram_text, setting_bytes, setting_number
from dbtune.model import Finding, Severity
from dbtune.units import size_pretty

_DIVISOR = {"dw": 2, "mixed": 2, "desktop": 6}
_FLOOR = 4 << 20


@check(id="ST006", name="work-mem-mis-sized", area="settings", severity="warning", fix=True,
       options={"tolerance": 2.0}, option_ranges={"tolerance": (1.0, 10.0)})
def work_mem_mis_sized(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "ram")
    value, shared = setting_bytes(ctx, "work_mem"), setting_bytes(ctx, "shared_buffers")
    connections = setting_number(ctx, "max_connections")
    workers = setting_number(ctx, "max_worker_processes") or 0
    if facts is None or value is None or shared is None or not connections:
        return
    ram = facts["ram"]
    divisor = _DIVISOR.get(ctx.config.server.workload or "", 1)
    target = max(_FLOOR, int((ram - shared) / ((connections + workers) * 3) / divisor))
    rule = band(target, ctx.options["tolerance"])
    verdict = rule.judge(value)
    if verdict is None:
        return
    formula = (f"(RAM − shared_buffers) / ((max_connections {connections:.0f} + max_worker_processes "
               f"{workers:.0f}) × 3){f' / {divisor}' if divisor > 1 else ''}")
    risk = ("each sort or hash of each connection may use that much, more than the memory holds"
            if verdict == "above" else "sorts and hashes spill to temporary files sooner than they need to")
    yield ctx.finding(
        "work_mem",
        f"work_mem is {size_pretty(value)}, {verdict} pgtune's rule for {ram_text(ram)}: {formula} = "
        f"{size_pretty(target)}; {risk}",
        evidence={"work_mem_bytes": value, "rule_bytes": target, "ram_bytes": ram,
                  "max_connections": int(connections), "max_worker_processes": int(workers)},
        changes=(alter_system(ctx, "work_mem", config_size(target)),),
        severity=None if verdict == "above" else Severity.INFO,
    )
