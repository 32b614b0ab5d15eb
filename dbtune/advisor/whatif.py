"""What-if costing through hypopg: hypothetical indexes, visible to the planner of this backend alone,
never written anywhere (https://hypopg.readthedocs.io/en/rel1_stable/usage.html).

Each request makes exactly its candidates exist hypothetically: it drops with ``hypopg_drop_index()``
those left from the request before that it does not ask for, and creates with ``hypopg_create_index()``
those missing, from dbtune's own DDL (:meth:`Candidate.create_sql`, identifiers quoted exactly: hypopg's
``hypopg_get_indexdef`` does not quote them); then it plans the query (its generic plan for ``$n``
parameters), and reads the top node's ``Total Cost`` and the hypothetical indexes the plan scans (by the
names hypopg returned). Consecutive requests differ by a few candidates (the selection peels a query's
set one candidate at a time), so most are not created again; no more exist at once than the largest
request asks for (hypopg hands out object ids from a small range and runs out otherwise).
:meth:`HypoPGEngine.close` calls ``hypopg_reset()``.

What hypopg 1.3.1 does (checked on PostgreSQL 15): it costs btree, brin, hash and bloom indexes and refuses
gin, gist and spgist (``hypopg: access method "gin" is not supported``); a hypothetical index on a
partitioned table is accepted and the planner uses it on every leaf partition (multi-level trees too), and
a partitioned parent's candidate is created once, on the parent, as the migration would create it. Its
size is the sum over the leaves (hypopg's size of the parent's index is estimated from the parent's
``reltuples`` alone, and is smaller than that sum).

The session is the caller's autocommit session (:func:`~dbtune.advisor.costing.whatif_session`); the
engine sets ``default_transaction_read_only = on`` on it again, and sends only SELECTs and EXPLAINs (and,
for a generic plan before PostgreSQL 16, PREPARE and DEALLOCATE), every statement marked.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg

from dbtune.advisor.costing import leaf_partitions, plan_costing, set_read_only
from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, EngineKind
from dbtune.catalog.model import Snapshot
from dbtune.db.connect import MarkedCursor
from dbtune.errors import ServerRefused
from dbtune.plans.collect import server_message
from dbtune.sqlnames import quote_ident

# Access methods hypopg 1.3 can create hypothetically (bloom: when the extension is there).
HYPOPG_METHODS = frozenset({"btree", "brin", "hash", "bloom"})

_HYPOPG_SCHEMA = """
-- The schema hypopg is installed in, in this database (no row: not installed).
SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'hypopg'
"""


def hypopg_schema(conn: psycopg.Connection) -> str | None:
    """The schema of the hypopg extension in ``conn``'s database, or None when it is not installed
    (dbtune never runs ``CREATE EXTENSION``). Lets psycopg.Error through."""
    row = MarkedCursor(conn).execute(_HYPOPG_SCHEMA).fetchone()
    return str(row[0]) if row else None


def hypopg_available(conn: psycopg.Connection) -> bool:
    """Whether the hypopg extension is installed in ``conn``'s database. Lets psycopg.Error through."""
    return hypopg_schema(conn) is not None


def foreign_table_reason(snapshot: Snapshot, candidate: Candidate) -> str | None:
    """Why ``candidate`` cannot be costed because of its table: a foreign table has no indexes."""
    if snapshot.other_relations.get((candidate.schema, candidate.table)) == "f":
        return f"{candidate.qualified_table} is a foreign table: PostgreSQL cannot index it"
    return None


