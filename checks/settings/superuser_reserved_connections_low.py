"""`superuser_reserved_connections` at 0: no slot is kept for a superuser when the server is full.

## What it does
Reports `superuser_reserved_connections` below `min_reserved` (default 1; postgresqltuner's rule, the
survey's SET-07), and above 20 % of `max_connections` (slots the application can never use). It needs no
machine facts. Reads `pg_settings`, which any role (`pg_monitor` included) can read. The test servers
keep the default 3, so the tests judge it against a higher `min_reserved`.
It runs in full on a role with only `pg_monitor`.

## Why it matters
When the application's pools fill every slot, an administrator must still be able to connect to see what
is happening and cancel it: without a reserved slot, `psql` gets `FATAL: sorry, too many clients already`
like everyone else.

## Example
`superuser_reserved_connections = 0` in postgresql.conf.

## What to do instead
Keep the default 3 (and, on PostgreSQL 16+, `reserved_connections` for a monitoring role).

## How the fix is applied safely
`ALTER SYSTEM SET superuser_reserved_connections = '3'` is shown, never applied by `dbtune migrate`; it
takes effect at the next restart, which you schedule.

## Options
- `min_reserved` (default 1, from 0 to 100): the fewest reserved slots left alone.

## References
- https://www.postgresql.org/docs/current/runtime-config-connection.html#GUC-SUPERUSER-RESERVED-CONNECTIONS
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, setting_number
from dbtune.model import Finding


@check(id="ST014", name="superuser-reserved-connections-low", area="settings", severity="warning", fix=True,
       options={"min_reserved": 1}, option_ranges={"min_reserved": (0, 100)})
def superuser_reserved_connections_low(ctx: CheckContext) -> Iterator[Finding]:
    reserved = setting_number(ctx, "superuser_reserved_connections")
    connections = setting_number(ctx, "max_connections")
    if reserved is None or not connections:
        return
    evidence = {"superuser_reserved_connections": int(reserved), "max_connections": int(connections)}
    if reserved < ctx.options["min_reserved"]:
        yield ctx.finding(
            "superuser_reserved_connections",
            f"superuser_reserved_connections is {reserved:.0f}, below {ctx.options['min_reserved']}: when the "
            "pools fill every slot no administrator can connect", evidence=evidence,
            changes=(alter_system(ctx, "superuser_reserved_connections", "3"),))
    elif reserved > 0.2 * connections:
        yield ctx.finding(
            "superuser_reserved_connections",
            f"superuser_reserved_connections is {reserved:.0f}, more than 20 % of max_connections "
            f"({connections:.0f}): slots the application can never use", evidence=evidence,
            changes=(alter_system(ctx, "superuser_reserved_connections", "3"),))
