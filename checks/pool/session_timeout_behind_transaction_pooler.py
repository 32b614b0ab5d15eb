"""The application sets its timeouts per session behind a transaction pooler instead of on its role.

## What it does
Reports timeouts set per session behind a transaction pooler, to be set on the role. When PgBouncer
runs with `pool_mode = transaction` (or `statement`), collects the `statement_timeout`,
`lock_timeout` and `idle_in_transaction_session_timeout` the application sets per session: a plain
`SET` in the workload, a `SET` in a connect hook (the guide's `database.js`), HikariCP's
`connectionInitSql`, `options=-c …` in a URL. For each application role (`database.application_roles`,
the pools' `role`, the users of the application's URLs) that exists on the server and does not already
start its sessions with that value (`pg_db_role_setting`, `ALTER ROLE … SET`), reports it with the
per-role fix.
On a role with only `pg_monitor` it runs in full: `pg_settings` and `pg_roles` are readable by every role,
and `pg_read_all_stats` (in `pg_monitor`) shows every session of `pg_stat_activity`.

## Why it matters
Behind a transaction pooler a session `SET` changes one server connection, which PgBouncer then lends to
other clients: the client that sent it runs its next transactions without the timeout, and others get
a timeout they never asked for. The guide's `SET lock_timeout TO '30s'` in `database.js` silently does
nothing for the vendor race it was meant to bound. A role setting applies to every server connection
PgBouncer opens for that role.

## Example
```js
await prisma.$executeRaw`SET lock_timeout TO '30s';`   // PgBouncer pool_mode = transaction
```

## What to do instead
`ALTER ROLE app IN DATABASE whatsapp SET lock_timeout = '30s'`, and drop the session `SET` (or make it
`SET LOCAL` inside the transaction that needs a different value).

## How the fix is applied safely
`ALTER ROLE … IN DATABASE … SET` changes what the role's new sessions start with, in this database only;
running sessions (and PgBouncer's open server connections, until it reconnects them) keep their values.
No table is locked.

## Options
None.

## References
- https://www.pgbouncer.org/features.html#sql-feature-map-for-pooling-modes
- https://www.postgresql.org/docs/current/sql-alterrole.html
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.pooling import session_timeouts, transaction_pooler
from dbtune.config.model import parse_duration_ms
from dbtune.migrate.changes import set_parameter
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="PO006", name="session-timeout-behind-transaction-pooler", area="pool", severity="error", fix=True)
def session_timeout_behind_transaction_pooler(ctx: CheckContext) -> Iterator[Finding]:
    mode = transaction_pooler(ctx)
    wanted = session_timeouts(ctx)
    if mode is None or not wanted:
        return
    snap = ctx.snapshot
    db = snap.server.database
    known = {r.name for r in snap.roles}
    candidates = [*ctx.application_roles(), *(p.role for p in ctx.pool_plan().pools if p.role),
                  *(p.target.user for p in ctx.app_config.pools if p.target is not None and p.target.user)]
    roles = [r for r in dict.fromkeys(candidates) if r in known]
    evidence_base = {"pool_mode": mode.value, "pool_mode_source": mode.source}
    if not roles:
        names = ", ".join(f"{n} = {v} ({where})" for n, (v, where) in wanted.items())
        yield ctx.finding(quote_ident(db), f"the application sets {names} per session, but PgBouncer runs in "
                                           f"{mode.value} mode; name its role in [database] application_roles "
                                           f"for a per-role fix", evidence={"settings": wanted, **evidence_base})
        return
    for role in roles:
        for name, (value, where) in wanted.items():
            current, source = snap.effective(name, role)
            if source in ("role in database", "role") and _same(current, value):
                continue
            yield ctx.finding(quote_ident(role), f"{name} = {value} is set per session ({where}), but PgBouncer "
                                                 f"runs in {mode.value} mode: set it on role {quote_ident(role)} "
                                                 f"instead (its sessions start with {current or 'the default'}, "
                                                 f"from the {source})",
                              evidence={"setting": name, "value": value, "set_at": where, "role": role,
                                        "role_starts_with": current, "role_value_source": source,
                                        **evidence_base},
                              changes=[set_parameter("ROLE", role, name, value, database=db)])


def _same(current: str | None, value: str) -> bool:
    try:
        return current is not None and parse_duration_ms(current.strip("'")) == parse_duration_ms(value)
    except ValueError:
        return current == value
