"""The workload checks whether a row exists, then inserts it, on a key no unique index enforces.

## What it does
Reports a workload that checks whether a row exists and then inserts it, on a key no unique index
enforces. Reads the workload (`--workload`) with PostgreSQL's grammar and finds existence checks followed,
later in the same file, by an `INSERT` into the same table: a `SELECT` on one table whose `WHERE` compares
columns for equality (the business key: `routing_id = $1`, `message_sid = $1`), with no `ORDER BY` and at
most `LIMIT 1` (or inside `EXISTS`), then an `INSERT` (without `ON CONFLICT`) that gives those columns
values. The check's `column = constant` terms (`response = 'ACCEPTED'`) are the condition of the rule.
Reports the pair when no valid unique index enforces it: one whose key columns are among the key and
condition columns, and which is not partial or whose predicate the condition states. The fix is the
(partial) unique index. Where an `[[expect.unique]]` entry names the same rule, its fix is
`expected-unique-missing`'s (CN003) and this finding carries none.
It reads the workload file and the system catalogs, so it runs in full on a role with only `pg_monitor`.

## Why it matters
Under `READ COMMITTED` (and `REPEATABLE READ`) two sessions run the check at the same time, both see no
row, and both insert: two vendors accept the same routing, a webhook is processed twice. Only a unique
index makes the second insert fail (or, with `ON CONFLICT DO NOTHING`, do nothing).

## Example
```sql
SELECT id FROM vendor_routing_responses WHERE routing_id = $1 AND response = 'ACCEPTED';
INSERT INTO vendor_routing_responses (routing_id, vendor_id, response) VALUES ($1, $2, 'ACCEPTED');
```

## What to do instead
`CREATE UNIQUE INDEX CONCURRENTLY … ON vendor_routing_responses (routing_id) WHERE response = 'ACCEPTED'`,
then `INSERT … ON CONFLICT (routing_id) WHERE response = 'ACCEPTED' DO NOTHING` and read whether a row
was inserted.

## How the fix is applied safely
`CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS … [WHERE …]` under `SHARE UPDATE EXCLUSIVE`, outside a
transaction block. The audit counts the rows that already share a key; while there are any, `dbtune
migrate generate` leaves the build out (it would fail and leave an INVALID index).

## Options
None.

## References
- https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED
- https://www.postgresql.org/docs/current/indexes-partial.html#INDEXES-PARTIAL-EX3
- https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.model import Index, Relation
from dbtune.checks import CheckContext, check
from dbtune.checks.matching import index_key, predicate_conjuncts
from dbtune.migrate.changes import create_index, index_name
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident
from dbtune.workload.writes import check_then_inserts


def enforces(index: Index, columns: set[str], conditions: frozenset[str]) -> bool:
    """Whether a valid unique ``index`` allows at most one row per value of ``columns`` among the rows
    that satisfy ``conditions`` (normalised terms)."""
    if not index.is_valid or not index.is_unique or index.parent_index_oid is not None:
        return False
    key = {k.text for k in index_key(index)}
    return key <= columns and predicate_conjuncts(index.predicate) <= conditions


def _resolve(ctx: CheckContext, schema: str | None, name: str) -> Relation | None:
    written = f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)
    return ctx.snapshot.find_relation(written, tuple(ctx.config.database.search_path))


@check(id="CC002", name="check-then-insert-without-unique", area="concurrency", severity="error", fix=True)
def check_then_insert_without_unique(ctx: CheckContext) -> Iterator[Finding]:
    for pair in check_then_inserts(ctx.workload):
        table = _resolve(ctx, pair.table.schema, pair.table.name)
        if table is None:
            continue
        conditions = predicate_conjuncts(pair.where)
        key = [quote_ident(c) for c in pair.key]
        columns = set(key) | {c.split(" ", 1)[0] for c in conditions}
        if any(enforces(ix, columns, conditions) for ix in ctx.snapshot.indexes_on(table.oid)):
            continue
        expected = next((n for n, e in enumerate(ctx.config.expect.unique)
                         if _resolve_expect(ctx, e.table) == table.oid
                         and {c.strip() for c in e.columns} <= columns
                         and predicate_conjuncts(e.where) <= conditions), None)
        rule = f"({', '.join(key)})" + (f" WHERE {pair.where}" if pair.where else "")
        message = (f"{pair.select_location} checks {table.qualified_name} {rule} and "
                   f"{pair.insert_location} then inserts, but no unique index enforces {rule}: concurrent "
                   f"sessions can both insert")
        evidence = {"select": pair.select_statement, "select_location": pair.select_location,
                    "insert": pair.insert_statement, "insert_location": pair.insert_location,
                    "key": list(pair.key), "where": pair.where, "table_reltuples": max(table.reltuples, 0)}
        if expected is not None:
            yield ctx.finding(table.qualified_name, message + f" (the fix is expect.unique[{expected}]'s, "
                                                              f"expected-unique-missing)",
                              evidence={**evidence, "expectation": f"expect.unique[{expected}]"})
            continue
        name = index_name(table.name, list(pair.key), "key")
        yield ctx.finding(table.qualified_name, message, evidence=evidence,
                          changes=create_index(ctx.snapshot, table, name, key, unique=True, where=pair.where))


def _resolve_expect(ctx: CheckContext, name: str) -> int | None:
    rel = ctx.snapshot.find_relation(name, tuple(ctx.config.database.search_path))
    return rel.oid if rel is not None else None
