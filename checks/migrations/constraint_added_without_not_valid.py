"""A foreign key or check constraint added to an existing table without `NOT VALID`, validated under lock.

## What it does
Finds `ALTER TABLE … ADD [CONSTRAINT …] FOREIGN KEY …` and `… CHECK (…)` without `NOT VALID` on a table
that the same migration file did not create, and `op.create_foreign_key(…)` /
`op.create_check_constraint(…)` without `postgresql_not_valid=True` in Alembic revisions.

squawk's `adding-foreign-key-constraint` and `constraint-missing-not-valid` report the same
statements; when both do, dbtune's finding carries squawk's. (Constraints declared inline in
`ADD COLUMN … REFERENCES` are not reported by this rule.) A foreign key added without `NOT VALID` after
the same file added the same key (name, columns, referenced table) `NOT VALID` to other tables and
validated it there is spared: that is how a foreign key reaches a partitioned table before PostgreSQL 18,
which refuses `NOT VALID` on one; the partitions' keys are validated one partition at a time, and the
partitioned table's `ADD` attaches them without scanning.

## Why it matters
Adding a constraint checks every existing row while holding the statement's lock: `SHARE ROW
EXCLUSIVE` on both tables for a foreign key (writes blocked on both), `ACCESS EXCLUSIVE` for a check
constraint (reads and writes blocked). On a large table that scan takes as long as reading the table,
and the application waits for it.

## Example
```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id);
```

## What to do instead
Add the constraint `NOT VALID` (it is enforced for new rows at once, and the lock is held only for a
moment), then validate it in a separate transaction. `VALIDATE CONSTRAINT` takes a `SHARE UPDATE
EXCLUSIVE` lock on the table (and `ROW SHARE` on the referenced table), so reads and writes go on while
it scans.

```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
-- in a later transaction (or migration):
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_fkey;
```

In Alembic: `op.create_foreign_key(…, postgresql_not_valid=True)` (or `op.create_check_constraint(…,
postgresql_not_valid=True)`), then `op.execute("ALTER TABLE … VALIDATE CONSTRAINT …")` in a later
revision or inside `with op.get_context().autocommit_block():`.

## How the fix is applied safely
The fix shown is the constraint added `NOT VALID` (named, so it can be validated; an unnamed one gets
PostgreSQL's default name) and a separate `VALIDATE CONSTRAINT`. The two must not share a transaction:
`constraint-validated-in-same-transaction` reports them if they do. Rows that break the constraint make
the validation fail, and the constraint stays `NOT VALID` (dbtune's `constraint-not-validated` check
finds it) until they are fixed.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://squawkhq.com/docs/adding-foreign-key-constraint
- https://squawkhq.com/docs/constraint-missing-not-valid
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import ast, enums

from dbtune.checks import check
from dbtune.migrate.ddl import added_constraints, attaching_foreign_keys, describe, pretty, render, with_changes
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import table_name
from dbtune.model import Change, ChangeKind, Finding, Lock
from dbtune.sqlnames import quote_ident

FOREIGN, CHECK = enums.ConstrType.CONSTR_FOREIGN, enums.ConstrType.CONSTR_CHECK


def _default_name(relname: str, con: ast.Constraint) -> str:
    """The name PostgreSQL would give (``<table>_<column>_fkey``, ``<table>_check``), at most 63 bytes."""
    if con.contype == FOREIGN:
        return "_".join([relname, *(a.sval for a in con.fk_attrs or ()), "fkey"])[:63]
    return f"{relname}_check"[:63]


@check(id="MG004", name="constraint-added-without-not-valid", area="migrations", severity="warning", fix=True)
def constraint_added_without_not_valid(ctx: LintContext) -> Iterator[Finding]:
    statements = list(ctx.parsed())
    attaching = attaching_foreign_keys(s.node for s in statements)
    for n, stmt in enumerate(statements):
        node = stmt.node
        for con in added_constraints(node, FOREIGN, CHECK):
            if con.skip_validation or ctx.is_new_table(stmt, node.relation):  # type: ignore[union-attr]
                continue
            if con.contype == FOREIGN and n in attaching:
                continue  # a partitioned table's key before PostgreSQL 18, after its partitions' validated keys
            table = describe(table_name(node.relation))  # type: ignore[union-attr]
            name = con.conname or _default_name(node.relation.relname, con)  # type: ignore[union-attr]
            kind = "FOREIGN KEY" if con.contype == FOREIGN else "CHECK"
            lock = "SHARE ROW EXCLUSIVE" if con.contype == FOREIGN else "ACCESS EXCLUSIVE"
            also = (f" on it and on {describe(table_name(con.pktable))}" if con.contype == FOREIGN and con.pktable
                    else " on it")
            add = ast.AlterTableStmt(relation=node.relation, objtype=enums.ObjectType.OBJECT_TABLE,  # type: ignore[union-attr]
                                     cmds=(ast.AlterTableCmd(subtype=enums.AlterTableType.AT_AddConstraint,
                                                             def_=with_changes(con, conname=name, skip_validation=True,
                                                                               initially_valid=False)),))
            relation = render(node.relation)  # type: ignore[union-attr]
            how = ("pass postgresql_not_valid=True, then VALIDATE CONSTRAINT in a later transaction"
                   if stmt.is_alembic else "add it NOT VALID, then VALIDATE CONSTRAINT in a later transaction")
            yield ctx.finding(
                stmt, f"ADD {kind} {con.conname or ''} on existing table {table} checks every row while holding "
                      f"{lock}{also}; {how}".replace("  ", " "),
                evidence={"table": table, "constraint": name, "lock": lock},
                changes=[Change(up=pretty(render(add)), lock=Lock(lock), kind=ChangeKind.ADD_CONSTRAINT, table=table),
                         Change(up=pretty(f"ALTER TABLE {relation} VALIDATE CONSTRAINT {quote_ident(name)}"),
                                lock=Lock.SHARE_UPDATE_EXCLUSIVE, kind=ChangeKind.VALIDATE_CONSTRAINT,
                                table=table)])
