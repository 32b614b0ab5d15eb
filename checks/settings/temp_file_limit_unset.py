"""`temp_file_limit = -1`: one query may fill the disk with temporary files.

## What it does
Reports `temp_file_limit` at -1 (no limit) for the audit's sessions (the survey's SET-35). Information.
Reads `pg_settings`, which any role (`pg_monitor` included) can read.
It runs in full on a role with only `pg_monitor`.

## Why it matters
A query whose sort or hash spills (a missing join condition, a cross join) writes temporary files until
the disk holding the data directory is full, and then every session that writes fails, including the
WAL writer.

## Example
`temp_file_limit = -1` (the default).

## What to do instead
Set a limit well under the free space, such as `temp_file_limit = '20GB'`: a query above it fails with an
error naming the limit, and the others carry on.

## How the fix is applied safely
`ALTER SYSTEM SET temp_file_limit = '…'` (or `ALTER DATABASE … SET` where the database sets it) is shown,
never applied by `dbtune migrate`; a reload applies it, to new queries only.

## Options
- `suggested_limit` (default "20GB"): the value the fix sets.

## References
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-TEMP-FILE-LIMIT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system
from dbtune.model import Finding


@check(id="ST016", name="temp-file-limit-unset", area="settings", severity="info", fix=True,
       options={"suggested_limit": "20GB"})
def temp_file_limit_unset(ctx: CheckContext) -> Iterator[Finding]:
    if ctx.snapshot.setting("temp_file_limit") == "-1":
        yield ctx.finding("temp_file_limit", "temp_file_limit is -1 (no limit): one runaway query can fill the "
                                             "disk with temporary files", evidence={"temp_file_limit": -1},
                          changes=(alter_system(ctx, "temp_file_limit", ctx.options["suggested_limit"]),))
