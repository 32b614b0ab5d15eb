"""Constructors for the :class:`~dbtune.model.Change` objects that findings carry as their fix.

Every statement is built from quoted identifiers (:func:`dbtune.sqlnames.quote_ident`) and
pretty-printed with pglast, and is safe on a live database:

* ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS`` (``SHARE UPDATE EXCLUSIVE``, never inside a
  transaction block; https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY);
* on a partitioned table, where ``CONCURRENTLY`` is refused: an invalid index ``ON ONLY`` the parent,
  a concurrent build on each partition, then ``ALTER INDEX … ATTACH PARTITION``
  (https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE);
* ``DROP INDEX CONCURRENTLY IF EXISTS``;
* the rebuild of an INVALID index: ``DROP INDEX CONCURRENTLY IF EXISTS``, then ``CREATE INDEX
  CONCURRENTLY`` without ``IF NOT EXISTS``;
* ``ALTER TABLE … VALIDATE CONSTRAINT`` (``SHARE UPDATE EXCLUSIVE``);
* ``ALTER DATABASE|ROLE … SET`` for settings.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from pglast import prettify

from dbtune.catalog.model import Index, Relation, Snapshot
from dbtune.model import Change, ChangeKind, Lock
from dbtune.sqlnames import MAX_IDENTIFIER_BYTES, qualified, quote_ident, quote_literal

_BARE_NAME = re.compile(r"[a-z_][a-z0-9_$]*\Z")


def pretty(sql: str) -> str:
    """``sql`` pretty-printed by pglast, ending with ``;``. Raises pglast's ParseError on bad SQL."""
    return prettify(sql, semicolon_after_last_statement=True)


def index_name(table: str, columns: Sequence[str], suffix: str = "idx") -> str:
    """A deterministic index name ``<table>_<col>_<col>_<suffix>`` of at most 63 bytes.

    ``columns`` are index-column texts (``"Order Id" DESC``, ``lower(email)``): a quoted name counts as a
    whole (its spaces become ``_``), anything after a column's name (``DESC``, an operator class) is left
    out, and expression columns are reduced to their identifier characters. A name that would be longer than
    63 bytes is cut (on a character boundary) and given an 8-hex-digit hash, and so is a name for which a
    column's name lost characters other than spaces (``🙂`` and ``🎉``, ``it's`` and ``it_s`` would otherwise
    name the same index): the hash is then of the table and column texts as given, so two different column
    lists never share a name.
    """
    names = [_name_part(c) for c in columns]
    parts = [_sanitized(n).strip("_") for n in names]
    base = "_".join([table, *[p for p in parts if p]])
    full = f"{base}_{suffix}"
    lossy = any(part != name.replace(" ", "_")
                for part, name, column in zip(parts, names, columns, strict=True) if _is_identifier(column))
    if not lossy and len(full.encode()) <= MAX_IDENTIFIER_BYTES:
        return full
    identity = "\x00".join([table, *columns, suffix]) if lossy else full
    digest = hashlib.sha1(identity.encode()).hexdigest()[:8]
    head = base.encode()[: MAX_IDENTIFIER_BYTES - len(suffix) - 10].decode(errors="ignore").rstrip("_")
    return f"{head}_{digest}_{suffix}"


def _sanitized(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name)


def _is_identifier(column: str) -> bool:
    """Whether an index-column text names a column (quoted, or a bare name), as against an expression."""
    return column.startswith('"') or _BARE_NAME.match(column.split(" ")[0]) is not None


def _name_part(column: str) -> str:
    """The part of an index-column text that names it: a leading quoted identifier unquoted (``""`` is
    a quote inside it), else the text up to its first space."""
    if not column.startswith('"'):
        return column.split(" ")[0]
    out, i = [], 1
    while i < len(column):
        if column[i] == '"':
            if column[i + 1:i + 2] != '"':
                break
            i += 1
        out.append(column[i])
        i += 1
    return "".join(out)


