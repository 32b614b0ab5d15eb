"""A full btree index led by a boolean column.

## What it does
Finds valid, non-unique btree indexes without a predicate (`WHERE`) whose leading key column is of type
`boolean`. A partial index with a boolean predicate (`WHERE NOT processed`) is the right shape and is not
reported, nor is an index with the boolean column after a selective one. Reads only the catalog, so it
works the same on a role with only `pg_monitor`.

## Why it matters
A boolean has two values (three with NULL): the index's first level splits the table in two, so a lookup
on the flag alone reads about half of the index, and the planner prefers a sequential scan unless one
value is rare. Meanwhile every insert and every update of the column writes the index, and such updates are
never HOT.

## Example
```sql
CREATE INDEX jobs_processed_idx ON jobs (processed);
```

## What to do instead
Index the rare value with a partial index, with the columns the query really filters or sorts on:
```sql
CREATE INDEX CONCURRENTLY jobs_pending_idx ON jobs (created_at) WHERE NOT processed;
```

## How the fix is applied safely
No fix is generated: which value is rare and which columns belong in the partial index is for a person
to decide; `CREATE INDEX CONCURRENTLY` and `DROP INDEX CONCURRENTLY` run outside a transaction block.

## Options
None.

## References
- https://www.postgresql.org/docs/current/indexes-partial.html
- https://www.postgresql.org/docs/current/datatype-boolean.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import indexed_tables, key_column
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident
from dbtune.units import size_pretty


@check(id="IX011", name="boolean-column-index", area="indexes", severity="info")
def boolean_column_index(ctx: CheckContext) -> Iterator[Finding]:
    for rel, ix in indexed_tables(ctx):
        col = key_column(rel, ix, 0)
        if ix.is_unique or ix.backs_constraint or ix.predicate or col is None or col.type != "boolean":
            continue
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {rel.qualified_name} is led by the boolean column "
            f"{quote_ident(col.name)}, which splits the table in two; a partial index on the rare value "
            f"(WHERE {quote_ident(col.name)} or WHERE NOT {quote_ident(col.name)}) serves the lookup; "
            f"{size_pretty(ix.size_bytes)}",
            evidence={"column": col.name, "size_bytes": ix.size_bytes, "idx_scan": ix.idx_scan})
