"""Parallel query may start more workers than the machine has CPUs.

## What it does
With `[server] cpus` in the config, compares the parallel-query settings with pgtune's rule (le0pard/pgtune,
the survey's SET-19): `max_parallel_workers` at most the CPU count, and `max_parallel_workers_per_gather`
at most half of it (rounded up). Above either is reported, in one finding. Without `cpus` the check is
skipped and assumes nothing (the defaults 8 and 2 on a machine of unknown size are no finding). Reads the
audit session's values from `pg_settings`, which any role (`pg_monitor` included) can read.
It runs in full on a role with only `pg_monitor`.

## Why it matters
Each parallel worker is a process that wants a CPU: more of them than CPUs makes parallel queries slower,
not faster, and takes the CPUs the other sessions need.

## Example
```toml
[server]
cpus = 4          # max_parallel_workers = 8 (the default)
```

## What to do instead
Set `max_parallel_workers` to the CPU count and `max_parallel_workers_per_gather` to half of it, at most 4
for OLTP work.

## How the fix is applied safely
`ALTER SYSTEM SET` for each setting (or `ALTER DATABASE … SET` where the database sets it) is shown,
never applied by `dbtune migrate`; a reload applies them.

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-MAX-PARALLEL-WORKERS
- https://www.postgresql.org/docs/current/how-parallel-query-works.html
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, machine, setting_number
from dbtune.model import Finding


@check(id="ST017", name="parallel-workers-exceed-cpus", area="settings", severity="warning", fix=True)
def parallel_workers_exceed_cpus(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "cpus")
    if facts is None:
        return
    cpus = facts["cpus"]
    limits = {"max_parallel_workers": cpus, "max_parallel_workers_per_gather": -(-cpus // 2)}
    over = {}
    for name, limit in limits.items():
        value = setting_number(ctx, name)
        if value is not None and value > limit:
            over[name] = (int(value), limit)
    if over:
        yield ctx.finding(
            "max_parallel_workers",
            "; ".join(f"{name} is {value}, above {limit}" for name, (value, limit) in over.items())
            + f" for {cpus} CPUs: parallel workers would wait for CPUs instead of speeding queries up",
            evidence={"cpus": cpus, **{name: value for name, (value, _) in over.items()}},
            changes=[alter_system(ctx, name, str(limit)) for name, (_, limit) in over.items()])
