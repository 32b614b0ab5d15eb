"""An `INSERT … ON CONFLICT` names a target that no unique index or constraint matches.

## What it does
Reports `ON CONFLICT` targets the server cannot match to a unique index. Reads the workload's `INSERT … ON
CONFLICT (columns) [WHERE …]` and `ON CONFLICT ON CONSTRAINT name` statements with PostgreSQL's grammar
and infers their arbiter as the server does at plan time: a valid unique index whose key columns (or
expressions) are exactly the target's, in any order, and which is either not partial or has a predicate
the statement's `WHERE` states (each of its `AND` terms written in the statement, compared after
normalising both with PostgreSQL's grammar; the server proves implication more generally). Reports a
target that matches no index, and a target that matches a partial unique index only because the statement
leaves out its predicate (`ON CONFLICT (routing_id)` against `UNIQUE (routing_id) WHERE response =
'ACCEPTED'`), naming the `WHERE` to add.
It reads the workload file and the system catalogs, so it runs in full on a role with only `pg_monitor`.

## Why it matters
The server refuses such a statement every time it runs: `there is no unique or exclusion constraint
matching the ON CONFLICT specification` (SQLSTATE 42P10). The code path that was meant to make the
insert race-free fails instead, usually first in production, where the index differs.

## Example
```sql
-- the index: CREATE UNIQUE INDEX ... ON vendor_routing_responses (routing_id) WHERE response = 'ACCEPTED'
INSERT INTO vendor_routing_responses (routing_id, vendor_id, response) VALUES ($1, $2, 'ACCEPTED')
ON CONFLICT (routing_id) DO NOTHING;
```

## What to do instead
State the partial index's predicate: `ON CONFLICT (routing_id) WHERE response = 'ACCEPTED' DO NOTHING`;
or create the unique index the target names (`check-then-insert-without-unique`, and `[[expect.unique]]`
for the team's rule).

## How the fix is applied safely
No SQL fix is generated: the statement is the application's.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
- https://www.postgresql.org/docs/current/indexes-partial.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.matching import index_key, parse_columns, predicate_conjuncts
from dbtune.model import Finding
from dbtune.workload.writes import on_conflict_targets


@check(id="CC003", name="on-conflict-target-unmatched", area="concurrency", severity="error")
def on_conflict_target_unmatched(ctx: CheckContext) -> Iterator[Finding]:
    path = tuple(ctx.config.database.search_path)
    for target in on_conflict_targets(ctx.workload):
        table = ctx.snapshot.find_relation(target.table.written, path)
        if table is None:
            continue
        evidence = {"statement": target.statement, "location": target.location, "target": list(target.columns),
                    "where": target.where, "constraint": target.constraint}
        if target.constraint is not None:
            if not any(c.name == target.constraint and c.table_oid == table.oid and c.type in ("u", "p", "x")
                       for c in ctx.snapshot.constraints):
                yield ctx.finding(target.location, f"ON CONFLICT ON CONSTRAINT {target.constraint} names no "
                                                   f"unique, primary-key or exclusion constraint of "
                                                   f"{table.qualified_name}", evidence=evidence)
            continue
        wanted = sorted(k.text for k in parse_columns(list(target.columns), target.location))
        stated = predicate_conjuncts(target.where)
        candidates = [ix for ix in ctx.snapshot.indexes_on(table.oid) if ix.is_unique and ix.is_valid
                      and sorted(k.text for k in index_key(ix)) == wanted]
        if any(not ix.predicate or predicate_conjuncts(ix.predicate) <= stated for ix in candidates):
            continue
        shown = f"ON CONFLICT ({', '.join(target.columns)})" + (f" WHERE {target.where}" if target.where else "")
        if candidates:
            partial = candidates[0]
            yield ctx.finding(target.location, f"{shown} on {table.qualified_name} matches {partial.qualified_name} "
                                               f"only with its predicate stated: add WHERE {partial.predicate}; "
                                               f"as written the server refuses it (SQLSTATE 42P10)",
                              evidence={**evidence, "partial_index": partial.qualified_name,
                                        "index_predicate": partial.predicate})
        else:
            yield ctx.finding(target.location, f"{shown} on {table.qualified_name} matches no unique index: the "
                                               f"server refuses it (SQLSTATE 42P10)",
                              evidence={**evidence, "unique_indexes": [ix.qualified_name for ix in
                                                                       ctx.snapshot.indexes_on(table.oid)
                                                                       if ix.is_unique]})
