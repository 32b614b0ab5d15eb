"""A sequence, or the integer column it feeds, is near the largest value it can hold.

## What it does
For every sequence that does not `CYCLE`, reads its last value (`pg_sequence_last_value()`, one query for
all of them) and judges it against the tighter of the sequence's own bound and the type of the column it
feeds (a `serial` column through `OWNED BY`, an identity column through its dependency): an `integer`
column fed by a `bigint` sequence overflows at 2 147 483 647, whatever the sequence allows. A warning from
`warning_ratio` (default 50 %) of that limit, an error from `error_ratio` (default 80 %). A single-column
foreign key whose column is narrower than the sequence-fed key it references is judged the same way
against the referenced sequence's value (an `integer` `orders.customer_id` referencing a `bigint`
identity `customers.id`). A role with only `pg_monitor` cannot read a sequence's value without `USAGE` or
`SELECT` on it: such sequences are skipped, and the skip names the privilege.

## Why it matters
When the value passes the column's type, every insert fails with `integer out of range` (or `nextval:
reached maximum value of sequence`): the table takes no new rows until its key is widened, and widening
an `integer` key to `bigint` rewrites the table and its indexes under `ACCESS EXCLUSIVE`, which on a large
table takes hours. At 50 % there is time to plan it; at 80 % it is urgent.

## Example
```sql
CREATE TABLE events (id serial PRIMARY KEY, ...);   -- integer, and its sequence at 1.6 billion (75 %)
```

## What to do instead
Widen the column to `bigint` while there is time, without a long lock: add a `bigint` column, backfill
it in batches, keep it in step with a trigger, build its unique index `CONCURRENTLY`, then swap the
columns and the primary key in one short transaction (and the foreign keys that reference it). Until
then, a sequence that started at 1 can buy time with negative values only if the application accepts
them.

## How the fix is applied safely
No fix is generated: changing a key's type is a multi-step migration to be planned by a person.

## Options
- `warning_ratio` (default 0.5), `error_ratio` (default 0.8): shares of the limit.

## References
- https://www.postgresql.org/docs/current/functions-sequence.html
- https://www.postgresql.org/docs/current/catalog-pg-sequence.html
- https://www.postgresql.org/docs/current/datatype-numeric.html#DATATYPE-INT
"""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.maintenance import SequenceUse
from dbtune.catalog.model import Column, Relation
from dbtune.checks import CheckContext, check
from dbtune.model import Finding, Severity
from dbtune.sqlnames import qualified, quote_ident

# The range of each integer type (https://www.postgresql.org/docs/current/datatype-numeric.html).
_RANGE = {"smallint": (-(2**15), 2**15 - 1), "integer": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}


def _limit(seq: SequenceUse, column_type: str | None) -> tuple[int, str]:
    """The value the sequence's next values cannot pass, and what sets it (``"column"``/``"sequence"``)."""
    if column_type not in _RANGE:
        return (seq.max_value, "sequence") if seq.increment > 0 else (seq.min_value, "sequence")
    low, high = _RANGE[column_type]
    if seq.increment > 0:
        return (high, "column") if high <= seq.max_value else (seq.max_value, "sequence")
    return (low, "column") if low >= seq.min_value else (seq.min_value, "sequence")


@check(id="MT012", name="sequence-near-overflow", area="maintenance", severity="warning",
       options={"warning_ratio": 0.5, "error_ratio": 0.8})
def sequence_near_overflow(ctx: CheckContext) -> Iterator[Finding]:
    maintenance = ctx.snapshot.maintenance
    if "sequences" not in maintenance.readable:
        ctx.skip("the sequences could not be read (see the audit's skips)", "SELECT on the sequences")
        return
    tables = {r.oid: r for r in ctx.user_relations()}
    unreadable = [qualified(s.schema, s.name) for s in maintenance.sequences if not s.readable]
    if unreadable:
        ctx.skip(f"{len(unreadable)} sequence(s) not readable by this role, such as {unreadable[0]}",
                 "SELECT on the sequences")
    fed: dict[tuple[int, int], SequenceUse] = {}
    for seq in maintenance.sequences:
        if seq.cycle or seq.last_value is None:
            continue
        table = tables.get(seq.table_oid) if seq.table_oid is not None else None
        column = table.column(seq.attnum) if table is not None and seq.attnum is not None else None
        if seq.table_oid is not None and column is None:
            continue  # feeds a table outside the audited schemas
        if table is not None and column is not None and seq.attnum is not None:
            fed[(table.oid, seq.attnum)] = seq
        finding = _judge(ctx, seq, seq.column_type if column else None, table, column, None)
        if finding is not None:
            yield finding
    for con in ctx.snapshot.constraints:
        if con.type != "f" or len(con.columns) != 1 or con.ref_table_oid is None or con.parent_oid is not None:
            continue
        seq = fed.get((con.ref_table_oid, con.ref_columns[0]))
        table = tables.get(con.table_oid)
        column = table.column(con.columns[0]) if table is not None else None
        if seq is None or table is None or column is None or column.type not in _RANGE:
            continue
        if _limit(seq, column.type)[0] == _limit(seq, seq.column_type)[0]:
            continue  # as wide as the key it references: the key's own finding covers it
        finding = _judge(ctx, seq, column.type, table, column, con.name)
        if finding is not None:
            yield finding


def _judge(ctx: CheckContext, seq: SequenceUse, column_type: str | None, table: Relation | None,
           column: Column | None, foreign_key: str | None) -> Finding | None:
    assert seq.last_value is not None
    limit, bound = _limit(seq, column_type)
    ratio = seq.last_value / limit if limit else 0.0
    if ratio >= ctx.options["error_ratio"]:
        severity = Severity.ERROR
    elif ratio >= ctx.options["warning_ratio"]:
        severity = Severity.WARNING
    else:
        return None
    sequence = qualified(seq.schema, seq.name)
    if table is not None and column is not None:
        obj = f"{table.qualified_name}.{quote_ident(column.name)}"
        what = (f"{column_type} column {obj}, a foreign key ({quote_ident(foreign_key)}) to a key fed by "
                f"sequence {sequence}" if foreign_key else f"{column_type} column {obj}, fed by sequence {sequence}")
    else:
        obj, what = sequence, f"sequence {sequence}"
    return ctx.finding(
        obj, f"{what}, is at {seq.last_value:,}: {ratio:.1%} of the {bound}'s limit {limit:,}",
        evidence={"sequence": sequence, "last_value": seq.last_value, "limit": limit, "limit_from": bound,
                  "used_ratio": round(ratio, 4), "column_type": column_type, "sequence_type": seq.seq_type,
                  "foreign_key": foreign_key},
        severity=severity)
