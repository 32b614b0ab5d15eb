"""A driver uses protocol-level prepared statements behind a transaction pooler that does not track them.

## What it does
Reports drivers that prepare statements behind a transaction pooler that cannot track them. When
PgBouncer runs with `pool_mode = transaction` (or `statement`) and its `max_prepared_statements` is
not set or 0, reports every application pool whose driver prepares statements at the protocol level by
default, as its URL shows: JDBC (pgjdbc, after `prepareThreshold` executions, default 5, unless
`prepareThreshold=0`), asyncpg (`postgresql+asyncpg://`, its statement cache, unless
`prepared_statement_cache_size=0`), psycopg 3 (`postgresql+psycopg://`, `prepare_threshold` default 5),
Prisma (unless `pgbouncer=true`). node-postgres prepares only queries given a `name`, which the config
does not show.
On a role with only `pg_monitor` it runs in full: `pg_settings` and `pg_roles` are readable by every role,
and `pg_read_all_stats` (in `pg_monitor`) shows every session of `pg_stat_activity`.

## Why it matters
A statement prepared on one server connection does not exist on the next one the pooler lends: the
driver's next execution fails with `prepared statement "…" does not exist` (or `already exists`), often
only under load, when connections are swapped. PgBouncer tracks protocol-level prepared statements from
1.21 on with `max_prepared_statements`; 1.18 and older cannot, whatever the setting.

## Example
```ini
[pgbouncer]
pool_mode = transaction
; max_prepared_statements not set
```
with `jdbc:postgresql://pgbouncer:6432/app` in the application.

## What to do instead
On PgBouncer 1.21 or later set `max_prepared_statements` (for example 200). On older versions turn the
driver's preparation off: `prepareThreshold=0` (JDBC), `statement_cache_size=0` (asyncpg),
`prepare_threshold=None` (psycopg 3), `pgbouncer=true` (Prisma).

## How the fix is applied safely
No SQL fix is generated: the change is PgBouncer's setting or the driver's.

## Options
None.

## References
- https://www.pgbouncer.org/config.html#max_prepared_statements
- https://jdbc.postgresql.org/documentation/use/#connection-parameters
- https://magicstack.github.io/asyncpg/current/faq.html#why-am-i-getting-prepared-statement-errors
- https://www.psycopg.org/psycopg3/docs/advanced/prepare.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.appconfig.model import Target
from dbtune.checks import CheckContext, check
from dbtune.checks.pooling import pooler_value, transaction_pooler
from dbtune.model import Finding


def _prepares(target: Target) -> str | None:
    """Why the driver behind ``target`` prepares statements at the protocol level (``None``: it does not,
    or the URL turns it off)."""
    params = {k.lower(): v for k, v in target.parameters.items()}
    if target.driver == "jdbc" and params.get("preparethreshold", "5") != "0":
        return f"pgjdbc prepares after prepareThreshold={params.get('preparethreshold', '5')} executions"
    if target.driver == "sqlalchemy+asyncpg" and params.get("prepared_statement_cache_size", "100") != "0":
        return "asyncpg caches prepared statements (prepared_statement_cache_size, default 100)"
    if target.driver == "sqlalchemy+psycopg":
        return "psycopg 3 prepares after prepare_threshold=5 executions by default"
    if target.driver == "prisma" and params.get("pgbouncer", "false").lower() != "true":
        return "Prisma prepares statements unless the URL says pgbouncer=true"
    return None


@check(id="PO005", name="prepared-statements-behind-transaction-pooler", area="pool", severity="error")
def prepared_statements_behind_transaction_pooler(ctx: CheckContext) -> Iterator[Finding]:
    mode = transaction_pooler(ctx)
    if mode is None:
        return
    tracked = pooler_value(ctx, "max_prepared_statements")
    if tracked.value:
        return
    for pool in ctx.app_config.pools:
        why = _prepares(pool.target) if pool.target is not None else None
        if why is None or pool.target is None:
            continue
        setting = "is 0" if tracked.value == 0 else "is not set"
        yield ctx.finding(f"pool {pool.name}", f"pool {pool.name!r}: {why}, but PgBouncer runs in {mode.value} "
                                               f"mode and max_prepared_statements {setting}: set it (PgBouncer "
                                               f"1.21+; 1.18 and older cannot track them) or turn preparation "
                                               f"off in the driver",
                          evidence={"pool": pool.name, "driver": pool.target.driver, "url": pool.target.url,
                                    "pool_mode": mode.value, "pool_mode_source": mode.source,
                                    "max_prepared_statements": tracked.value,
                                    "max_prepared_statements_source": tracked.source})
