"""Read the statements of an Alembic revision file without running it.

The file is parsed with :mod:`ast`. In ``upgrade()`` (and ``downgrade()`` on request), in source order:

* ``op.execute("…")``, ``op.execute(sa.text("…"))`` and ``op.get_bind().execute(text("…"))`` give their SQL,
  split into statements; a string literal, an implicit or ``+`` concatenation of literals, a module-level
  constant holding one, and ``textwrap.dedent`` of one are understood; SQL built at run time (f-strings,
  ``.format``) cannot be read and is noted;
* the schema operations ``op.create_index``, ``op.drop_index``, ``op.create_foreign_key``,
  ``op.create_unique_constraint``, ``op.create_primary_key``, ``op.create_check_constraint``,
  ``op.drop_constraint``, ``op.create_table``, ``op.drop_table``, ``op.add_column``, ``op.drop_column``,
  ``op.alter_column`` and ``op.rename_table`` (and their ``batch_alter_table`` forms) become the SQL they
  emit on PostgreSQL, so the same rules judge them. Their lines are the call's line.

A statement inside ``with op.get_context().autocommit_block():`` runs in autocommit; every other
statement runs inside Alembic's migration transaction (``transactional_ddl`` is on for PostgreSQL).
The SQL of the step helpers that dbtune's generated revisions call (``run_step``, ``build_index``,
``attach_index`` and ``add_constraint``, imported from ``dbtune.migrate.runtime``) runs in autocommit under
``lock_timeout``.
See https://alembic.sqlalchemy.org/en/latest/api/runtime.html#alembic.runtime.migration.MigrationContext.autocommit_block.
"""

from __future__ import annotations

import ast
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from pglast.parser import ParseError

from dbtune.migrate.sqlfile import split_statements
from dbtune.migrate.statements import RawStatement
from dbtune.pgsql import parse_sql
from dbtune.sqlnames import quote_ident, quote_literal

SECTIONS = ("upgrade", "downgrade")

# Batch operations take the table from ``batch_alter_table``; this is where it goes among the arguments.
_BATCH_TABLE_POSITION = {
    "create_index": 1, "create_unique_constraint": 1, "create_primary_key": 1, "create_check_constraint": 1,
    "create_foreign_key": 1, "drop_constraint": 1, "add_column": 0, "drop_column": 0, "alter_column": 0,
}
# dbtune's step helpers (dbtune.migrate.runtime): the position of their SQL argument.
_RUNTIME_SQL_ARG = {"run_step": 1, "build_index": 2, "attach_index": 2, "add_constraint": 3}
RUNTIME_HELPERS = frozenset(_RUNTIME_SQL_ARG)
_SA_TYPES = {
    "Integer": "integer", "BigInteger": "bigint", "SmallInteger": "smallint", "String": "varchar",
    "Unicode": "varchar", "Text": "text", "UnicodeText": "text", "Boolean": "boolean", "Date": "date",
    "DateTime": "timestamp", "TIMESTAMP": "timestamptz", "Time": "time", "Float": "double precision",
    "Numeric": "numeric", "Uuid": "uuid", "UUID": "uuid", "JSON": "json", "JSONB": "jsonb",
    "LargeBinary": "bytea", "Interval": "interval",
}


