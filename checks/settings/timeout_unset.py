"""`statement_timeout`, `lock_timeout` or `idle_in_transaction_session_timeout` left at 0 (no limit).

## What it does
Works out the value a new session starts with, for the database and for each application role
(`database.application_roles` and the `role` of each `[[pool]]` in the config), from `ALTER ROLE … IN
DATABASE … SET`, `ALTER ROLE … SET`, `ALTER DATABASE … SET` and the server's own setting, in PostgreSQL's
order of precedence. Reports each application role where any of the three timeouts is 0, with a fix for
that role; a timeout the application sets per session behind a transaction pooler is left to
`session-timeout-behind-transaction-pooler` (PO006), whose fix sets the application's own value. A
timeout left at 0 for the whole database is reported as advice, without a fix: as a warning
when the config names no application role that exists (so no session is known to be limited), as
information when the application roles are judged on their own.
It runs in full on a role with only `pg_monitor`.

## Why it matters
With no `statement_timeout`, a runaway query holds a connection and its locks indefinitely, and the pool
runs dry. With no `lock_timeout`, a DDL statement queued behind a long transaction blocks every query
queued behind it. With no `idle_in_transaction_session_timeout`, a client that forgets to commit pins the
xmin horizon (vacuum cannot clean up) and holds its locks.

## Example
`statement_timeout = 0` in postgresql.conf and no role or database setting.

## What to do instead
Set the timeouts on the application's roles, and name those roles in `[database] application_roles` (or
as the `role` of their `[[pool]]`). Leave the database-wide setting alone: a `statement_timeout` set with
`ALTER DATABASE` also stops the batch jobs, reports, migrations and manual maintenance (`VACUUM`,
`CREATE INDEX`) that run in the same database, under other roles, for longer than the application's
queries may. Behind PgBouncer in transaction mode, role settings are the reliable place.

## How the fix is applied safely
`ALTER ROLE … IN DATABASE … SET` changes what the application role's new sessions start with in this
database only; running sessions keep their values, other roles are not affected, and no table is
locked. No `ALTER DATABASE … SET` is generated.

## Options
- `statement_timeout` (default "30s"), `lock_timeout` (default "5s"),
  `idle_in_transaction_session_timeout` (default "60s"): the values the generated fix sets.

## References
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT
- https://www.postgresql.org/docs/current/sql-alterrole.html
- https://www.postgresql.org/docs/current/config-setting.html#CONFIG-SETTING-SQL
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbtune.catalog.model import Snapshot
from dbtune.checks import CheckContext, check
from dbtune.checks.pooling import left_to_the_pooler_check
from dbtune.migrate.changes import set_parameter
from dbtune.model import Finding, Severity
from dbtune.sqlnames import quote_ident

TIMEOUTS = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout")
# Zero in any unit PostgreSQL accepts: ALTER ROLE/DATABASE … SET stores the value as written ('0min').
_ZERO = re.compile(r"^\s*'?\s*0+(\.0*)?\s*(us|ms|s|min|h|d)?\s*'?\s*$")


@check(id="ST002", name="timeout-unset", area="settings", severity="warning", fix=True,
       options={"statement_timeout": "30s", "lock_timeout": "5s",
                "idle_in_transaction_session_timeout": "60s"})
def timeout_unset(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    db = snap.server.database
    known_roles = {r.name for r in snap.roles}
    roles = []
    for role in ctx.application_roles():
        if role not in known_roles:
            ctx.skip(f"application role {role!r} does not exist on the server")
            continue
        roles.append(role)
    where = f" in database {quote_ident(db)}"
    database_unset = _unset(snap, None)
    if database_unset:
        if roles:
            advice = ("left database-wide, where it would also stop batch jobs, migrations and maintenance; "
                      "the application roles are judged on their own")
        else:
            advice = ("no fix is generated database-wide, where it would also stop batch jobs, migrations "
                      "and maintenance: name the application's roles in [database] application_roles "
                      "(or as a [[pool]] role) for a fix on those roles")
        yield ctx.finding(
            quote_ident(db), f"{_are_zero(database_unset)} for database {quote_ident(db)}; {advice}",
            evidence={"unset": database_unset, "database": db, "role": None, "application_roles": roles},
            severity=Severity.INFO if roles else None,
        )
    pooled = left_to_the_pooler_check(ctx)  # PO006 proposes the application's own value for these
    for role in roles:
        unset = {name: source for name, source in _unset(snap, role).items() if name not in pooled}
        if unset:
            yield ctx.finding(
                quote_ident(role), f"{_are_zero(unset)} for role {quote_ident(role)}{where}",
                evidence={"unset": unset, "database": db, "role": role},
                changes=[set_parameter("ROLE", role, n, ctx.options[n], database=db) for n in unset],
            )


def _unset(snap: Snapshot, role: str | None) -> dict[str, str]:
    """The timeouts a new session of ``role`` (None: of the database, whatever the role) starts at 0,
    each with where that value comes from (``"server"``, ``"database"``, ``"role"`` …)."""
    unset = {}
    for name in TIMEOUTS:
        value, source = snap.effective(name, role)
        if value is not None and _ZERO.match(value):
            unset[name] = source
    return unset


def _are_zero(unset: dict[str, str]) -> str:
    return f"{', '.join(unset)} {'is' if len(unset) == 1 else 'are'} 0 (no limit)"
