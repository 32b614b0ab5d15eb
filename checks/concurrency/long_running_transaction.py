"""A transaction that has been running for a long time.

## What it does
Reads `pg_stat_activity` in the audit's snapshot (the current database's client backends other than
dbtune's own) and reports each session whose transaction started (`xact_start`) at least
`max_transaction_s` seconds before the snapshot, while the session is running a statement (`active`,
including one waiting on a lock) or in any state other than idle in a transaction. Sessions idle in a
transaction are `pool-pressure`'s (PO007), which reports them by their idle time, so each session is
reported once. With only `pg_monitor` (which includes `pg_read_all_stats`) every session is judged;
without it other roles' `xact_start` reads NULL and those sessions are not judged (the evidence of
PO007 counts them as "not visible").

## Why it matters
As long as a transaction runs, its snapshot holds the xmin horizon: vacuum cannot remove the dead tuples
of any table of the cluster, tables and indexes bloat, and a long transaction's locks make every DDL
(and everything queued behind it) wait. It is also the long report query or runaway batch that a
`statement_timeout` was meant to stop.

## Example
A nightly export running `BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT … ;` for an hour on the primary.

## What to do instead
Find the session (`SELECT pid, query FROM pg_stat_activity WHERE pid = …`), end it if it must stop
(`pg_cancel_backend`, `pg_terminate_backend`), and bound such work: `statement_timeout` and
`transaction_timeout` (PostgreSQL 17+) on the role, long reports on a replica, batches that commit.

## How the fix is applied safely
No fix is generated: dbtune never ends another session.

## Options
- `max_transaction_s` (default 300): seconds since `xact_start` from which a transaction is reported.

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-SPACE-RECOVERY
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.escape import one_line
from dbtune.model import Finding

_IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")


@check(id="CC005", name="long-running-transaction", area="concurrency", severity="warning",
       options={"max_transaction_s": 300})
def long_running_transaction(ctx: CheckContext) -> Iterator[Finding]:
    activity = ctx.snapshot.activity
    if activity is None:
        ctx.skip("pg_stat_activity could not be read", "pg_read_all_stats")
        return
    limit = ctx.options["max_transaction_s"]
    for b in activity:
        if b.xact_age_s is None or b.xact_age_s < limit or b.state in _IDLE_IN_TRANSACTION:
            continue
        waiting = f", waiting on {b.wait_event_type}" if b.wait_event_type else ""
        app = one_line(b.application_name) if b.application_name else "no application_name"
        yield ctx.finding(
            f"pid {b.pid}",
            f"session {b.pid} ({app}, role {one_line(b.role or '')}) has been in a transaction for "
            f"{b.xact_age_s:.0f} s ({b.state}{waiting})",
            evidence={"pid": b.pid, "role": b.role, "application_name": b.application_name, "state": b.state,
                      "wait_event_type": b.wait_event_type, "xact_age_s": round(b.xact_age_s, 1),
                      "state_age_s": round(b.state_age_s or 0, 1), "max_transaction_s": limit},
        )
