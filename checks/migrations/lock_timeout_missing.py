"""A statement that takes a strong lock on an existing table with no `lock_timeout` set before it.

## What it does
Finds statements that lock a table the same file did not create more strongly than `SHARE UPDATE
EXCLUSIVE` — `ALTER TABLE` (all but a few subcommands such as `VALIDATE CONSTRAINT` and `SET
STATISTICS`), `CREATE INDEX` and `DROP INDEX` without `CONCURRENTLY`, `DROP TABLE`, renames,
`REINDEX`, `TRUNCATE`, `CLUSTER`, `VACUUM FULL`, `LOCK TABLE`, `CREATE TRIGGER`, `CREATE TABLE …
PARTITION OF`, `REFRESH MATERIALIZED VIEW` — when no `SET lock_timeout` earlier in the file is in
effect. `SET lock_timeout` counts for the rest of the session, `SET LOCAL lock_timeout` only inside the
transaction block it was run in (Alembic's migration transaction, or `BEGIN … COMMIT`), and
`set_config('lock_timeout', …, is_local)` counts as the matching `SET`. `RESET`, `SET … TO DEFAULT` and
a zero value mean no timeout.

One finding per run of such statements (the fix, one `SET` before the first, protects them all), at the
first statement, naming its strongest lock and listing the lines of the others. squawk's
`require-lock-timeout` reports the same statements; when both do, dbtune's finding carries squawk's.

## Why it matters
A lock request waits for every conflicting lock held by running transactions, and every later request
that conflicts with it waits behind it. An `ALTER TABLE` that waits for one long-running `SELECT` thus
stops all traffic on the table — reads included — for as long as that `SELECT` runs, although the
`ALTER TABLE` itself would take milliseconds. `lock_timeout` makes the migration give up instead (and be
retried later), so the queue never builds up.

## Example
```sql
ALTER TABLE orders ADD COLUMN note text;
```

## What to do instead
```sql
SET lock_timeout = '5s';
ALTER TABLE orders ADD COLUMN note text;
```
Retry the migration when it times out. In Alembic, `op.execute("SET LOCAL lock_timeout = '5s'")` at the
top of `upgrade()` covers the migration transaction. If your runner already sets the timeout (in
Alembic's `env.py`, with `PGOPTIONS='-c lock_timeout=5s'`, or on the role), this rule cannot see it:
lower its severity or pass `--ignore lock-timeout-missing`.

## How the fix is applied safely
The fix shown is a `SET lock_timeout` with the option `suggested_timeout`, to put before the statement
(`SET LOCAL` inside a transaction block). It bounds only the wait for the lock, not how long the
statement then runs (that is `statement_timeout`); a statement that times out changes nothing and can be
retried.

## Options
- `suggested_timeout` (default `"5s"`): the value the fix suggests.

## References
- https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-LOCK-TIMEOUT
- https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES
- https://www.postgresql.org/docs/current/sql-set.html
- https://squawkhq.com/docs/require-lock-timeout
- https://squawkhq.com/docs/require-timeout-settings
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.migrate.ddl import LOCK_RANK, SUE, TableLock, describe, table_locks
from dbtune.migrate.lint import LintContext
from dbtune.migrate.statements import Statement
from dbtune.model import Change, ChangeKind, Finding
from dbtune.sqlnames import quote_literal


def _strongest(ctx: LintContext, stmt: Statement) -> TableLock | None:
    locks = [lk for lk in table_locks(stmt.node)
             if lk.rank > LOCK_RANK[SUE] and not ctx.is_new_table(stmt, lk.table)]
    return max(locks, key=lambda lk: lk.rank) if locks else None


@check(id="MG007", name="lock-timeout-missing", area="migrations", severity="warning", fix=True,
       options={"suggested_timeout": "5s"})
def lock_timeout_missing(ctx: LintContext) -> Iterator[Finding]:
    timeout = str(ctx.options.get("suggested_timeout", "5s"))
    # One finding per run of unprotected statements (a run ends where a lock_timeout is in effect): one
    # SET before the first statement of the run protects them all.
    runs: list[list[tuple[Statement, TableLock]]] = []
    protected = True
    for stmt in ctx.parsed():
        if stmt.lock_timeout:
            protected = True
            continue
        lock = _strongest(ctx, stmt)
        if lock is None:
            continue
        if protected:
            runs.append([])
            protected = False
        runs[-1].append((stmt, lock))
    for run in runs:
        stmt, lock = run[0]
        later = [s.line for s, _ in run[1:]]
        local = "LOCAL " if stmt.in_transaction and stmt.transaction_id else ""
        where = ("op.execute(\"SET LOCAL lock_timeout = …\") at the top of upgrade()" if stmt.is_alembic
                 else f"SET {local}lock_timeout before it")
        more = (f" (and so {'does 1 later statement' if len(later) == 1 else f'do {len(later)} later statements'}"
                f", line{'s' if len(later) > 1 else ''} {', '.join(map(str, later))})" if later else "")
        yield ctx.finding(
            stmt, f"{lock.what} takes {lock.lock} on {lock.describe()} with no lock_timeout set{more}: while it "
                  f"waits for running queries, every new query on the table queues behind it; add {where}",
            evidence={"table": describe(lock.table), "lock": lock.lock, "later_lines": later},
            changes=[Change(up=f"SET {local}lock_timeout = {quote_literal(timeout)};", kind=ChangeKind.OTHER)])
