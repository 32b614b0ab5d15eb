"""`effective_cache_size` below `shared_buffers`, or far from pgtune's rule for the machine's RAM.

## What it does
Reports `effective_cache_size` below `shared_buffers` whatever the machine (postgresqltuner's rule, the
survey's SET-02: the cache the planner assumes cannot be smaller than PostgreSQL's own). With `[server]
ram` in the config it also compares it with pgtune's rule, 3/4 of the RAM (1/4 for `workload =
"desktop"`): below half the rule, or above the RAM, is reported. Without `ram` nothing about the machine
is assumed. Reads the audit session's value (so an `ALTER DATABASE … SET` counts) from `pg_settings`,
which any role (`pg_monitor` included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
The planner uses it to estimate how many index pages are already cached: too low, and it prices index
scans as if every page came from disk and picks sequential scans and sorts instead. It allocates nothing.

## Example
```sql
ALTER DATABASE app SET effective_cache_size = '64MB';   -- shared_buffers is 128MB
```

## What to do instead
Set it to what the OS cache and `shared_buffers` together hold, about 3/4 of the RAM on a dedicated server.

## How the fix is applied safely
`ALTER SYSTEM SET effective_cache_size = '…'` (or `ALTER DATABASE … SET` where the database sets it) is
shown, never applied by `dbtune migrate`; a reload (`SELECT pg_reload_conf()`) or new sessions pick it up.
It changes plans, not memory use.

## Options
- `tolerance` (default 2.0, from 1 to 10): how many times below the RAM rule a value may be.

## References
- https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-EFFECTIVE-CACHE-SIZE
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, band, config_size, ram_text, setting_bytes
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="ST005", name="effective-cache-size-mis-sized", area="settings", severity="warning", fix=True,
       options={"tolerance": 2.0}, option_ranges={"tolerance": (1.0, 10.0)})
def effective_cache_size_mis_sized(ctx: CheckContext) -> Iterator[Finding]:
    value = setting_bytes(ctx, "effective_cache_size")
    shared = setting_bytes(ctx, "shared_buffers")
    if value is None or shared is None:
        return
    ram = ctx.config.server.ram
    share = 4 if ctx.config.server.workload == "desktop" else 4 / 3
    target = int(ram / share) if ram else None
    evidence = {"effective_cache_size_bytes": value, "shared_buffers_bytes": shared, "ram_bytes": ram}
    if value < shared:
        fix = config_size(target or shared * 4)
        yield ctx.finding(
            "effective_cache_size",
            f"effective_cache_size is {size_pretty(value)}, below shared_buffers ({size_pretty(shared)}): the "
            "planner assumes less cache than PostgreSQL's own and prices index scans too high",
            evidence=evidence, changes=(alter_system(ctx, "effective_cache_size", fix),))
        return
    if ram is None or target is None:
        ctx.skip("needs [server] ram in the config to judge more than effective_cache_size against "
                 "shared_buffers (SQL cannot see the machine; nothing is assumed)")
        return
    rule = band(target, ctx.options["tolerance"], high=ram)
    verdict = rule.judge(value)
    if verdict is not None:
        what = "below half of" if verdict == "below" else "above the RAM, beyond"
        yield ctx.finding(
            "effective_cache_size",
            f"effective_cache_size is {size_pretty(value)}, {what} pgtune's rule for {ram_text(ram)} "
            f"({'1/4' if share == 4 else '3/4'} of RAM = {size_pretty(target)})",
            evidence={**evidence, "rule_bytes": target},
            changes=(alter_system(ctx, "effective_cache_size", config_size(target)),))
