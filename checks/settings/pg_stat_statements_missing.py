"""pg_stat_statements is not loaded, not created in this database, or not readable.

## What it does
Checks that `pg_stat_statements` is in `shared_preload_libraries`, that `CREATE EXTENSION
pg_stat_statements` was run in the audited database, and that the audit's role can read it. On a role with
only `pg_monitor` it runs in full (`pg_read_all_settings` shows `shared_preload_libraries`,
`pg_read_all_stats` every role's statements); a view the role still cannot read (its schema not granted
`USAGE`) is no finding but a skip naming the grant it lacks.

## Why it matters
Without it there is no record of which queries take the server's time, so slow queries, missing indexes
and plan regressions can only be guessed at. dbtune's workload features (`explain
--from-pg-stat-statements`, plan findings in `audit`, `advise`) read it.

## Example
`shared_preload_libraries = ''` in postgresql.conf.

## What to do instead
Add it to `shared_preload_libraries` (a restart is needed), then create the extension in each database to
be tuned, and grant `pg_read_all_stats` to the role that reads it.

## How the fix is applied safely
`ALTER SYSTEM SET shared_preload_libraries` only takes effect at the next restart, which you schedule;
`CREATE EXTENSION` takes no lock on application tables. The overhead is a few percent at most.

## Options
None.

## References
- https://www.postgresql.org/docs/current/pgstatstatements.html
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-SHARED-PRELOAD-LIBRARIES
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.migrate.changes import pretty
from dbtune.model import Change, ChangeKind, Finding
from dbtune.sqlnames import quote_ident, quote_literal


@check(id="ST001", name="pg-stat-statements-missing", area="settings", severity="warning", fix=True)
def pg_stat_statements_missing(ctx: CheckContext) -> Iterator[Finding]:
    pgss = ctx.snapshot.pg_stat_statements
    server = ctx.snapshot.server
    create = Change(up=pretty("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"),
                    down=pretty("DROP EXTENSION IF EXISTS pg_stat_statements"), kind=ChangeKind.SERVER)
    # Only superusers and members of pg_read_all_settings see shared_preload_libraries; the view can be
    # read only when the library is loaded, so a readable view settles the question too.
    hidden = ctx.snapshot.setting("shared_preload_libraries") is None
    loaded = pgss.preloaded or pgss.readable
    if hidden and not loaded:
        ctx.skip(f"shared_preload_libraries is hidden from role {server.current_user}, so whether "
                 "pg_stat_statements is loaded is unknown", "pg_read_all_settings")
    if not loaded and not hidden:
        current = ctx.snapshot.setting("shared_preload_libraries") or ""
        libs = ", ".join([s.strip() for s in current.split(",") if s.strip()] + ["pg_stat_statements"])
        preload = Change(up=pretty(f"ALTER SYSTEM SET shared_preload_libraries = {quote_literal(libs)}"),
                         down=pretty("ALTER SYSTEM RESET shared_preload_libraries"), transactional=False,
                         kind=ChangeKind.SERVER)
        yield ctx.finding(
            quote_ident(server.database),
            "pg_stat_statements is not in shared_preload_libraries: the server records no query "
            "statistics (add it and restart the server)",
            evidence={"shared_preload_libraries": current, "extension_created": pgss.installed},
            changes=(preload,) + (() if pgss.installed else (create,)),
        )
    elif not pgss.installed:
        yield ctx.finding(
            quote_ident(server.database),
            (f"pg_stat_statements is loaded but the extension is not created in database {server.database}"
             if loaded else f"the pg_stat_statements extension is not created in database {server.database}"),
            evidence={"shared_preload_libraries": ctx.snapshot.setting("shared_preload_libraries")},
            changes=(create,),
        )
    elif not pgss.readable:  # created, but this role may not read it: nothing to report, say why
        ctx.skip(f"pg_stat_statements cannot be read by role {server.current_user}: {pgss.error}",
                 pgss.privilege or "pg_read_all_stats")
