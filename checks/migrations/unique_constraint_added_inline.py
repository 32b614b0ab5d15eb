"""A unique or primary key constraint added to an existing table, building its index under `ACCESS EXCLUSIVE`.

## What it does
Finds `ALTER TABLE … ADD [CONSTRAINT …] UNIQUE (…)` and `… PRIMARY KEY (…)` without `USING INDEX`, and
`ADD COLUMN … UNIQUE` / `ADD COLUMN … PRIMARY KEY`, on a table that the same migration file did not
create; in Alembic revisions also `op.create_unique_constraint(…)` and `op.create_primary_key(…)`.

squawk's `disallowed-unique-constraint` and `adding-serial-primary-key-field` report the same
statements; when both do, dbtune's finding carries squawk's.

## Why it matters
The constraint needs a unique index, and `ALTER TABLE` builds it while holding an `ACCESS EXCLUSIVE`
lock on the table: no query, not even a `SELECT`, runs on the table until every row has been read and
sorted.

## Example
```sql
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
```

## What to do instead
Build the unique index concurrently first, then turn it into the constraint, which only takes the lock
for a moment:

```sql
CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);
ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;
```

For a primary key the columns must be `NOT NULL` first (see `set-not-null-on-existing-column` for how to
do that without a long lock), then `ADD CONSTRAINT … PRIMARY KEY USING INDEX …`. `USING INDEX` needs a
plain b-tree index on columns: a partial or expression index cannot back a constraint — keep it as a
unique index (see `partial-unique-constraint`).

## How the fix is applied safely
The fix shown is the concurrent unique index and the `ADD CONSTRAINT … USING INDEX`; the first runs
outside a transaction block. If duplicates exist, the concurrent build fails and leaves an INVALID index:
remove the duplicates, `DROP INDEX CONCURRENTLY` the invalid index, and build it again.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT-USING-INDEX
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://squawkhq.com/docs/disallowed-unique-constraint
- https://squawkhq.com/docs/adding-serial-primary-key-field
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from dbtune.checks import check
from dbtune.migrate.ddl import AT, commands, describe, pretty, render
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import table_name
from dbtune.model import Change, ChangeKind, Finding, Lock
from dbtune.sqlnames import quote_ident

UNIQUE, PRIMARY = enums.ConstrType.CONSTR_UNIQUE, enums.ConstrType.CONSTR_PRIMARY


def _fix(relation: str, relname: str, con: ast.Constraint) -> list[Change]:
    keys = [k.sval for k in con.keys or ()]
    kind = "PRIMARY KEY" if con.contype == PRIMARY else "UNIQUE"
    name = con.conname or "_".join([relname, *keys, "pkey" if con.contype == PRIMARY else "key"])[:63]
    include = f" INCLUDE ({', '.join(quote_ident(k.sval) for k in con.including)})" if con.including else ""
    nulls = " NULLS NOT DISTINCT" if con.nulls_not_distinct else ""
    index = pretty(f"CREATE UNIQUE INDEX CONCURRENTLY {quote_ident(name)} ON {relation} "
                   f"({', '.join(map(quote_ident, keys))}){include}{nulls}")
    attach = pretty(f"ALTER TABLE {relation} ADD CONSTRAINT {quote_ident(name)} {kind} USING INDEX "
                    f"{quote_ident(name)}")
    return [Change(up=index, transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE, kind=ChangeKind.CREATE_INDEX,
                   table=relation, index=name),
            Change(up=attach, lock=Lock.ACCESS_EXCLUSIVE, kind=ChangeKind.ADD_CONSTRAINT, table=relation)]


@check(id="MG005", name="unique-constraint-added-inline", area="migrations", severity="warning", fix=True)
def unique_constraint_added_inline(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        node = stmt.node
        if not isinstance(node, ast.AlterTableStmt) or ctx.is_new_table(stmt, node.relation):
            continue
        table = describe(table_name(node.relation))
        relation = render(node.relation)
        for cmd in commands(node, AT.AT_AddConstraint, AT.AT_AddColumn):
            if cmd.subtype == AT.AT_AddConstraint:
                cons = [cmd.def_] if isinstance(cmd.def_, ast.Constraint) else []
                column = None
            else:
                cons = list(getattr(cmd.def_, "constraints", None) or ())
                column = cmd.def_.colname
            for con in cons:
                if con.contype not in (UNIQUE, PRIMARY) or con.indexname:
                    continue
                kind = "PRIMARY KEY" if con.contype == PRIMARY else "UNIQUE"
                if column is not None:
                    yield ctx.finding(
                        stmt, f"ADD COLUMN {column} … {kind} on existing table {table} builds a unique index "
                              f"under ACCESS EXCLUSIVE, blocking reads and writes; add the column, build the "
                              f"index CONCURRENTLY, then ADD CONSTRAINT … {kind} USING INDEX",
                        evidence={"table": table, "column": column, "lock": "ACCESS EXCLUSIVE"})
                    continue
                how = ("create the index with op.create_index(…, unique=True, postgresql_concurrently=True) in an "
                       "autocommit_block, then op.execute(\"ALTER TABLE … ADD CONSTRAINT … USING INDEX …\")"
                       if stmt.is_alembic else
                       f"CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT … {kind} USING INDEX")
                yield ctx.finding(
                    stmt, f"ADD {kind} {con.conname or ''} on existing table {table} builds its index under "
                          f"ACCESS EXCLUSIVE, blocking reads and writes; {how}".replace("  ", " "),
                    evidence={"table": table, "constraint": con.conname, "lock": "ACCESS EXCLUSIVE"},
                    changes=_fix(relation, node.relation.relname, con))
