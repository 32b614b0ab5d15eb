"""The live server shows pool pressure: connections near the limits, transactions left idle, sessions
waiting on locks.

## What it does
Reports live pool pressure: connections near the limits, sessions idle in a transaction, lock waits.
Reads `pg_stat_activity` for the current database in the audit's snapshot (client backends other than
dbtune's own) and reports: all client connections of the server's budget (`max_connections` minus the
reserved slots) above `max_share`; an application (`application_name`) holding more connections than
the pool of that name may open (`max` × `instances`); sessions `idle in transaction` for longer than
`idle_in_transaction_s`; sessions waiting on a lock, with the pids that block them
(`pg_blocking_pids`). Connections are counted by application and state in the evidence. Without
`pg_read_all_stats` (or `pg_monitor`) other roles' sessions show no state, which the evidence says.
On a role with only `pg_monitor` it runs in full: `pg_settings` and `pg_roles` are readable by every role,
and `pg_read_all_stats` (in `pg_monitor`) shows every session of `pg_stat_activity`.

## Why it matters
A pool at its limit makes requests queue in the application; a transaction left open holds its locks
and the xmin horizon (vacuum cannot remove dead tuples), and every session that needs one of its rows
waits behind it. Lock waits are the guide's "vendor race" and "slow recovery" symptoms seen live.

## Example
A worker that runs `BEGIN; SELECT … FOR UPDATE` and then calls an HTTP API before `COMMIT`: its session
sits `idle in transaction` while other workers wait on its row lock.

## What to do instead
Commit before calling out; set `idle_in_transaction_session_timeout` on the application role; size the
pools from the connection budget (`connection-budget`, PO001); find the blocker from the pids given
(`SELECT * FROM pg_stat_activity WHERE pid = …`) and end it with `pg_terminate_backend` if needed.

## How the fix is applied safely
No fix is generated: dbtune never ends another session.

## Options
- `max_share` (default 0.8): the share of the connection budget in use above which it is reported.
- `idle_in_transaction_s` (default 60): seconds idle in a transaction before a session is reported.

## References
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW
- https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-INFO-SESSION
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-IDLE-IN-TRANSACTION-SESSION-TIMEOUT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding, Severity
from dbtune.sqlnames import quote_ident


def _int(ctx: CheckContext, name: str) -> int:
    value = ctx.snapshot.setting(name)
    return int(value) if value is not None else 0


@check(id="PO007", name="pool-pressure", area="pool", severity="warning",
       options={"max_share": 0.8, "idle_in_transaction_s": 60})
def pool_pressure(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    if snap.activity is None:
        ctx.skip("pg_stat_activity could not be read", "pg_read_all_stats")
        return
    db = quote_ident(snap.server.database)
    backends = snap.activity
    by_app: dict[str, dict[str, int]] = {}
    for b in backends:
        states = by_app.setdefault(b.application_name or "(none)", {})
        state = b.state or "(not visible)"
        states[state] = states.get(state, 0) + 1
    budget = _int(ctx, "max_connections") - _int(ctx, "superuser_reserved_connections") \
        - _int(ctx, "reserved_connections")
    evidence = {"connections": len(backends) + 1, "budget": budget, "by_application": by_app,
                "note": "counts the current database's client backends, dbtune's own session included"}
    if budget > 0 and len(backends) + 1 > ctx.options["max_share"] * budget:
        yield ctx.finding(db, f"{len(backends) + 1} client connections are open in this database, "
                              f"{(len(backends) + 1) / budget:.0%} of the server's {budget}", evidence=evidence)
    for pool in ctx.pool_plan().pools:
        states = by_app.get(pool.name)
        limit = pool.max * pool.instances
        if states and sum(states.values()) > limit:
            yield ctx.finding(f"pool {pool.name}", f"application {pool.name!r} holds {sum(states.values())} "
                                                   f"connections but its pool may open {limit}",
                              evidence={"application_name": pool.name, "by_state": states, "pool_max": limit})
    idle = [b for b in backends if b.state in ("idle in transaction", "idle in transaction (aborted)")
            and (b.state_age_s or 0) >= ctx.options["idle_in_transaction_s"]]
    for b in idle:
        yield ctx.finding(f"pid {b.pid}", f"session {b.pid} ({b.application_name or 'no application_name'}, "
                                          f"role {b.role}) is {b.state} for {b.state_age_s:.0f} s",
                          evidence={"pid": b.pid, "role": b.role, "application_name": b.application_name,
                                    "state": b.state, "state_age_s": round(b.state_age_s or 0, 1),
                                    "xact_age_s": round(b.xact_age_s or 0, 1),
                                    "threshold_s": ctx.options["idle_in_transaction_s"]})
    waiting = [b for b in backends if b.blocked_by]
    if waiting:
        yield ctx.finding(db, f"{len(waiting)} session(s) wait on locks held by "
                              f"{', '.join(str(p) for p in sorted({p for b in waiting for p in b.blocked_by}))}",
                          evidence={"waiting": [{"pid": b.pid, "application_name": b.application_name,
                                                 "blocked_by": list(b.blocked_by),
                                                 "waiting_s": round(b.state_age_s or 0, 1)} for b in waiting]},
                          severity=Severity.WARNING)
