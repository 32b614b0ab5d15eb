"""A btree index on an array or jsonb column.

## What it does
Finds valid, non-unique btree indexes with a key column of an array type (`integer[]`, `text[]` …) or of
type `jsonb`, the column itself rather than an expression over it (`(payload->>'id')` is fine). Reads only
the catalog, so it works the same on a role with only `pg_monitor`.

## Why it matters
A btree orders whole values: it serves `=` and sorting on the complete array or document, which queries
rarely ask for. Containment and membership (`@>`, `&&`, `?`, `@?`) are served by GIN, so those queries
scan the table while the btree costs writes and space, and a large value can even exceed the btree's
entry size limit (about a third of a page) and make inserts fail.

## Example
```sql
CREATE INDEX posts_tags_idx ON posts (tags);   -- tags text[]; queries say WHERE tags @> ARRAY['pg']
```

## What to do instead
```sql
CREATE INDEX CONCURRENTLY posts_tags_gin ON posts USING gin (tags);
-- jsonb: USING gin (payload jsonb_path_ops) for @>, or a btree on the expression a query compares
```

## How the fix is applied safely
No fix is generated: which operators the queries use decides the operator class; `CREATE INDEX
CONCURRENTLY` and `DROP INDEX CONCURRENTLY` run outside a transaction block.

## Options
None.

## References
- https://www.postgresql.org/docs/current/gin.html
- https://www.postgresql.org/docs/current/datatype-json.html#JSON-INDEXING
- https://www.postgresql.org/docs/current/btree.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import indexed_tables, key_column
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident
from dbtune.units import size_pretty


@check(id="IX012", name="btree-on-array-or-jsonb", area="indexes", severity="warning")
def btree_on_array_or_jsonb(ctx: CheckContext) -> Iterator[Finding]:
    for rel, ix in indexed_tables(ctx):
        if ix.is_unique or ix.backs_constraint:
            continue
        cols = [c for k in range(ix.n_key_columns) if (c := key_column(rel, ix, k)) is not None
                and (c.type.endswith("]") or c.type == "jsonb")]
        if not cols:
            continue
        col = cols[0]
        kind = "jsonb" if col.type == "jsonb" else "array"
        yield ctx.finding(
            ix.qualified_name,
            f"btree index {ix.qualified_name} on {rel.qualified_name} keys the {kind} column "
            f"{quote_ident(col.name)} ({col.type}): a btree serves only = and ordering of whole values; "
            f"containment (@>, &&, ?) needs a GIN index; {size_pretty(ix.size_bytes)}",
            evidence={"column": col.name, "column_type": col.type, "size_bytes": ix.size_bytes,
                      "idx_scan": ix.idx_scan})