def _index_body(table_sql: str, columns: Sequence[str], *, method: str = "btree",
                include: Sequence[str] = (), where: str | None = None) -> str:
    using = "" if method == "btree" else f" USING {method}"
    body = f"{table_sql}{using} ({', '.join(columns)})"
    if include:
        body += f" INCLUDE ({', '.join(include)})"
    if where:
        body += f" WHERE {where}"
    return body


def create_index(snapshot: Snapshot, table: Relation, name: str, columns: Sequence[str], *,
                 unique: bool = False, method: str = "btree", include: Sequence[str] = (),
                 where: str | None = None) -> tuple[Change, ...]:
    """The changes that build an index without blocking writes.

    ``columns`` are index-column texts already quoted where needed (``quote_ident(col) + " DESC"``, or an
    expression). Returns one change for a plain table, and ``2 + partitions`` changes for a partitioned
    table.
    """
    kind = "UNIQUE INDEX" if unique else "INDEX"
    ident = quote_ident(name)
    if not table.is_partitioned:
        up = pretty(f"CREATE {kind} CONCURRENTLY IF NOT EXISTS {ident} ON "
                    + _index_body(table.qualified_name, columns, method=method, include=include, where=where))
        down = pretty(f"DROP INDEX CONCURRENTLY IF EXISTS {qualified(table.schema, name)}")
        return (Change(up=up, down=down, transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE,
                       relation_bytes=table.size_bytes, kind=ChangeKind.CREATE_INDEX,
                       table=table.qualified_name, index=qualified(table.schema, name)),)
    parent_up = pretty(f"CREATE {kind} IF NOT EXISTS {ident} ON ONLY "
                       + _index_body(table.qualified_name, columns, method=method, include=include, where=where))
    changes = [Change(up=parent_up, down=pretty(f"DROP INDEX IF EXISTS {qualified(table.schema, name)}"),
                      transactional=True, lock=Lock.SHARE, relation_bytes=0, kind=ChangeKind.CREATE_INDEX,
                      table=table.qualified_name, index=qualified(table.schema, name))]
    parent = next((ix for ix in snapshot.indexes_on(table.oid) if ix.name == name), None)
    for part in _partitions(snapshot, table):
        existing = snapshot.indexes_on(part.oid)
        if parent is not None and any(ix.parent_index_oid == parent.oid for ix in existing):
            continue  # an earlier run (or a person) attached this partition's index already
        part_name = index_name(part.name, [name], suffix="part")
        build = create_index(snapshot, part, part_name, columns, unique=unique, method=method,
                             include=include, where=where)
        same = _identical(existing, build[0].up) if len(build) == 1 else None
        if same is None:
            changes.extend(build)
        child = same.qualified_name if same is not None else qualified(part.schema, part_name)
        changes.append(Change(
            up=pretty(f"ALTER INDEX {qualified(table.schema, name)} ATTACH PARTITION {child}"),
            down=None, transactional=True, lock=Lock.SHARE_UPDATE_EXCLUSIVE, relation_bytes=0,
            kind=ChangeKind.ATTACH_INDEX, table=table.qualified_name, index=child))
    return tuple(changes)


def _identical(indexes: Sequence[Index], create_sql: str) -> Index | None:
    """The valid index among ``indexes`` that ``create_sql`` would build, in substance (whatever its name):
    a name taken by an identical index is the index to attach, not a reason to build another."""
    from dbtune.checks.matching import index_signature

    want = index_signature(create_sql)
    for ix in indexes:
        try:
            if ix.is_valid and not ix.is_partitioned and index_signature(ix.definition) == want:
                return ix
        except Exception:  # noqa: BLE001 - a definition pglast cannot read matches nothing
            continue
    return None


def _concurrent_definition(index: Index, *, if_not_exists: bool = True) -> str:
    """``pg_get_indexdef`` as ``CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] …``."""
    return index.definition.replace(" INDEX ", " INDEX CONCURRENTLY IF NOT EXISTS " if if_not_exists
                                    else " INDEX CONCURRENTLY ", 1)


