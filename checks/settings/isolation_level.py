"""The default transaction isolation level, against the level the config requires.

## What it does
Reports `default_transaction_isolation` as new sessions of the database and of each application role
start with it (from role, database and server settings). When `[isolation] required` is set in the config
and a target starts at another level, the finding is a warning with the fix; otherwise it is information.
It runs in full on a role with only `pg_monitor`.

## Why it matters
Code written for one isolation level can race under another: check-then-act logic that is safe under
`serializable` loses updates or inserts duplicates under `read committed`, and code that does not retry
on SQLSTATE 40001 fails under `repeatable read` or `serializable`.

## Example
```toml
[isolation]
required = "read committed"
```

## What to do instead
Set the level the application was written for on its roles (or the database), or make the application ask
for it explicitly (`BEGIN ISOLATION LEVEL …`).

## How the fix is applied safely
`ALTER ROLE … IN DATABASE … SET default_transaction_isolation` or `ALTER DATABASE … SET`; new sessions only,
no lock on tables.

## Options
None; the requirement is `[isolation] required` in the config.

## References
- https://www.postgresql.org/docs/current/transaction-iso.html
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-DEFAULT-TRANSACTION-ISOLATION
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import set_parameter
from dbtune.model import Finding, Severity
from dbtune.sqlnames import quote_ident


@check(id="ST003", name="isolation-level", area="settings", severity="warning", fix=True)
def isolation_level(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    db = snap.server.database
    required = ctx.config.isolation.required
    targets: list[tuple[str | None, str]] = [(None, f"database {quote_ident(db)}")]
    known = {r.name for r in snap.roles}
    targets += [(r, f"role {quote_ident(r)}") for r in ctx.application_roles() if r in known]
    for role, label in targets:
        level, source = snap.effective("default_transaction_isolation", role)
        # ALTER ROLE/DATABASE … SET stores the value as written ('SERIALIZABLE'); PostgreSQL ignores case.
        level = (level or "read committed").strip("'\"").lower()
        evidence = {"default_transaction_isolation": level, "source": source, "required": required}
        obj = quote_ident(role) if role else quote_ident(db)
        if required and level != required:
            if role is None:
                fix = set_parameter("DATABASE", db, "default_transaction_isolation", required)
            else:
                fix = set_parameter("ROLE", role, "default_transaction_isolation", required, database=db)
            yield ctx.finding(obj, f"{label} starts transactions at {level} (from {source}); the config "
                                   f"requires {required}", evidence=evidence, changes=(fix,))
        else:
            suffix = " as the config requires" if required else ""
            yield ctx.finding(obj, f"{label} starts transactions at {level} (from {source}){suffix}",
                              evidence=evidence, severity=Severity.INFO)
