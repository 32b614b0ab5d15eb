"""What a DDL statement does to tables, read from its pglast node: the lock it takes, on which table, and
whether it may run in a transaction block. Shared by the migration lint rules.

Lock levels follow https://www.postgresql.org/docs/current/explicit-locking.html#LOCKING-TABLES and the
"Notes" of each command's page (``ALTER TABLE`` lists the lock of every subcommand).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from pglast import ast, enums, prettify, visitors
from pglast.parser import ParseError, scan

from dbtune.migrate.statements import TableName, display_name, table_name
from dbtune.pgsql import render  # noqa: F401 - the printer the lint rules import from here

LOCK_RANK = {
    "ACCESS SHARE": 1, "ROW SHARE": 2, "ROW EXCLUSIVE": 3, "SHARE UPDATE EXCLUSIVE": 4, "SHARE": 5,
    "SHARE ROW EXCLUSIVE": 6, "EXCLUSIVE": 7, "ACCESS EXCLUSIVE": 8,
}
SUE = "SHARE UPDATE EXCLUSIVE"
AT = enums.AlterTableType

# ALTER TABLE subcommands that take less than ACCESS EXCLUSIVE.
_ALTER_TABLE_LOCKS = {
    AT.AT_ValidateConstraint: SUE, AT.AT_SetStatistics: SUE, AT.AT_ClusterOn: SUE, AT.AT_DropCluster: SUE,
    AT.AT_SetOptions: SUE, AT.AT_ResetOptions: SUE, AT.AT_SetRelOptions: SUE, AT.AT_ResetRelOptions: SUE,
    AT.AT_AttachPartition: SUE, AT.AT_EnableTrig: "SHARE ROW EXCLUSIVE",
    AT.AT_DisableTrig: "SHARE ROW EXCLUSIVE", AT.AT_EnableTrigAll: "SHARE ROW EXCLUSIVE",
    AT.AT_DisableTrigAll: "SHARE ROW EXCLUSIVE", AT.AT_EnableTrigUser: "SHARE ROW EXCLUSIVE",
    AT.AT_DisableTrigUser: "SHARE ROW EXCLUSIVE",
}
_LOCK_MODES = {1: "ACCESS SHARE", 2: "ROW SHARE", 3: "ROW EXCLUSIVE", 4: SUE, 5: "SHARE",
               6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE"}


def pretty(sql: str) -> str:
    """``sql`` pretty-printed with a final ``;`` (unchanged but for the ``;`` if pglast cannot parse it)."""
    try:
        return str(prettify(sql, semicolon_after_last_statement=True))
    except ParseError:
        return sql.rstrip().rstrip(";") + ";"


def with_changes(node: ast.Node, **fields: object) -> ast.Node:
    """A copy of ``node`` with ``fields`` replaced."""
    new = copy.deepcopy(node)
    for key, value in fields.items():
        setattr(new, key, value)
    return new


def alter_table(node: ast.Node | None) -> ast.AlterTableStmt | None:
    """The node if it is ``ALTER TABLE`` (not ``ALTER INDEX``/``SEQUENCE``/``VIEW``)."""
    if isinstance(node, ast.AlterTableStmt) and node.objtype == enums.ObjectType.OBJECT_TABLE:
        return node
    return None


def commands(node: ast.Node | None, *subtypes: enums.AlterTableType) -> Iterator[ast.AlterTableCmd]:
    """The subcommands of an ``ALTER TABLE`` of the given kinds."""
    stmt = alter_table(node)
    for cmd in (stmt.cmds or ()) if stmt else ():
        if cmd.subtype in subtypes:
            yield cmd


def added_constraints(node: ast.Node | None, *kinds: enums.ConstrType) -> Iterator[ast.Constraint]:
    """The table constraints an ``ALTER TABLE … ADD CONSTRAINT`` adds, of the given kinds."""
    for cmd in commands(node, AT.AT_AddConstraint):
        if isinstance(cmd.def_, ast.Constraint) and cmd.def_.contype in kinds:
            yield cmd.def_


def _foreign_key(con: ast.Constraint) -> tuple[object, ...]:
    """What identifies a foreign key across the tables of a partition tree: name, columns, referenced
    table and columns."""
    return (con.conname, tuple(a.sval for a in con.fk_attrs or ()), table_name(con.pktable),
            tuple(a.sval for a in con.pk_attrs or ()))


# squawk's rules that report the partitioned table's ADD of :func:`attaching_foreign_keys`.
ATTACHING_FOREIGN_KEY_IGNORES = "adding-foreign-key-constraint, constraint-missing-not-valid"


def attaching_foreign_keys(nodes: Iterable[ast.Node | None]) -> frozenset[int]:
    """The positions in ``nodes`` (statements in the order they run) of each ``ADD CONSTRAINT … FOREIGN
    KEY`` without ``NOT VALID`` that comes after the same key (name, columns, referenced table and columns)
    was added ``NOT VALID`` to other tables and validated there: how a foreign key reaches a partitioned
    table before PostgreSQL 18, which refuses ``NOT VALID`` on one. Its ``ADD`` attaches the partitions'
    validated keys without scanning them
    (https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES)."""
    not_valid: dict[str, list[tuple[object, ...]]] = {}  # constraint name -> keys added NOT VALID
    validated: set[tuple[object, ...]] = set()
    found: set[int] = set()
    for n, node in enumerate(nodes):
        for cmd in commands(node, AT.AT_ValidateConstraint):
            validated.update(not_valid.get(cmd.name or "", ()))
        for con in added_constraints(node, enums.ConstrType.CONSTR_FOREIGN):
            key = _foreign_key(con)
            if con.skip_validation and con.conname:
                not_valid.setdefault(con.conname, []).append(key)
            elif key in validated:
                found.add(n)
    return frozenset(found)


def has_option(params: tuple[ast.DefElem, ...] | None, name: str) -> bool:
    """Whether a ``(…)`` option list (``VACUUM (FULL)``, ``REINDEX (CONCURRENTLY)``) holds ``name`` on."""
    for p in params or ():
        if isinstance(p, ast.DefElem) and p.defname == name:
            arg = p.arg
            if arg is None:
                return True
            text = str(getattr(arg, "sval", getattr(arg, "ival", getattr(arg, "boolval", "")))).lower()
            return text not in ("false", "off", "0")
    return False


def is_concurrent(node: ast.Node | None) -> bool:
    """``CREATE INDEX``/``DROP INDEX``/``REINDEX`` with ``CONCURRENTLY``."""
    if isinstance(node, ast.IndexStmt):
        return bool(node.concurrent)
    if isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_INDEX:
        return bool(node.concurrent)
    if isinstance(node, ast.ReindexStmt):
        return has_option(node.params, "concurrently")
    return False


def object_names(node: ast.DropStmt) -> list[TableName]:
    """The objects a ``DROP`` names, as (schema or None, name)."""
    out: list[TableName] = []
    for obj in node.objects or ():
        parts = [p.sval for p in obj] if isinstance(obj, tuple) else [getattr(obj, "sval", "?")]
        out.append((parts[-2] if len(parts) > 1 else None, parts[-1]))
    return out


@dataclass(frozen=True)
class TableLock:
    """A table lock a statement takes: the table (as written), the lock level, and what takes it."""

    table: TableName
    lock: str
    what: str
    via_index: bool = False  # ``table`` names an index; the lock is on the index's table

    @property
    def rank(self) -> int:
        return LOCK_RANK[self.lock]

    def describe(self) -> str:
        name = display_name(self.table)
        return f"the table of index {name}" if self.via_index else name


def _alter_table_lock(stmt: ast.AlterTableStmt) -> TableLock | None:
    strongest: str | None = None
    what = "ALTER TABLE"
    for cmd in stmt.cmds or ():
        lock = _ALTER_TABLE_LOCKS.get(cmd.subtype, "ACCESS EXCLUSIVE")
        if cmd.subtype == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint) and \
                cmd.def_.contype == enums.ConstrType.CONSTR_FOREIGN:
            lock = "SHARE ROW EXCLUSIVE"
        if cmd.subtype == AT.AT_DetachPartition and getattr(cmd.def_, "concurrent", False):
            lock = SUE
        if strongest is None or LOCK_RANK[lock] > LOCK_RANK[strongest]:
            strongest = lock
            what = f"ALTER TABLE ({cmd.subtype.name.removeprefix('AT_')})"
    return TableLock(table_name(stmt.relation), strongest, what) if strongest else None


def table_locks(node: ast.Node | None) -> list[TableLock]:
    """The table locks a statement takes, strongest per table; empty for statements that lock no table
    (or that this module does not know). ``DROP INDEX`` names the index: the lock is on its table."""
    out: list[TableLock] = []
    if alter_table(node) is not None:
        lock = _alter_table_lock(node)  # type: ignore[arg-type]
        if lock:
            out.append(lock)
        for fk in added_constraints(node, enums.ConstrType.CONSTR_FOREIGN):
            if fk.pktable is not None:
                out.append(TableLock(table_name(fk.pktable), "SHARE ROW EXCLUSIVE", "ADD FOREIGN KEY (referenced)"))
    elif isinstance(node, ast.IndexStmt) and not node.concurrent:
        out.append(TableLock(table_name(node.relation), "SHARE", "CREATE INDEX"))
    elif isinstance(node, ast.DropStmt) and not node.concurrent and node.removeType in (
            enums.ObjectType.OBJECT_INDEX, enums.ObjectType.OBJECT_TABLE):
        index = node.removeType == enums.ObjectType.OBJECT_INDEX
        out += [TableLock(name, "ACCESS EXCLUSIVE", f"DROP {'INDEX' if index else 'TABLE'}", index)
                for name in object_names(node)]
    elif isinstance(node, ast.RenameStmt) and node.relation is not None and node.renameType in (
            enums.ObjectType.OBJECT_TABLE, enums.ObjectType.OBJECT_COLUMN, enums.ObjectType.OBJECT_TABCONSTRAINT):
        out.append(TableLock(table_name(node.relation), "ACCESS EXCLUSIVE", "ALTER TABLE … RENAME"))
    elif isinstance(node, ast.ReindexStmt) and node.relation is not None and not is_concurrent(node):
        on_table = node.kind == enums.ReindexObjectType.REINDEX_OBJECT_TABLE
        out.append(TableLock(table_name(node.relation), "SHARE", "REINDEX", not on_table))
    elif isinstance(node, ast.TruncateStmt):
        out += [TableLock(table_name(rv), "ACCESS EXCLUSIVE", "TRUNCATE") for rv in node.relations or ()]
    elif isinstance(node, ast.ClusterStmt) and node.relation is not None:
        out.append(TableLock(table_name(node.relation), "ACCESS EXCLUSIVE", "CLUSTER"))
    elif isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd and has_option(node.options, "full"):
        out += [TableLock(table_name(r.relation), "ACCESS EXCLUSIVE", "VACUUM FULL")
                for r in node.rels or () if getattr(r, "relation", None) is not None]
    elif isinstance(node, ast.LockStmt):
        mode = _LOCK_MODES.get(int(node.mode or 8), "ACCESS EXCLUSIVE")
        out += [TableLock(table_name(rv), mode, "LOCK TABLE") for rv in node.relations or ()]
    elif isinstance(node, ast.CreateTrigStmt) and node.relation is not None:
        out.append(TableLock(table_name(node.relation), "SHARE ROW EXCLUSIVE", "CREATE TRIGGER"))
    elif isinstance(node, ast.CreateStmt) and node.partbound is not None and node.inhRelations:
        out.append(TableLock(table_name(node.inhRelations[0]), "ACCESS EXCLUSIVE", "CREATE TABLE … PARTITION OF"))
    elif isinstance(node, ast.RefreshMatViewStmt) and not node.concurrent and node.relation is not None:
        out.append(TableLock(table_name(node.relation), "ACCESS EXCLUSIVE", "REFRESH MATERIALIZED VIEW"))
    return out


# --- the invalid partial UNIQUE constraint ----------------------------------------------------------


@dataclass(frozen=True)
class PartialUnique:
    """``… ADD CONSTRAINT name UNIQUE (columns) WHERE predicate`` as written (SQL text of each part).
    ``new_table`` is true when it was written inside ``CREATE TABLE``."""

    table: str
    name: str | None
    columns: str
    include: str | None
    nulls: str | None
    predicate: str
    new_table: bool

    def index_sql(self, concurrently: bool) -> str:
        """The partial unique index that says what the constraint meant."""
        name = self.name or _index_name(self.table, self.columns)
        sql = (f"CREATE UNIQUE INDEX {'CONCURRENTLY ' if concurrently else ''}{name} "
               f"ON {self.table} ({self.columns})")
        if self.include:
            sql += f" INCLUDE ({self.include})"
        if self.nulls:
            sql += f" {self.nulls}"
        return pretty(f"{sql} WHERE {self.predicate}")


def _index_name(table: str, columns: str) -> str:
    words = [w for w in "".join(c if c.isalnum() or c == "_" else " " for c in f"{table.split('.')[-1]} {columns}")
             .lower().split() if w not in ("lower", "upper", "coalesce")]
    return "_".join([*words, "key"])[:63]


def partial_unique_constraint(sql: str) -> PartialUnique | None:
    """Recognise the ``UNIQUE (…) WHERE …`` table constraint, which PostgreSQL rejects as a syntax error
    (a constraint has no predicate; a partial unique index does). ``None`` when ``sql`` has none."""
    try:
        tokens = scan(sql)
    except ParseError:
        return None
    tokens = [t for t in tokens if t.name not in ("SQL_COMMENT", "C_COMMENT")]
    names = [t.name for t in tokens]

    def text(a: int, b: int) -> str:  # tokens a..b-1
        return sql[tokens[a].start: tokens[b - 1].end + 1] if b > a else ""

    def close(i: int) -> int:  # index of the ")" matching the "(" at i
        depth = 0
        for j in range(i, len(tokens)):
            depth += {"ASCII_40": 1, "ASCII_41": -1}.get(names[j], 0)
            if depth == 0:
                return j
        return len(tokens)

    if len(names) < 3 or names[0] not in ("ALTER", "CREATE"):
        return None
    for u in (i for i, n in enumerate(names) if n == "UNIQUE"):
        i = u + 1
        nulls = None
        if names[i:i + 3] == ["NULLS_P", "NOT", "DISTINCT"]:
            nulls, i = "NULLS NOT DISTINCT", i + 3
        elif names[i:i + 2] == ["NULLS_P", "DISTINCT"]:
            nulls, i = "NULLS DISTINCT", i + 2
        if i >= len(names) or names[i] != "ASCII_40":
            continue
        end = close(i)
        columns = text(i + 1, end)
        i = end + 1
        include = None
        if names[i:i + 2] == ["INCLUDE", "ASCII_40"]:
            inc_end = close(i + 1)
            include, i = text(i + 2, inc_end), inc_end + 1
        if i >= len(names) or names[i] != "WHERE":
            continue
        j, depth = i + 1, 0
        while j < len(names):
            depth += {"ASCII_40": 1, "ASCII_41": -1}.get(names[j], 0)
            if depth < 0 or (depth == 0 and names[j] in ("ASCII_44", "ASCII_59")):
                break
            j += 1
        predicate = text(i + 1, j)
        name = tokens[u - 1] if u >= 2 and names[u - 2] == "CONSTRAINT" else None
        return PartialUnique(table=_table_text(sql, tokens, names), name=sql[name.start:name.end + 1] if name else None,
                             columns=columns, include=include, nulls=nulls, predicate=predicate,
                             new_table=names[0] == "CREATE")
    return None


def _table_text(sql: str, tokens: list, names: list[str]) -> str:
    """The table name as written after ``ALTER TABLE [IF EXISTS] [ONLY]`` or ``CREATE TABLE [IF NOT EXISTS]``."""
    i = 2
    while i < len(names) and names[i] in ("IF_P", "NOT", "EXISTS", "ONLY"):
        i += 1
    j = i
    while j < len(names) and names[j] not in ("ADD_P", "ASCII_40", "ALTER", "DROP"):
        j += 1
    return sql[tokens[i].start: tokens[j - 1].end + 1] if j > i else "unknown_table"


def describe(name: TableName) -> str:
    """A table name for messages: ``schema.name`` or ``name``."""
    return display_name(name)


def function_names(node: ast.Node) -> list[str]:
    """The (unqualified, lower-case) names of the functions an expression calls, anywhere inside it."""
    names: list[str] = []

    class _Calls(visitors.Visitor):  # type: ignore[misc]
        def visit_FuncCall(self, ancestors: object, call: ast.FuncCall) -> None:
            if call.funcname:
                names.append(str(call.funcname[-1].sval).lower())

    _Calls()(node)
    return names