def drop_index(index: Index, table: Relation | None = None) -> Change:
    """``DROP INDEX CONCURRENTLY IF EXISTS``; the down step recreates it from ``pg_get_indexdef``."""
    return Change(up=pretty(f"DROP INDEX CONCURRENTLY IF EXISTS {index.qualified_name}"),
                  down=pretty(_concurrent_definition(index)), transactional=False,
                  lock=Lock.SHARE_UPDATE_EXCLUSIVE, relation_bytes=index.size_bytes, kind=ChangeKind.DROP_INDEX,
                  table=table.qualified_name if table else None, index=index.qualified_name)


def rebuild_index(index: Index, table: Relation) -> tuple[Change, Change]:
    """Drop an INVALID index concurrently and build it again, concurrently, from its own definition.

    Both changes are of kind ``rebuild_index``; the rebuild has no down step (the index's previous state,
    invalid, is not worth restoring). The build has no ``IF NOT EXISTS``: were the drop skipped, the build
    must fail loudly rather than keep the invalid index."""
    drop = Change(up=pretty(f"DROP INDEX CONCURRENTLY IF EXISTS {index.qualified_name}"), down=None,
                  transactional=False, lock=Lock.SHARE_UPDATE_EXCLUSIVE, relation_bytes=index.size_bytes,
                  kind=ChangeKind.REBUILD_INDEX, table=table.qualified_name, index=index.qualified_name)
    build = Change(up=pretty(_concurrent_definition(index, if_not_exists=False)), down=None, transactional=False,
                   lock=Lock.SHARE_UPDATE_EXCLUSIVE, relation_bytes=table.size_bytes,
                   kind=ChangeKind.REBUILD_INDEX, table=table.qualified_name, index=index.qualified_name)
    return drop, build


def validate_constraint(table: Relation, constraint: str) -> Change:
    """``ALTER TABLE … VALIDATE CONSTRAINT`` (``SHARE UPDATE EXCLUSIVE``; rows are checked, writes go on)."""
    return Change(up=pretty(f"ALTER TABLE {table.qualified_name} VALIDATE CONSTRAINT {quote_ident(constraint)}"),
                  down=None, transactional=True, lock=Lock.SHARE_UPDATE_EXCLUSIVE,
                  relation_bytes=table.size_bytes, kind=ChangeKind.VALIDATE_CONSTRAINT, table=table.qualified_name)


def set_parameter(target: str, name: str, setting: str, value: str, *, database: str | None = None) -> Change:
    """``ALTER DATABASE|ROLE <name> [IN DATABASE <db>] SET <setting> = '<value>'`` (``target`` is
    ``"DATABASE"`` or ``"ROLE"``); new sessions pick it up, existing ones keep theirs."""
    scope = f" IN DATABASE {quote_ident(database)}" if database else ""
    up = f"ALTER {target} {quote_ident(name)}{scope} SET {setting} = {quote_literal(value)}"
    down = f"ALTER {target} {quote_ident(name)}{scope} RESET {setting}"
    return Change(up=pretty(up), down=pretty(down), transactional=True, lock=Lock.NONE,
                  kind=ChangeKind.SET_PARAMETER)


def _partitions(snapshot: Snapshot, table: Relation) -> list[Relation]:
    """The direct partitions of ``table``, by schema and name."""
    return sorted((r for r in snapshot.relations.values() if r.parent_oid == table.oid),
                  key=lambda r: (r.schema, r.name))


