"""`checkpoint_completion_target` too low to spread checkpoint writes out.

## What it does
Reports `checkpoint_completion_target` below `min_target` (default 0.7: postgresqltuner warns below 0.7,
pgtune sets 0.9, the default since PostgreSQL 14; the survey's SET-12). It needs no machine facts. Reads
`pg_settings`, which any role (`pg_monitor` included) can read. The tests cannot give their server another
value without disturbing the other tests, so they judge its 0.9 against a higher `min_target`.
It runs in full on a role with only `pg_monitor`.

## Why it matters
A checkpoint writes every dirty buffer; spread over 90 % of the interval those writes are smooth, while a
low target crowds them into a burst that stalls queries waiting for I/O.

## Example
`checkpoint_completion_target = 0.5` (PostgreSQL 13's default) in postgresql.conf.

## What to do instead
Set it to 0.9.

## How the fix is applied safely
`ALTER SYSTEM SET checkpoint_completion_target = '0.9'` is shown, never applied by `dbtune migrate`; a
reload (`SELECT pg_reload_conf()`) applies it.

## Options
- `min_target` (default 0.7, from 0 to 1): the lowest value left alone.

## References
- https://www.postgresql.org/docs/current/runtime-config-wal.html#GUC-CHECKPOINT-COMPLETION-TARGET
- https://www.postgresql.org/docs/current/wal-configuration.html
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import CheckContext, check
from dbtune.checks.settings import alter_system, setting_number
from dbtune.model import Finding


@check(id="ST009", name="checkpoint-completion-target-low", area="settings", severity="warning", fix=True,
       options={"min_target": 0.7}, option_ranges={"min_target": (0.0, 1.0)})
def checkpoint_completion_target_low(ctx: CheckContext) -> Iterator[Finding]:
    value = setting_number(ctx, "checkpoint_completion_target")
    if value is not None and value < ctx.options["min_target"]:
        yield ctx.finding(
            "checkpoint_completion_target",
            f"checkpoint_completion_target is {value:g}, below {ctx.options['min_target']:g}: checkpoint writes "
            "come in bursts instead of being spread over the interval (pgtune sets 0.9)",
            evidence={"checkpoint_completion_target": value, "min_target": ctx.options["min_target"]},
            changes=(alter_system(ctx, "checkpoint_completion_target", "0.9"),))
