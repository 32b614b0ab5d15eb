"""Catalog reads for the replication and two-phase commit checks: what publications publish, the
replication slots, and the prepared transactions.

Three statements whatever the size of the catalog (one per kind). The views are readable by every role
(``pg_publication_tables``, ``pg_replication_slots``, ``pg_prepared_xacts``, ``pg_locks``); a server
that refuses one records a :class:`~dbtune.catalog.model.Skip` naming ``pg_monitor`` instead of failing
the snapshot.

Pages followed: https://www.postgresql.org/docs/current/view-pg-publication-tables.html,
https://www.postgresql.org/docs/current/view-pg-replication-slots.html,
https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-REPLICA-IDENTITY,
https://www.postgresql.org/docs/current/view-pg-prepared-xacts.html,
https://www.postgresql.org/docs/current/view-pg-locks.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from dbtune.catalog.model import Server, Skip

PUBLISHED_TABLES = """
-- Every table some publication publishes (FOR ALL TABLES, FOR TABLE, FOR TABLES IN SCHEMA: the view
-- expands them all), with its replica identity and whether it has a primary key or an identity index.
SELECT /* dbtune */ c.oid AS relid, c.relreplident::text AS replident,
       pg_catalog.array_agg(DISTINCT p.pubname::text) AS publications,
       pg_catalog.bool_or(p.pubupdate OR p.pubdelete) AS publishes_update_delete,
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_primary_key,
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
               WHERE i.indrelid = c.oid AND i.indisreplident AND i.indisvalid) AS has_identity_index
FROM pg_catalog.pg_publication_tables pt
JOIN pg_catalog.pg_publication p ON p.pubname = pt.pubname
JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
GROUP BY c.oid, c.relreplident
"""

SLOTS = """
-- Every replication slot of the cluster, with the WAL it holds back (bytes from restart_lsn to the
-- current WAL position) and, for a logical slot, how far its consumer has confirmed (bytes behind).
SELECT /* dbtune */ s.slot_name::text AS slot_name, s.slot_type, s.plugin::text AS plugin,
       s.database::text AS database, s.active, s.wal_status,
       pg_catalog.pg_wal_lsn_diff(w.lsn, s.restart_lsn)::bigint AS retained_bytes,
       pg_catalog.pg_wal_lsn_diff(w.lsn, s.confirmed_flush_lsn)::bigint AS behind_bytes
FROM pg_catalog.pg_replication_slots s
CROSS JOIN (SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
                        ELSE pg_catalog.pg_current_wal_lsn() END AS lsn) w
