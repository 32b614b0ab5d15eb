"""The current database's oldest unfrozen transaction ID or multixact ID is old.

## What it does
Reads `age(datfrozenxid)` and `mxid_age(datminmxid)` of the database being audited (the oldest of its
tables' `relfrozenxid`/`relminmxid`, system catalogs included) and reports each that reaches
`warning_age` (default 50 % of the 2^31 limit, a warning) or `error_age` (default 80 %, an error). Other
databases of the cluster are judged when dbtune audits them. On a role with only `pg_monitor` the check
runs in full (`pg_database` is readable by every role).

## Why it matters
Wraparound protection works per database: when any database's `datfrozenxid` nears 2^31 transactions,
the whole cluster stops assigning transaction IDs. The age of a database also covers system catalogs
and tables dbtune does not audit (excluded schemas, extension tables), which `xid-wraparound-risk`
(MT002) does not see.

## Example
`age(datfrozenxid)` is 1.1 billion while no user table is older than 150 million: a system catalog or an
excluded schema's table was never frozen.

## What to do instead
Find the oldest tables (`SELECT oid::regclass, age(relfrozenxid) FROM pg_class ORDER BY 2 DESC`),
release what holds the xmin horizon back, and `VACUUM (FREEZE)` them; a database-wide `VACUUM (FREEZE)`
(`vacuumdb --freeze`) as a last resort.

## How the fix is applied safely
No fix is generated: the vacuum has to be run and watched by a person.

## Options
- `warning_age` (default 1073741824), `error_age` (default 1717986918): ages in transactions (and in
  multixacts). A test database cannot be taken near wraparound, so the tests set these low.

## References
- https://www.postgresql.org/docs/current/routine-vacuuming.html#VACUUM-FOR-WRAPAROUND
- https://www.postgresql.org/docs/current/catalog-pg-database.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.maintenance import WRAPAROUND_OPTIONS, share_of_limit, wraparound_severity
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="MT004", name="database-wraparound-risk", area="maintenance", severity="warning",
       options=dict(WRAPAROUND_OPTIONS))
def database_wraparound_risk(ctx: CheckContext) -> Iterator[Finding]:
    database = ctx.snapshot.maintenance.database
    if database is None:
        ctx.skip("the database's freeze ages could not be read (see the audit's skips)", "pg_monitor")
        return
    name = quote_ident(ctx.snapshot.server.database)
    for what, age, unit in (("transaction ID (datfrozenxid)", database.xid_age, "transactions"),
                            ("multixact ID (datminmxid)", database.mxid_age, "multixacts")):
        severity = wraparound_severity(ctx, age)
        if severity is not None:
            yield ctx.finding(
                name, f"database {name}: its oldest unfrozen {what} is {age:,} {unit} old "
                      f"({share_of_limit(age)} of the 2^31 wraparound limit)",
                evidence={"xid_age": database.xid_age, "mxid_age": database.mxid_age}, severity=severity)
