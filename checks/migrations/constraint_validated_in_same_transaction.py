"""A constraint added `NOT VALID` and validated in the same transaction, which keeps the strong lock during the scan.

## What it does
Finds `ALTER TABLE … VALIDATE CONSTRAINT c` that runs in the same transaction block as the earlier
`ALTER TABLE … ADD CONSTRAINT c … NOT VALID` on the same table: between one `BEGIN` and `COMMIT` of a
SQL file, or both in Alembic's migration transaction (outside `autocommit_block()`).

squawk's `constraint-missing-not-valid` reports this pattern too; when both report a statement, dbtune's
finding carries squawk's.

## Why it matters
`NOT VALID` exists to split the work: the `ADD` takes its lock (`SHARE ROW EXCLUSIVE` on both tables for
a foreign key, `ACCESS EXCLUSIVE` for a check constraint) only for a moment, and `VALIDATE` scans the
table under the weak `SHARE UPDATE EXCLUSIVE`. But a lock is held until the transaction ends: validated
in the same transaction, the scan runs while the `ADD`'s lock is still held, and writes (or all queries)
wait for it, exactly as if `NOT VALID` had not been used.

## Example
```sql
BEGIN;
ALTER TABLE orders ADD CONSTRAINT orders_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_id_fkey;
COMMIT;
```

## What to do instead
Commit between the two: move the `VALIDATE CONSTRAINT` after the `COMMIT`, into a later migration, or in
Alembic into `with op.get_context().autocommit_block():` (or the next revision).

## How the fix is applied safely
No fix is generated: the statement has to move, not change. `VALIDATE CONSTRAINT` on its own takes
`SHARE UPDATE EXCLUSIVE` on the table (and `ROW SHARE` on a referenced table), so reads and writes go on
during the scan.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-VALIDATE-CONSTRAINT
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://squawkhq.com/docs/constraint-missing-not-valid
"""

from __future__ import annotations

from collections.abc import Iterator

from pglast import enums

from dbtune.checks import check
from dbtune.migrate.ddl import AT, added_constraints, commands, describe
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import same_table, table_name
from dbtune.model import Finding


@check(id="MG014", name="constraint-validated-in-same-transaction", area="migrations", severity="warning")
def constraint_validated_in_same_transaction(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.parsed():
        if not stmt.transaction_id:
            continue
        for cmd in commands(stmt.node, AT.AT_ValidateConstraint):
            table = table_name(stmt.node.relation)  # type: ignore[union-attr]
            for earlier in ctx.before(stmt):
                if earlier.transaction_id != stmt.transaction_id or earlier.node is None:
                    continue
                added = [c for c in added_constraints(earlier.node, enums.ConstrType.CONSTR_FOREIGN,
                                                      enums.ConstrType.CONSTR_CHECK)
                         if c.skip_validation and c.conname == cmd.name]
                if added and same_table(table_name(earlier.node.relation), table):
                    lock = ("SHARE ROW EXCLUSIVE" if added[0].contype == enums.ConstrType.CONSTR_FOREIGN
                            else "ACCESS EXCLUSIVE")
                    yield ctx.finding(
                        stmt, f"VALIDATE CONSTRAINT {cmd.name} runs in {stmt.transaction}, the same as the ADD "
                              f"… NOT VALID at line {earlier.line}, whose {lock} lock on {describe(table)} is "
                              f"held during the validation scan; commit in between",
                        evidence={"table": describe(table), "constraint": cmd.name, "lock": lock,
                                  "added_at_line": earlier.line})
                    break