def add_constraint(snapshot: Snapshot, table: Relation, name: str, definition: str, *,
                   kind: str) -> tuple[Change, ...]:
    """A foreign key (``kind="f"``) or check constraint (``"c"``) added ``NOT VALID`` (no scan of existing
    rows; new rows are checked at once), then validated in a separate step under ``SHARE UPDATE EXCLUSIVE``
    (https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES).

    A foreign key on a partitioned table before PostgreSQL 18 (``server_version_num`` < 180000), which
    refuses ``NOT VALID`` there: the key is added ``NOT VALID`` and validated on each leaf partition
    (partitioned partitions recursively, bottom up), then added to the parent, which attaches the
    partitions' validated keys instead of scanning them
    (https://www.postgresql.org/docs/current/ddl-partitioning.html#DDL-PARTITIONING-DECLARATIVE-MAINTENANCE).
    From 18 on the parent's ``NOT VALID`` and ``VALIDATE`` cover its partitions.
    """
    ident = quote_ident(name)
    lock = Lock.SHARE_ROW_EXCLUSIVE if kind == "f" else Lock.ACCESS_EXCLUSIVE
    if kind == "f" and table.is_partitioned and snapshot.server.version_num < 180000:
        changes: list[Change] = []
        for part in _partitions(snapshot, table):
            changes.extend(add_constraint(snapshot, part, name, definition, kind=kind))
        changes.append(Change(
            up=pretty(f"ALTER TABLE {table.qualified_name} ADD CONSTRAINT {ident} {definition}"),
            down=pretty(f"ALTER TABLE {table.qualified_name} DROP CONSTRAINT IF EXISTS {ident}"),
            transactional=True, lock=lock, relation_bytes=0, kind=ChangeKind.ADD_CONSTRAINT,
            table=table.qualified_name, constraint=name))
        return tuple(changes)
    add = Change(up=pretty(f"ALTER TABLE {table.qualified_name} ADD CONSTRAINT {ident} {definition} NOT VALID"),
                 down=pretty(f"ALTER TABLE {table.qualified_name} DROP CONSTRAINT IF EXISTS {ident}"),
                 transactional=True, lock=lock, relation_bytes=0,
                 kind=ChangeKind.ADD_CONSTRAINT, table=table.qualified_name, constraint=name)
    return (add, validate_constraint(table, name))


def reset_storage_parameters(table: Relation, parameters: dict[str, str]) -> Change:
    """``ALTER TABLE … RESET (name, …)`` for storage parameters (``autovacuum_enabled``,
    ``toast.autovacuum_enabled`` …); the down step sets them back to ``parameters``' values. Autovacuum's
    parameters take ``SHARE UPDATE EXCLUSIVE`` (reads and writes go on) and rewrite nothing
    (https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-STORAGE-PARAMETER).
    Of kind ``other``: shown with the finding, not made a migration step."""
    names = ", ".join(parameters)
    values = ", ".join(f"{name} = {quote_literal(value)}" for name, value in parameters.items())
    return Change(up=pretty(f"ALTER TABLE {table.qualified_name} RESET ({names})"),
                  down=pretty(f"ALTER TABLE {table.qualified_name} SET ({values})"), transactional=True,
                  lock=Lock.SHARE_UPDATE_EXCLUSIVE, relation_bytes=0, kind=ChangeKind.OTHER,
                  table=table.qualified_name)


def set_not_null(table: Relation, column: str) -> Change:
    """``ALTER TABLE … ALTER COLUMN … SET NOT NULL`` where a validated ``CHECK (column IS NOT NULL)``
    already proves it: PostgreSQL 12+ then skips the scan, so ``ACCESS EXCLUSIVE`` is held only for the
    catalog update (https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL).
    Shown with the finding; ``dbtune migrate`` does not carry it yet (kind ``OTHER``)."""
    alter = f"ALTER TABLE {table.qualified_name} ALTER COLUMN {quote_ident(column)}"
    return Change(up=pretty(f"{alter} SET NOT NULL"), down=pretty(f"{alter} DROP NOT NULL"), transactional=True,
                  lock=Lock.ACCESS_EXCLUSIVE, relation_bytes=0, kind=ChangeKind.OTHER, table=table.qualified_name)
