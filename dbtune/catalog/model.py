"""The typed model of one catalog snapshot. Frozen dataclasses, PostgreSQL's own names.

Sizes are bytes, counts are tuples or scans as PostgreSQL reports them, ``reltuples`` is the planner's
estimate (``-1`` when the relation was never vacuumed or analyzed, PostgreSQL 14+).
See https://www.postgresql.org/docs/current/catalogs.html.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from dbtune.catalog.index_health import IndexHealth
from dbtune.catalog.maintenance import Maintenance
from dbtune.sqlnames import qualified

if TYPE_CHECKING:
    from dbtune.catalog.replication import Replication
    from dbtune.catalog.settings_health import SettingsHealth


@dataclass(frozen=True)
class Server:
    """The server and the session's identity."""

    version: str
    version_num: int
    database: str
    current_user: str
    is_superuser: bool
    member_of: frozenset[str]
    now: datetime
    postmaster_start: datetime
    stats_reset: datetime | None
    extensions: dict[str, str]
    index_methods: frozenset[str] = frozenset({"btree", "hash", "gist", "gin", "spgist", "brin"})

    @property
    def short_version(self) -> str:
        """``"18.6"`` from ``version()``'s ``"PostgreSQL 18.6 on …"``."""
        parts = self.version.split()
        return parts[1] if len(parts) > 1 else self.version


@dataclass(frozen=True)
class Column:
    attnum: int
    name: str
    type: str
    not_null: bool
    collation: str | None


@dataclass(frozen=True)
class TableStats:
    """Cumulative statistics from ``pg_stat_all_tables`` (since ``stats_reset``)."""

    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    n_live_tup: int
    n_tup_ins: int
    n_tup_upd: int
    n_tup_del: int


