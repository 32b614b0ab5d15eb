"""Statements that are called often and take long each time (pg_stat_statements).

## What it does
Reads `pg_stat_statements` for the audited database (top-level statements, summed over roles, dbtune's own
left out) and reports each statement with at least `min_calls` calls and a mean execution time of at least
`min_mean_ms`: PgHero's "slow queries" (100 calls and 20 ms; the survey's PLAN-21), worst first, at most
`top` of them. Needs the extension created in the database (`pg-stat-statements-missing`, ST001, reports
when it is not; this check is then skipped). A role with only `pg_monitor` reads every role's statements
(through `pg_read_all_stats`); a role without it sees other roles' texts as `<insufficient privilege>`,
which are left out. The tests cannot wait 2 s per case, so they lower `min_calls` and `min_mean_ms`.

## Why it matters
A statement that runs hundreds of times at tens of milliseconds each holds connections, CPU and locks for
minutes of every hour; it is where an index, a rewrite or a cache pays back first.

## Example
`SELECT * FROM orders WHERE customer_email = $1` called 5,000 times at 85 ms each (a sequential scan).

## What to do instead
`dbtune explain --from-pg-stat-statements` and `dbtune advise` plan these statements and propose indexes.

## How the fix is applied safely
No fix is generated here: the fix is an index (from `dbtune advise`) or a change in the application.

## Options
- `min_calls` (default 100): the fewest calls a statement must have.
- `min_mean_ms` (default 20.0): the lowest mean execution time (ms) reported.
- `top` (default 10, from 1 to 50): at most this many statements are reported.

## References
- https://www.postgresql.org/docs/current/pgstatstatements.html
- https://github.com/ankane/pghero
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.settings_health import StatementStats
from dbtune.checks import CheckContext, check
from dbtune.checks.settings import heaviest, statement_object
from dbtune.model import Finding


@check(id="QS001", name="query-high-mean-time", area="workload", severity="warning",
       options={"min_calls": 100, "min_mean_ms": 20.0, "top": 10}, option_ranges={"top": (1, 50)})
def query_high_mean_time(ctx: CheckContext) -> Iterator[Finding]:
    def mean_ms(s: StatementStats) -> float:  # statements with too few calls do not count
        return s.mean_exec_time_ms if s.calls >= ctx.options["min_calls"] else -1.0

    for s in heaviest(ctx, mean_ms, ctx.options["min_mean_ms"]):
        yield ctx.finding(
            statement_object(s),
            f"{s.calls} calls at {s.mean_exec_time_ms:.1f} ms each on average ({s.total_exec_time_ms / 1000:.1f} s "
            f"in all, pg_stat_statements queryid {s.queryid})",
            evidence={"queryid": s.queryid, "calls": s.calls, "mean_exec_time_ms": round(s.mean_exec_time_ms, 3),
                      "total_exec_time_ms": round(s.total_exec_time_ms, 3)})
