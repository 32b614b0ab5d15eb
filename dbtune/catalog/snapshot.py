"""Take a :class:`~dbtune.catalog.model.Snapshot` in one read-only transaction.

The number of statements sent is fixed (one per kind of object) whatever the size of the catalog;
``Snapshot.statements_sent`` records it so the benchmark can prove it.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbtune.catalog import queries
from dbtune.catalog.index_health import read_index_health
from dbtune.catalog.maintenance import read_maintenance
from dbtune.catalog.model import (
    Backend,
    Column,
    Constraint,
    DatabaseStats,
    Index,
    PgStatStatements,
    Relation,
    Role,
    RoleSetting,
    Server,
    Setting,
    Skip,
    Snapshot,
    TableStats,
)
from dbtune.catalog.replication import read_replication
from dbtune.catalog.settings_health import read_settings_health
from dbtune.errors import ServerRefused
from dbtune.escape import one_line
from dbtune.sqlnames import quote_ident

MIN_VERSION_NUM = 130000


class _Counter:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.sent = 0

    def rows(self, query: str) -> list[dict[str, Any]]:
        self.sent += 1
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(query)  # type: ignore[arg-type]
            return cur.fetchall()

    def unlocked_rows(self, query: str, attempts: int = 3) -> list[dict[str, Any]]:
        """The rows of a catalog query that leaves out what it cannot deparse without waiting
        (``queries._LOCKED``). A lock taken between its reading ``pg_locks`` and its deparsing a row ends the
        statement at ``lock_timeout``: it is run again under a savepoint, and then sees the lock
        (``attempts`` in all; the last error is raised)."""
        for attempt in range(attempts):
            try:
                with self.conn.transaction():
                    return self.rows(query)
            except psycopg.errors.LockNotAvailable:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def optional(self, query: str) -> tuple[list[dict[str, Any]] | None, psycopg.Error | None]:
        """Run ``query`` under a savepoint; return its error instead of aborting the snapshot."""
        try:
            with self.conn.transaction():
                return self.rows(query), None
        except psycopg.Error as exc:
            return None, exc


def take(conn: psycopg.Connection) -> Snapshot:
    """Read the catalog through ``conn`` (already inside a read-only transaction).

    Raises :class:`ServerRefused` for servers older than PostgreSQL 13.
    """
    q = _Counter(conn)
    server = _server(q.rows(queries.SERVER)[0])
    if server.version_num < MIN_VERSION_NUM:
        raise ServerRefused(f"PostgreSQL {server.short_version} is not supported (13 or later is needed)")
    columns: dict[int, list[Column]] = {}
    for r in q.rows(queries.COLUMNS):
        columns.setdefault(r["attrelid"], []).append(
            Column(r["attnum"], r["attname"], r["type"], r["attnotnull"], r["collname"]))
    relations = {r["oid"]: _relation(r, columns.get(r["oid"], [])) for r in q.rows(queries.RELATIONS)}
    other_relations = {(r["schema"], r["name"]): r["kind"] for r in q.rows(queries.OTHER_RELATIONS)}
    index_rows = q.unlocked_rows(queries.indexes_query(server.version_num))
    constraint_rows = q.unlocked_rows(queries.CONSTRAINTS)
    unread = frozenset({r["table_oid"] for r in (*index_rows, *constraint_rows) if r["locked"]})
    indexes = tuple(_index(r) for r in index_rows if r["table_oid"] not in unread)
    constraints = tuple(_constraint(r) for r in constraint_rows if r["table_oid"] not in unread)
    settings = {r["name"]: Setting(r["name"], r["setting"], r["unit"], r["source"], r["reset_val"],
                                   r["boot_val"])
                for r in q.rows(queries.SETTINGS)}
    skipped: list[Skip] = _locked_tables(q, unread, relations)
    file_rows, _ = q.optional(queries.FILE_SETTINGS)
    file_settings = None if file_rows is None else {r["name"]: r["setting"] for r in file_rows}
    build_rows, _ = q.optional(queries.INDEX_BUILDS)
    index_builds = frozenset(r["index_relid"] for r in build_rows or [])
    role_rows, err = q.optional(queries.ROLE_SETTINGS)
    if err is not None:
        skipped.append(Skip("role and database settings", _reason(err), "pg_read_all_settings"))
    role_settings = tuple(
        RoleSetting(r["role"], r["database"], _parse_setconfig(r["setconfig"])) for r in role_rows or [])
    roles = tuple(Role(r["rolname"], r["rolcanlogin"], r["rolsuper"], r["rolconnlimit"])
                  for r in q.rows(queries.ROLES))
    pgss = _pg_stat_statements(q, settings, skipped)
    stats_rows, _ = q.optional(queries.database_stats_query(server.version_num))
    database_stats = _database_stats(stats_rows[0]) if stats_rows else None
    activity_rows, err = q.optional(queries.ACTIVITY)
    if err is not None:
        skipped.append(Skip("pg_stat_activity", _reason(err), "pg_read_all_stats"))
    activity = None if activity_rows is None else tuple(
        Backend(r["pid"], r["usename"], r["application_name"] or "", r["state"], r["wait_event_type"],
                r["xact_age_s"], r["state_age_s"], tuple(r["blocked_by"] or ())) for r in activity_rows)
    settings_health = read_settings_health(q, server, skipped)
    maintenance = read_maintenance(q, server, skipped)
    replication = read_replication(q, server, skipped)
    index_health = read_index_health(q, server, skipped)
    return Snapshot(server=server, relations=relations, indexes=indexes, constraints=constraints,
                    settings=settings, role_settings=role_settings, roles=roles, pg_stat_statements=pgss,
                    file_settings=file_settings, index_builds=index_builds, skipped=tuple(skipped),
                    other_relations=other_relations, database_stats=database_stats, activity=activity,
                    unread_tables=unread,
                    settings_health=settings_health,
                    maintenance=maintenance, replication=replication, index_health=index_health,
                    statements_sent=q.sent)


def _locked_tables(q: _Counter, unread: frozenset[int], relations: dict[int, Relation]) -> list[Skip]:
    """One :class:`Skip` per table whose definitions were not read, naming who holds or awaits ACCESS
    EXCLUSIVE on it (pid, state, since, query), read from ``pg_locks`` and ``pg_stat_activity``."""
    if not unread:
        return []
    q.sent += 1
    with q.conn.cursor(row_factory=dict_row) as cur:
        cur.execute(queries.LOCK_HOLDERS, {"oids": sorted(unread)})
        holders: dict[int, list[dict[str, Any]]] = {}
        for r in cur.fetchall():
            holders.setdefault(r["oid"], []).append(r)
    skips = []
    for oid in sorted(unread, key=lambda o: relations[o].qualified_name if o in relations else str(o)):
        name = relations[oid].qualified_name if oid in relations else f"relation {oid}"
        who = "; ".join(_holder(r) for r in holders.get(oid, [])) or "a session that has since let it go"
        skips.append(Skip(f"table {name}", f"held in ACCESS EXCLUSIVE by {who}: its indexes and constraints "
                                           f"were not read and no finding is reported on it; audit again "
                                           f"once the lock is released"))
    return skips


def _holder(r: dict[str, Any]) -> str:
    """``pid 123 (idle in transaction, since 2026-12-07 06:58:01+00): LOCK TABLE …`` (its query cut to 120
    characters), or ``pid 123, waiting for it (…)`` for a request in the lock queue."""
    since = f", since {r['xact_start']:%Y-%m-%d %H:%M:%S%z}" if r["xact_start"] else ""
    query = " ".join((r["query"] or "").split())[:120]
    state = f"{r['state'] or 'no state'}{since}"
    return one_line(f"pid {r['pid']}{'' if r['granted'] else ', waiting for it'} ({state})"
                    + (f": {query}" if query else ""))


def _reason(err: psycopg.Error) -> str:
    return " ".join(str(err).split())


def _pg_stat_statements(q: _Counter, settings: dict[str, Setting], skipped: list[Skip]) -> PgStatStatements:
    preload = settings.get("shared_preload_libraries")
    libs = [s.strip().strip('"') for s in (preload.setting if preload else "").split(",")]
    preloaded = "pg_stat_statements" in libs
    rows, err = q.optional(queries.PG_STAT_STATEMENTS_LOCATION)
    if not rows:
        return PgStatStatements(preloaded, False, False, None, _reason(err) if err else None)
    view = f"{quote_ident(rows[0]['nspname'])}.pg_stat_statements"
    counted, err = q.optional(queries.PG_STAT_STATEMENTS_COUNT.replace("FROM pg_stat_statements",
                                                                      f"FROM {view}"))
    if err is not None:
        privilege = "pg_read_all_stats" if isinstance(err, psycopg.errors.InsufficientPrivilege) else None
        skipped.append(Skip("pg_stat_statements", _reason(err), privilege))
        return PgStatStatements(preloaded, True, False, None, _reason(err))
    return PgStatStatements(preloaded, True, True, int(counted[0]["count"]) if counted else 0)


def _database_stats(r: dict[str, Any]) -> DatabaseStats:
    return DatabaseStats(int(r["xact_commit"]), int(r["xact_rollback"]), int(r["deadlocks"]), int(r["conflicts"]),
                         r["stats_reset"], r.get("sessions"), r.get("sessions_abandoned"), r.get("sessions_fatal"),
                         r.get("sessions_killed"))


def _server(r: dict[str, Any]) -> Server:
    return Server(
        version=r["version"], version_num=r["version_num"], database=r["database"],
        current_user=r["current_user"], is_superuser=bool(r["is_superuser"]),
        member_of=frozenset(r["member_of"] or ()), now=r["now"], postmaster_start=r["postmaster_start"],
        stats_reset=r["stats_reset"], extensions=dict(r["extensions"] or {}),
        index_methods=frozenset(r["index_methods"] or ()),
    )


def _relation(r: dict[str, Any], columns: list[Column]) -> Relation:
    stats = None
    if r["seq_scan"] is not None:
        stats = TableStats(r["seq_scan"] or 0, r["seq_tup_read"] or 0, r["idx_scan"] or 0,
                           r["n_live_tup"] or 0, r["n_tup_ins"] or 0, r["n_tup_upd"] or 0, r["n_tup_del"] or 0)
    return Relation(
        oid=r["oid"], schema=r["schema"], name=r["name"], kind=r["kind"], reltuples=float(r["reltuples"]),
        relpages=int(r["relpages"]), size_bytes=int(r["size_bytes"] or 0), is_partition=r["is_partition"],
        parent_oid=r["parent_oid"], columns=tuple(columns), stats=stats,
    )


def _index(r: dict[str, Any]) -> Index:
    return Index(
        oid=r["oid"], schema=r["schema"], name=r["name"], table_oid=r["table_oid"], method=r["method"],
        is_partitioned=r["is_partitioned"], is_unique=r["indisunique"], is_primary=r["indisprimary"],
        is_exclusion=r["indisexclusion"], is_valid=r["indisvalid"], is_ready=r["indisready"],
        nulls_not_distinct=bool(r["nulls_not_distinct"]), key_attnums=tuple(r["key_attnums"]),
        n_key_columns=r["indnkeyatts"], columns=tuple(r["columns"]), opclasses=tuple(r["opclasses"]),
        opclass_oids=tuple(int(x) for x in r["opclass_oids"]),
        collation_oids=tuple(int(x) for x in r["collation_oids"]), options=tuple(r["options"]),
        expressions=r["expressions"], predicate=r["predicate"], definition=r["definition"],
        size_bytes=int(r["size_bytes"] or 0), idx_scan=r["idx_scan"], constraint_name=r["constraint_name"],
        constraint_type=r["constraint_type"], parent_index_oid=r["parent_index_oid"],
    )


def _constraint(r: dict[str, Any]) -> Constraint:
    return Constraint(
        oid=r["oid"], schema=r["schema"], name=r["name"], type=r["type"], table_oid=r["table_oid"],
        ref_table_oid=r["ref_table_oid"], columns=tuple(r["columns"]), ref_columns=tuple(r["ref_columns"]),
        validated=r["validated"], parent_oid=r["parent_oid"], index_oid=r["index_oid"],
        definition=r["definition"],
    )


def _parse_setconfig(setconfig: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in setconfig or []:
        key, _, value = item.partition("=")
        out[key] = value
    return out