ORDER BY s.slot_name
"""

PREPARED_XACTS = """
-- Every prepared transaction of the cluster (PREPARE TRANSACTION): gid, owner, database, its age
-- (seconds since it was prepared, at the snapshot's now()), the age of its xid (transactions), and the
-- locks it holds other than on its own xid. In pg_locks a prepared transaction's locks have a NULL pid
-- and keep the virtual transaction of the session that prepared it, found through the lock on its own
-- xid (13 to 18). Relation locks in the current database are named (mode on schema.relation).
SELECT /* dbtune */ x.gid, x.owner::text AS owner, x.database::text AS database,
       greatest(0, extract(epoch FROM pg_catalog.now() - x.prepared))::float8 AS age_s,
       pg_catalog.age(x.transaction) AS xid_age,
       coalesce(l.locks, 0) AS locks,
       coalesce(l.relation_locks, '{}') AS relation_locks
FROM pg_catalog.pg_prepared_xacts x
LEFT JOIN LATERAL (
  SELECT pg_catalog.count(*) AS locks,
         pg_catalog.array_agg(pg_catalog.format('%s on %I.%I', k.mode, n.nspname, c.relname)
                              ORDER BY n.nspname, c.relname, k.mode)
           FILTER (WHERE c.oid IS NOT NULL) AS relation_locks
  FROM pg_catalog.pg_locks own
  JOIN pg_catalog.pg_locks k ON k.pid IS NULL AND k.granted AND k.virtualtransaction = own.virtualtransaction
   AND k.locktype NOT IN ('transactionid', 'virtualxid')
  LEFT JOIN pg_catalog.pg_class c
    ON k.locktype = 'relation' AND k.relation = c.oid
   AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d
                     WHERE d.datname = pg_catalog.current_database())
  LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE own.locktype = 'transactionid' AND own.pid IS NULL AND own.transactionid = x.transaction
) l ON true
ORDER BY x.prepared, x.gid
"""


class _Queries(Protocol):
    def rows(self, query: str) -> list[dict[str, Any]]: ...

    def optional(self, query: str) -> tuple[list[dict[str, Any]] | None, psycopg.Error | None]: ...


@dataclass(frozen=True)
class PublishedTable:
    """A table that at least one publication publishes; ``replident`` is ``pg_class.relreplident``
    (``d`` default, ``n`` nothing, ``f`` full, ``i`` index)."""

    relid: int
    replident: str
    publications: tuple[str, ...]
    publishes_update_delete: bool
    has_primary_key: bool
    has_identity_index: bool


@dataclass(frozen=True)
class ReplicationSlot:
    """A row of ``pg_replication_slots``; ``retained_bytes`` is the WAL from ``restart_lsn`` to the
    current position (bytes, None when the slot reserves none), ``behind_bytes`` the same from
    ``confirmed_flush_lsn`` (logical slots only)."""

    name: str
    slot_type: str
    plugin: str | None
    database: str | None
    active: bool
    wal_status: str | None
    retained_bytes: int | None
    behind_bytes: int | None


@dataclass(frozen=True)
class PreparedTransaction:
    """A row of ``pg_prepared_xacts``: ``age_s`` in seconds since ``PREPARE TRANSACTION``, ``xid_age``
    in transactions (``age(transaction)``), ``locks`` the number of locks it holds and
    ``relation_locks`` those on relations of the current database, as ``"<mode> on <schema>.<relation>"``
    (names quoted as identifiers; catalog text, not escaped for a terminal)."""

    gid: str
    owner: str
    database: str
    age_s: float
    xid_age: int
    locks: int
    relation_locks: tuple[str, ...]


@dataclass(frozen=True)
class Replication:
    """The replication part of the snapshot; a field is None when its view could not be read."""

    published_tables: tuple[PublishedTable, ...] | None
    slots: tuple[ReplicationSlot, ...] | None
    prepared_transactions: tuple[PreparedTransaction, ...] | None = None


def _reason(err: psycopg.Error) -> str:
    return " ".join(str(err).split())


def read_replication(q: _Queries, server: Server, skipped: list[Skip]) -> Replication:
    """Read the published tables, the replication slots and the prepared transactions with their locks
    (three statements, the same on PostgreSQL 13 to 18).

    A view the role may not read appends a :class:`Skip` to ``skipped`` (naming ``pg_monitor``) and
    leaves its field None; nothing is raised.
    """
    del server  # the same columns on every supported version (wal_status is 13+, the oldest we read)
    pub_rows, err = q.optional(PUBLISHED_TABLES)
    if err is not None:
        skipped.append(Skip("publications", _reason(err), "pg_monitor"))
    slot_rows, err = q.optional(SLOTS)
    if err is not None:
        skipped.append(Skip("replication slots", _reason(err), "pg_monitor"))
    prepared_rows, err = q.optional(PREPARED_XACTS)
    if err is not None:
        skipped.append(Skip("prepared transactions", _reason(err), "pg_monitor"))
    published = None if pub_rows is None else tuple(
        PublishedTable(r["relid"], r["replident"], tuple(sorted(r["publications"])),
                       bool(r["publishes_update_delete"]), r["has_primary_key"], r["has_identity_index"])
        for r in pub_rows)
    slots = None if slot_rows is None else tuple(
        ReplicationSlot(r["slot_name"], r["slot_type"], r["plugin"], r["database"], r["active"],
                        r["wal_status"], r["retained_bytes"], r["behind_bytes"])
        for r in slot_rows)
    prepared = None if prepared_rows is None else tuple(
        PreparedTransaction(r["gid"], r["owner"], r["database"], float(r["age_s"]), int(r["xid_age"]),
                            int(r["locks"]), tuple(r["relation_locks"]))
        for r in prepared_rows)
    return Replication(published, slots, prepared)
