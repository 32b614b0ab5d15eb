"""A table's oldest multixact ID is old: the cluster is heading for multixact wraparound.

## What it does
Reads `mxid_age(relminmxid)` of every user table and materialized view and of its TOAST table, and
judges the older of the two: a warning from `warning_age` multixacts (default 50 % of the 2^31 limit), an
error from `error_age` (default 80 %). The message gives `autovacuum_multixact_freeze_max_age`, the age
at which autovacuum should already have started an aggressive vacuum. On a role with only `pg_monitor`
the check runs in full (`pg_class` is readable by every role).

## Why it matters
A multixact ID is created when several transactions lock the same row (`SELECT … FOR SHARE`, foreign key
checks under concurrent updates). Like transaction IDs they are 32 bits and must be frozen by vacuum;
near the limit PostgreSQL refuses to create new ones, and every statement that needs one fails. Foreign
key heavy workloads consume them fast, and `pg_multixact/members` storage can also run out first.

## Example
`mxid_age(relminmxid)` of `public.order_lines` is 1.3 billion with `autovacuum_multixact_freeze_max_age`
400 million.

## What to do instead
Release what holds vacuum back (long transactions, abandoned slots, prepared transactions) and run
`VACUUM (FREEZE, VERBOSE)` on the table (never `VACUUM FULL`); consider lowering
`autovacuum_multixact_freeze_max_age` for the table.

## How the fix is applied safely
No fix is generated: the vacuum has to be run and watched by a person.

## Options
- `warning_age` (default 1073741824), `error_age` (default 1717986918): ages in multixacts. A test
  database cannot be taken near wraparound, so the tests set these low.

## References
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-MULTIXACT-WRAPAROUND
- https://www.postgresql.org/docs/current/runtime-config-autovacuum.html#GUC-AUTOVACUUM-MULTIXACT-FREEZE-MAX-AGE
- https://www.postgresql.org/docs/current/functions-info.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import WRAPAROUND_OPTIONS, table_wraparound_findings
from dbtune.model import Finding


@check(id="MT003", name="multixact-wraparound-risk", area="maintenance", severity="warning",
       options=dict(WRAPAROUND_OPTIONS))
def multixact_wraparound_risk(ctx: CheckContext) -> Iterator[Finding]:
    yield from table_wraparound_findings(ctx, "mxid")
