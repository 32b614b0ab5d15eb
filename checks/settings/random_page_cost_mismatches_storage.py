"""`random_page_cost` that does not match the storage the data lives on.

## What it does
With `[server] storage` in the config (`ssd`, `nvme`, `san` or `hdd`), compares `random_page_cost` with
`seq_page_cost` (the survey's SET-08). On SSD, NVMe or SAN storage pgtune sets 1.1: a `random_page_cost`
above `max_ssd_ratio` × `seq_page_cost` is reported. On spinning disks (`hdd`) random reads are far
dearer than sequential ones: a `random_page_cost` at or below `seq_page_cost` is reported
(postgresqltuner's rule). Without `storage` the check is skipped and assumes nothing. Reads the audit
session's values (an `ALTER DATABASE … SET` counts) from `pg_settings`, which any role (`pg_monitor`
included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
The default 4.0 models a spinning disk. On flash storage it makes the planner price index scans four times
too high, so it prefers sequential scans and bitmap scans over plain index scans.

## Example
```toml
[server]
storage = "ssd"   # random_page_cost = 4 (the default)
```

## What to do instead
Set `random_page_cost = 1.1` on SSD, NVMe and SAN storage; keep 4 on spinning disks.

## How the fix is applied safely
`ALTER SYSTEM SET random_page_cost = '…'` (or `ALTER DATABASE … SET` where the database sets it) is shown,
never applied by `dbtune migrate`; a reload or new sessions pick it up. It changes plans, so compare the
plans of the important queries before and after (`dbtune bench`).

## Options
- `max_ssd_ratio` (default 2.0, from 1 to 10): on flash storage, how many times `seq_page_cost` a
  `random_page_cost` may be before it is reported.

## References
- https://www.postgresql.org/docs/current/runtime-config-query.html#GUC-RANDOM-PAGE-COST
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, machine, setting_number
from dbtune.model import Finding


@check(id="ST008", name="random-page-cost-mismatches-storage", area="settings", severity="warning", fix=True,
       options={"max_ssd_ratio": 2.0}, option_ranges={"max_ssd_ratio": (1.0, 10.0)})
def random_page_cost_mismatches_storage(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "storage")
    random, seq = setting_number(ctx, "random_page_cost"), setting_number(ctx, "seq_page_cost")
    if facts is None or random is None or seq is None:
        return
    storage = facts["storage"]
    evidence = {"random_page_cost": random, "seq_page_cost": seq, "storage": storage}
    if storage == "hdd":
        if random <= seq:
            yield ctx.finding(
                "random_page_cost",
                f"random_page_cost is {random:g}, not above seq_page_cost ({seq:g}), on spinning disks: the "
                "planner takes random reads for as cheap as sequential ones", evidence=evidence,
                changes=(alter_system(ctx, "random_page_cost", "4"),))
    elif random > ctx.options["max_ssd_ratio"] * seq:
        yield ctx.finding(
            "random_page_cost",
            f"random_page_cost is {random:g} ({random / seq:g} × seq_page_cost {seq:g}) on {storage} storage, "
            "where pgtune sets 1.1: the planner prices index scans as if on spinning disks",
            evidence=evidence, changes=(alter_system(ctx, "random_page_cost", "1.1"),))
