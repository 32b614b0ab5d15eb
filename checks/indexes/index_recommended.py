"""An index the index advisor recommends for the workload.

## What it does
When the audit has a workload (the top `audit.plan_queries` statements of pg_stat_statements, or the
`--workload` file it plans), it runs the index advisor on it, read-only: candidate indexes from each
query's column usage, costed by the planner with hypothetical indexes (hypopg) where it is installed, else
ranked by the selectivity of `pg_stats`; chosen across the whole workload under the advisor's default
budget (half the database's size), weighing each index's benefit (planner cost saved, weighted by calls)
against its size and the write cost it adds to its table. The top `audit.recommendations` choices are
reported, one finding each, with the queries they serve, their cost before → after, the estimated size
and the engine that costed them. No index is built and nothing is measured: `dbtune advise --validate`
proves them on a non-production server.
On a role with only `pg_monitor`, a statement on a table the role may not `SELECT` (or in a schema without
`USAGE`) cannot be explained: the server refuses EXPLAIN and the audit's skip names the grant lacked.

## Why it matters
The checks name the indexes a rule requires (a foreign key's, the checklist's); the workload's own queries
often need others, and one well-chosen index (equality columns first, then the range or sort column, a
partial index on a skewed status) can serve several of them. Every index also slows each write to its
table and costs disk, so only those that pay for themselves are recommended.

## Example
```sql
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, created_at timestamptz);
-- the workload runs, thousands of times:
SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 10;
-- recommended: CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_created_at_idx
--              ON public.orders (customer_id, created_at DESC);
```

## What to do instead
Review the recommendation (`dbtune advise` prints every query it serves and what was left out, and why),
then build it with `dbtune migrate generate` (from this audit, or `--from advice.json`), or prove it first
with `dbtune advise --validate --yes` on a staging copy, which keeps only what measurably helps.

## How the fix is applied safely
`CREATE INDEX CONCURRENTLY IF NOT EXISTS` takes a `SHARE UPDATE EXCLUSIVE` lock, so reads and writes go on
while it builds; it runs outside a transaction block. On a partitioned table the index is created `ON
ONLY` the parent, built concurrently on each partition, then attached.

## Options
None of its own. `[audit] recommendations` (default 5; 0 turns the advisor off in the audit) bounds how
many recommendations are reported; `[audit] plan_queries` is the size of the pg_stat_statements workload.
Without pg_stat_statements created in the database and without `--workload`, nothing is reported.

## References
- https://www.postgresql.org/docs/current/indexes.html
- https://www.postgresql.org/docs/current/using-explain.html
- https://www.postgresql.org/docs/current/pgstatstatements.html
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.checks.advice import AdviceContext, recommendation_evidence, recommendation_message
from dbtune.model import Finding


@check(id="IX008", name="index-recommended", area="indexes", severity="info", fix=True)
def index_recommended(ctx: AdviceContext) -> Iterator[Finding]:
    for rec in ctx.advice.recommendations[:ctx.limit]:
        yield ctx.finding(rec.candidate.qualified_table, recommendation_message(rec),
                          evidence=recommendation_evidence(rec), changes=rec.changes)
