"""Statement logging so verbose that the log costs more than it tells.

## What it does
Reports `log_statement = 'all'` (a warning) or `'mod'` (information), and `log_min_duration_statement`
from 0 up to below `min_duration_ms` (default 1000 ms: postgresqltuner's rule, the survey's SET-24), for
the audit's sessions (the server's configuration or an `ALTER DATABASE … SET`). -1 (off) is not reported.
Reads `pg_settings`, which any role (`pg_monitor` included) can read.
It runs in full on a role with only `pg_monitor`.

## Why it matters
Every logged statement is formatted and written by the backend that ran it: on a busy server that is a
measurable share of the CPU and of the disk's bandwidth, the log outgrows its disk, and the one slow
statement that matters drowns among thousands of fast ones. Logged statements also carry their
parameters, which may be personal data.

## Example
`log_statement = 'all'` and `log_min_duration_statement = 0`, left from a debugging session.

## What to do instead
Log DDL only (`log_statement = 'ddl'`), slow statements from about a second
(`log_min_duration_statement = '1s'`), and read the rest from pg_stat_statements, or use
`log_min_duration_sample` with `log_statement_sample_rate` for a sample.

## How the fix is applied safely
`ALTER SYSTEM SET …` (or `ALTER DATABASE … SET` where the database sets it) is shown, never applied by
`dbtune migrate`; a reload applies it.

## Options
- `min_duration_ms` (default 1000): the shortest `log_min_duration_statement` (ms) left alone.

## References
- https://www.postgresql.org/docs/current/runtime-config-logging.html#GUC-LOG-STATEMENT
- https://www.postgresql.org/docs/current/runtime-config-logging.html#GUC-LOG-MIN-DURATION-STATEMENT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, setting_number
from dbtune.model import Finding, Severity


@check(id="ST021", name="statement-logging-verbose", area="settings", severity="warning", fix=True,
       options={"min_duration_ms": 1000})
def statement_logging_verbose(ctx: CheckContext) -> Iterator[Finding]:
    log_statement = ctx.snapshot.setting("log_statement")
    if log_statement in ("all", "mod"):
        yield ctx.finding(
            "log_statement",
            f"log_statement is '{log_statement}': every {'statement' if log_statement == 'all' else 'write'} "
            "is written to the server log, with its parameters",
            evidence={"log_statement": log_statement}, changes=(alter_system(ctx, "log_statement", "ddl"),),
            severity=None if log_statement == "all" else Severity.INFO)
    duration = setting_number(ctx, "log_min_duration_statement")
    if duration is not None and 0 <= duration < ctx.options["min_duration_ms"]:
        yield ctx.finding(
            "log_min_duration_statement",
            f"log_min_duration_statement is {duration:.0f} ms, below {ctx.options['min_duration_ms']} ms: "
            "the log fills with fast statements and the slow ones drown",
            evidence={"log_min_duration_statement_ms": int(duration)},
            changes=(alter_system(ctx, "log_min_duration_statement", "1s"),))
