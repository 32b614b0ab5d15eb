"""What the index checks share: the user tables' valid, stand-alone indexes with their table, the table
column behind each key column, and when one index serves every lookup another serves."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from dbtune.catalog.index_health import ColumnStats
from dbtune.catalog.model import Column, Index, Relation
from dbtune.checks.expectations import team_index_names
from dbtune.checks.runner import CheckContext


def indexed_tables(ctx: CheckContext, *, methods: frozenset[str] | None = frozenset({"btree"})
                   ) -> Iterator[tuple[Relation, Index]]:
    """Each valid index of access method in ``methods`` (``None``: any) on a user table (outside
    ``database.exclude_schemas``) with its table, by index name. Indexes attached to a partitioned
    index are left out: they are reported once, through their parent."""
    tables = {r.oid: r for r in ctx.user_relations()}
    for ix in sorted(ctx.snapshot.indexes, key=lambda i: (i.schema, i.name)):
        if (ix.table_oid in tables and ix.is_valid and (methods is None or ix.method in methods)
                and ix.parent_index_oid is None):
            yield tables[ix.table_oid], ix


def key_column(rel: Relation, ix: Index, k: int) -> Column | None:
    """The table column that is key column ``k`` (0-based) of ``ix``; ``None`` for an expression."""
    attnum = ix.key_attnums[k] if k < ix.n_key_columns else 0
    return rel.column(attnum) if attnum else None


def analyzed_full_indexes(ctx: CheckContext, min_size_bytes: int
                          ) -> Iterator[tuple[Relation, Index, Column, ColumnStats]]:
    """Each valid, non-unique btree index of :func:`indexed_tables` that backs no constraint, has no predicate
    and takes ``min_size_bytes`` or more, led by a table column that has ``pg_stats`` statistics: with its
    table, that column and its statistics. Records a skip and yields nothing when those statistics could
    not be read."""
    if not state_needed(ctx, "column_stats"):
        return
    stats = ctx.snapshot.index_health.column_stats
    for rel, ix in indexed_tables(ctx):
        if ix.is_unique or ix.backs_constraint or ix.predicate or ix.size_bytes < min_size_bytes:
            continue
        col = key_column(rel, ix, 0)
        st = stats.get((rel.oid, col.attnum)) if col is not None else None
        if col is not None and st is not None:
            yield rel, ix, col, st


def state_needed(ctx: CheckContext, part: str) -> bool:
    """Whether ``part`` of the index health snapshot was read; when not, records a skip (the audit's skips
    name the privilege)."""
    if part in ctx.snapshot.index_health.readable:
        return True
    ctx.skip(f"the {part} part of the index health snapshot could not be read (see the audit's skips)",
             "pg_monitor")
    return False


def _key(ix: Index, n: int) -> tuple[object, ...]:
    return (ix.columns[:n], ix.opclass_oids[:n], ix.collation_oids[:n], ix.options[:n])


def _same_leading_key(short: Index, long: Index) -> bool:
    """Whether ``long`` is another valid btree index on ``short``'s table, with its predicate, led by its
    key columns (operator classes, collations and sort options included)."""
    if long.oid == short.oid or not long.is_valid or long.method != "btree":
        return False
    if long.table_oid != short.table_oid or long.predicate != short.predicate:
        return False
    return _key(short, short.n_key_columns) == _key(long, short.n_key_columns)


def covered_by(short: Index, long: Index) -> bool:
    """Whether ``long`` serves everything ``short`` does with a longer key (same table, method, predicate).
    The same key with more INCLUDE columns is an overlap, not a prefix: :func:`overlapped_by`."""
    n = short.n_key_columns
    return _same_leading_key(short, long) and long.n_key_columns > n and (
        not short.include_columns or set(short.include_columns) <= set(long.columns[n:]))


def overlapped_by(short: Index, long: Index) -> bool:
    """Whether ``long`` has ``short``'s key (same table, method, predicate, operator classes, collations and
    sort options) and strictly more INCLUDE columns, so it serves every lookup ``short`` serves."""
    return (_same_leading_key(short, long) and long.n_key_columns == short.n_key_columns
            and set(short.include_columns) < set(long.include_columns))


def shadowed_indexes(ctx: CheckContext, serves: Callable[[Index, Index], bool]
                     ) -> Iterator[tuple[Relation, Index, list[Index]]]:
    """Each valid, non-unique btree index on a user table that backs no constraint, is attached to no
    partitioned index and is not named by the team's checklist, with its table and the stand-alone indexes
    of its table that ``serves(short, long)`` says serve every lookup it serves (only where there are any)."""
    tables = {r.oid: r for r in ctx.user_relations()}
    team = team_index_names(ctx)
    for short in ctx.snapshot.indexes:
        if (short.table_oid not in tables or short.method != "btree" or short.is_unique
                or short.backs_constraint or not short.is_valid or short.parent_index_oid is not None
                or (short.table_oid, short.name) in team):
            continue
        longer = [ix for ix in ctx.snapshot.indexes_on(short.table_oid)
                  if ix.parent_index_oid is None and serves(short, ix)]
        if longer:
            yield tables[short.table_oid], short, longer
