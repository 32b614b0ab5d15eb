"""A multi-column unique key with a nullable column, which lets duplicates in through NULL.

## What it does
Finds valid unique indexes (and the `UNIQUE` constraints they back; primary keys excepted) over two or
more plain columns, without a predicate and without `NULLS NOT DISTINCT`, where at least one key column
is `NOT NULL` and at least one allows NULL. Single-column keys are left alone: a nullable unique
column (an optional e-mail address) is the usual intent, and every row without a value being distinct is
what the designer wanted. Partial indexes are left alone too (their predicate is the designer's choice).
An index attached to a partitioned index is reported once, through its parent. Reads only `pg_index`
and `pg_attribute`, so it runs unchanged on a role with only `pg_monitor`. Runs on PostgreSQL 15 and
later, where `NULLS NOT DISTINCT` exists.

## Why it matters
In a unique key, NULL is distinct from every NULL: `UNIQUE (account_id, external_ref)` accepts any number
of rows `(1, NULL)`. The key reads as "one row per account and reference" but does not hold for the rows
without a reference, which is how duplicate imports and double submissions slip in unnoticed.

## Example
```sql
CREATE TABLE imports (id bigint PRIMARY KEY, account_id bigint NOT NULL, external_ref text,
                      UNIQUE (account_id, external_ref));
```

## What to do instead
If one row per key is meant whatever the NULLs, declare it `UNIQUE NULLS NOT DISTINCT (account_id,
external_ref)` (build the new index `CONCURRENTLY`, attach it with `ADD CONSTRAINT … UNIQUE USING INDEX`,
drop the old one); if the column must have a value, `SET NOT NULL`. If duplicates with NULL are meant,
nothing: the finding is information.

## How the fix is applied safely
No fix is generated: whether NULLs may repeat is a rule of the application, and existing duplicate
rows would make the new index fail.

## Options
None.

## References
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-UNIQUE-CONSTRAINTS
- https://www.postgresql.org/docs/current/sql-createindex.html (NULLS NOT DISTINCT)
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="CN008", name="unique-key-allows-duplicate-nulls", area="constraints", severity="info",
       min_version_num=150000)
def unique_key_allows_duplicate_nulls(ctx: CheckContext) -> Iterator[Finding]:
    tables = {r.oid: r for r in ctx.user_relations()}
    for ix in ctx.snapshot.indexes:
        if (not ix.is_unique or ix.is_primary or ix.nulls_not_distinct or not ix.is_valid or ix.predicate
                or ix.parent_index_oid is not None or ix.table_oid not in tables or ix.n_key_columns < 2):
            continue
        keys = ix.key_attnums[:ix.n_key_columns]
        if 0 in keys:
            continue  # an expression in the key
        table = tables[ix.table_oid]
        cols = {c.attnum: c for c in table.columns}
        nullable = [cols[a].name for a in keys if a in cols and not cols[a].not_null]
        if not nullable or len(nullable) == len(keys):
            continue
        key = ", ".join(quote_ident(cols[a].name) for a in keys if a in cols)
        what = f"unique constraint {quote_ident(ix.constraint_name)}" if ix.constraint_name else \
            f"unique index {ix.qualified_name}"
        yield ctx.finding(
            ix.qualified_name,
            f"{what} on {table.qualified_name} ({key}) accepts duplicate rows where "
            f"{', '.join(quote_ident(n) for n in nullable)} is NULL (no NULLS NOT DISTINCT)",
            evidence={"key_columns": [cols[a].name for a in keys if a in cols], "nullable_columns": nullable,
                      "constraint": ix.constraint_name, "reltuples": table.reltuples},
        )
