"""The statements of one migration, as the lint rules see them.

A reader (:mod:`dbtune.migrate.sqlfile` for SQL files, :mod:`dbtune.migrate.alembic_source` for Alembic
revisions) yields :class:`RawStatement`\\ s in the order they run; :func:`annotate` then follows the
session through them and records, for each statement, the transaction block it runs in, whether a
``lock_timeout`` is in effect, and which tables the file created before it.

The session model is PostgreSQL's:

* ``BEGIN``/``START TRANSACTION`` opens a transaction block, ``COMMIT``/``END``/``ROLLBACK``/``PREPARE
  TRANSACTION`` closes it (``… AND CHAIN`` keeps one open);
  https://www.postgresql.org/docs/current/sql-begin.html;
* ``SET lock_timeout`` lasts for the session, ``SET LOCAL lock_timeout`` until the end of the current
  transaction (outside a transaction block it has no effect); ``RESET``, ``SET … TO DEFAULT`` and a zero
  value leave no timeout; ``set_config('lock_timeout', v, is_local)`` counts as the matching ``SET``;
  https://www.postgresql.org/docs/current/sql-set.html;
* several statements sent in one query string (one ``op.execute("…; …")``) run as one implicit
  transaction block;
  https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-MULTI-STATEMENT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pglast import ast, enums

TableName = tuple[str | None, str]
"""A relation as written: (schema or None, name), identifiers already case-folded by the parser."""

ALEMBIC_TRANSACTION = "Alembic's migration transaction"


@dataclass(frozen=True)
class RawStatement:
    """One statement as a reader found it, before the session is followed.

    ``start``/``end`` are character offsets of the statement in the SQL the reader parsed (a SQL file's
    text, or one ``op.execute`` string); ``context`` is set by the Alembic reader: ``"transaction"`` for a
    statement in Alembic's migration transaction, ``"autocommit"`` inside ``autocommit_block()``, and
    ``None`` for a plain SQL file, whose transactions come from its own ``BEGIN``/``COMMIT``.
    ``runner_lock_timeout`` is set when whatever runs the statement sets ``lock_timeout`` itself (dbtune's
    step helpers).
    """

    sql: str
    line: int
    end_line: int
    node: ast.Node | None
    error: str | None = None
    error_line: int | None = None
    origin: str = ""
    exact_lines: bool = True
    context: str | None = None
    implicit_block: bool = False
    runner_lock_timeout: bool = False
    start: int = 0
    end: int = 0
    section: str = ""


@dataclass(frozen=True)
class Statement:
    """One statement of a migration file, in the order it runs.

    ``line``/``end_line`` are 1-based lines of the file; ``node`` is the statement's pglast node
    (``RawStmt.stmt``), ``None`` when it does not parse, and then ``error`` holds the parser's message and
    ``error_line`` its line. ``transaction`` says which transaction block the statement runs in (empty when
    it runs in autocommit, each statement its own transaction). ``lock_timeout`` is whether a
    ``lock_timeout`` set earlier in the file is in effect. ``created_tables`` holds the tables created by
    earlier statements of the same file. ``origin`` is empty for a SQL file and names the Alembic operation
    (``op.execute``, ``op.create_index`` …) otherwise; ``exact_lines`` is false when lines inside ``sql``
    do not map onto lines of the file (the SQL was rebuilt from an Alembic operation). ``section`` is
    ``upgrade`` or ``downgrade`` for Alembic revisions.
    """

    index: int
    sql: str
    line: int
    end_line: int
    node: ast.Node | None
    transaction: str
    lock_timeout: bool
    created_tables: frozenset[TableName]
    error: str | None = None
    error_line: int | None = None
    origin: str = ""
    exact_lines: bool = True
    section: str = ""
    transaction_id: int = 0

    @property
    def in_transaction(self) -> bool:
        """Whether the statement runs inside a transaction block (explicit, Alembic's, or implicit)."""
        return bool(self.transaction)

    @property
    def is_alembic(self) -> bool:
        return bool(self.origin)


def table_name(rv: ast.RangeVar | None) -> TableName:
    """(schema or None, name) of a ``RangeVar``."""
    if rv is None:
        return (None, "")
    return (rv.schemaname, rv.relname or "")


def display_name(name: TableName) -> str:
    """``schema.name`` or ``name``, as written (quoting left out)."""
    schema, rel = name
    return f"{schema}.{rel}" if schema else rel


def same_table(a: TableName, b: TableName) -> bool:
    """Whether two names can denote the same table: equal names, and equal schemas where both give one."""
    return a[1] == b[1] and (a[0] is None or b[0] is None or a[0] == b[0])


def created_by(node: ast.Node | None) -> TableName | None:
    """The relation a ``CREATE TABLE`` (``… AS``, ``SELECT … INTO``, ``CREATE MATERIALIZED VIEW``) makes."""
    if isinstance(node, ast.CreateStmt):
        return table_name(node.relation)
    if isinstance(node, ast.CreateTableAsStmt) and node.into is not None:
        return table_name(node.into.rel)
    if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
        return table_name(node.intoClause.rel)
    return None


_ZERO = re.compile(r"^\s*0+(\.0*)?\s*(us|ms|s|min|h|d)?\s*$")


def _const_text(node: Any) -> str | None:
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        for attr in ("sval", "ival", "fval"):
            if hasattr(val, attr):
                return str(getattr(val, attr))
    return None


def _const_bool(node: Any) -> bool | None:
    if isinstance(node, ast.A_Const) and isinstance(node.val, ast.Boolean):
        return bool(node.val.boolval)
    return None


def lock_timeout_change(node: ast.Node | None) -> tuple[bool, bool] | None:
    """How a statement changes ``lock_timeout``: ``(is_set, is_local)``, or ``None`` if it does not.

    ``is_set`` is false for ``RESET``, ``SET … TO DEFAULT``, ``RESET ALL`` and a zero value (no timeout).
    """
    if isinstance(node, ast.VariableSetStmt):
        if node.kind == enums.VariableSetKind.VAR_RESET_ALL:
            return (False, False)
        if (node.name or "").lower() != "lock_timeout":
            return None
        if node.kind == enums.VariableSetKind.VAR_SET_VALUE:
            values = [_const_text(a) for a in node.args or ()]
            is_set = bool(values) and values[0] is not None and not _ZERO.match(values[0])
            return (is_set, bool(node.is_local))
        if node.kind in (enums.VariableSetKind.VAR_SET_DEFAULT, enums.VariableSetKind.VAR_RESET):
            return (False, bool(node.is_local))
        return None
    if isinstance(node, ast.SelectStmt) and node.targetList:
        for target in node.targetList:
            call = getattr(target, "val", None)
            if (isinstance(call, ast.FuncCall) and call.funcname and call.funcname[-1].sval == "set_config"
                    and call.args
                    and len(call.args) == 3 and (_const_text(call.args[0]) or "").lower() == "lock_timeout"):
                value = _const_text(call.args[1])
                return (value is not None and not _ZERO.match(value), bool(_const_bool(call.args[2])))
    return None


def annotate(raws: Iterable[RawStatement]) -> list[Statement]:
    """Follow the session through ``raws`` (in the order they run) and return the annotated statements."""
    statements: list[Statement] = []
    transaction = ""           # the block we are in ("" = autocommit)
    tx_id = 0                  # bumped for every new transaction block, to scope SET LOCAL
    context: str | None = None
    session_timeout = False
    local_timeout_tx: int | None = None
    created: set[TableName] = set()
    for raw in raws:
        if raw.context is not None and raw.context != context:
            context = raw.context
            if context == "autocommit":
                transaction = ""   # autocommit_block() commits Alembic's transaction first
            else:
                tx_id += 1
                transaction = ALEMBIC_TRANSACTION
        here = transaction
        if not here and raw.implicit_block:
            here = "one query string with other statements (an implicit transaction block)"
        timeout = session_timeout or (bool(transaction) and local_timeout_tx == tx_id) or raw.runner_lock_timeout
        statements.append(Statement(
            index=len(statements), sql=raw.sql, line=raw.line, end_line=raw.end_line, node=raw.node,
            transaction=here, lock_timeout=timeout, created_tables=frozenset(created), error=raw.error,
            error_line=raw.error_line, origin=raw.origin, exact_lines=raw.exact_lines, section=raw.section,
            transaction_id=tx_id if transaction else 0))
        node = raw.node
        if isinstance(node, ast.TransactionStmt):
            kind = enums.TransactionStmtKind
            if node.kind in (kind.TRANS_STMT_BEGIN, kind.TRANS_STMT_START):
                if not transaction:
                    tx_id += 1
                    transaction = f"the transaction block opened at line {raw.line}"
            elif node.kind in (kind.TRANS_STMT_COMMIT, kind.TRANS_STMT_ROLLBACK, kind.TRANS_STMT_PREPARE):
                if node.chain:
                    tx_id += 1
                else:
                    transaction = ""
        change = lock_timeout_change(node)
        if change is not None:
            is_set, is_local = change
            if is_local:
                local_timeout_tx = tx_id if (is_set and transaction) else None
            else:
                session_timeout = is_set
                if not is_set:
                    local_timeout_tx = None
        new = created_by(node)
        if new is not None:
            created.add(new)
    return statements


def partitioned_indexes(statements: Iterable[Statement]) -> frozenset[TableName]:
    """The indexes that ``statements`` show to be partitioned indexes: created ``ON ONLY`` a table, created
    on a table that a ``CREATE TABLE … PARTITION BY`` among them made, or the parent of an ``ALTER INDEX …
    ATTACH PARTITION``. An index takes its table's schema (``None`` when the table's is not written)."""
    statements = list(statements)
    partitioned_tables = [table_name(s.node.relation) for s in statements
                          if isinstance(s.node, ast.CreateStmt) and s.node.partspec is not None]
    found: set[TableName] = set()
    for stmt in statements:
        node = stmt.node
        if isinstance(node, ast.IndexStmt) and node.idxname and node.relation is not None:
            table = table_name(node.relation)
            if not node.relation.inh or any(same_table(table, t) for t in partitioned_tables):
                found.add((table[0], node.idxname))
        elif isinstance(node, ast.AlterTableStmt) and node.objtype == enums.ObjectType.OBJECT_INDEX \
                and any(c.subtype == enums.AlterTableType.AT_AttachPartition for c in node.cmds or ()):
            found.add(table_name(node.relation))
    return frozenset(found)
