"""Who holds what: the sessions whose table locks conflict with a lock level, and the transactions a
concurrent build or drop waits for (its virtualxid waits), read from ``pg_locks`` and ``pg_stat_activity``.

Nothing here takes a lock: ``pg_locks`` and ``pg_stat_activity`` are views over shared memory, and
``regclass`` output reads the system caches. Queries go through ``run(sql, params)`` (psycopg's
``%(name)s`` parameters, rows as tuples), so a psycopg connection and a SQLAlchemy one serve alike.
See https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES (the conflict table),
https://www.postgresql.org/docs/current/view-pg-locks.html and
https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dbtune.escape import one_line

Run = Callable[[str, dict[str, Any]], Sequence[Sequence[Any]]]

LEVELS = ("ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE",
          "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")

# PostgreSQL's table of conflicting lock modes (explicit-locking.html, Table 13.2).
CONFLICTS: dict[str, frozenset[str]] = {
    "ACCESS SHARE": frozenset({"ACCESS EXCLUSIVE"}),
    "ROW SHARE": frozenset({"EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "ROW EXCLUSIVE": frozenset({"SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "SHARE UPDATE EXCLUSIVE": frozenset({"SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE",
                                         "ACCESS EXCLUSIVE"}),
    "SHARE": frozenset({"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE",
                        "ACCESS EXCLUSIVE"}),
    "SHARE ROW EXCLUSIVE": frozenset({"ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
                                      "EXCLUSIVE", "ACCESS EXCLUSIVE"}),
    "EXCLUSIVE": frozenset(set(LEVELS) - {"ACCESS SHARE"}),
    "ACCESS EXCLUSIVE": frozenset(LEVELS),
}


def mode_name(level: str) -> str:
    """``pg_locks.mode`` of a lock level: ``SHARE UPDATE EXCLUSIVE`` -> ``ShareUpdateExclusiveLock``."""
    return "".join(word.capitalize() for word in level.split()) + "Lock"


def level_name(mode: str) -> str:
    """The lock level of a ``pg_locks.mode``: ``ShareUpdateExclusiveLock`` -> ``SHARE UPDATE EXCLUSIVE``."""
    return next((level for level in LEVELS if mode_name(level) == mode), mode)


@dataclass(frozen=True)
class Holder:
    """A session holding a lock (or an open transaction): its pid, the relation (``None`` for a transaction
    a concurrent phase waits for), the lock level, ``pg_stat_activity.state`` and its current query."""

    pid: int
    relation: str | None
    level: str | None
    state: str | None
    query: str | None

    def describe(self) -> str:
        """``pid 123 (idle in transaction, SHARE UPDATE EXCLUSIVE on public.t): LOCK TABLE …``, one line."""
        what = ", ".join(p for p in (self.state or "no state", self.level and self.relation
                                     and f"{self.level} on {self.relation}") if p)
        query = " ".join((self.query or "").split())
        return one_line(f"pid {self.pid} ({what})" + (f": {query[:120]}" if query else ""))


_CONFLICTING_LOCKS = """
/* granted locks of other sessions, on the given relations (all relations of this database when none are
   given), whose mode is one of the given modes */
SELECT DISTINCT l.pid, l.relation::pg_catalog.regclass::text, l.mode, a.state, a.query
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_catalog.pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
  AND (%(relations)s::text[] IS NULL OR l.relation = ANY (
        SELECT pg_catalog.to_regclass(r) FROM pg_catalog.unnest(%(relations)s::text[]) r))
  AND l.mode = ANY (%(modes)s::text[])
ORDER BY l.pid
"""

_OLDER_TRANSACTIONS = """
/* client sessions of this database with a transaction (an xid or a snapshot) open since before a moment:
   those a concurrent index build or drop waits for */
SELECT a.pid, a.state, a.query
FROM pg_catalog.pg_stat_activity a
WHERE a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()
  AND a.backend_type = 'client backend' AND (a.backend_xid IS NOT NULL OR a.backend_xmin IS NOT NULL)
  AND a.xact_start <= %(since)s
ORDER BY a.pid
"""


def conflicting_holders(run: Run, level: str, relations: Sequence[str] | None) -> list[Holder]:
    """The other sessions holding a lock on ``relations`` (names as ``to_regclass`` reads them; ``None``: any
    relation of this database) that conflicts with ``level`` (``SHARE UPDATE EXCLUSIVE`` …): the sessions a
    statement taking ``level`` waits behind. An application's writer holding ROW EXCLUSIVE is left out of a
    SHARE UPDATE EXCLUSIVE step's list, since the two do not conflict."""
    modes = [mode_name(m) for m in CONFLICTS.get(level, frozenset(LEVELS))]
    rows = run(_CONFLICTING_LOCKS, {"relations": list(relations) if relations is not None else None,
                                    "modes": modes})
    return [Holder(int(pid), rel, level_name(mode), state, query) for pid, rel, mode, state, query in rows]


def older_transactions(run: Run, since: Any) -> list[Holder]:
    """The client sessions of this database with a transaction open since ``since`` (a server timestamp) or
    earlier: the virtualxids that ``CREATE INDEX CONCURRENTLY`` and ``DROP INDEX CONCURRENTLY`` wait for
    (a REPEATABLE READ reader, an uncommitted insert)."""
    return [Holder(int(pid), None, None, state, query)
            for pid, state, query in run(_OLDER_TRANSACTIONS, {"since": since})]


def describe_all(holders: Sequence[Holder]) -> str:
    """``pid 1 (…): …; pid 2 (…): …`` (empty when there are none)."""
    return "; ".join(h.describe() for h in holders)
