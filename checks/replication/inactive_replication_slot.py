"""A replication slot nobody uses, holding WAL on the server.

## What it does
Reads `pg_replication_slots` and reports each slot that is not `active` and holds back more than
`min_retained_bytes` of WAL (`pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)`, or
`pg_last_wal_replay_lsn()` on a standby), and every inactive slot whose `wal_status` is `lost` (its WAL
is already removed: the slot can never be used again) or `unreserved` (about to be). Active slots are
left to the lag probes. The view is readable by every role, so it runs unchanged on a role with only
`pg_monitor`.

## Why it matters
A slot keeps every WAL segment from its `restart_lsn` on (and a logical slot also holds the catalog
xmin back, so vacuum cannot clean the catalogs). A slot whose consumer went away fills `pg_wal` until
the disk is full and the server stops, unless `max_slot_wal_keep_size` invalidates it first.

## Example
```sql
SELECT pg_create_physical_replication_slot('old_standby', true);  -- the standby was decommissioned
```

## What to do instead
Reconnect the consumer, or drop the slot: `SELECT pg_drop_replication_slot('old_standby')`. Set
`max_slot_wal_keep_size` so one forgotten slot cannot fill the disk.

## How the fix is applied safely
No fix is generated: dropping a slot breaks its consumer for good, which a person should decide.

## Options
- `min_retained_bytes` (default 1073741824, 1 GiB): WAL an inactive slot holds before it is reported.

## References
- https://www.postgresql.org/docs/current/view-pg-replication-slots.html
- https://www.postgresql.org/docs/current/warm-standby.html#STREAMING-REPLICATION-SLOTS
- https://www.postgresql.org/docs/current/runtime-config-replication.html#GUC-MAX-SLOT-WAL-KEEP-SIZE
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="RP002", name="inactive-replication-slot", area="replication", severity="warning",
       options={"min_retained_bytes": 1073741824})
def inactive_replication_slot(ctx: CheckContext) -> Iterator[Finding]:
    replication = ctx.snapshot.replication
    if replication is None or replication.slots is None:
        ctx.skip("pg_replication_slots could not be read", "pg_monitor")
        return
    for slot in replication.slots:
        retained = slot.retained_bytes or 0
        lost = slot.wal_status in ("lost", "unreserved")
        if slot.active or (retained < ctx.options["min_retained_bytes"] and not lost):
            continue
        state = f"wal_status {slot.wal_status}" if lost else f"holds {size_pretty(retained)} of WAL"
        yield ctx.finding(
            f"replication slot {slot.name}",
            f"{slot.slot_type} replication slot {slot.name!r} is inactive and {state}",
            evidence={"slot_type": slot.slot_type, "database": slot.database, "plugin": slot.plugin,
                      "wal_status": slot.wal_status, "retained_bytes": retained,
                      "min_retained_bytes": ctx.options["min_retained_bytes"]},
        )