@dataclass(frozen=True)
class Relation:
    """A table (``r``), partitioned table (``p``) or materialized view (``m``)."""

    oid: int
    schema: str
    name: str
    kind: str
    reltuples: float
    relpages: int
    size_bytes: int
    is_partition: bool
    parent_oid: int | None
    columns: tuple[Column, ...]
    stats: TableStats | None

    @property
    def qualified_name(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def is_partitioned(self) -> bool:
        return self.kind == "p"

    def column(self, attnum: int) -> Column | None:
        for col in self.columns:
            if col.attnum == attnum:
                return col
        return None

    def column_by_name(self, name: str) -> Column | None:
        for col in self.columns:
            if col.name == name:
                return col
        return None


@dataclass(frozen=True)
class Index:
    """One index (``relkind`` ``i``, or ``I`` for a partitioned index), from ``pg_index``.

    ``key_attnums`` are ``indkey`` (0 marks an expression column), the first ``n_key_columns`` of them
    are key columns and the rest ``INCLUDE`` columns. ``columns`` holds each column's text as
    ``pg_get_indexdef(oid, k, true)`` shows it. ``options`` are ``indoption`` bits (1 = DESC,
    2 = NULLS FIRST). ``opclass_oids`` and ``collation_oids`` are the raw ``indclass``/``indcollation``.
    """

    oid: int
    schema: str
    name: str
    table_oid: int
    method: str
    is_partitioned: bool
    is_unique: bool
    is_primary: bool
    is_exclusion: bool
    is_valid: bool
    is_ready: bool
    nulls_not_distinct: bool
    key_attnums: tuple[int, ...]
    n_key_columns: int
    columns: tuple[str, ...]
    opclasses: tuple[str, ...]
    opclass_oids: tuple[int, ...]
    collation_oids: tuple[int, ...]
    options: tuple[int, ...]
    expressions: str | None
    predicate: str | None
    definition: str
    size_bytes: int
    idx_scan: int | None
    constraint_name: str | None
    constraint_type: str | None
    parent_index_oid: int | None

    @property
    def qualified_name(self) -> str:
        return qualified(self.schema, self.name)

    @property
    def key_columns(self) -> tuple[str, ...]:
        return self.columns[: self.n_key_columns]

    @property
    def include_columns(self) -> tuple[str, ...]:
        return self.columns[self.n_key_columns:]

    @property
    def backs_constraint(self) -> bool:
        return self.constraint_type is not None

    def descending(self, k: int) -> bool:
        return bool(self.options[k] & 1) if k < len(self.options) else False


@dataclass(frozen=True)
class Constraint:
    """One table constraint from ``pg_constraint`` (``contype`` p, u, f, c, x)."""

    oid: int
    schema: str
    name: str
    type: str
    table_oid: int
    ref_table_oid: int | None
    columns: tuple[int, ...]
    ref_columns: tuple[int, ...]
    validated: bool
    parent_oid: int | None
    index_oid: int | None
    definition: str


@dataclass(frozen=True)
class Setting:
    """One row of ``pg_settings``; ``setting`` is in the GUC's base ``unit`` (ms, kB, 8kB …)."""

    name: str
    setting: str
    unit: str | None
    source: str
    reset_val: str | None = None
    boot_val: str | None = None


@dataclass(frozen=True)
class RoleSetting:
    """``ALTER ROLE … SET`` / ``ALTER DATABASE … SET`` values from ``pg_db_role_setting``.

    ``role`` is None for a database-wide setting, ``database`` None for a role's setting in every database.
    """

    role: str | None
    database: str | None
    settings: dict[str, str]


@dataclass(frozen=True)
class Role:
    name: str
    can_login: bool
    is_superuser: bool
    conn_limit: int = -1


@dataclass(frozen=True)
class DatabaseStats:
    """The current database's ``pg_stat_database`` counters since ``stats_reset``
    (https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-DATABASE-VIEW);
    the ``sessions*`` counters are ``None`` before PostgreSQL 14."""

    xact_commit: int
    xact_rollback: int
    deadlocks: int
    conflicts: int
    stats_reset: datetime | None
    sessions: int | None = None
    sessions_abandoned: int | None = None
    sessions_fatal: int | None = None
    sessions_killed: int | None = None


@dataclass(frozen=True)
class Backend:
    """One other client backend of the current database (``pg_stat_activity``): ``state`` is ``None`` when
    the reading role may not see it; ages in seconds at the snapshot's ``now()`` (``None``: no transaction
    open); ``blocked_by``: the pids holding the locks it waits for (``pg_blocking_pids``)."""

    pid: int
    role: str | None
    application_name: str
    state: str | None
    wait_event_type: str | None
    xact_age_s: float | None
    state_age_s: float | None
    blocked_by: tuple[int, ...] = ()


@dataclass(frozen=True)
class Skip:
    """A source or check that could not run, and why (usually a missing privilege)."""

    what: str
    reason: str
    privilege: str | None = None


@dataclass(frozen=True)
class PgStatStatements:
    """Whether pg_stat_statements is loaded, created in this database, and readable."""

    preloaded: bool
    installed: bool
    readable: bool
    statements: int | None
    error: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything the checks read, taken in one ``REPEATABLE READ`` transaction."""

    server: Server
    relations: dict[int, Relation]
    indexes: tuple[Index, ...]
    constraints: tuple[Constraint, ...]
    settings: dict[str, Setting]
    role_settings: tuple[RoleSetting, ...]
    roles: tuple[Role, ...]
    pg_stat_statements: PgStatStatements
    file_settings: dict[str, str] | None = None
    index_builds: frozenset[int] = frozenset()
    skipped: tuple[Skip, ...] = ()
    statements_sent: int = 0
    # (schema, name) -> relkind of the relations that are not tables: views (v), foreign tables (f),
    # sequences (S), composite types (c).
    other_relations: dict[tuple[str, str], str] = field(default_factory=dict)
    database_stats: DatabaseStats | None = None
    activity: tuple[Backend, ...] | None = None  # None: pg_stat_activity could not be read
    settings_health: SettingsHealth | None = None  # pg_stat_statements' top statements (settings_health.py)
    # Tables whose indexes and constraints were not read: another session held (or awaited) ACCESS
    # EXCLUSIVE on them (each is in ``skipped`` with the holder); no finding is reported on them.
    unread_tables: frozenset[int] = frozenset()
    maintenance: Maintenance = field(default_factory=lambda: Maintenance())
    replication: Replication | None = None  # publications and slots (dbtune/catalog/replication.py)
    index_health: IndexHealth = field(default_factory=lambda: IndexHealth())  # catalog/index_health.py
    _by_table: dict[int, tuple[Index, ...]] = field(default_factory=dict, repr=False, compare=False)

    def indexes_on(self, table_oid: int) -> tuple[Index, ...]:
        """The indexes whose ``indrelid`` is ``table_oid``."""
        if not self._by_table:
            grouped: dict[int, list[Index]] = {}
            for ix in self.indexes:
                grouped.setdefault(ix.table_oid, []).append(ix)
            self._by_table.update({k: tuple(v) for k, v in grouped.items()})
        return self._by_table.get(table_oid, ())

    def relation(self, oid: int) -> Relation:
        return self.relations[oid]

    def find_relation(self, name: str, search_path: tuple[str, ...] = ("public",)) -> Relation | None:
        """Resolve ``schema.table`` or a bare ``table`` (through ``search_path``) as written in a config.

        Names are compared as PostgreSQL would: an unquoted part is folded to lower case, a
        double-quoted part kept exactly.
        """
        for schema, rel in _candidates(name, search_path):
            for relation in self.relations.values():
                if relation.schema == schema and relation.name == rel:
                    return relation
        return None

    def find_other_relation(self, name: str, search_path: tuple[str, ...] = ("public",)
                            ) -> tuple[str, str, str] | None:
        """``(schema, name, relkind)`` of the view, foreign table, sequence or composite type that ``name``
        resolves to as :meth:`find_relation` resolves it (a table earlier in ``search_path`` wins), or ``None``."""
        for schema, rel in _candidates(name, search_path):
            if any(r.schema == schema and r.name == rel for r in self.relations.values()):
                return None
            kind = self.other_relations.get((schema, rel))
            if kind is not None:
                return schema, rel, kind
        return None

    def setting(self, name: str) -> str | None:
        s = self.settings.get(name)
        return s.setting if s else None

    def server_level(self, name: str) -> str | None:
        """The server-wide value of a GUC, before any ``ALTER ROLE``/``ALTER DATABASE … SET``.

        From ``pg_file_settings`` when readable, else the session-start value (``reset_val``) when no role
        or database setting of the current user and database touches ``name``, else the built-in default.
        """
        if self.file_settings is not None and name in self.file_settings:
            return self.file_settings[name]
        s = self.settings.get(name)
        if s is None:
            return None
        me, db = self.server.current_user, self.server.database
        touched = any(name in rs.settings and rs.role in (None, me) and rs.database in (None, db)
                      for rs in self.role_settings)
        if self.file_settings is not None or touched:
            return s.boot_val
        return s.reset_val if s.reset_val is not None else s.setting

    def effective(self, name: str, role: str | None = None) -> tuple[str | None, str]:
        """The value a new session of ``role`` (None: any role) in this database starts with, and where
        it comes from: ``role in database``, ``role``, ``database`` or ``server``.
        Follows the precedence of https://www.postgresql.org/docs/current/config-setting.html."""
        db = self.server.database
        order: list[tuple[str, str | None, str | None]] = []
        if role is not None:
            order += [("role in database", role, db), ("role", role, None)]
        order += [("database", None, db)]
        for label, r, d in order:
            for rs in self.role_settings:
                if rs.role == r and rs.database == d and name in rs.settings:
                    return rs.settings[name], label
        return self.server_level(name), "server"

    @property
    def stats_since(self) -> datetime:
        """Start of the statistics window: ``stats_reset``, or the server's start when never reset."""
        return self.server.stats_reset or self.server.postmaster_start

    @property
    def stats_basis(self) -> str:
        """What :attr:`stats_since` is: ``"stats_reset"`` (``pg_stat_database.stats_reset`` of this
        database) or ``"server start, statistics never reset"``."""
        return "stats_reset" if self.server.stats_reset else "server start, statistics never reset"


def _candidates(name: str, search_path: tuple[str, ...]) -> list[tuple[str, str]]:
    """The (schema, name) pairs a config's ``schema.table`` or bare ``table`` may denote, in the order
    PostgreSQL tries them."""
    parts = _split_name(name)
    if len(parts) == 2:
        return [(parts[0], parts[1])]
    return [(schema, parts[0]) for schema in search_path]


def _split_name(name: str) -> list[str]:
    """``schema.table`` as written in a config, split as PostgreSQL reads it: white space outside double
    quotes is dropped and unquoted letters fold to lower case; inside quotes every character is kept (a
    quoted name may begin or end with white space, or hold a newline)."""
    parts: list[str] = []
    buf, quoted, i = "", False, 0
    while i < len(name):
        ch = name[i]
        if ch == '"':
            if quoted and i + 1 < len(name) and name[i + 1] == '"':
                buf += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(buf)
            buf = ""
        elif not quoted:
            if not ch.isspace():
                buf += ch.lower()
        else:
            buf += ch
        i += 1
    parts.append(buf)
    return parts
