"""A statement that PostgreSQL's parser rejects, so the migration will fail when it gets there.

## What it does
Parses every statement with pglast (PostgreSQL's own parser) and reports each one that does not parse,
with the parser's message and the line it points at. The other statements are still linted: the file
is split again on the `;` tokens of PostgreSQL's scanner so one bad statement does not hide the rest.
An Alembic revision that is not valid Python is reported the same way. The invalid `UNIQUE (…) WHERE …`
constraint is reported by `partial-unique-constraint` instead.

psql meta-commands (lines starting with `\\`) are not SQL and are skipped. The parser is the one of the
PostgreSQL version pglast embeds; syntax newer than that version is reported as an error too.

squawk would report such a statement as `syntax-error` and then report nothing else in the file, so
dbtune hands squawk the file with the statements that do not parse blanked out (lines unchanged): this
rule reports the statement, and both linters judge the rest.

## Why it matters
The server stops the migration at that statement. What ran before it in autocommit stays done, so a
half-applied migration has to be finished or undone by hand.

## Example
```sql
ALTER TABLE orders ADD COLUMN note text DEFALT '';
```

## What to do instead
Fix the statement; run the migration against a scratch copy of the schema before production.

## How the fix is applied safely
No fix is generated.

## Options
None.

## References
- https://www.postgresql.org/docs/current/sql-commands.html
- https://www.postgresql.org/docs/current/app-psql.html
- https://squawkhq.com/docs/syntax-error
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.migrate.ddl import partial_unique_constraint
from dbtune.migrate.lint import LintContext
from dbtune.model import Finding


@check(id="MG009", name="statement-syntax-error", area="migrations", severity="error")
def statement_syntax_error(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.statements:
        if stmt.node is not None or partial_unique_constraint(stmt.sql) is not None:
            continue
        what = "the file is not valid Python" if stmt.origin == "python" else "the statement does not parse"
        yield ctx.finding(stmt, f"{what}: {stmt.error}", line=stmt.error_line or stmt.line,
                          evidence={"parser_error": stmt.error})
