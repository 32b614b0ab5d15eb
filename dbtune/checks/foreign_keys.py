"""The foreign keys the constraint checks judge, once each (CN005, CN006, CN009, CN010)."""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.catalog.model import Constraint, Relation
from dbtune.checks.runner import CheckContext


def declared_foreign_keys(ctx: CheckContext) -> Iterator[tuple[Constraint, Relation, Relation]]:
    """``(constraint, table, referenced table)`` for each foreign key (``contype = 'f'``) declared on a
    relation outside the config's excluded schemas, in ``pg_constraint`` order. A key cloned onto a
    partition (``conparentid`` set) is left out, its parent's stands for it; so is a key whose
    referenced table the snapshot does not hold. Raises nothing.

    Page followed: https://www.postgresql.org/docs/current/catalog-pg-constraint.html
    """
    tables = {r.oid: r for r in ctx.user_relations()}
    for con in ctx.snapshot.constraints:
        if con.type != "f" or con.parent_oid is not None or con.table_oid not in tables:
            continue
        ref = ctx.snapshot.relations.get(con.ref_table_oid or 0)
        if ref is not None:
            yield con, tables[con.table_oid], ref
