"""A table's oldest unfrozen transaction ID is old: the cluster is heading for transaction ID wraparound.

## What it does
Reads `age(relfrozenxid)` of every user table and materialized view and of its TOAST table, and judges
the older of the two: a warning from `warning_age` transactions (default 2^30, 50 % of the 2^31 limit),
an error from `error_age` (default 80 %). The message gives the age, its share of the limit and
`autovacuum_freeze_max_age`, the age at which autovacuum should already have started an aggressive
(anti-wraparound) vacuum of the table. On a role with only `pg_monitor` the check runs in full:
`pg_class` is readable by every role.

## Why it matters
Transaction IDs are 32 bits. Every row's inserting transaction must be frozen by vacuum before it is
2^31 transactions old; PostgreSQL warns 40 million transactions before the limit and, 3 million before
it, refuses every command that would assign a new transaction ID: the database stops taking writes
until someone vacuums it in single-user mode. An age far beyond `autovacuum_freeze_max_age` means
autovacuum's anti-wraparound vacuum is blocked (a long transaction, an abandoned replication slot or
prepared transaction holding the xmin horizon) or cancelled again and again.

## Example
`age(relfrozenxid)` of `public.events` is 1.2 billion with `autovacuum_freeze_max_age` 200 million:
autovacuum started on it long ago and never finished.

## What to do instead
Find what holds the xmin horizon back (`pg_stat_activity.backend_xmin`, `pg_replication_slots`,
`pg_prepared_xacts`), end it, and run `VACUUM (FREEZE, VERBOSE)` on the table (not `VACUUM FULL`),
watching `pg_stat_progress_vacuum`.

## How the fix is applied safely
No fix is generated: the vacuum has to be run and watched by a person, once the horizon is released.

## Options
- `warning_age` (default 1073741824, 50 % of 2^31), `error_age` (default 1717986918, 80 %): ages in
  transactions. A test database cannot be taken near wraparound, so the tests set these low.

## References
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND
- https://www.postgresql.org/docs/current/runtime-config-autovacuum.html#GUC-AUTOVACUUM-FREEZE-MAX-AGE
- https://www.postgresql.org/docs/current/catalog-pg-class.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import WRAPAROUND_OPTIONS, table_wraparound_findings
from dbtune.model import Finding


@check(id="MT002", name="xid-wraparound-risk", area="maintenance", severity="warning",
       options=dict(WRAPAROUND_OPTIONS))
def xid_wraparound_risk(ctx: CheckContext) -> Iterator[Finding]:
    yield from table_wraparound_findings(ctx, "xid")
