"""`fsync = off`: the server does not wait for its writes to reach the disk.

## What it does
Reports `fsync` off in the running server (the survey's SET-22). Reads `pg_settings`, which any role
(`pg_monitor` included) can read. dbtune's own test and demo servers run with `fsync = off` for speed,
so an audit of them reports it too. It runs in full on a role with only `pg_monitor`.

## Why it matters
With `fsync` off, a power loss or operating-system crash can leave the data files and WAL out of step:
the cluster may not start, or start with silently corrupted tables and indexes. It is only safe for data
that can be thrown away and rebuilt.

## Example
`fsync = off` in postgresql.conf.

## What to do instead
Turn it on. Where commit latency matters and losing the last few transactions on a crash (not corruption)
is acceptable, `synchronous_commit = off` for the sessions that can afford it is the safe alternative.

## How the fix is applied safely
`ALTER SYSTEM SET fsync = 'on'` is shown, never applied by `dbtune migrate`; a reload applies it. After
running with it off, the documentation advises a fresh `initdb` and restore if the server crashed meanwhile.

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-FSYNC
- https://www.postgresql.org/docs/current/wal-reliability.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, switched_off
from dbtune.model import Finding


@check(id="ST011", name="fsync-off", area="settings", severity="error", fix=True)
def fsync_off(ctx: CheckContext) -> Iterator[Finding]:
    if switched_off(ctx, "fsync"):
        yield ctx.finding("fsync", "fsync is off: a power loss or OS crash can corrupt the cluster",
                          evidence={"fsync": "off"}, changes=(alter_system(ctx, "fsync", "on"),))
