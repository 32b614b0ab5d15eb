"""A foreign key that references a nullable key, or a key held only by a unique index.

## What it does
For each foreign key, looks at the key it references (`pg_constraint.confkey`) and the index that
enforces it (`conindid`): reports the foreign key when a referenced column allows NULL (the key is a
`UNIQUE` constraint or index over nullable columns, not a primary key), or when that index backs no
constraint (a `CREATE UNIQUE INDEX`, which PostgreSQL accepts as the target of a foreign key). Both
reasons are given in one finding. A foreign key on a partition cloned from its parent is reported once,
on the parent. Reads only `pg_attribute`, `pg_index` and `pg_constraint`, so it runs unchanged on a role
with only `pg_monitor`.

## Why it matters
The referenced table's key is what the relationship means. A nullable key lets parent rows exist that
nothing can reference and that no uniqueness protects (NULLs are distinct), so the "key" does not
identify its rows. A key held only by an index is invisible to tools that read constraints (ORMs,
schema diff, documentation), and `DROP INDEX` on it fails only because of the foreign key, which
surprises whoever drops it; `REINDEX CONCURRENTLY` and index swaps on it become migrations that have to
handle the dependency.

## Example
```sql
CREATE TABLE accounts (id bigint PRIMARY KEY, code text);
CREATE UNIQUE INDEX accounts_code_key ON accounts (code);          -- an index, not a constraint
CREATE TABLE payments (id bigint PRIMARY KEY, account_code text REFERENCES accounts (code));
```

## What to do instead
Make the referenced columns `NOT NULL` and declare the key as a constraint: `ALTER TABLE accounts ADD
CONSTRAINT accounts_code_key UNIQUE USING INDEX accounts_code_key` (after `SET NOT NULL`, or make it
the primary key with `PRIMARY KEY USING INDEX`).

## How the fix is applied safely
No fix is generated: `SET NOT NULL` scans the table under `ACCESS EXCLUSIVE` unless a validated
`CHECK (col IS NOT NULL)` exists (see `not-null-held-by-check-constraint`, CN007), and which key the
table should have is a design decision.

## Options
None.

## References
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK
- https://www.postgresql.org/docs/current/sql-altertable.html (ADD table_constraint_using_index)
- https://www.postgresql.org/docs/current/catalog-pg-constraint.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.foreign_keys import declared_foreign_keys
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="CN006", name="foreign-key-to-weak-key", area="constraints", severity="warning")
def foreign_key_to_weak_key(ctx: CheckContext) -> Iterator[Finding]:
    indexes = {ix.oid: ix for ix in ctx.snapshot.indexes}
    for con, table, ref in declared_foreign_keys(ctx):
        ref_cols = {c.attnum: c for c in ref.columns}
        nullable = [ref_cols[a].name for a in con.ref_columns if a in ref_cols and not ref_cols[a].not_null]
        key_index = indexes.get(con.index_oid or 0)
        index_only = key_index is not None and key_index.constraint_name is None
        if not nullable and not index_only:
            continue
        reasons = []
        if nullable:
            reasons.append(f"{', '.join(quote_ident(n) for n in nullable)} of {ref.qualified_name} "
                           f"{'allows' if len(nullable) == 1 else 'allow'} NULL")
        if index_only and key_index is not None:
            reasons.append(f"the key is held only by unique index {key_index.qualified_name}, not a constraint")
        yield ctx.finding(
            f"{table.qualified_name}.{quote_ident(con.name)}",
            f"foreign key {quote_ident(con.name)} on {table.qualified_name} references a weak key: "
            + "; ".join(reasons),
            evidence={"constraint": con.name, "referenced_table": ref.qualified_name,
                      "nullable_referenced_columns": nullable,
                      "referenced_index": key_index.qualified_name if key_index else None,
                      "index_backs_constraint": not index_only},
        )
