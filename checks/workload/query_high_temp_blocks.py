"""Statements that write the most temporary blocks (pg_stat_statements).

## What it does
Reads `pg_stat_statements` for the audited database (top-level statements, summed over roles, dbtune's own
left out) and reports the statements that wrote the most `temp_blks_written` (8 kB pages of temporary
files: sorts, hashes and materialisations that did not fit in `work_mem`), at least `min_temp_blks_written`
of them (default 131072, 1 GB), the most first, at most `top`. Needs the extension created in the database
(ST001 reports when it is not; this check is then skipped). A role with only `pg_monitor` reads every
role's statements; without `pg_read_all_stats` other roles' statements are left out. The tests lower
`min_temp_blks_written` to what one small sort writes.

## Why it matters
Every temporary file is written and read back through the disk: a sort that spills is several times
slower than one in memory, and many of them at once can fill the disk (see `temp-file-limit-unset`).

## Example
`SELECT … ORDER BY created_at` over a million rows with `work_mem = 4MB`.

## What to do instead
Plan the statement (`dbtune explain`, the plan checks report the spilling node); give it more memory for
its transaction (`SET LOCAL work_mem`) or its role, or an index that returns rows already in order.

## How the fix is applied safely
No fix is generated here: the fix is a per-role or per-transaction `work_mem`, or an index.

## Options
- `min_temp_blks_written` (default 131072): the fewest 8 kB temporary pages written.
- `top` (default 10, from 1 to 50): at most this many statements are reported.

## References
- https://www.postgresql.org/docs/current/pgstatstatements.html
- https://www.postgresql.org/docs/current/runtime-config-resource.html#GUC-WORK-MEM
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import heaviest, statement_object
from dbtune.model import Finding
from dbtune.units import size_pretty


@check(id="QS003", name="query-high-temp-blocks", area="workload", severity="warning",
       options={"min_temp_blks_written": 131072, "top": 10}, option_ranges={"top": (1, 50)})
def query_high_temp_blocks(ctx: CheckContext) -> Iterator[Finding]:
    for s in heaviest(ctx, lambda s: s.temp_blks_written, ctx.options["min_temp_blks_written"]):
        yield ctx.finding(
            statement_object(s),
            f"wrote {s.temp_blks_written} temporary blocks ({size_pretty(s.temp_blks_written * 8192)}) in "
            f"{s.calls} calls: it sorts or hashes more than work_mem holds "
            f"(pg_stat_statements queryid {s.queryid})",
            evidence={"queryid": s.queryid, "calls": s.calls, "temp_blks_written": s.temp_blks_written})
