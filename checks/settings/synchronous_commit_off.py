"""`synchronous_commit = off` for the whole server.

## What it does
Reports `synchronous_commit` off at the server level: in postgresql.conf or `ALTER SYSTEM`, before any
role or database setting (the survey's SET-34). A role or database that turns it off for itself is a
choice made for that workload and is not reported. The server-level value comes from `pg_file_settings`,
which `pg_monitor` may read (through `pg_read_all_settings`); without it, the value a new session of the
audit's role starts with is used when no role or database setting touches it. Information: it is often
chosen on purpose. It runs in full on a role with only `pg_monitor`.

## Why it matters
A commit returns before its WAL reaches the disk: after a server crash the last transactions reported as
committed (up to three times `wal_writer_delay`) are gone. The data stays consistent, unlike `fsync = off`,
but an application that told a user "saved" may have lied.

## Example
`synchronous_commit = off` in postgresql.conf.

## What to do instead
Keep it on server-wide and turn it off only for the sessions or transactions whose writes can be lost
(`SET LOCAL synchronous_commit = off`, or `ALTER ROLE batch SET synchronous_commit = off`).

## How the fix is applied safely
`ALTER SYSTEM SET synchronous_commit = 'on'` is shown, never applied by `dbtune migrate`; a reload applies it.

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-SYNCHRONOUS-COMMIT
- https://www.postgresql.org/docs/current/wal-async-commit.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, switched_off
from dbtune.model import Finding


@check(id="ST013", name="synchronous-commit-off", area="settings", severity="info", fix=True)
def synchronous_commit_off(ctx: CheckContext) -> Iterator[Finding]:
    if switched_off(ctx, "synchronous_commit", server_wide=True):
        fix = alter_system(ctx, "synchronous_commit", "on", server_wide=True)
        yield ctx.finding("synchronous_commit", "synchronous_commit is off server-wide: a crash loses the last "
                                                "transactions reported as committed",
                          evidence={"synchronous_commit": "off", "level": "server"}, changes=(fix,))
