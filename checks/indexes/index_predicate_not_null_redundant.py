"""A partial index whose `WHERE col IS NOT NULL` names a column that is `NOT NULL`.

## What it does
Finds valid indexes whose predicate is, or is a conjunction (`AND`) containing, `col IS NOT NULL` where
`col` is a column of the table declared `NOT NULL`. The predicate is parsed with PostgreSQL's own grammar
(pglast), not matched as text. Reads only the catalog, so it works the same on a role with only
`pg_monitor`.

## Why it matters
The condition is always true, so the index holds every row anyway, but the planner treats it as a partial
index: a query uses it only when the planner can prove the predicate from the query's own conditions, so
a query with no condition on the column (an `ORDER BY col LIMIT 10`, a join) may not use an index it could.
Usually the column was made `NOT NULL` after the index was written.

## Example
```sql
CREATE TABLE orders (id bigint PRIMARY KEY, placed_at timestamptz NOT NULL);
CREATE INDEX orders_placed_at_idx ON orders (placed_at) WHERE placed_at IS NOT NULL;
```

## What to do instead
Build the index again without the redundant condition (`CREATE INDEX CONCURRENTLY … ON orders
(placed_at)`), then drop the partial one concurrently.

## How the fix is applied safely
No fix is generated: the index works as it is; rebuilding it is a person's choice. Both statements above
run outside a transaction block under `SHARE UPDATE EXCLUSIVE`.

## Options
None.

## References
- https://www.postgresql.org/docs/current/indexes-partial.html
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-NOT-NULL
"""

from __future__ import annotations

from collections.abc import Iterator

import pglast
from pglast import ast
from pglast.enums import BoolExprType, NullTestType

from dbtune.checks import CheckContext, check
from dbtune.checks.index_health import indexed_tables
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


def not_null_tests(predicate: str) -> list[str]:
    """The column names that ``predicate`` (``pg_get_expr`` text of ``indpred``) tests ``IS NOT NULL`` at
    its top level, alone or as a term of an ``AND``; ``[]`` when it does not parse."""
    try:
        where = pglast.parse_sql(f"SELECT WHERE {predicate}")[0].stmt.whereClause  # type: ignore[union-attr]
    except pglast.parser.ParseError:
        return []
    terms = tuple(where.args or ()) if isinstance(where, ast.BoolExpr) and where.boolop == BoolExprType.AND_EXPR \
        else (where,)
    names = []
    for t in terms:
        if isinstance(t, ast.NullTest) and t.nulltesttype == NullTestType.IS_NOT_NULL \
                and isinstance(t.arg, ast.ColumnRef):
            last = tuple(t.arg.fields or ())[-1:]
            names += [f.sval for f in last if isinstance(f, ast.String) and f.sval is not None]
    return names


@check(id="IX018", name="index-predicate-not-null-redundant", area="indexes", severity="info")
def index_predicate_not_null_redundant(ctx: CheckContext) -> Iterator[Finding]:
    for rel, ix in indexed_tables(ctx, methods=None):
        if not ix.predicate:
            continue
        names = [n for n in not_null_tests(ix.predicate)
                 if (col := rel.column_by_name(n)) is not None and col.not_null]
        if not names:
            continue
        yield ctx.finding(
            ix.qualified_name,
            f"index {ix.qualified_name} on {rel.qualified_name}: its predicate's "
            f"{' and '.join(quote_ident(n) + ' IS NOT NULL' for n in names)} is always true (NOT NULL "
            f"column), yet the planner uses the index only where it can prove the predicate from a query",
            evidence={"columns": names, "predicate": ix.predicate})
