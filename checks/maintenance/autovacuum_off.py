"""Autovacuum is switched off for the whole server (`autovacuum = off` or `track_counts = off`).

## What it does
Reads the server-level `autovacuum` and `track_counts` settings (the running value, unless a role or
database setting overrides `track_counts` for this session, and `pg_file_settings` where readable, so a
change written by `ALTER SYSTEM` but not yet reloaded counts) and reports an error when either is off:
autovacuum's launcher needs `track_counts` to find work. On a role with only `pg_monitor` (which includes
`pg_read_all_settings`) the check runs in full.

## Why it matters
Without autovacuum no table is vacuumed or analyzed unless a job does it: dead tuples pile up, plans go
stale, and freezing waits for the anti-wraparound vacuums PostgreSQL still forces at
`autovacuum_freeze_max_age`, which then run on every large table at once.

## Example
`autovacuum = off` in postgresql.conf, left from a data load.

## What to do instead
Switch it back on; if autovacuum disturbed the workload, tune it instead (`autovacuum_vacuum_cost_limit`,
`autovacuum_max_workers`, per-table thresholds).

## How the fix is applied safely
The fix, `ALTER SYSTEM SET autovacuum = on` then `SELECT pg_reload_conf()`, is shown and not migrated: it
changes the server, not the schema, and takes effect on reload without a restart.

## Options
None.

## References
- https://www.postgresql.org/docs/current/runtime-config-autovacuum.html#GUC-AUTOVACUUM
- https://www.postgresql.org/docs/current/runtime-config-statistics.html#GUC-TRACK-COUNTS
- https://www.postgresql.org/docs/current/sql-altersystem.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.model import Snapshot
from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import pretty
from dbtune.model import Change, ChangeKind, Finding
from dbtune.sqlnames import quote_ident

# Sources of a value that applies to sessions, not to the server's own processes (autovacuum's launcher).
_SESSION_SOURCES = frozenset({"database", "user", "database user", "session", "client"})


def _server_off(snap: Snapshot, name: str) -> bool:
    """Whether ``name`` is off for the server: its running value (unless a role or database setting of
    this session overrides it, then the server-level value), or its value in the configuration files."""
    s = snap.settings.get(name)
    values = {s.setting if s is not None and s.source not in _SESSION_SOURCES else snap.server_level(name)}
    if snap.file_settings is not None and name in snap.file_settings:
        values.add(snap.file_settings[name])
    return any((v or "on").strip("'").lower() in ("off", "false", "0", "no") for v in values)


@check(id="MT008", name="autovacuum-off", area="maintenance", severity="error", fix=True)
def autovacuum_off(ctx: CheckContext) -> Iterator[Finding]:
    snap = ctx.snapshot
    off = [name for name in ("autovacuum", "track_counts") if _server_off(snap, name)]
    if off:
        yield ctx.finding(
            quote_ident(snap.server.database),
            f"{' and '.join(f'{name} = off' for name in off)} on the server: autovacuum vacuums and analyzes "
            f"nothing until it is switched back on",
            evidence={"off": off,
                      "source": {name: snap.settings[name].source for name in off if name in snap.settings}},
            changes=[Change(up=pretty(f"ALTER SYSTEM SET {name} = on"), down=pretty(f"ALTER SYSTEM RESET {name}"),
                            transactional=False, kind=ChangeKind.SERVER) for name in off]
            + [Change(up=pretty("SELECT pg_catalog.pg_reload_conf()"), transactional=False, kind=ChangeKind.SERVER)])
