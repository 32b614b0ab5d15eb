"""A foreign key or check constraint the team's checklist expects does not exist.

## What it does
For each `[[expect.constraint]]` entry of the config (`name`, `table`, `definition` written as in
`ALTER TABLE … ADD CONSTRAINT`), looks for a constraint on the table that means the same thing, whatever
its name: for a foreign key the same columns, referenced table (resolved through `search_path`), referenced
columns (when the expectation names them) and ON DELETE / ON UPDATE actions; for a check constraint the
same expression once PostgreSQL's added casts and parentheses are taken away. A constraint that exists but
is `NOT VALID` counts as present (`constraint-not-validated` reports it).
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
The constraints a team relies on for integrity (every order has a real retailer; an amount is never
negative) are only rules when the database enforces them; application checks race and drift.

## Example
```toml
[[expect.constraint]]
name = "orders_total_cents_check"
table = "orders"
definition = "CHECK (total_cents >= 0)"
```

## What to do instead
Add the constraint, in two steps so that no long lock is held.

## How the fix is applied safely
`ALTER TABLE … ADD CONSTRAINT … NOT VALID` checks new rows only and so scans nothing (a foreign key takes
`SHARE ROW EXCLUSIVE` on both tables, a check constraint `ACCESS EXCLUSIVE`, each for a moment, under
`lock_timeout`), then `ALTER TABLE … VALIDATE CONSTRAINT` scans the existing rows under `SHARE UPDATE
EXCLUSIVE`, which lets reads and writes go on. Before PostgreSQL 18 a foreign key on a partitioned table
cannot be added `NOT VALID`: it is then added `NOT VALID` and validated on each partition (a partitioned
partition the same way, its own partitions first), and only then added to the partitioned table, which
attaches the partitions' validated keys rather than scanning them (the finding says so). On 18 the
partitioned table's own `NOT VALID` and `VALIDATE CONSTRAINT` cover its partitions.

## Options
None; the expectations are the `[[expect.constraint]]` entries. A table that does not exist, or a
definition that is not a foreign key or check constraint, is a config error.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
- https://www.postgresql.org/docs/current/ddl-constraints.html
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast
from pglast.parser import ParseError
from pglast.stream import RawStream

from dbtune.checks import CheckContext, check
from dbtune.checks.matching import ConstraintSignature, constraint_signature, same_constraint
from dbtune.errors import ConfigError
from dbtune.migrate.changes import add_constraint
from dbtune.model import Finding
from dbtune.pgsql import parse_one
from dbtune.sqlnames import quote_ident


@check(id="CN004", name="expected-constraint-missing", area="constraints", severity="error", fix=True)
def expected_constraint_missing(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    search_path = tuple(ctx.config.database.search_path)

    def resolve(schema: str | None, name: str) -> tuple[str, str] | None:
        rel = snap.find_relation(f'"{schema}"."{name}"' if schema else f'"{name}"', search_path)
        return (rel.schema, rel.name) if rel else None

    for n, expect in enumerate(ctx.config.expect.constraint):
        key = f"expect.constraint[{n}]"
        table = ctx.resolve_table(expect.table, f"{key}.table")
        try:
            wanted = constraint_signature(expect.definition, search_path, resolve)
        except (ParseError, ValueError) as exc:
            raise ConfigError(f"{key}.definition: {exc}") from None
        if wanted.kind == "f" and wanted.ref_table is None:
            raise ConfigError(f"{key}.definition: the referenced table does not exist")
        present = False
        for con in snap.constraints:
            if con.table_oid != table.oid or con.type != wanted.kind:
                continue
            try:
                actual = constraint_signature(con.definition.replace(" NOT VALID", ""), search_path, resolve)
            except (ParseError, ValueError):
                continue
            if same_constraint(wanted, actual):
                present = True
                break
        if present:
            continue
        message = (f"{table.qualified_name} has no {'foreign key' if wanted.kind == 'f' else 'check constraint'} "
                   f"{expect.definition} (expected as {quote_ident(expect.name)})")
        if wanted.kind == "f" and table.is_partitioned and snap.server.version_num < 180000:
            message += ("; PostgreSQL before 18 cannot add it NOT VALID on a partitioned table: it is added NOT "
                        "VALID and validated on each partition, then added to the table, which attaches them")
        if expect.reason:
            message += f": {expect.reason}"
        yield ctx.finding(
            table.qualified_name, message,
            evidence={"expected": expect.definition, "name": expect.name, "table_size_bytes": table.size_bytes},
            changes=add_constraint(snap, table, expect.name, _qualified_definition(expect.definition, wanted),
                                   kind=wanted.kind))


def _qualified_definition(definition: str, wanted: ConstraintSignature) -> str:
    """The definition with a foreign key's referenced table schema-qualified, so the migration does not
    depend on the search_path it runs with."""
    if wanted.kind != "f" or wanted.ref_table is None:
        return definition
    stmt = parse_one(f"ALTER TABLE t ADD CONSTRAINT x {definition}", ast.AlterTableStmt)
    con = stmt.cmds[0].def_  # type: ignore[index, union-attr]
    con.pktable.schemaname, con.pktable.relname = wanted.ref_table
    text = str(RawStream()(stmt))
    return text.split(" ADD CONSTRAINT x ", 1)[1]
