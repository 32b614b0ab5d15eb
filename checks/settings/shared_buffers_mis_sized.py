"""`shared_buffers` far from pgtune's rule for the machine's RAM.

## What it does
Compares `shared_buffers` with pgtune's rule (le0pard/pgtune, the survey's SET-01): RAM/4, or RAM/16 for
`workload = "desktop"`. Below half the rule is reported, and above 40 % of RAM (postgresqltuner's bound:
the rest of the memory is the OS cache and the backends'). The RAM comes from `[server] ram` in the
config, since SQL cannot see the machine: without it the check is skipped, saying so, and assumes
nothing (so the 128 MB default on an unknown machine is no finding). Reads only `pg_settings`, which any
role (`pg_monitor` included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
Too small a buffer cache sends reads that would have been hits to the kernel, at the price of a system
call and a copy each; too large a one doubles what the OS cache already holds and leaves little for
`work_mem` and maintenance.

## Example
```toml
[server]
ram = "16GB"      # shared_buffers = 128MB is below RAM/8 = 2GB
```

## What to do instead
Set `shared_buffers` to about a quarter of the RAM (up to 40 %), then watch the cache hit ratio.

## How the fix is applied safely
`ALTER SYSTEM SET shared_buffers = '…'` is shown, never applied by `dbtune migrate`: it takes effect only
at the next restart, which you schedule, and needs the memory (and huge pages, if used) to be there.

## Options
- `tolerance` (default 2.0, from 1 to 10): how many times below the rule a value may be before it is
  reported.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-SHARED-BUFFERS
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, band, config_size, machine, ram_text, setting_bytes
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="ST004", name="shared-buffers-mis-sized", area="settings", severity="warning", fix=True,
       options={"tolerance": 2.0}, option_ranges={"tolerance": (1.0, 10.0)})
def shared_buffers_mis_sized(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "ram")
    value = setting_bytes(ctx, "shared_buffers")
    if facts is None or value is None:
        return
    ram = facts["ram"]
    divisor = 16 if ctx.config.server.workload == "desktop" else 4
    rule = band(ram / divisor, ctx.options["tolerance"], high=0.4 * ram)
    verdict = rule.judge(value)
    if verdict is None:
        return
    limit = size_pretty(int(rule.low if verdict == "below" else rule.high))
    bound = f"below RAM/{divisor * 2}" if verdict == "below" else "above 40 % of RAM"
    yield ctx.finding(
        "shared_buffers",
        f"shared_buffers is {size_pretty(value)}, {bound} ({limit}) for {ram_text(ram)}: pgtune's rule is "
        f"RAM/{divisor} = {size_pretty(int(rule.target))} (a restart applies a change)",
        evidence={"shared_buffers_bytes": value, "ram_bytes": ram, "rule_bytes": int(rule.target),
                  "rule": f"RAM/{divisor}"},
        changes=(alter_system(ctx, "shared_buffers", config_size(int(rule.target))),),
    )
