"""Many checkpoints were requested rather than timed: WAL volume reaches `max_wal_size` before `checkpoint_timeout`.

## What it does
Reads the checkpointer's counters since their own `stats_reset` (`pg_stat_checkpointer.num_timed` and
`num_requested` on PostgreSQL 17+, `pg_stat_bgwriter.checkpoints_timed` and `checkpoints_req` before)
and reports when, out of at least `min_checkpoints`, the requested share exceeds `max_ratio` (default
10 %). The window must cover `min_stats_age_hours` (24), else the check records a skip: a requested
checkpoint also comes from `CHECKPOINT`, `CREATE DATABASE`, a base backup or a restart, which a short
window over-weights. On a role with only `pg_monitor` the check runs in full (both views are readable
by every role).

## Why it matters
A checkpoint writes every dirty buffer; after it, the first change of each page writes the whole page
to WAL (`full_page_writes`). Checkpoints forced by WAL volume come closer together than
`checkpoint_timeout` intends: more writes, more WAL, I/O spikes, and the log says "checkpoints are
occurring too frequently". Spreading them (`checkpoint_completion_target`) cannot help when the next
one is already due.

## Example
Since the reset a week ago: 150 timed and 900 requested checkpoints (86 %), with `max_wal_size` 1 GB.

## What to do instead
Raise `max_wal_size` so that a `checkpoint_timeout` (5 to 15 min) of peak WAL fits in it (measure it:
`pg_stat_wal.wal_bytes` per minute on 14+, or `pg_current_wal_lsn()` twice); check the disk holding
`pg_wal` has the room. Crash recovery replays at most about `max_wal_size` of WAL, so weigh it against the
recovery time you accept.

## How the fix is applied safely
No fix is generated: the right `max_wal_size` depends on the WAL rate and the disk; it is set with
`ALTER SYSTEM` and a reload, outside migrations.

## Options
- `max_ratio` (default 0.1): the requested share above which it is reported.
- `min_checkpoints` (default 10): fewer checkpoints in the window are not judged.
- `min_stats_age_hours` (default 24): the window needed to judge. A test server is minutes old, so the
  tests set it to 0.

## References
- https://www.postgresql.org/docs/current/wal-configuration.html
- https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-CHECKPOINTER-VIEW
- https://www.postgresql.org/docs/16/monitoring-stats.html#MONITORING-PG-STAT-BGWRITER-VIEW
- https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-MAX-WAL-SIZE
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


@check(id="MT014", name="checkpoints-requested-often", area="maintenance", severity="warning",
       options={"max_ratio": 0.1, "min_checkpoints": 10, "min_stats_age_hours": 24.0})
def checkpoints_requested_often(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    counters = snap.maintenance.checkpoints
    if counters is None:
        ctx.skip("the checkpoint counters could not be read (see the audit's skips)", "pg_monitor")
        return
    since = counters.stats_reset or snap.server.postmaster_start
    hours = (snap.server.now - since).total_seconds() / 3600
    if hours < ctx.options["min_stats_age_hours"]:
        ctx.skip(f"the checkpoint counters cover {hours:.1f} h; min_stats_age_hours is "
                 f"{ctx.options['min_stats_age_hours']}")
        return
    total = counters.timed + counters.requested
    if total < ctx.options["min_checkpoints"] or total == 0:
        return
    ratio = counters.requested / total
    if ratio > ctx.options["max_ratio"]:
        max_wal_size = snap.setting("max_wal_size")
        timeout = snap.setting("checkpoint_timeout")
        yield ctx.finding(
            quote_ident(snap.server.database),
            f"{counters.requested:,} of {total:,} checkpoints ({ratio:.0%}) were requested rather than started by "
            f"checkpoint_timeout ({timeout} s) in {hours:.1f} h; max_wal_size is {max_wal_size} MB",
            evidence={"checkpoints_timed": counters.timed, "checkpoints_requested": counters.requested,
                      "requested_ratio": round(ratio, 4), "window_hours": round(hours, 2),
                      "max_wal_size_mb": max_wal_size, "checkpoint_timeout_s": timeout})