class HypoPGEngine:
    """The :class:`~dbtune.advisor.model.Engine` over hypopg (see the module docstring).

    ``conn``: an autocommit session (:func:`~dbtune.advisor.costing.whatif_session`) on a database where
    hypopg is installed; ``snapshot``: its catalog (server version, foreign tables). Raises
    :class:`~dbtune.errors.ServerRefused` when hypopg is not installed there.
    """

    kind = EngineKind.HYPOPG

    def __init__(self, conn: psycopg.Connection, snapshot: Snapshot) -> None:
        self._conn = conn
        self._snapshot = snapshot
        self._version = snapshot.server.version_num
        schema = hypopg_schema(conn)
        if schema is None:
            raise ServerRefused(f"hypopg is not installed in database {snapshot.server.database}")
        self._fn = f"{quote_ident(schema)}."
        set_read_only(conn)
        self._sizes: dict[Candidate, int] = {}
        self._live: dict[Candidate, tuple[int, str]] = {}  # the hypothetical indexes that exist: oid, name

    def cannot_cost(self, candidate: Candidate) -> str | None:
        """Why hypopg cannot cost ``candidate`` (its access method, a foreign table), or None."""
        if candidate.method not in HYPOPG_METHODS:
            return (f"hypopg cannot cost a {candidate.method} index (it costs "
                    f"{', '.join(sorted(HYPOPG_METHODS))} only)")
        return foreign_table_reason(self._snapshot, candidate)

    def _create(self, candidate: Candidate) -> tuple[int, str]:
        row = MarkedCursor(self._conn).execute(
            f"SELECT indexrelid, indexname FROM {self._fn}hypopg_create_index(%s)",  # type: ignore[arg-type]
            (candidate.create_sql(),)).fetchone()
        assert row is not None
        return int(row[0]), str(row[1])

    def _drop(self, oids: list[int]) -> None:
        if oids:
            MarkedCursor(self._conn).execute(
                f"SELECT {self._fn}hypopg_drop_index(o) FROM pg_catalog.unnest(%s::oid[]) AS o",  # type: ignore[arg-type]
                (oids,))

    def cost(self, query: AdvisorQuery, indexes: frozenset[Candidate]) -> Costing:
        """``query``'s planner cost with exactly ``indexes`` existing hypothetically (and the existing
        indexes), and which of them the plan scans. A candidate hypopg refuses, or a query the server cannot
        plan, gives a Costing with ``error`` (the server's message). The hypothetical indexes are kept for
        the next request (see the module docstring). Raises psycopg.Error only when the session itself is
        gone."""
        for candidate in indexes:
            why = self.cannot_cost(candidate)
            if why is not None:
                return Costing(None, error=f"{candidate.describe()}: {why}")
        # The planner meets hypothetical indexes in the order they were created, and of two equally cheap
        # plans keeps the first: the set is always created in one order, so its plan does not depend on
        # the requests before it. What was created in that order is kept; the rest is created after it.
        wanted = sorted(indexes, key=Candidate.describe)
        kept = 0
        for live in [c for c in self._live if c in indexes]:
            if live != wanted[kept]:
                break
            kept += 1
        self._drop([self._live.pop(c)[0] for c in [c for c in self._live if c not in wanted[:kept]]])
        for candidate in wanted[kept:]:
            try:
                self._live[candidate] = self._create(candidate)
            except psycopg.Error as exc:
                return Costing(None, error=f"hypopg_create_index({candidate.describe()}): "
                                          f"{server_message(exc)[0]}")
        names: dict[tuple[str | None, str], Candidate] = {(None, name): c for c, (_, name) in self._live.items()}
        return plan_costing(self._conn, query, self._version, names)

    def size(self, candidate: Candidate) -> int:
        """``hypopg_relation_size`` of the candidate (bytes; hypopg's estimate from ``reltuples`` and the
        columns' widths, pessimistic: about twice a fresh build's size), cached. For a partitioned table,
        the sum over its leaf partitions of the same index on each (larger than hypopg's size of the
        parent's index, which it estimates from the parent's ``reltuples`` alone). Raises
        :class:`~dbtune.errors.ServerRefused` when hypopg refuses the candidate."""
        found = self._sizes.get(candidate)
        if found is not None:
            return found
        leaves = leaf_partitions(self._snapshot, candidate.schema, candidate.table)
        if leaves:
            found = sum(self.size(replace(candidate, schema=leaf.schema, table=leaf.name)) for leaf in leaves)
            self._sizes[candidate] = found
            return found
        try:
            oid, _ = self._create(candidate)
        except psycopg.Error as exc:
            raise ServerRefused(f"hypopg_create_index({candidate.describe()}): {server_message(exc)[0]}") from None
        try:
            row = MarkedCursor(self._conn).execute(f"SELECT {self._fn}hypopg_relation_size(%s)",  # type: ignore[arg-type]
                                                   (oid,)).fetchone()
        finally:
            self._drop([oid])
        size = int(row[0]) if row and row[0] is not None else 0
        self._sizes[candidate] = size
        return size

    def close(self) -> None:
        """``hypopg_reset()``: no hypothetical index of this session is left, whatever happened."""
        self._live.clear()
        if not self._conn.closed:
            MarkedCursor(self._conn).execute(f"SELECT {self._fn}hypopg_reset()")  # type: ignore[arg-type]
