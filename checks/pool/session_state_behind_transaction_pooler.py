"""The workload or the application's config relies on session state behind a transaction pooler.

## What it does
Reports session-level features used behind a transaction pooler. When PgBouncer runs in front of the
server with `pool_mode = transaction` (or `statement`), reports the session-level features the application
uses: in the workload (`--workload`, parsed with PostgreSQL's grammar) a plain `SET` (not `SET LOCAL`),
`LISTEN`, SQL `PREPARE`, a session advisory lock (`pg_advisory_lock`, `pg_try_advisory_lock` and their
`_shared` forms, not the `_xact_` ones), a `DECLARE … WITH HOLD` cursor, a temporary table; in the
application's config a `SET` in a connect hook (the guide's `database.js`), HikariCP's
`connectionInitSql`, or `options=-c …` in a URL. A `SET` of `statement_timeout`, `lock_timeout` or
`idle_in_transaction_session_timeout` is left to `session-timeout-behind-transaction-pooler` (PO006),
which generates the per-role fix.
On a role with only `pg_monitor` it runs in full: `pg_settings` and `pg_roles` are readable by every role,
and `pg_read_all_stats` (in `pg_monitor`) shows every session of `pg_stat_activity`.

## Why it matters
In transaction mode a client's session is lent a server connection for one transaction at a time.
Whatever a statement leaves on that connection afterwards belongs to whichever client gets it next: the
`SET` applies to someone else's queries (and not to the next transaction of the client that sent it),
`LISTEN` receives nothing, a prepared statement or held cursor is "does not exist" on the next
connection, an advisory lock is never released by the client that took it.

## Example
```js
await prisma.$executeRaw`SET lock_timeout TO '30s';`   // behind PgBouncer pool_mode = transaction
```

## What to do instead
Use `SET LOCAL` inside the transaction, settings on the role (`ALTER ROLE … SET`), transaction-level
advisory locks (`pg_advisory_xact_lock`), cursors without `WITH HOLD`, protocol-level prepared statements
with PgBouncer's `max_prepared_statements` (1.21+); give `LISTEN` and temporary tables a session-mode pool
or a direct connection.

## How the fix is applied safely
No SQL fix is generated: the change is in the application's code or in its pooler's pool mode.

## Options
None.

## References
- https://www.pgbouncer.org/features.html#sql-feature-map-for-pooling-modes
- https://www.postgresql.org/docs/current/sql-set.html
- https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.pooling import ROLE_TIMEOUTS, feature_settings, transaction_pooler
from dbtune.model import Finding
from dbtune.workload.session_features import session_feature_uses


@check(id="PO004", name="session-state-behind-transaction-pooler", area="pool", severity="error")
def session_state_behind_transaction_pooler(ctx: CheckContext) -> Iterator[Finding]:
    mode = transaction_pooler(ctx)
    if mode is None:
        return
    pooler = {"pool_mode": mode.value, "pool_mode_source": mode.source}
    uses: dict[tuple[str, str], list[str]] = {}
    statements: dict[tuple[str, str], str] = {}
    for use in session_feature_uses(ctx.workload):
        if use.kind == "SET" and use.detail in ROLE_TIMEOUTS:
            continue
        uses.setdefault((use.kind, use.detail), []).append(use.location)
        statements.setdefault((use.kind, use.detail), use.statement)
    for (kind, detail), locations in uses.items():
        yield ctx.finding(locations[0], f"{kind} {detail} ({statements[(kind, detail)]}) keeps session state, "
                                        f"but PgBouncer runs in {mode.value} mode: the next transaction may run "
                                        f"on another server connection",
                          evidence={"feature": kind, "name": detail, "locations": locations, **pooler})
    for pool in ctx.app_config.pools:
        for feature in pool.session_features:
            settings = feature_settings(feature)
            if settings and set(settings) <= ROLE_TIMEOUTS:
                continue
            o = feature.origin
            yield ctx.finding(f"{o.file}:{o.line}" if o.line else o.file,
                              f"pool {pool.name!r} sends {feature.text} on its connections ({o}), but PgBouncer "
                              f"runs in {mode.value} mode: it applies to one server connection, not the session",
                              evidence={"feature": feature.kind, "statement": feature.text,
                                        "origin": str(feature.origin), **pooler})
