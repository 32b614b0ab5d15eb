"""Trial builds: where hypopg is absent (the embedded PostgreSQL 18, many managed services), the candidates
are built for real, the queries explained, and everything rolled back.

A candidate set is built in one transaction: ``CREATE INDEX`` of each candidate (not ``CONCURRENTLY``,
which cannot run in a transaction; each in a savepoint, so a candidate that fails to build is reported, not
fatal), and the real size of each index built (``pg_relation_size`` of it and of every index it cascaded to
on the partitions of a partitioned table). Each query is then explained in a savepoint (a query the server
refuses gives a Costing with its message). The build stays open while the requests ask for the same set
(several queries on the same tables explained in one build: the selection asks query after query for one
candidate; :meth:`TrialBuildEngine.cost_many` asks for several at once) and is rolled back as soon as
another set is asked for, and by :meth:`TrialBuildEngine.close`. Nothing is left behind, even if dbtune
dies: the server rolls back the transaction of a session that ends.

A build takes the table's ``SHARE`` lock, under ``lock_timeout`` of
:data:`~dbtune.advisor.costing.TRIAL_LOCK_TIMEOUT_MS` ms so it never queues behind a long lock. Until the
build is rolled back, writes to the table wait, and so does planning an INSERT, UPDATE or DELETE of it in
another session (even ``EXPLAIN`` takes ``ROW EXCLUSIVE``): a caller that plans writes elsewhere in the
meantime calls :meth:`TrialBuildEngine.release` first. Run it only on a target that is not production (the
caller checks). Costs gin and gist too, unlike hypopg.
See https://www.postgresql.org/docs/current/sql-createindex.html.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import psycopg

from dbtune.advisor.costing import TRIAL_LOCK_TIMEOUT_MS, plan_costing
from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, EngineKind
from dbtune.advisor.whatif import foreign_table_reason
from dbtune.catalog.model import Snapshot
from dbtune.db.connect import MarkedCursor
from dbtune.errors import ServerRefused
from dbtune.plans.collect import server_message
from dbtune.progress import Count, no_count

TRIAL_INDEXES_BUILT = "trial indexes built"

_SET_LOCAL = "SELECT pg_catalog.set_config('lock_timeout', %s, true)"

_TREE = """
-- Every index in the partition tree of each index built for a trial (the index itself, and those it
-- cascaded to on the partitions of a partitioned table): the built index's name, the schema and name of
-- the index, and its size in bytes.
SELECT b.relname, n.nspname, c.relname, pg_catalog.pg_relation_size(c.oid)
FROM ROWS FROM (pg_catalog.unnest(%s::text[]), pg_catalog.unnest(%s::text[])) AS b(nspname, relname)
JOIN pg_catalog.pg_namespace bn ON bn.nspname = b.nspname
JOIN pg_catalog.pg_class bi ON bi.relnamespace = bn.oid AND bi.relname = b.relname
CROSS JOIN LATERAL (SELECT bi.oid UNION SELECT t.relid FROM pg_catalog.pg_partition_tree(bi.oid) AS t) AS tree(oid)
JOIN pg_catalog.pg_class c ON c.oid = tree.oid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
"""


class TrialBuildEngine:
    """The :class:`~dbtune.advisor.model.Engine` that builds candidates for real inside a transaction that
    is rolled back (see the module docstring).

    ``conn``: an autocommit session (the engine begins and rolls back its transactions) that may write
    (:func:`~dbtune.advisor.costing.whatif_session` with ``trial_builds=True``) on a target the caller has
    checked is not production; ``snapshot``: its catalog; ``count`` is told ``("trial indexes built", n,
    None)`` after each build (each candidate set is built again when asked for: the search decides how
    many).
    """

    kind = EngineKind.TRIAL_BUILD

    def __init__(self, conn: psycopg.Connection, snapshot: Snapshot, count: Count = no_count) -> None:
        self._conn = conn
        self._count = count
        self.indexes_built = 0
        self._snapshot = snapshot
        self._version = snapshot.server.version_num
        self._sizes: dict[Candidate, int] = {}
        self._numbers = itertools.count(1)
        self._open: tuple[frozenset[Candidate], dict[tuple[str | None, str], Candidate] | str] | None = None
        self._in_transaction = False
        self.builds = 0  # candidate sets built (each rolled back)

    def cannot_cost(self, candidate: Candidate) -> str | None:
        """Why ``candidate`` cannot be built (a foreign table), or None."""
        return foreign_table_reason(self._snapshot, candidate)

    def _build(self, indexes: Iterable[Candidate]) -> dict[tuple[str | None, str], Candidate] | str:
        """Build ``indexes`` inside the current transaction: ``(schema, index name)`` → candidate for every
        index built (those cascaded to partitions too), recording their sizes; or why one could not be
        built."""
        cur = MarkedCursor(self._conn)
        cur.execute(_SET_LOCAL, (str(TRIAL_LOCK_TIMEOUT_MS),))
        self.builds += 1
        built: dict[str, Candidate] = {}
        for candidate in sorted(indexes, key=Candidate.describe):
            why = self.cannot_cost(candidate)
            if why is not None:
                return f"{candidate.describe()}: {why}"
            name = f"dbtune_trial_{self._conn.info.backend_pid}_{next(self._numbers)}"
            try:
                with self._conn.transaction():
                    cur.execute(candidate.create_sql(name))  # type: ignore[arg-type]
            except psycopg.Error as exc:
                return f"cannot build {candidate.describe()}: {server_message(exc)[0]}"
            built[name] = candidate
            self.indexes_built += 1
            self._count(TRIAL_INDEXES_BUILT, self.indexes_built, None)
        if not built:
            return {}
        names: dict[tuple[str | None, str], Candidate] = {}
        sizes: dict[Candidate, int] = {}
        rows = cur.execute(_TREE, ([c.schema for c in built.values()], list(built))).fetchall()
        for built_name, schema, name, size in rows:
            candidate = built[str(built_name)]
            names[(str(schema), str(name))] = candidate
            sizes[candidate] = sizes.get(candidate, 0) + int(size)
        self._sizes.update(sizes)
        return names

    def _ensure(self, indexes: frozenset[Candidate]) -> dict[tuple[str | None, str], Candidate] | str:
        """The build of exactly ``indexes``, open in the session's transaction: the one open already when it
        is that set, else a new one (the old one rolled back). A set that could not be built is rolled back
        at once, and its error kept for the next request of the same set."""
        if self._open is not None and self._open[0] == indexes:
            return self._open[1]
        self._rollback()
        if not indexes:
            self._open = (indexes, {})
            return {}
        cur = MarkedCursor(self._conn)
        cur.execute("BEGIN")
        self._in_transaction = True
        names = self._build(indexes)
        if isinstance(names, str):
            self._rollback()
        self._open = (indexes, names)
        return names

    def _rollback(self) -> None:
        self._open = None
        if self._in_transaction:
            self._in_transaction = False
            if not self._conn.closed:
                MarkedCursor(self._conn).execute("ROLLBACK")

    def cost_many(self, queries: Sequence[AdvisorQuery], indexes: frozenset[Candidate]) -> tuple[Costing, ...]:
        """Each query's planner cost with ``indexes`` built (one build for all of them, kept open for the
        next request of the same set), and which of them its plan scans. A candidate that cannot be built
        gives every query a Costing with that ``error``; a query the server cannot plan, a Costing with the
        server's message. Raises psycopg.Error only when the session itself is gone."""
        names = self._ensure(frozenset(indexes))
        if isinstance(names, str):
            return tuple(Costing(None, error=names) for _ in queries)
        return tuple(plan_costing(self._conn, q, self._version, names) for q in queries)

    def cost(self, query: AdvisorQuery, indexes: frozenset[Candidate]) -> Costing:
        """:meth:`cost_many` for one query."""
        return self.cost_many([query], indexes)[0]

    def size(self, candidate: Candidate) -> int:
        """The candidate's real size in bytes (``pg_relation_size``, summed over the partitions of a
        partitioned table), from the build that costed it or from a build of its own (in a savepoint of the
        open build, rolled back), cached. Raises :class:`~dbtune.errors.ServerRefused` when it cannot be
        built."""
        found = self._sizes.get(candidate)
        if found is None:
            with self._conn.transaction(force_rollback=True):
                names = self._build([candidate])
            if isinstance(names, str):
                raise ServerRefused(names)
            found = self._sizes[candidate]
        return found

    def release(self) -> None:
        """Roll back the open build now (its locks go with it); the next request builds its set again."""
        self._rollback()

    def close(self) -> None:
        """Roll back the open build: no index built for a trial is left."""
        self._rollback()
