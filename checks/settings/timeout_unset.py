"""`statement_timeout`, `lock_timeout` or `idle_in_transaction_session_timeout` left at 0 (no limit).

## What it does
Works out the value a new session starts with, for the database and for each application role
(`database.application_roles` and the `role` of each `[[pool]]` in the config), from `ALTER ROLE … IN
DATABASE … SET`, `ALTER ROLE … SET`, `ALTER DATABASE … SET` and the server's own setting, in PostgreSQL's
order of precedence. Reports each target where any of the three timeouts is 0.

## Why it matters
With no `statement_timeout`, a runaway query holds a connection and its locks indefinitely, and the pool
runs dry. With no `lock_timeout`, a DDL statement queued behind a long transaction blocks every query
queued behind it. With no `idle_in_transaction_session_timeout`, a client that forgets to commit pins the
xmin horizon (vacuum cannot clean up) and holds its locks.

## Example
`statement_timeout = 0` in postgresql.conf and no role or database setting.

## What to do instead
Set the timeouts on the application's roles (or the database), leaving a maintenance role free to run long
statements. Behind PgBouncer in transaction mode, role settings are the reliable place.

## How the fix is applied safely
`ALTER ROLE … IN DATABASE … SET` / `ALTER DATABASE … SET` change what new sessions start with; running
sessions keep their values, and no table is locked.

## Options
- `statement_timeout` (default "30s"), `lock_timeout` (default "5s"),
  `idle_in_transaction_session_timeout` (default "60s"): the values the generated fix sets.

## References
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT
- https://www.postgresql.org/docs/current/sql-alterrole.html
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import set_parameter
from dbtune.model import Finding
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
    targets: list[tuple[str | None, str]] = [(None, f"database {quote_ident(db)}")]
    where = f" in database {quote_ident(db)}"
    for role in ctx.application_roles():
        if role not in known_roles:
            ctx.skip(f"application role {role!r} does not exist on the server")
            continue
        targets.append((role, f"role {quote_ident(role)}"))
    for role, label in targets:
        unset = {}
        for name in TIMEOUTS:
            value, source = snap.effective(name, role)
            if value is not None and _ZERO.match(value):
                unset[name] = source
        if not unset:
            continue
        if role is None:
            changes = [set_parameter("DATABASE", db, n, ctx.options[n]) for n in unset]
        else:
            changes = [set_parameter("ROLE", role, n, ctx.options[n], database=db) for n in unset]
        yield ctx.finding(
            quote_ident(role) if role else quote_ident(db),
            f"{', '.join(unset)} {'is' if len(unset) == 1 else 'are'} 0 (no limit) for {label}"
            + (where if role else ""),
            evidence={"unset": unset, "database": db, "role": role},
            changes=changes,
        )
