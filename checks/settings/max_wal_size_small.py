"""`max_wal_size` far below pgtune's value for the workload.

## What it does
With `[server] workload` in the config, compares `max_wal_size` with pgtune's value for that kind of
database (le0pard/pgtune, the survey's SET-13): web 4 GB, oltp 8 GB, dw 16 GB, desktop 2 GB, mixed 4 GB.
Below the value / `tolerance` is reported. Without `workload` the check is skipped and assumes nothing
(1 GB, the default, on a database of unknown use is no finding). Reads `pg_settings`, which any role
(`pg_monitor` included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
When the WAL written since the last checkpoint reaches `max_wal_size`, PostgreSQL starts a checkpoint
before `checkpoint_timeout`: under write load checkpoints come every few seconds, each followed by a burst
of full-page images in the WAL, and the server log says "checkpoints are occurring too frequently".

## Example
```toml
[server]
workload = "oltp"   # max_wal_size = 1GB, pgtune's value is 8GB
```

## What to do instead
Raise `max_wal_size` to the value for the workload, if the WAL disk has the room (it is a soft limit).

## How the fix is applied safely
`ALTER SYSTEM SET max_wal_size = '…'` is shown, never applied by `dbtune migrate`; a reload applies it.

## Options
- `tolerance` (default 2.0, from 1 to 10): how many times below pgtune's value a setting may be.

## References
- https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-MAX-WAL-SIZE
- https://www.postgresql.org/docs/current/wal-configuration.html
- https://github.com/le0pard/pgtune
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, config_size, machine, setting_bytes
from dbtune.model import Finding
from dbtune.units import size_pretty

_GB = 1 << 30
# pgtune's max_wal_size by "DB type".
_BY_WORKLOAD = {"web": 4 * _GB, "oltp": 8 * _GB, "dw": 16 * _GB, "desktop": 2 * _GB, "mixed": 4 * _GB}


@check(id="ST010", name="max-wal-size-small", area="settings", severity="warning", fix=True,
       options={"tolerance": 2.0}, option_ranges={"tolerance": (1.0, 10.0)})
def max_wal_size_small(ctx: CheckContext) -> Iterator[Finding]:
    facts = machine(ctx, "workload")
    value = setting_bytes(ctx, "max_wal_size")
    if facts is None or value is None:
        return
    workload = facts["workload"]
    target = _BY_WORKLOAD[workload]
    if value < target / ctx.options["tolerance"]:
        yield ctx.finding(
            "max_wal_size",
            f"max_wal_size is {size_pretty(value)}, more than {ctx.options['tolerance']:g} times below pgtune's "
            f"{size_pretty(target)} for a "
            f"{workload} workload: under write load checkpoints start before checkpoint_timeout",
            evidence={"max_wal_size_bytes": value, "rule_bytes": target, "workload": workload},
            changes=(alter_system(ctx, "max_wal_size", config_size(target)),))