@dataclass
class AlembicSource:
    """What :func:`read_revision` found: statements per section, and notes on what it could not read."""

    sections: dict[str, list[RawStatement]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _name(node: ast.expr) -> str | None:
    """The dotted name of ``a.b.c``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _Reader:
    def __init__(self, tree: ast.Module) -> None:
        self.constants: dict[str, str] = {}
        self.op_names = {"op"}
        self.runtime: dict[str, str] = {}   # local name -> dbtune.migrate.runtime helper
        for stmt in tree.body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "alembic":
                self.op_names |= {a.asname or a.name for a in stmt.names if a.name == "op"}
            if isinstance(stmt, ast.ImportFrom) and stmt.module == "dbtune.migrate.runtime":
                self.runtime |= {a.asname or a.name: a.name for a in stmt.names if a.name in _RUNTIME_SQL_ARG}
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                value = self.text(stmt.value)
                if value is not None:
                    self.constants[stmt.targets[0].id] = value
        self.binds: set[str] = set()
        self.notes: list[str] = []

    # --- values -------------------------------------------------------------------------------------

    def text(self, node: ast.expr | None) -> str | None:
        """The string an expression evaluates to, when it can be known without running the file."""
        if node is None:
            return None
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.text(node.left), self.text(node.right)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.Name):
            return self.constants.get(node.id)
        if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
            func = _name(node.func) or ""
            last = func.split(".")[-1]
            if last in ("text", "dedent", "literal_column") or func in {f"{op}.f" for op in self.op_names}:
                inner = self.text(node.args[0])
                return textwrap.dedent(inner) if inner is not None and last == "dedent" else inner
        return None

    def literal(self, node: ast.expr | None) -> object:
        if isinstance(node, ast.Constant):
            return node.value
        text = self.text(node)
        return text

    def names(self, node: ast.expr | None) -> list[str] | None:
        """A list of column names (``["a", "b"]``); expressions (``sa.text("lower(b)")``) kept as SQL."""
        if not isinstance(node, (ast.List, ast.Tuple)):
            return None
        out = []
        for elt in node.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                out.append(quote_ident(elt.value))
            else:
                expr = self.text(elt)
                out.append(f"({expr})" if expr is not None else "unknown_expression")
        return out

    # --- walking ------------------------------------------------------------------------------------

    def walk(self, body: list[ast.stmt], autocommit: bool, batches: dict[str, tuple[str, str | None]],
             section: str) -> Iterator[RawStatement]:
        for stmt in body:
            if isinstance(stmt, (ast.With, ast.AsyncWith)):
                inner_ac, inner_batches = autocommit, dict(batches)
                for item in stmt.items:
                    call = item.context_expr
                    if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
                        if call.func.attr == "autocommit_block":
                            inner_ac = True
                        elif call.func.attr == "batch_alter_table" and isinstance(item.optional_vars, ast.Name):
                            table = self.text(call.args[0] if call.args else _kw(call, "table_name"))
                            schema = self.text(_kw(call, "schema"))
                            if table is not None:
                                inner_batches[item.optional_vars.id] = (table, schema)
                yield from self.walk(stmt.body, inner_ac, inner_batches, section)
            elif isinstance(stmt, (ast.If, ast.For, ast.While, ast.Try, ast.AsyncFor)):
                for part in ("body", "orelse", "finalbody"):
                    yield from self.walk(getattr(stmt, part, []), autocommit, batches, section)
                for handler in getattr(stmt, "handlers", []):
                    yield from self.walk(handler.body, autocommit, batches, section)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            else:
                if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                        and isinstance(stmt.targets[0], ast.Name) and self._is_bind(stmt.value)):
                    self.binds.add(stmt.targets[0].id)
                calls = sorted((n for n in ast.walk(stmt) if isinstance(n, ast.Call)),
                               key=lambda n: (n.lineno, n.col_offset))
                for call in calls:
                    for raw in self.call(call, batches):
                        yield replace(raw, context=raw.context or ("autocommit" if autocommit else "transaction"),
                                      section=section)

    def _is_bind(self, node: ast.expr) -> bool:
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("get_bind", "connection") and _name(node.func.value) in self.op_names)

    def call(self, call: ast.Call, batches: dict[str, tuple[str, str | None]]) -> Iterator[RawStatement]:
        if isinstance(call.func, ast.Name) and call.func.id in self.runtime:
            helper = self.runtime[call.func.id]
            position = _RUNTIME_SQL_ARG[helper]
            arg = call.args[position] if len(call.args) > position else _kw(call, "sql")
            for raw in self.execute(call, arg, helper):
                yield replace(raw, context="autocommit", runner_lock_timeout=True)
            return
        if not isinstance(call.func, ast.Attribute):
            return
        method, receiver = call.func.attr, call.func.value
        receiver_name = _name(receiver)
        if method in ("execute", "exec_driver_sql") and (
                receiver_name in self.op_names or receiver_name in self.binds or self._is_bind(receiver)):
            yield from self.execute(call, call.args[0] if call.args else _kw(call, "sqltext") or _kw(call, "statement"),
                                    "op.execute")
            return
        args, kwargs = list(call.args), {k.arg: k.value for k in call.keywords if k.arg}
        if receiver_name in batches and method in _BATCH_TABLE_POSITION:
            table, schema = batches[receiver_name]
            args.insert(_BATCH_TABLE_POSITION[method], ast.Constant(table))
            if schema is not None:
                kwargs.setdefault("schema", ast.Constant(schema))
        elif receiver_name in batches and method == "drop_index":
            table, schema = batches[receiver_name]
            if schema is not None:
                kwargs.setdefault("schema", ast.Constant(schema))
        elif receiver_name not in self.op_names:
            return
        render = getattr(self, f"op_{method}", None)
        if render is None:
            return
        sqls = render(args, kwargs)
        for sql in sqls:
            yield _parsed(sql, call, f"op.{method}")

    def execute(self, call: ast.Call, arg: ast.expr | None, origin: str) -> Iterator[RawStatement]:
        sql = self.text(arg)
        if sql is None:
            self.notes.append(f"line {call.lineno}: the SQL of this {origin}() is built at run time; not linted")
            return
        pieces = split_statements(sql)
        const = _single_literal(arg)
        exact = const is not None and (const.end_lineno or const.lineno) - const.lineno == sql.count("\n")
        for piece in pieces:
            if exact and const is not None:
                line, end_line = const.lineno + piece.line - 1, const.lineno + piece.end_line - 1
                error_line = None if piece.error_line is None else const.lineno + piece.error_line - 1
            else:
                line, end_line = call.lineno, call.end_lineno or call.lineno
                error_line = None if piece.error is None else call.lineno
            yield replace(piece, line=line, end_line=end_line, error_line=error_line, origin=origin,
                          exact_lines=exact, implicit_block=len(pieces) > 1)

    # --- operations, rendered as the SQL Alembic emits on PostgreSQL ---------------------------------

    def _table(self, node: ast.expr | None, schema: ast.expr | None) -> str:
        name = self.text(node) or "unknown_table"
        sch = self.text(schema)
        return f"{quote_ident(sch)}.{quote_ident(name)}" if sch else quote_ident(name)

    def _ident(self, node: ast.expr | None, default: str) -> str:
        return quote_ident(self.text(node) or default)

    def _arg(self, args: list[ast.expr], kwargs: dict[str, ast.expr], pos: int, name: str) -> ast.expr | None:
        return args[pos] if len(args) > pos else kwargs.get(name)

    def _flag(self, kwargs: dict[str, ast.expr], name: str) -> bool:
        return self.literal(kwargs.get(name)) is True

    def op_create_table(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        return [f"CREATE TABLE {self._table(self._arg(args, kwargs, 0, 'table_name'), kwargs.get('schema'))} ()"]

    def op_drop_table(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        return [f"DROP TABLE {self._table(self._arg(args, kwargs, 0, 'table_name'), kwargs.get('schema'))}"]

    def op_create_index(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        name = self._ident(self._arg(args, kwargs, 0, "index_name"), "unnamed_index")
        table = self._table(self._arg(args, kwargs, 1, "table_name"), kwargs.get("schema"))
        columns = self.names(self._arg(args, kwargs, 2, "columns")) or ["unknown_column"]
        unique = "UNIQUE " if self._flag(kwargs, "unique") else ""
        concurrently = "CONCURRENTLY " if self._flag(kwargs, "postgresql_concurrently") else ""
        exists = "IF NOT EXISTS " if self._flag(kwargs, "if_not_exists") else ""
        using = self.text(kwargs.get("postgresql_using"))
        where = self.text(kwargs.get("postgresql_where"))
        return [f"CREATE {unique}INDEX {concurrently}{exists}{name} ON {table}"
                + (f" USING {quote_ident(using)}" if using else "") + f" ({', '.join(columns)})"
                + (f" WHERE {where}" if where else "")]

    def op_drop_index(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        name = self._table(self._arg(args, kwargs, 0, "index_name"), kwargs.get("schema"))
        concurrently = "CONCURRENTLY " if self._flag(kwargs, "postgresql_concurrently") else ""
        exists = "IF EXISTS " if self._flag(kwargs, "if_exists") else ""
        return [f"DROP INDEX {concurrently}{exists}{name}"]

    def _add_constraint(self, name_node: ast.expr | None, table: str, body: str) -> str:
        name = self.text(name_node)
        return f"ALTER TABLE {table} ADD " + (f"CONSTRAINT {quote_ident(name)} " if name else "") + body

    def op_create_foreign_key(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        source = self._table(self._arg(args, kwargs, 1, "source_table"), kwargs.get("source_schema"))
        referent = self._table(self._arg(args, kwargs, 2, "referent_table"), kwargs.get("referent_schema"))
        local = self.names(self._arg(args, kwargs, 3, "local_cols")) or ["unknown_column"]
        remote = self.names(self._arg(args, kwargs, 4, "remote_cols")) or ["unknown_column"]
        body = f"FOREIGN KEY ({', '.join(local)}) REFERENCES {referent} ({', '.join(remote)})"
        if self._flag(kwargs, "postgresql_not_valid"):
            body += " NOT VALID"
        return [self._add_constraint(self._arg(args, kwargs, 0, "constraint_name"), source, body)]

    def op_create_unique_constraint(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 1, "table_name"), kwargs.get("schema"))
        columns = self.names(self._arg(args, kwargs, 2, "columns")) or ["unknown_column"]
        body = f"UNIQUE ({', '.join(columns)})"
        where = self.text(kwargs.get("postgresql_where"))
        if where:  # SQLAlchemy refuses this argument; the rule for partial unique constraints explains
            body += f" WHERE {where}"
        return [self._add_constraint(self._arg(args, kwargs, 0, "constraint_name"), table, body)]

    def op_create_primary_key(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 1, "table_name"), kwargs.get("schema"))
        columns = self.names(self._arg(args, kwargs, 2, "columns")) or ["unknown_column"]
        return [self._add_constraint(self._arg(args, kwargs, 0, "constraint_name"), table,
                                     f"PRIMARY KEY ({', '.join(columns)})")]

    def op_create_check_constraint(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 1, "table_name"), kwargs.get("schema"))
        condition = self.text(self._arg(args, kwargs, 2, "condition")) or "true"
        body = f"CHECK ({condition})" + (" NOT VALID" if self._flag(kwargs, "postgresql_not_valid") else "")
        return [self._add_constraint(self._arg(args, kwargs, 0, "constraint_name"), table, body)]

    def op_drop_constraint(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 1, "table_name"), kwargs.get("schema"))
        return [f"ALTER TABLE {table} DROP CONSTRAINT "
                f"{self._ident(self._arg(args, kwargs, 0, 'constraint_name'), 'unnamed_constraint')}"]

    def _column_type(self, node: ast.expr | None) -> str:
        if isinstance(node, ast.Call):
            node = node.func
        name = _name(node) if node is not None else None
        return _SA_TYPES.get((name or "").split(".")[-1], "text")

    def op_add_column(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 0, "table_name"), kwargs.get("schema"))
        column = self._arg(args, kwargs, 1, "column")
        if not isinstance(column, ast.Call) or not column.args:
            return [f"ALTER TABLE {table} ADD COLUMN unknown_column text"]
        col_kwargs = {k.arg: k.value for k in column.keywords if k.arg}
        name = self._ident(column.args[0], "unknown_column")
        type_sql = self._column_type(column.args[1] if len(column.args) > 1 else None)
        sql = f"ALTER TABLE {table} ADD COLUMN {name} {type_sql}"
        default = col_kwargs.get("server_default")
        if default is not None:
            if isinstance(default, ast.Constant) and isinstance(default.value, str):
                sql += f" DEFAULT {quote_literal(default.value)}"
            elif (text := self.text(default)) is not None:
                sql += f" DEFAULT {text}"
        if self.literal(col_kwargs.get("nullable")) is False or self.literal(col_kwargs.get("primary_key")) is True:
            sql += " NOT NULL"
        return [sql]

    def op_drop_column(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 0, "table_name"), kwargs.get("schema"))
        return [f"ALTER TABLE {table} DROP COLUMN {self._ident(self._arg(args, kwargs, 1, 'column_name'), 'c')}"]

    def op_alter_column(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 0, "table_name"), kwargs.get("schema"))
        column = self._ident(self._arg(args, kwargs, 1, "column_name"), "unknown_column")
        out = []
        if "type_" in kwargs:
            out.append(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {self._column_type(kwargs['type_'])}")
        nullable = self.literal(kwargs.get("nullable"))
        if nullable is False:
            out.append(f"ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL")
        elif nullable is True:
            out.append(f"ALTER TABLE {table} ALTER COLUMN {column} DROP NOT NULL")
        if "server_default" in kwargs:
            default = self.text(kwargs["server_default"])
            out.append(f"ALTER TABLE {table} ALTER COLUMN {column} "
                       + (f"SET DEFAULT {default}" if default is not None else "DROP DEFAULT"))
        new_name = self.text(kwargs.get("new_column_name"))
        if new_name:
            out.append(f"ALTER TABLE {table} RENAME COLUMN {column} TO {quote_ident(new_name)}")
        return out

    def op_rename_table(self, args: list[ast.expr], kwargs: dict[str, ast.expr]) -> list[str]:
        table = self._table(self._arg(args, kwargs, 0, "old_table_name"), kwargs.get("schema"))
        return [f"ALTER TABLE {table} RENAME TO {self._ident(self._arg(args, kwargs, 1, 'new_table_name'), 't')}"]


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def _single_literal(node: ast.expr | None) -> ast.Constant | None:
    """The string literal the SQL came from, unwrapping ``sa.text(...)``, when it is one literal."""
    while isinstance(node, ast.Call) and len(node.args) == 1:
        if (_name(node.func) or "").split(".")[-1] not in ("text", "dedent"):
            return None
        node = node.args[0]
    return node if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _parsed(sql: str, call: ast.Call, origin: str) -> RawStatement:
    line, end_line = call.lineno, call.end_lineno or call.lineno
    try:
        nodes = parse_sql(sql)
    except ParseError as exc:
        return RawStatement(sql=sql, line=line, end_line=end_line, node=None, error=str(exc.args[0]),
                            error_line=line, origin=origin, exact_lines=False)
    return RawStatement(sql=sql, line=line, end_line=end_line, node=nodes[0].stmt, origin=origin, exact_lines=False)


def read_revision(text: str, sections: tuple[str, ...] = ("upgrade",)) -> AlembicSource:
    """The statements of an Alembic revision's ``sections`` (functions), in the order they run.

    A file that is not valid Python gives one statement with the ``SyntaxError`` as its ``error``; a file
    without the section functions gives a note and no statements.
    """
    result = AlembicSource()
    try:
        tree = ast.parse(text)
    except SyntaxError as exc:
        line = exc.lineno or 1
        result.sections[sections[0]] = [RawStatement(
            sql="", line=line, end_line=line, node=None, error=f"Python syntax error: {exc.msg}",
            error_line=line, origin="python", exact_lines=False, section=sections[0])]
        return result
    reader = _Reader(tree)
    functions = {f.name: f for f in tree.body if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))}
    for section in sections:
        if section not in functions:
            if section == "upgrade":
                result.notes.append("no upgrade() function: not an Alembic revision, nothing linted")
                break
            result.notes.append(f"no {section}() function")
            continue
        result.sections[section] = list(reader.walk(functions[section].body, False, {}, section))
    result.notes.extend(reader.notes)
    return result


def runtime_calls(text: str, section: str = "upgrade") -> Counter[str]:
    """How many times the ``section`` function of a revision calls each helper imported from
    ``dbtune.migrate.runtime`` (by the helper's own name, an ``import … as`` followed), as written: the
    totals of ``dbtune migrate apply``'s progress bars. Empty for a file that is not valid Python."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return Counter()
    helpers = {a.asname or a.name: a.name for stmt in tree.body
               if isinstance(stmt, ast.ImportFrom) and stmt.module == "dbtune.migrate.runtime" for a in stmt.names}
    calls: Counter[str] = Counter()
    for function in tree.body:
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)) and function.name == section:
            calls.update(helpers[node.func.id] for node in ast.walk(function)
                         if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in helpers)
    return calls
