"""Autovacuum is switched off for a table (`autovacuum_enabled = false`).

## What it does
Reports each user table and materialized view whose storage parameters set `autovacuum_enabled` or
`toast.autovacuum_enabled` to false. On a role with only `pg_monitor` the check runs in full
(`pg_class.reloptions` is readable by every role).

## Why it matters
With autovacuum off for a table, nothing reclaims its dead tuples, sets its visibility map or analyzes
it: it bloats, its plans drift, and index-only scans stop paying. Autovacuum still runs an
anti-wraparound vacuum on it, but only when `autovacuum_freeze_max_age` is reached, as one long
aggressive pass at the worst time. The setting is usually left over from a bulk load.

## Example
```sql
CREATE TABLE events (id bigint, payload jsonb) WITH (autovacuum_enabled = false);
```

## What to do instead
Reset the parameter; if autovacuum was too aggressive on the table, tune its thresholds or cost limits
instead (`autovacuum_vacuum_scale_factor`, `autovacuum_vacuum_cost_limit`).

## How the fix is applied safely
`ALTER TABLE … RESET (autovacuum_enabled)` takes `SHARE UPDATE EXCLUSIVE` (reads and writes go on) and
rewrites nothing; it waits for a running `VACUUM` or DDL on the table, so run it with a `lock_timeout`.
The fix is shown with the finding and is not made a migration step.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-createtable.html#SQL-CREATETABLE-STORAGE-PARAMETERS
- https://www.postgresql.org/docs/current/routine-vacuuming.html#AUTOVACUUM
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import maintained_tables
from dbtune.migrate.changes import reset_storage_parameters
from dbtune.model import Finding

_OFF = {"false", "off", "no", "0", "f", "n"}


@check(id="MT007", name="autovacuum-disabled-on-table", area="maintenance", severity="warning", fix=True)
def autovacuum_disabled_on_table(ctx: CheckContext) -> Iterator[Finding]:
    for rel, tm in maintained_tables(ctx):
        off = {name: value for name, value in tm.reloptions.items()
               if name in ("autovacuum_enabled", "toast.autovacuum_enabled") and value.lower() in _OFF}
        if off:
            yield ctx.finding(
                rel.qualified_name,
                f"autovacuum is switched off for {rel.qualified_name} ({', '.join(f'{k}={v}' for k, v in off.items())})"
                f": nothing vacuums or analyzes it until an anti-wraparound vacuum is forced",
                evidence={"reloptions": off, "n_dead_tup": tm.n_dead_tup, "n_live_tup": tm.n_live_tup},
                changes=[reset_storage_parameters(rel, off)])
