"""An UPDATE of a table with an optimistic-locking version column neither bumps nor compares it.

## What it does
Reports UPDATEs that bypass a declared optimistic-locking version column. For each
`[[expect.version_column]]` entry of the config (`table`, `column`, default `version`), reads the
workload's `UPDATE` statements on that table with PostgreSQL's grammar and reports each one that does not
both set the column to itself plus one (`SET version = version + 1`) and compare it for equality in its
`WHERE` (`… AND version = $3`). A table or column that does not exist is a config error; without a
workload, or with no `UPDATE` of the table in it, there is nothing to judge.
It reads the workload file and the system catalogs, so it runs in full on a role with only `pg_monitor`.

## Why it matters
Optimistic locking works only when every writer takes part: an `UPDATE` that ignores the version
overwrites a concurrent change without noticing (a lost update), and one that does not bump it lets the
next writer's stale read succeed. The guide resolves vendor races under `READ COMMITTED` with the unique
index and optimistic locking.

## Example
```toml
[[expect.version_column]]
table = "vendor_routing"
column = "version"
```
with `UPDATE vendor_routing SET status = $1 WHERE id = $2` in the workload.

## What to do instead
`UPDATE vendor_routing SET status = $1, version = version + 1 WHERE id = $2 AND version = $3`, and
treat "0 rows updated" as a conflict (read again, retry or report).

## How the fix is applied safely
No SQL fix is generated: the statements are the application's.

## Options
None; the expectations are the `[[expect.version_column]]` entries.

## References
- https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED
- https://www.postgresql.org/docs/current/sql-update.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.errors import ConfigError
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident
from dbtune.workload.writes import updates_of


@check(id="CC004", name="version-column-unused", area="concurrency", severity="warning")
def version_column_unused(ctx: CheckContext) -> Iterator[Finding]:
    path = tuple(ctx.config.database.search_path)
    updates = updates_of(ctx.workload)
    for n, expect in enumerate(ctx.config.expect.version_column):
        key = f"expect.version_column[{n}]"
        table = ctx.resolve_table(expect.table, f"{key}.table")
        column = expect.column
        if column not in {c.name for c in table.columns}:
            raise ConfigError(f"{key}.column: {table.qualified_name} has no column {column!r}")
        bump = {f"{quote_ident(column)} + 1", f"1 + {quote_ident(column)}"}
        for update in updates:
            if ctx.snapshot.find_relation(update.table.written, path) != table:
                continue
            bumped = update.sets.get(column) in bump
            compared = column in update.compared
            if bumped and compared:
                continue
            missing = [what for what, ok in ((f"SET {column} = {column} + 1", bumped),
                                             (f"WHERE … AND {column} = $n", compared)) if not ok]
            yield ctx.finding(update.location, f"this UPDATE of {table.qualified_name} lacks "
                                               f"{' and '.join(missing)}: {key} declares {column!r} its "
                                               f"optimistic-locking version",
                              evidence={"statement": update.statement, "location": update.location,
                                        "column": column, "bumps_version": bumped, "compares_version": compared,
                                        "expectation": key})
