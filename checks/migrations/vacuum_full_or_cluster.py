"""`VACUUM FULL` or `CLUSTER` in a migration, which rewrites the table under `ACCESS EXCLUSIVE`.

## What it does
Finds `VACUUM FULL` (`VACUUM (FULL) …`) and `CLUSTER` statements in a migration file, except on tables
the same file created.

squawk's `prefer-repack` reports the same statements; when both do, dbtune's finding carries squawk's.

## Why it matters
Both commands write a new copy of the table and of all its indexes while holding an `ACCESS EXCLUSIVE`
lock: no query, not even a `SELECT`, runs on the table until the copy is done, which on a large table
takes minutes to hours, and the copy needs the table's size again in free disk. A `VACUUM FULL` without
a table name does this to every table of the database, one after the other.

## Example
```sql
VACUUM FULL orders;
CLUSTER orders USING orders_created_at_idx;
```

## What to do instead
Leave space reclamation to autovacuum (plain `VACUUM` takes only `SHARE UPDATE EXCLUSIVE`). When a
table really has to be compacted or reordered, use pg_repack (or pg_squeeze), which rebuild it online
and hold the strong lock only for a moment at the end — and run them as maintenance, not as a schema
migration.

## How the fix is applied safely
No fix is generated.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-vacuum.html
- https://www.postgresql.org/docs/current/sql-cluster.html
- https://www.postgresql.org/docs/current/routine-vacuuming.html
- https://reorg.github.io/pg_repack/
- https://squawkhq.com/docs/prefer-repack
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast

from dbtune.checks import check
from dbtune.migrate.ddl import describe, has_option
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import TableName, table_name
from dbtune.model import Finding


def _targets(node: ast.Node) -> tuple[str, list[TableName]] | None:
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd and has_option(node.options, "full"):
        return "VACUUM FULL", [table_name(r.relation) for r in node.rels or () if r.relation is not None]
    if isinstance(node, ast.ClusterStmt):
        return "CLUSTER", [table_name(node.relation)] if node.relation is not None else []
    return None


@check(id="MG012", name="vacuum-full-or-cluster", area="migrations", severity="warning")
def vacuum_full_or_cluster(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        found = _targets(stmt.node)  # type: ignore[arg-type]
        if found is None:
            continue
        what, tables = found
        existing = [t for t in tables if not ctx.is_new_table(stmt, t)]
        if tables and not existing:
            continue
        target = ", ".join(describe(t) for t in existing) if existing else "every table of the database"
        yield ctx.finding(
            stmt, f"{what} rewrites {target} and its indexes under ACCESS EXCLUSIVE, blocking reads and "
                  f"writes until done; leave it to autovacuum, or use pg_repack as maintenance",
            evidence={"tables": [describe(t) for t in existing], "lock": "ACCESS EXCLUSIVE"})
