"""A uniqueness rule the team's checklist expects is not enforced by any valid unique index.

## What it does
For each `[[expect.unique]]` entry of the config, looks for a valid unique index (a unique or
primary-key constraint's index counts) on the named table whose key columns are exactly the expected set
and whose predicate equals the expected `where`. Conditional rules such as "at most one `ACCEPTED`
response per routing" are partial unique indexes. An INVALID unique index does not count: it enforces
nothing.
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
Without the index, concurrent transactions that each check "is there already one?" can both insert, so
the rule breaks under load (two accepted vendors for one routing, a webhook processed twice).

## Example
```toml
[[expect.unique]]
name = "unique_routing_acceptance"
table = "vendor_routing_responses"
columns = ["routing_id"]
where = "response = 'ACCEPTED'"
```

## What to do instead
Create a unique index; for a conditional rule, a partial unique index `CREATE UNIQUE INDEX … WHERE …`.
PostgreSQL rejects `ALTER TABLE … ADD CONSTRAINT … UNIQUE (…) WHERE …`: a table constraint has no
WHERE clause. Remove existing duplicates first, or the build fails and leaves an INVALID index.

## How the fix is applied safely
`CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS … WHERE …` under `SHARE UPDATE EXCLUSIVE`, outside a
transaction block. The audit counts the rows that already share a key (evidence `duplicate_keys`, and
`duplicate_keys_query` to list them); while there are any, `dbtune migrate generate` leaves the build out
(it would fail and leave an INVALID index) and generates the rest.

## Options
None; the expectations are the `[[expect.unique]]` entries. A table or column that does not exist is a
config error.

## References
- https://www.postgresql.org/docs/current/indexes-partial.html#INDEXES-PARTIAL-EX3
- https://www.postgresql.org/docs/current/sql-createindex.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.expectations import expectation_findings
from dbtune.model import Finding


@check(id="CN003", name="expected-unique-missing", area="constraints", severity="error", fix=True)
def expected_unique_missing(ctx: CheckContext) -> Iterator[Finding]:
    yield from expectation_findings(ctx, "unique", unique=True)
