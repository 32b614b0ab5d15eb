"""Two or more indexes that are the same index.

## What it does
Groups the valid indexes of each table by everything that defines an index: access method, key and
INCLUDE columns, operator classes, collations, sort options, expressions, predicate and `NULLS NOT
DISTINCT`. Every group of two or more is a finding. The index to keep is a partition's index attached to
a partitioned index (PostgreSQL drops it only with its parent: a standalone index on a partition that
repeats it is the duplicate; attached twins are reported once, through their partitioned parents), else
the one that backs a constraint (primary key, unique, exclusion), else a unique one, else the one the
team's checklist names (`name` of an `[[expect.index]]` or `[[expect.unique]]` entry), else the oldest;
the others are the ones to drop.
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
A duplicate index serves no query its twin does not, yet every insert and indexed update writes both,
vacuum scans both, and both take space in shared buffers and backups.

## Example
```sql
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_status_idx1 ON orders (status);   -- the same index again
```

## What to do instead
Drop all but one of each group.

## How the fix is applied safely
`DROP INDEX CONCURRENTLY IF EXISTS` waits for running queries that use the index instead of blocking
new ones, and runs outside a transaction block. Drops are only applied by `dbtune migrate` with
`--include-drops`. When every twin backs a constraint, no drop is generated: a constraint has to be
dropped with `ALTER TABLE`, which a person should decide.

## Options
None.

## References
- https://www.postgresql.org/docs/current/catalog-pg-index.html
- https://www.postgresql.org/docs/current/sql-dropindex.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.model import Index
from dbtune.checks import CheckContext, check
from dbtune.checks.expectations import team_index_names
from dbtune.migrate.changes import drop_index
from dbtune.model import Finding
from dbtune.units import size_pretty


def identity(ix: Index) -> tuple[object, ...]:
    """Everything that makes two indexes the same index (uniqueness aside)."""
    return (ix.table_oid, ix.method, ix.key_attnums, ix.n_key_columns, ix.opclass_oids, ix.collation_oids,
            ix.options, ix.expressions, ix.predicate, ix.nulls_not_distinct, ix.is_exclusion)


def _keep_order(ix: Index, team: frozenset[tuple[int, str]]) -> tuple[int, int, int, int, int, int]:
    # An index attached to a partitioned index is kept first: PostgreSQL drops it only with its parent.
    return (0 if ix.parent_index_oid is not None else 1, 0 if ix.backs_constraint else 1,
            0 if ix.is_unique else 1, 0 if (ix.table_oid, ix.name) in team else 1, 0 if ix.is_primary else 1,
            ix.oid)


@check(id="IX002", name="duplicate-index", area="indexes", severity="warning", fix=True)
def duplicate_index(ctx: CheckContext) -> Iterator[Finding]:
    tables = {r.oid: r for r in ctx.user_relations()}
    team = team_index_names(ctx)
    groups: dict[tuple[object, ...], list[Index]] = {}
    for ix in ctx.snapshot.indexes:
        if ix.table_oid in tables and ix.is_valid:
            groups.setdefault(identity(ix), []).append(ix)
    for twins in groups.values():
        if len(twins) < 2:
            continue
        keep, *drop = sorted(twins, key=lambda ix: _keep_order(ix, team))
        table = tables[keep.table_oid]
        # Twins attached to partitioned indexes are reported once, through their parents; a standalone
        # index on a partition that duplicates an attached one is reported, as a duplicate of that one.
        for ix in (d for d in drop if d.parent_index_oid is None):
            changes = () if ix.backs_constraint else (drop_index(ix, table),)
            yield ctx.finding(
                ix.qualified_name,
                f"index {ix.qualified_name} on {table.qualified_name} duplicates {keep.qualified_name} "
                f"({keep.definition.split(' USING ', 1)[-1]})"
                + f"; {size_pretty(ix.size_bytes)}"
                + ("; both back constraints, drop one with ALTER TABLE after review" if ix.backs_constraint
                   else ""),
                evidence={"duplicate_of": keep.qualified_name, "size_bytes": ix.size_bytes,
                          "idx_scan": ix.idx_scan, "keep_backs_constraint": keep.constraint_name},
                changes=changes,
            )
