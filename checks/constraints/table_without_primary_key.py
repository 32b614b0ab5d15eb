"""A table without a primary key.

## What it does
Finds ordinary and partitioned tables with no `PRIMARY KEY` constraint. Partitions are not reported on
their own: a partition gets its primary key from its partitioned table, where the fix belongs. When a
valid, non-partial unique index on NOT NULL plain columns exists, it is named as the candidate key.
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
Without a key, duplicate rows cannot be told apart or removed safely, ORMs and admin tools misbehave, and
logical replication cannot replicate `UPDATE` and `DELETE` (no replica identity).

## Example
```sql
CREATE TABLE order_details (order_id smallint, product_id smallint, quantity smallint);
```

## What to do instead
Add a primary key: an identity column, or the natural key.

## How the fix is applied safely
When a candidate unique index exists, `ALTER TABLE … ADD CONSTRAINT … PRIMARY KEY USING INDEX` turns it
into the key without a table scan (a brief `ACCESS EXCLUSIVE` lock, run under `lock_timeout`). Otherwise
no fix is generated: choosing the key is a design decision.

## Options
None.

## References
- https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-PRIMARY-KEYS
- https://www.postgresql.org/docs/current/sql-altertable.html (ADD table_constraint_using_index)
- https://www.postgresql.org/docs/current/logical-replication-publication.html (replica identity)
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import pretty
from dbtune.model import Change, ChangeKind, Finding, Lock
from dbtune.sqlnames import quote_ident


@check(id="CN001", name="table-without-primary-key", area="constraints", severity="warning", fix=True)
def table_without_primary_key(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    with_pk = {c.table_oid for c in snap.constraints if c.type == "p"}
    for rel in sorted(ctx.user_relations(), key=lambda r: (r.schema, r.name)):
        if rel.kind not in ("r", "p") or rel.is_partition or rel.oid in with_pk:
            continue
        candidates = [
            ix for ix in snap.indexes_on(rel.oid)
            if ix.is_unique and ix.is_valid and ix.predicate is None and ix.expressions is None
            and not ix.include_columns and not rel.is_partitioned
            and all(rel.column(a) is not None and rel.column(a).not_null for a in ix.key_attnums)  # type: ignore[union-attr]
        ]
        changes: tuple[Change, ...] = ()
        message = f"{rel.qualified_name} has no primary key"
        if candidates:
            best = min(candidates, key=lambda ix: (ix.n_key_columns, ix.oid))
            message += f"; unique index {best.qualified_name} ({', '.join(best.key_columns)}) on NOT NULL " \
                       f"columns can become it"
            changes = (Change(
                up=pretty(f"ALTER TABLE {rel.qualified_name} ADD CONSTRAINT {quote_ident(rel.name + '_pkey')} "
                          f"PRIMARY KEY USING INDEX {quote_ident(best.name)}"),
                down=pretty(f"ALTER TABLE {rel.qualified_name} DROP CONSTRAINT {quote_ident(rel.name + '_pkey')}"),
                transactional=True, lock=Lock.ACCESS_EXCLUSIVE, relation_bytes=rel.size_bytes,
                kind=ChangeKind.ADD_CONSTRAINT, table=rel.qualified_name),)
        yield ctx.finding(rel.qualified_name, message,
                          evidence={"size_bytes": rel.size_bytes, "reltuples": max(rel.reltuples, 0),
                                    "candidate_keys": [ix.qualified_name for ix in candidates]},
                          changes=changes)
