"""The database has recorded deadlocks, recovery conflicts or sessions that ended abnormally.

## What it does
Reports deadlocks, recovery conflicts and abnormally ended sessions of the current database. Reads its
cumulative counters in `pg_stat_database` since `stats_reset` (or since the server started, when the
statistics were never reset) and reports `deadlocks` (with the rate per day), `conflicts` (queries a
standby cancelled because of recovery) and, on PostgreSQL 14+, sessions ended by a client that went away
(`sessions_abandoned`), by a FATAL error (`sessions_fatal`) or by an operator (`sessions_killed`).
Serialization failures (SQLSTATE 40001 under `REPEATABLE READ` or `SERIALIZABLE`) are not counted by
PostgreSQL anywhere dbtune can read: neither `pg_stat_database` nor `pg_stat_statements` records errors;
only the server log (with `log_min_error_statement`) shows them, and dbtune reads statements from logs,
not errors.
On a role with only `pg_monitor` it runs in full: the cumulative statistics views it reads are readable by
every role.

## Why it matters
Each deadlock aborts one of the transactions involved after `deadlock_timeout`; the application sees
`deadlock detected` (SQLSTATE 40P01) and, without a retry, loses the work. They come from transactions
that lock the same rows in different orders: the guide's vendor accepts and order updates under load.
Abandoned sessions point at pools or clients that drop connections without closing them.

## Example
Two sessions update `orders` 1 then 2, and 2 then 1, in one transaction each.

## What to do instead
Lock rows in one order (sort the keys; `SELECT … ORDER BY id FOR UPDATE`), keep transactions short,
retry on 40P01 and 40001; with `log_lock_waits = on` the server log names the statements involved.

## How the fix is applied safely
No fix is generated: the cause is in the application's transactions.

## Options
- `min_deadlocks` (default 1): deadlocks since the reset below which nothing is reported.
- `min_sessions_ended` (default 10): abnormally ended sessions (abandoned, fatal, killed together) below
  which they are not reported (a client killed now and then is normal).

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-DEADLOCKS
- https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding, Severity
from dbtune.sqlnames import quote_ident

SERIALIZATION_FAILURES = ("not counted by PostgreSQL: pg_stat_database and pg_stat_statements record no "
                          "errors; SQLSTATE 40001 appears only in the server log")


@check(id="CC001", name="deadlocks-and-session-failures", area="concurrency", severity="warning",
       options={"min_deadlocks": 1, "min_sessions_ended": 10})
def deadlocks_and_session_failures(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    stats = snap.database_stats
    if stats is None:
        ctx.skip("pg_stat_database could not be read")
        return
    since = stats.stats_reset or snap.server.postmaster_start
    days = max((snap.server.now - since).total_seconds() / 86_400, 1 / 1440)
    db = quote_ident(snap.server.database)
    window = {"since": since.isoformat(), "since_what": "stats_reset" if stats.stats_reset else "server start",
              "days": round(days, 3), "xact_commit": stats.xact_commit, "xact_rollback": stats.xact_rollback,
              "serialization_failures": SERIALIZATION_FAILURES}
    if stats.deadlocks >= max(1, ctx.options["min_deadlocks"]):
        yield ctx.finding(db, f"{stats.deadlocks} deadlock(s) since {window['since_what']} "
                              f"({stats.deadlocks / days:.2f} a day)",
                          evidence={"deadlocks": stats.deadlocks, "deadlocks_per_day": round(stats.deadlocks / days, 3),
                                    **window})
    if stats.conflicts:
        yield ctx.finding(db, f"{stats.conflicts} queries cancelled by recovery conflicts since "
                              f"{window['since_what']}", evidence={"conflicts": stats.conflicts, **window},
                          severity=Severity.INFO)
    ended = {k: v for k, v in (("sessions_abandoned", stats.sessions_abandoned),
                               ("sessions_fatal", stats.sessions_fatal),
                               ("sessions_killed", stats.sessions_killed)) if v}
    if sum(ended.values()) >= ctx.options["min_sessions_ended"]:
        text = ", ".join(f"{v} {k.removeprefix('sessions_')}" for k, v in ended.items())
        yield ctx.finding(db, f"of {stats.sessions} sessions since {window['since_what']}, {text}",
                          evidence={"sessions": stats.sessions, **ended, **window}, severity=Severity.INFO)
