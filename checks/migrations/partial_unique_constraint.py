"""A `UNIQUE (…) WHERE …` table constraint, which PostgreSQL does not have: the statement is a syntax error.

## What it does
Recognises `ALTER TABLE … ADD [CONSTRAINT name] UNIQUE (…) WHERE …` (and the same constraint inside
`CREATE TABLE`) among the statements that do not parse, and says what was meant: a partial unique
index. In Alembic revisions it also catches `op.create_unique_constraint(…, postgresql_where=…)`, which
SQLAlchemy refuses. It is reported instead of a plain `statement-syntax-error`.

squawk would report the statement as a `syntax-error` and then report nothing else in the file, so
dbtune hands squawk the file with the statements that do not parse blanked out (lines unchanged): this
rule reports the statement, and both linters judge the rest.

## Why it matters
The statement fails (`ERROR: syntax error at or near "WHERE"`) and the migration stops. A table
constraint has no predicate: "unique among the rows where …" is expressed only by a partial unique
index. The syntax is an easy mistake, because `CREATE UNIQUE INDEX … WHERE` exists and because
checklists describe such rules as "unique constraints".

## Example
```sql
-- as the tuning guide suggests it:
ALTER TABLE vendor_routing_responses
    ADD CONSTRAINT unique_routing_acceptance UNIQUE (routing_id) WHERE response = 'ACCEPTED';
```

## What to do instead
```sql
CREATE UNIQUE INDEX CONCURRENTLY unique_routing_acceptance
    ON vendor_routing_responses (routing_id) WHERE response = 'ACCEPTED';
```
The index enforces the rule exactly as a constraint would. `INSERT … ON CONFLICT` uses it when the
conflict target repeats the predicate: `ON CONFLICT (routing_id) WHERE response = 'ACCEPTED' DO NOTHING`. It cannot
become a constraint (`ADD CONSTRAINT … USING INDEX` refuses partial indexes) and does not appear in
`pg_constraint`; an `EXCLUDE USING btree (routing_id WITH =) WHERE (response = 'ACCEPTED')` constraint is the only
constraint form, but it cannot be added `NOT VALID`, cannot be built concurrently, and does not serve
`ON CONFLICT … DO UPDATE`.

In Alembic: `op.create_index(name, table, [columns], unique=True, postgresql_where=sa.text("…"),
postgresql_concurrently=True)` inside `with op.get_context().autocommit_block():`.

## How the fix is applied safely
The fix shown is the partial unique index, `CONCURRENTLY` on a table that already exists (outside a
transaction block; a `SHARE UPDATE EXCLUSIVE` lock, reads and writes go on) and a plain build on a table
created in the same file, without `IF NOT EXISTS` (after a failed concurrent build it would skip the
INVALID index left behind). If duplicates exist among the rows the predicate selects, the concurrent build
fails and leaves an INVALID index: remove the duplicates, `DROP INDEX CONCURRENTLY` it, build again.

## Options
None.

## References
- https://www.postgresql.org/docs/current/indexes-partial.html
- https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY
- https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT-USING-INDEX
- https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT
- https://squawkhq.com/docs/syntax-error
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks import check
from dbtune.migrate.ddl import partial_unique_constraint
from dbtune.migrate.lint import LintContext
from dbtune.model import Change, ChangeKind, Finding, Lock


@check(id="MG006", name="partial-unique-constraint", area="migrations", severity="error", fix=True)
def partial_unique(ctx: LintContext) -> Iterator[Finding]:
    for stmt in ctx.statements:
        if stmt.node is not None:
            continue
        found = partial_unique_constraint(stmt.sql)
        if found is None:
            continue
        new = found.new_table
        concurrently = not new
        index_sql = found.index_sql(concurrently)
        where = ("op.create_unique_constraint() does not accept postgresql_where (SQLAlchemy raises "
                 "ArgumentError)" if stmt.origin == "op.create_unique_constraint" else
                 "PostgreSQL has no partial UNIQUE constraint, so UNIQUE (…) WHERE … is a syntax error")
        if stmt.is_alembic:
            how = "a partial unique index: op.create_index(…, unique=True, postgresql_where=…" + (
                ", postgresql_concurrently=True) in an autocommit_block" if concurrently else ")")
        elif new:
            how = "a partial unique index: take it out of CREATE TABLE and run " + " ".join(index_sql.split())
        else:
            how = "a partial unique index: " + " ".join(index_sql.split())
        yield ctx.finding(
            stmt, f"{where}; the rule \"unique ({found.columns}) where {found.predicate}\" on {found.table} is "
                  f"{how}",
            line=stmt.line, evidence={"table": found.table, "columns": found.columns,
                                      "predicate": found.predicate, "parser_error": stmt.error},
            changes=[Change(up=index_sql, transactional=not concurrently,
                            lock=Lock.SHARE_UPDATE_EXCLUSIVE if concurrently else Lock.SHARE,
                            kind=ChangeKind.CREATE_INDEX, table=found.table, index=found.name)])
