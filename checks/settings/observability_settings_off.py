"""Settings that record what a DBA needs to diagnose a slow server are off.

## What it does
Reports, in one finding, the diagnostic settings that are off for the audit's sessions (the survey's
SET-33). They are `track_io_timing` (I/O time per query in pg_stat_statements and `EXPLAIN (ANALYZE,
BUFFERS)`), `log_lock_waits` (a log line for each lock wait longer than `deadlock_timeout`),
`log_temp_files` (-1: temporary files are not logged) and `log_autovacuum_min_duration` (-1: autovacuum
runs are not logged; 10 min by default from PostgreSQL 15). Information. Reads `pg_settings`, which any
role (`pg_monitor` included) can read. It runs in full on a role with only `pg_monitor`.

## Why it matters
Without them the questions after an incident ("was it I/O? who waited on whom? which query spilled to
disk? did autovacuum keep up?") have no answer. Their cost is small: `pg_test_timing` shows whether the
clock is cheap enough for `track_io_timing`.

## Example
`track_io_timing = off` and `log_temp_files = -1` (the defaults).

## What to do instead
Turn on `track_io_timing` and `log_lock_waits`, set `log_temp_files = 0` (or a size) and
`log_autovacuum_min_duration` to a duration such as `10min`.

## How the fix is applied safely
One `ALTER SYSTEM SET` per setting is shown, never applied by `dbtune migrate`; a reload applies them.

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-statistics.html#GUC-TRACK-IO-TIMING
- https://www.postgresql.org/docs/current/runtime-config-logging.html#GUC-LOG-LOCK-WAITS
- https://www.postgresql.org/docs/current/runtime-config-logging.html#GUC-LOG-TEMP-FILES
- https://www.postgresql.org/docs/current/runtime-config-logging.html#GUC-LOG-AUTOVACUUM-MIN-DURATION
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, switched_off
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident

# setting → (the value that means off, the value the fix sets)
_LOGGED = {"log_temp_files": ("-1", "0"), "log_autovacuum_min_duration": ("-1", "10min")}


@check(id="ST015", name="observability-settings-off", area="settings", severity="info", fix=True)
def observability_settings_off(ctx: CheckContext) -> Iterator[Finding]:
    off = {name: "on" for name in ("track_io_timing", "log_lock_waits") if switched_off(ctx, name)}
    off |= {name: fix for name, (unset, fix) in _LOGGED.items() if ctx.snapshot.setting(name) == unset}
    if off:
        yield ctx.finding(
            quote_ident(ctx.snapshot.server.database),
            f"{', '.join(off)} {'is' if len(off) == 1 else 'are'} off: slow I/O, lock waits, temporary files "
            "and autovacuum runs leave no trace to diagnose from",
            evidence={"off": sorted(off)}, changes=[alter_system(ctx, name, value) for name, value in off.items()])
