"""`effective_io_concurrency` far below what the storage can serve.

## What it does
With `[server] storage` in the config, compares `effective_io_concurrency` with pgtune's value for that
storage (le0pard/pgtune, the survey's SET-11): HDD 2, SSD 200, SAN 300, NVMe 1000. A value below the rule /
`tolerance` is reported. Without `storage` the check is skipped and assumes nothing. Reads the audit
session's value (an `ALTER DATABASE … SET` counts) from `pg_settings`, which any role (`pg_monitor`
included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
It is how many reads PostgreSQL issues ahead for a bitmap heap scan (and, from PostgreSQL 18, for
sequential scans and vacuum through asynchronous I/O). Flash storage serves hundreds of reads in parallel;
with 1 (the default before 18) or 16 a scan waits for each read in turn.

## Example
```toml
[server]
storage = "ssd"   # effective_io_concurrency = 1
```

## What to do instead
Set it to the storage's value (200 for SSD), and `maintenance_io_concurrency` alike.

## How the fix is applied safely
`ALTER SYSTEM SET effective_io_concurrency = '…'` (or `ALTER DATABASE … SET` where the database sets it) is
shown, never applied by `dbtune migrate`; a reload or new sessions pick it up.

## Options
- `tolerance` (default 4.0, from 1 to 100): how many times below the rule a value may be.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-EFFECTIVE-IO-CONCURRENCY
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, machine, setting_number
from dbtune.model import Finding

# pgtune's effective_io_concurrency by storage.
_BY_STORAGE = {"hdd": 2, "ssd": 200, "san": 300, "nvme": 1000}


@check(id="ST019", name="effective-io-concurrency-low", area="settings", severity="warning", fix=True,
       options={"tolerance": 4.0}, option_ranges={"tolerance": (1.0, 100.0)})
def effective_io_concurrency_low(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "storage")
    value = setting_number(ctx, "effective_io_concurrency")
    if facts is None or value is None:
        return
    target = _BY_STORAGE[facts["storage"]]
    if value < target / ctx.options["tolerance"]:
        yield ctx.finding(
            "effective_io_concurrency",
            f"effective_io_concurrency is {value:.0f}, far below pgtune's {target} for {facts['storage']} "
            "storage: bitmap heap scans wait for each read in turn",
            evidence={"effective_io_concurrency": int(value), "rule": target, "storage": facts["storage"]},
            changes=(alter_system(ctx, "effective_io_concurrency", str(target)),))
