"""An index the team's checklist expects does not exist (or exists only INVALID).

## What it does
For each `[[expect.index]]` entry of the config, looks for a valid index on the named table that means
the same thing: the expected columns as its leading key columns in the same order, with the same sort
directions (or all of them mirrored, which a btree serves by scanning backwards), at least the expected
INCLUDE columns, the same access method and an equal predicate. The index's name does not matter: an
equivalent index under another name satisfies the expectation; an INVALID one does not.
It reads only the system catalogs, which every role may read, so it runs in full on a role with only
`pg_monitor`.

## Why it matters
The checklist's indexes are the ones the application's hot queries were designed around; without them
those queries scan whole tables.

## Example
```toml
[[expect.index]]
name = "idx_orders_retailer_created"
table = "orders"
columns = ["retailer_id", "created_at DESC"]
```

## What to do instead
Create the index.

## How the fix is applied safely
`CREATE INDEX CONCURRENTLY IF NOT EXISTS` under `SHARE UPDATE EXCLUSIVE`, outside a transaction block; on a
partitioned table, `ON ONLY` the parent, then concurrently on each partition, then attached.

## Options
None; the expectations themselves are the `[[expect.index]]` entries (`table`, `columns`, `include`,
`where`, `method`, `name`, `reason`). An `include` column is given as its bare name (`Order Total`) or
as the quoted identifier (`"Order Total"`). A table or column that does not exist is a config error, and
so is a `table` that names a view, foreign table or sequence (the error says which).

## References
- https://www.postgresql.org/docs/current/indexes-ordering.html
- https://www.postgresql.org/docs/current/sql-createindex.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.expectations import expectation_findings
from dbtune.model import Finding


@check(id="IX006", name="expected-index-missing", area="indexes", severity="error", fix=True)
def expected_index_missing(ctx: CheckContext) -> Iterator[Finding]:
    yield from expectation_findings(ctx, "index", unique=False)
