"""A prepared transaction (two-phase commit) left open.

## What it does
Reads `pg_prepared_xacts` (every database of the cluster) and reports each transaction prepared at
least `max_age_s` seconds before the snapshot, with its gid, owner, database, age (seconds), the age
of its transaction ID (`age(transaction)`, in transactions) and the locks it holds (from `pg_locks`:
their number, and by name those on relations of the audited database). `pg_prepared_xacts` and
`pg_locks` are readable by every role, so the check runs in full on a role with only `pg_monitor`;
where a server refuses them the check is skipped with `pg_monitor` named.

## Why it matters
`PREPARE TRANSACTION` detaches a transaction from its session: it survives disconnects and restarts
until someone runs `COMMIT PREPARED` or `ROLLBACK PREPARED`, and nothing in PostgreSQL ever times it
out. Until then it holds every lock it took (an `UPDATE`'s `ROW EXCLUSIVE` on the table, its row
locks), so DDL on those tables queues behind it and blocks everything after it; and it holds the xmin
horizon, so vacuum removes no dead tuple newer than it in any database of the cluster, tables and
indexes bloat, and the cluster moves towards transaction ID wraparound. A transaction manager (XA
coordinator) that crashed between the two phases leaves exactly this behind.

## Example
```sql
BEGIN;
UPDATE accounts SET balance = balance - 10 WHERE id = 1;
PREPARE TRANSACTION 'transfer-42';   -- the coordinator never comes back
```

## What to do instead
Ask the transaction manager whether `transfer-42` committed, then run `COMMIT PREPARED 'transfer-42'`
or `ROLLBACK PREPARED 'transfer-42'` in its database, as its owner or a superuser. Keep
`max_prepared_transactions = 0` (the default) unless an application uses two-phase commit.

## How the fix is applied safely
No fix is generated: only the coordinator knows whether the transaction must commit or roll back, and
dbtune never ends another transaction.

## Options
- `max_age_s` (float, seconds, default 300, 0 to 604800): the age from which a prepared transaction is
  reported.

## References
- https://www.postgresql.org/docs/current/view-pg-prepared-xacts.html
- https://www.postgresql.org/docs/current/sql-prepare-transaction.html
- https://www.postgresql.org/docs/current/view-pg-locks.html
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-MAX-PREPARED-TRANSACTIONS
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.escape import one_line
from dbtune.model import Finding


@check(id="CC006", name="prepared-transaction-left-open", area="concurrency", severity="warning",
       options={"max_age_s": 300.0}, option_ranges={"max_age_s": (0.0, 604800.0)})
def prepared_transaction_left_open(ctx: CheckContext) -> Iterator[Finding]:
    replication = ctx.snapshot.replication
    if replication is None or replication.prepared_transactions is None:
        ctx.skip("pg_prepared_xacts could not be read", "pg_monitor")
        return
    limit = ctx.options["max_age_s"]
    for x in replication.prepared_transactions:
        if x.age_s < limit:
            continue
        gid = one_line(x.gid)
        named = f": {', '.join(one_line(lock) for lock in x.relation_locks)}" if x.relation_locks else ""
        yield ctx.finding(
            f"prepared transaction {gid}",
            f"prepared transaction {gid!r} of role {one_line(x.owner)} in database {one_line(x.database)} "
            f"has been open for {x.age_s:.0f} s (xid age {x.xid_age} transactions) holding {x.locks} "
            f"lock{'' if x.locks == 1 else 's'}{named}; it holds them and the xmin horizon until COMMIT "
            f"PREPARED or ROLLBACK PREPARED",
            evidence={"gid": x.gid, "owner": x.owner, "database": x.database, "age_s": round(x.age_s, 1),
                      "xid_age": x.xid_age, "locks": x.locks, "relation_locks": list(x.relation_locks),
                      "max_age_s": limit},
        )
