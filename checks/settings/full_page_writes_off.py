"""`full_page_writes = off`: a page torn by a crash cannot be repaired from the WAL.

## What it does
Reports `full_page_writes` off in the running server (the survey's SET-34). Reads `pg_settings`, which
any role (`pg_monitor` included) can read. dbtune's own test and demo servers run with it off for speed,
so an audit of them reports it too. It runs in full on a role with only `pg_monitor`.

## Why it matters
After a checkpoint, the first change to each page writes the whole page into the WAL, so that a page only
partly written when the power failed (a torn page) is restored whole at recovery. Without it, crash
recovery replays changes onto a torn page and the table or index is corrupted. Only storage that
guarantees atomic 8 kB writes (some copy-on-write file systems) makes it safe to turn off.

## Example
`full_page_writes = off` in postgresql.conf.

## What to do instead
Turn it on; to reduce the WAL volume it costs, raise `checkpoint_timeout` and `max_wal_size`, or turn on
`wal_compression`.

## How the fix is applied safely
`ALTER SYSTEM SET full_page_writes = 'on'` is shown, never applied by `dbtune migrate`; a reload applies it.

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-FULL-PAGE-WRITES
- https://www.postgresql.org/docs/current/wal-reliability.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, switched_off
from dbtune.model import Finding


@check(id="ST012", name="full-page-writes-off", area="settings", severity="error", fix=True)
def full_page_writes_off(ctx: CheckContext) -> Iterator[Finding]:
    if switched_off(ctx, "full_page_writes"):
        yield ctx.finding("full_page_writes", "full_page_writes is off: a page torn by a crash cannot be "
                                              "repaired, and recovery can corrupt it",
                          evidence={"full_page_writes": "off"},
                          changes=(alter_system(ctx, "full_page_writes", "on"),))
