"""Which columns of which tables a statement uses, and how: equality, range, ``IN``, join, ``ORDER BY``,
``GROUP BY``, ``LIKE``, ``IS NULL``, ``ON CONFLICT`` (see :class:`~dbtune.workload.model.Usage`).

How a statement is read:

1. pglast parses it with the server's grammar (PostgreSQL 18): a statement that does not parse, or is
   not a query (utility statements), gets a reason and no usage. ``EXPLAIN``, ``CREATE VIEW``, ``CREATE
   TABLE AS``/``MATERIALIZED VIEW``, ``DECLARE`` and ``PREPARE`` are looked through to their query.
2. sqlglot (dialect ``postgres``) parses it again for scopes: UPDATE, DELETE and MERGE are read as the
   SELECT of the rows they touch (target and FROM/USING relations, WHERE/ON condition), INSERT as its
   SELECT plus the ``ON CONFLICT`` columns. Table names are resolved through the schema's search path (a
   name that a visible CTE defines is the CTE, even where it shadows a table), then sqlglot's qualifier
   (``qualify_tables`` and ``qualify_columns`` with a ``MappingSchema`` of the catalog, the passes of
   ``qualify``) ties every column to its source.
3. Each scope's WHERE and JOIN … ON conditions, GROUP BY and ORDER BY are classified. A column of a
   subquery, CTE, LATERAL subquery or view is followed to the column or expression it comes from
   (through UNION branches too); a view also contributes the usage of its own definition (PostgreSQL
   inlines it). Partitioned tables are reported as written (the parent). Columns of set-returning
   functions, VALUES and aggregates have no table: they are listed in ``unresolved`` with the reason.
   Besides the kinds of use, each table gets its ORDER BY keys with their directions (clause by clause),
   every column the statement reads of it (the qualifier expands ``*``), its constant predicates (top-level
   AND terms such as ``status = 'pending'``, their constants read from pglast's tree and written with
   ``quote_literal``; a statement that hits the fingerprint cache gets its own constants) and the
   containment operators (``@>``, ``<@``, ``?``, ``?|``, ``?&``, ``&&``) used on each column.
4. An expression over the columns of one table (``lower(email)``, ``(payload ->> 'status')``,
   ``created_at::date``) is reported with the statement's own text of it, rendered by pglast: sqlglot's
   rendering is never used as SQL (it rewrites some constructs, e.g. ``interval $1``).

Results are cached per exact text, and per pglast fingerprint and the relations named (the fingerprint
ignores schemas: ``sales.orders`` and ``other.orders`` fingerprint alike), except for statements whose usage depends
on their constants (a ``LIKE`` pattern, an expression, ``ORDER BY 1``): those are cached per fingerprint
and the constants of the text (as the server's scanner reads them), so white space and comments still hit
the cache.
"""

from __future__ import annotations

import json
import logging
import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import sqlglot
from pglast import ast, enums, parser
from pglast.parser import ParseError
from pglast.stream import RawStream
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify_columns import qualify_columns
from sqlglot.optimizer.qualify_tables import qualify_tables
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema

from dbtune.catalog.model import Snapshot
from dbtune.pgsql import check_nesting, parse_sql
from dbtune.sqlnames import quote_literal
from dbtune.workload.model import (
    ConstantPredicate,
    ExpressionUse,
    PredicateOp,
    QueryUsage,
    SortKey,
    TableUsage,
    Usage,
)
from dbtune.workload.schema import SchemaRelation, WorkloadSchema
from dbtune.workload.statements import fields, named_relations, walk

DIALECT = "postgres"
DEFAULT_CACHE_SIZE = 10_000

# sqlglot logs a warning when it falls back to an opaque Command; the reason is reported instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_QUERY_STATEMENTS = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}
# Statements that carry a query in their "query" field: their usage is the query's.
_WRAPPERS = {"ExplainStmt", "ViewStmt", "CreateTableAsStmt", "DeclareCursorStmt", "PrepareStmt", "CopyStmt"}
_TEXT_TYPES = {exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR}
_COMPARISONS: dict[type[exp.Expr], Usage] = {
    exp.EQ: Usage.EQUALITY, exp.NullSafeEQ: Usage.EQUALITY,
    exp.GT: Usage.RANGE, exp.GTE: Usage.RANGE, exp.LT: Usage.RANGE, exp.LTE: Usage.RANGE,
}
_PATTERNS = (exp.ILike, exp.SimilarTo, exp.RegexpLike, exp.RegexpILike)
# jsonb and array containment and key-existence operators (what GIN's jsonb_ops and array_ops serve).
_CONTAINMENT: dict[type[exp.Expr], str] = {
    exp.ArrayContainsAll: "@>", exp.ArrayContainedBy: "<@", exp.ArrayOverlaps: "&&",
    exp.JSONBContainsTopKey: "?", exp.JSONBContainsAnyTopKeys: "?|", exp.JSONBContainsAllTopKeys: "?&",
}
_NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
_SUBQUERY = (exp.Subquery, exp.Query)


class _Unusable(Exception):
    """sqlglot cannot read or resolve the statement; the message is the reason."""


@dataclass(frozen=True)
class _Col:
    table: str
    column: str


@dataclass(frozen=True)
class _Expr:
    table: str
    text: str


_Target = _Col | _Expr


# --- pglast's side: the statement's own expressions -----------------------------------------------------


class _Text:
    """A statement's text and, built on first use, pglast's expression nodes keyed by the positions of
    the column references inside them (the same offsets sqlglot records for its columns)."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self._nodes: dict[frozenset[int], list[tuple[str, ast.Node]]] | None = None
        self._constants: dict[int, tuple[PredicateOp, list[int]]] | None = None
        self.const_nodes: list[ast.A_Const] = []

    def constant_operands(self, position: int) -> tuple[PredicateOp, list[int]] | None:
        """For the column reference at ``position``: ``=`` or ``IN`` with constants on the other side, and
        the ordinals of those constants among the statement's (:func:`_const_nodes`); else None."""
        if self._constants is None:
            # The same walk as _const_nodes' (this text is never a wrapper: those are looked through first).
            nodes = list(walk(parse_sql(self.sql)))
            self.const_nodes = [n for n in nodes if isinstance(n, ast.A_Const)]
            ordinal = {id(c): k for k, c in enumerate(self.const_nodes)}
            found: dict[int, tuple[PredicateOp, list[int]]] = {}
            for node in nodes:
                if not isinstance(node, ast.A_Expr) or not node.name or getattr(node.name[-1], "sval", "") != "=":
                    continue
                sides = [(node.lexpr, node.rexpr), (node.rexpr, node.lexpr)]
                for column, other in sides:
                    if not isinstance(column, ast.ColumnRef) or column.location is None:
                        continue
                    kind = node.kind
                    if kind == enums.A_Expr_Kind.AEXPR_OP and isinstance(other, ast.A_Const) and id(other) in ordinal:
                        found[column.location] = (PredicateOp.EQUAL, [ordinal[id(other)]])
                    elif (kind == enums.A_Expr_Kind.AEXPR_IN and column is node.lexpr and isinstance(other, tuple)
                          and other and all(isinstance(c, ast.A_Const) and id(c) in ordinal for c in other)):
                        found[column.location] = (PredicateOp.IN, [ordinal[id(c)] for c in other])
            self._constants = found
        return self._constants.get(position)

    def _index(self) -> dict[frozenset[int], list[tuple[str, ast.Node]]]:
        if self._nodes is None:
            nodes: dict[frozenset[int], list[tuple[str, ast.Node]]] = {}
            for node in walk(parse_sql(self.sql)):
                for context, operand in _operands(node):
                    if isinstance(operand, ast.Node) and not isinstance(operand, ast.ColumnRef):
                        key = frozenset(c.location for c in _column_refs(operand) if c.location is not None)
                        if key:
                            nodes.setdefault(key, []).append((context, operand))
            self._nodes = nodes
        return self._nodes

    def render(self, positions: dict[int, str], context: str) -> str | None:
        """pglast's text of the expression whose column references sit at ``positions`` (offset → the
        base column each one resolves to), table qualifiers dropped; None when there is none."""
        found = self._index().get(frozenset(positions))
        if not found:
            return None
        node = next((n for c, n in found if c == context), found[0][1])
        saved: list[tuple[ast.ColumnRef, tuple[ast.Node, ...] | None]] = []
        try:
            for ref in _column_refs(node):
                if ref.location in positions:
                    saved.append((ref, ref.fields))
                    ref.fields = (ast.String(sval=positions[ref.location]),)
            return RawStream()(node)
        finally:
            for ref, old in saved:
                ref.fields = old


def _const_nodes(text: str) -> list[ast.A_Const]:
    """The constants (``A_Const`` nodes) of a statement in pglast's walk order, looked through the
    wrappers :meth:`UsageAnalyzer.usage` looks through (``EXPLAIN …``): statements with one fingerprint
    have their constants in the same places."""
    stmts = parse_sql(text)
    node: object = stmts[0].stmt if stmts else None
    while type(node).__name__ in _WRAPPERS and getattr(node, "query", None) is not None:
        node = getattr(node, "query")  # noqa: B009 - any wrapper
    return [n for n in walk(node) if isinstance(n, ast.A_Const)]


def _literal(const: ast.A_Const) -> tuple[str, str] | None:
    """A constant's text (as ``pg_stats`` prints a value) and its SQL literal, built by
    :func:`quote_literal` or checked to be a plain number; None for NULL and bit strings."""
    if const.isnull:
        return None
    val = const.val
    if isinstance(val, ast.String):
        return str(val.sval), quote_literal(str(val.sval))
    if isinstance(val, ast.Integer):
        return str(val.ival), str(val.ival)
    if isinstance(val, ast.Float) and _NUMBER.match(str(val.fval)):
        return str(val.fval), str(val.fval)
    if isinstance(val, ast.Boolean):
        text = "true" if val.boolval else "false"
        return text, text
    return None


def _operands(node: ast.Node) -> Iterator[tuple[str, object]]:
    """The operands of predicates, sort keys, grouping keys and output columns directly under ``node``."""
    if isinstance(node, ast.A_Expr):
        yield "cmp", node.lexpr
        yield "cmp", node.rexpr
    elif isinstance(node, ast.NullTest | ast.BooleanTest):
        yield "cmp", node.arg
    elif isinstance(node, ast.SubLink):
        yield "cmp", node.testexpr
    elif isinstance(node, ast.SortBy):
        yield "sort", node.node
    elif isinstance(node, ast.SelectStmt):
        for item in node.groupClause or ():
            yield "group", item
        for target in node.targetList or ():
            if isinstance(target, ast.ResTarget):
                yield "target", target.val


def _column_refs(node: object) -> Iterator[ast.ColumnRef]:
    """The column references under ``node``, not those of subqueries."""
    if isinstance(node, ast.ColumnRef):
        yield node
    elif isinstance(node, ast.SubLink | ast.SelectStmt):
        return
    elif isinstance(node, ast.Node):
        for attr in fields(node):
            yield from _column_refs(getattr(node, attr, None))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _column_refs(item)


# --- sqlglot's side ---------------------------------------------------------------------------------------


def _columns(node: exp.Expr) -> list[exp.Column]:
    """The columns in ``node``, not those inside subqueries (they belong to their own scope)."""
    if isinstance(node, exp.Column):
        return [node]
    return [n for n in node.walk(prune=lambda n: n is not node and isinstance(n, _SUBQUERY))
            if isinstance(n, exp.Column)]


def _position(column: exp.Column) -> int | None:
    """Where the column reference starts in the text (the offset pglast gives its ColumnRef)."""
    starts = [p.meta["start"] for p in column.parts if "start" in p.meta]
    return min(starts) if starts else None


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _display(node: exp.Expr) -> str:
    """A short rendering of a sqlglot node for messages (never sent to the server)."""
    text = " ".join(node.sql(dialect=DIALECT).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return " ".join((text[0] if text else type(exc).__name__).split())


def _is_cte_reference(table: exp.Table) -> bool:
    """Whether ``table`` names a CTE visible where it stands (a CTE sees the ones before it, and itself
    when the WITH is RECURSIVE)."""
    name = table.name
    child: exp.Expr = table
    node = table.parent
    while node is not None:
        if isinstance(node, exp.With):
            ctes = node.expressions
            idx = next((i for i, c in enumerate(ctes) if c is child), len(ctes))
            visible = ctes[:idx + 1] if node.args.get("recursive") else ctes[:idx]
            if any(c.alias_or_name == name for c in visible):
                return True
        elif isinstance(node, exp.Query) and node.args.get("with_") is not None and child is not node.args["with_"]:
            if any(c.alias_or_name == name for c in node.args["with_"].expressions):
                return True
        child, node = node, node.parent
    return False


@dataclass
class _Insert:
    """An INSERT's target and its ``ON CONFLICT (columns)``."""

    table: exp.Table
    conflict_columns: list[str]


def _as_select(target: exp.Expr, others: list[exp.Expr], where: exp.Expr | None,
               with_: exp.Expr | None, outputs: list[exp.Expr]) -> exp.Select:
    """SELECT outputs FROM target, others WHERE where: the rows a DML statement touches."""
    select = exp.Select(expressions=outputs or [exp.Literal.number(1)])
    select.set("from_", exp.From(this=target))
    joins = [o if isinstance(o, exp.Join) else exp.Join(this=o) for o in others]
    if joins:
        select.set("joins", joins)
    if where is not None:
        select.set("where", where)
    if with_ is not None:
        select.set("with_", with_)
    return select


def _dml_as_query(node: exp.Expr, inserts: list[_Insert]) -> exp.Expr | None:
    """The query form of a statement (see the module docstring); None for an INSERT … VALUES."""
    if isinstance(node, exp.Update):
        others: list[exp.Expr] = []
        source = node.args.get("from_")
        if source is not None:
            first = source.this
            others = [first, *(first.args.get("joins") or [])]
            first.set("joins", None)
        return _as_select(node.this, others, node.args.get("where"), node.args.get("with_"),
                          [eq.expression for eq in node.expressions if isinstance(eq, exp.EQ)])
    if isinstance(node, exp.Delete):
        return _as_select(node.this, list(node.args.get("using") or []), node.args.get("where"),
                          node.args.get("with_"), [])
    if isinstance(node, exp.Merge):
        join = exp.Join(this=node.args["using"], on=node.args.get("on"))
        return _as_select(node.this, [join], None, node.args.get("with_"), [])
    if isinstance(node, exp.Insert):
        target = node.this.this if isinstance(node.this, exp.Schema) else node.this
        conflict = node.args.get("conflict")
        if isinstance(target, exp.Table):
            keys = conflict.args.get("conflict_keys") or [] if isinstance(conflict, exp.OnConflict) else []
            columns = [_unwrap(k.this if isinstance(k, exp.Ordered) else k) for k in keys]
            inserts.append(_Insert(target, [c.name for c in columns if isinstance(c, exp.Column | exp.Identifier)]))
        query = node.expression
        if isinstance(query, exp.Query):
            with_ = node.args.get("with_")
            if with_ is not None and query.args.get("with_") is None:
                query.set("with_", with_)
            return query
        return None  # INSERT … VALUES: only the target is touched
    return node


# --- the analyzer ---------------------------------------------------------------------------------------


@dataclass
class _View:
    run: _Run
    scope: Scope
    usage: QueryUsage


class UsageAnalyzer:
    """Column usage of statements against one :class:`WorkloadSchema`, with a cache.

    ``cache_size`` bounds each of the caches (per exact text; per fingerprint; per fingerprint and
    constants, for statements whose usage depends on their constants); ``hits`` and ``misses`` count
    lookups. Not thread-safe.
    """

    def __init__(self, schema: WorkloadSchema, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.schema = schema
        self._sqlglot_schema: MappingSchema | None = None
        self.cache_size = cache_size
        self.hits = 0
        self.misses = 0
        self._by_fingerprint: OrderedDict[str, _Cached] = OrderedDict()
        self._by_text: OrderedDict[str, QueryUsage] = OrderedDict()
        self._by_constants: OrderedDict[tuple[str, tuple[str, ...]], QueryUsage] = OrderedDict()
        self._views: dict[tuple[str, str], _View | str | None] = {}
        self._types: dict[tuple[str, str], str] = {}

    @property
    def sqlglot_schema(self) -> MappingSchema:
        """sqlglot's schema of every relation, built on first use (an audit without a workload needs none,
        and on 2,000 tables it takes a few tenths of a second)."""
        if self._sqlglot_schema is None:
            self._sqlglot_schema = MappingSchema(dict(self.schema.mapping()), dialect=DIALECT)
        return self._sqlglot_schema

    def column_type(self, table: str, column: str) -> str:
        """The catalog type of ``table.column`` (qualified table name), or ``""``."""
        if not self._types:
            self._types.update({(r.qualified_name, c): t for r in self.schema.relations for c, t in r.columns})
        return self._types.get((table, column), "")

    def usage(self, text: str, *, cache: bool = True) -> QueryUsage:
        """The :class:`QueryUsage` of one statement (``$n`` parameters allowed). Never raises for bad
        input: a statement that cannot be read gets a ``reason``."""
        if cache:
            hit = self._by_text.get(text)
            if hit is not None:
                self.hits += 1
                return hit
        try:
            # The fingerprint ignores schemas: sales.orders and other.orders are told apart by the names.
            fingerprint = f"{parser.fingerprint(text)} {' '.join(named_relations(parse_sql(text)))}"
        except ParseError as exc:
            return QueryUsage(reason=f"does not parse: {exc.args[0]}")
        constants: tuple[str, ...] | None = None
        if cache:
            cached = self._by_fingerprint.get(fingerprint)
            # A constant predicate takes its values from this statement's own constants.
            hit = cached.bind(text) if cached is not None else None
            if hit is None:
                constants = _constants(text)
                hit = self._by_constants.get((fingerprint, constants))
            if hit is not None:
                self.hits += 1
                self._remember(text, hit)
                return hit
        self.misses += 1
        analysed, depends_on_constants = self._analyse(text, cache)
        result = analysed.usage
        if cache:
            store: OrderedDict[Any, Any]
            if depends_on_constants:
                self._by_constants[(fingerprint, constants if constants is not None else _constants(text))] = result
                store = self._by_constants
            else:
                self._by_fingerprint[fingerprint] = analysed
                store = self._by_fingerprint
            if len(store) > self.cache_size:
                store.popitem(last=False)
            self._remember(text, result)
        return result

    def _remember(self, text: str, result: QueryUsage) -> None:
        self._by_text[text] = result
        if len(self._by_text) > self.cache_size:
            self._by_text.popitem(last=False)

    # -- one statement --

    def _analyse(self, text: str, cache: bool) -> tuple[_Cached, bool]:
        try:
            check_nesting(text)
            statements = json.loads(parser.parse_sql_json(text)).get("stmts", [])
        except ParseError as exc:
            return _Cached(QueryUsage(reason=f"does not parse: {exc.args[0]}")), False
        except RecursionError:  # json's decoder on a tree nested hundreds of levels deep
            return _Cached(QueryUsage(reason="nested too deep for column usage")), False
        if len(statements) != 1:
            what = "no statement" if not statements else f"{len(statements)} statements"
            return _Cached(QueryUsage(reason=f"holds {what}; column usage is per statement")), False
        kind, body = next(iter(statements[0]["stmt"].items()))
        if kind in _WRAPPERS and body.get("query"):
            inner = RawStream()(getattr(parse_sql(text)[0].stmt, "query"))  # noqa: B009 - any wrapper
            return self._analyse(inner, cache)
        if kind not in _QUERY_STATEMENTS:
            return _Cached(QueryUsage(reason=f"a utility statement ({_statement_name(kind)}): it reads no table "
                                     "columns")), False
        try:
            run = self._run(text)
        except _Unusable as exc:
            return _Cached(QueryUsage(reason=str(exc))), False
        except Exception as exc:  # noqa: BLE001 - sqlglot on a construct it does not model; a reason, not a crash
            return _Cached(QueryUsage(reason=f"sqlglot failed on it: {type(exc).__name__}: {_first_line(exc)}")), False
        return run.cached(), run.constants

    def _prepare(self, text: str) -> tuple[exp.Expr | None, list[_Insert]]:
        """sqlglot's qualified tree of ``text`` in query form, and its INSERT targets."""
        try:
            tree = sqlglot.parse_one(text, read=DIALECT)
        except SqlglotError as exc:
            raise _Unusable(f"sqlglot cannot parse it: {_first_line(exc)}") from None
        if tree is None or isinstance(tree, exp.Command):
            raise _Unusable("sqlglot cannot parse it: it reads the statement as an opaque command "
                            f"({' '.join(text.split()[:3])} …)")
        inserts: list[_Insert] = []
        for cte in list(tree.find_all(exp.CTE)):
            if isinstance(cte.this, exp.Update | exp.Delete | exp.Insert | exp.Merge):
                cte.set("this", _dml_as_query(cte.this, inserts) or exp.select("1"))
        query = _dml_as_query(tree, inserts)
        if query is None:
            return None, inserts
        normalize_identifiers(query, dialect=DIALECT)
        for insert in inserts:
            normalize_identifiers(insert.table, dialect=DIALECT)
        for table in query.find_all(exp.Table):
            if not isinstance(table.this, exp.Identifier):
                continue
            if table.args.get("db") is None and not _is_cte_reference(table):
                rel = self.schema.relation(None, table.name)
                if rel is not None:
                    table.set("db", exp.Identifier(this=rel.schema, quoted=True))
            if not table.alias:
                # The qualifier would alias "Orders" as orders, and "Orders".id would no longer find it.
                # (A fresh identifier: a copy would carry the table name's position into every column.)
                table.set("alias", exp.TableAlias(this=exp.Identifier(this=table.name, quoted=table.this.quoted)))
        schema = self.sqlglot_schema  # built outside the try: a schema sqlglot refuses is no statement's fault
        try:
            # qualify() without its repeated identifier normalisation, quoting and validation passes.
            query = qualify_tables(query, dialect=DIALECT)
            query = qualify_columns(query, schema, dialect=DIALECT)
        except SqlglotError as exc:
            raise _Unusable(f"sqlglot cannot resolve its columns: {_first_line(exc)}") from None
        return query, inserts

    def _run(self, text: str) -> _Run:
        query, inserts = self._prepare(text)
        run = _Run(self, query, _Text(text))
        run.classify()
        for insert in inserts:
            run.insert(insert)
        return run

    def view(self, rel: SchemaRelation) -> _View | str:
        """The analysed definition of view ``rel`` (cached), or why it cannot be used."""
        key = (rel.schema, rel.name)
        if key in self._views:
            found = self._views[key]
            return "it is defined through itself" if found is None else found
        self._views[key] = None
        result: _View | str
        if not rel.definition:
            result = "its definition is not known"
        else:
            try:
                run = self._run(rel.definition)
                scope = run.root_scope()
                result = _View(run, scope, run.result()) if scope is not None else "its definition is not a query"
            except _Unusable as exc:
                result = str(exc)
            except Exception as exc:  # noqa: BLE001 - as in _analyse
                result = f"sqlglot failed on its definition: {type(exc).__name__}: {_first_line(exc)}"
        self._views[key] = result
        return result


_CONSTANT_TOKENS = {"SCONST", "ICONST", "FCONST", "BCONST", "XCONST", "USCONST"}


def _constants(text: str) -> tuple[str, ...]:
    """The literal constants of ``text``, in order (what the fingerprint leaves out)."""
    try:
        return tuple(text[t.start:t.end + 1] for t in parser.scan(text) if t.name in _CONSTANT_TOKENS)
    except ParseError:
        return (text,)


def _statement_name(kind: str) -> str:
    words = re.findall(r"[A-Z][a-z]*|[a-z]+", kind.removesuffix("Stmt"))
    return " ".join(words).upper() if words else kind


@dataclass
class _Accumulator:
    columns: dict[str, set[Usage]] = field(default_factory=dict)
    expressions: dict[str, set[Usage]] = field(default_factory=dict)
    sort_keys: list[SortKey] = field(default_factory=list)
    referenced: dict[str, None] = field(default_factory=dict)  # an ordered set
    # (predicate, the ordinals of its constants in the statement: () when fixed, as in a view's definition)
    constants: dict[tuple[ConstantPredicate, tuple[int, ...]], None] = field(default_factory=dict)
    containment: dict[str, set[str]] = field(default_factory=dict)


class _Binding(NamedTuple):
    """Where a constant predicate of a cached usage takes its values from in another statement of the
    same fingerprint: table ``table`` of the usage, its predicate ``predicate``, the constants ``slots``."""

    table: int
    predicate: int
    slots: tuple[int, ...]


@dataclass(frozen=True)
class _Cached:
    """A usage as cached per fingerprint: the constant predicates' bindings, and how many constants the
    statement had (another statement of the fingerprint with a different count is analysed afresh)."""

    usage: QueryUsage
    bindings: tuple[_Binding, ...] = ()
    n_constants: int = 0

    def bind(self, text: str) -> QueryUsage | None:
        """The usage for ``text`` (same fingerprint), its constant predicates' values taken from ``text``;
        None when its constants do not line up."""
        if not self.bindings:
            return self.usage
        nodes = _const_nodes(text)
        if len(nodes) != self.n_constants:
            return None
        tables = list(self.usage.tables)
        predicates = [list(t.constants) for t in tables]
        for b in self.bindings:
            literals = [_literal(nodes[k]) for k in b.slots]
            if any(lit is None for lit in literals):
                return None
            old = predicates[b.table][b.predicate]
            predicates[b.table][b.predicate] = replace(
                old, values=tuple(lit[0] for lit in literals if lit), literals=tuple(lit[1] for lit in literals if lit))
        for k, t in enumerate(tables):
            if t.constants:
                tables[k] = replace(t, constants=tuple(dict.fromkeys(predicates[k])))
        return replace(self.usage, tables=tuple(tables))


class _Run:
    """The classification of one qualified tree (a statement, or a view's definition)."""

    def __init__(self, analyzer: UsageAnalyzer, tree: exp.Expr | None, text: _Text) -> None:
        self.analyzer = analyzer
        self.schema = analyzer.schema
        self.tree = tree
        self.text = text
        self.tables: dict[str, _Accumulator] = {}
        self.unresolved: list[str] = []
        self.constants = False
        self._merged_views: set[str] = set()
        self._visiting: set[tuple[int, str, int | None]] = set()
        self._scope_of: dict[int, Scope] = {}  # the scopes (with their sources) by id of their expression
        self._clauses = 0  # ORDER BY clauses seen

    def root_scope(self) -> Scope | None:
        """The outermost scope of the tree, with its sources (after :meth:`classify`)."""
        return self._scope_of.get(id(self.tree)) if self.tree is not None else None

    # -- results --

    def result(self) -> QueryUsage:
        return self.cached().usage

    def cached(self) -> _Cached:
        """The result, with the bindings of its constant predicates to the statement's constants."""
        tables: list[TableUsage] = []
        bindings: list[_Binding] = []
        for name, acc in self.tables.items():
            predicates: dict[ConstantPredicate, None] = {}
            for predicate, slots in acc.constants:
                if slots and predicate not in predicates:
                    bindings.append(_Binding(len(tables), len(predicates), slots))
                predicates.setdefault(predicate)
            tables.append(TableUsage(
                name, {c: frozenset(k) for c, k in acc.columns.items()},
                tuple(ExpressionUse(t, frozenset(k)) for t, k in acc.expressions.items()),
                sort_keys=tuple(acc.sort_keys), referenced=tuple(acc.referenced), constants=tuple(predicates),
                containment={c: frozenset(ops) for c, ops in acc.containment.items()}))
        unresolved = tuple(dict.fromkeys(self.unresolved))
        reason = None
        if not tables:
            reason = f"no table of the catalog is read ({unresolved[0]})" if unresolved else "it reads no table"
        return _Cached(QueryUsage(tuple(tables), unresolved, reason), tuple(bindings), len(self.text.const_nodes))

    def _touch(self, table: str) -> _Accumulator:
        acc = self.tables.get(table)
        if acc is None:
            acc = self.tables[table] = _Accumulator()
        return acc

    def _record(self, targets: list[_Target], kind: Usage) -> list[_Target]:
        for t in targets:
            acc = self._touch(t.table)
            if isinstance(t, _Col):
                acc.columns.setdefault(t.column, set()).add(kind)
            else:
                acc.expressions.setdefault(t.text, set()).add(kind)
        return targets

    # -- walking the scopes --

    def classify(self) -> None:
        if self.tree is None:
            return
        scopes = traverse_scope(self.tree)
        self._scope_of.update({id(s.expression): s for s in scopes})
        for scope in scopes:
            self._sources(scope)
            self._references(scope)
            if isinstance(scope.expression, exp.Select):
                self._select(scope)

    def _references(self, scope: Scope) -> None:
        """Every base-table column the scope reads, in any clause (``*`` is expanded by the qualifier)."""
        for column in _columns(scope.expression):
            found = _find_source(column, scope)
            source = found[1] if found else None
            if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier):
                continue
            rel = self.schema.relation(source.db or None, source.name)
            if rel is not None and not rel.is_view and column.name in rel.column_names:
                self._touch(rel.qualified_name).referenced.setdefault(column.name)

    def _sources(self, scope: Scope) -> None:
        """Every relation a scope reads is touched (even when no column of it is used); a view brings
        the usage of its own definition."""
        for source in scope.sources.values():
            if not isinstance(source, exp.Table) or not isinstance(source.this, exp.Identifier):
                continue
            rel = self.schema.relation(source.db or None, source.name)
            if rel is None:
                self.unresolved.append(f"{_table_name(source)}: relation not in the catalog")
            elif rel.is_view:
                self._merge_view(rel)
            else:
                self._touch(rel.qualified_name)

    def _merge_view(self, rel: SchemaRelation) -> None:
        if rel.qualified_name in self._merged_views:
            return
        self._merged_views.add(rel.qualified_name)
        view = self.analyzer.view(rel)
        if isinstance(view, str):
            self.unresolved.append(f"view {rel.qualified_name}: {view}")
            return
        for t in view.usage.tables:
            acc = self._touch(t.table)
            for column, kinds in t.columns.items():
                acc.columns.setdefault(column, set()).update(kinds)
            for e in t.expressions:
                acc.expressions.setdefault(e.text, set()).update(e.kinds)
            acc.sort_keys += [replace(k, clause=k.clause + self._clauses) for k in t.sort_keys]
            for column in t.referenced:
                acc.referenced.setdefault(column)
            for predicate in t.constants:  # the view's own constants: fixed, whatever the statement's
                acc.constants.setdefault((predicate, ()))
            for column, ops in t.containment.items():
                acc.containment.setdefault(column, set()).update(ops)
        self._clauses += 1 + max((k.clause for t in view.usage.tables for k in t.sort_keys), default=0)
        self.unresolved += [f"view {rel.qualified_name}: {u}" for u in view.usage.unresolved]

    def _select(self, scope: Scope) -> None:
        select = scope.expression
        where = select.args.get("where")
        if where is not None:
            self._condition(where.this, scope)
        for join in select.args.get("joins") or []:
            on = join.args.get("on")
            if on is not None:
                self._condition(on, scope)
        group = select.args.get("group")
        if group is not None:
            for e in group.expressions:
                self._operand(e, scope, Usage.GROUP_BY)
        order = select.args.get("order")
        if order is not None:
            clause = self._clauses
            self._clauses += 1
            for position, o in enumerate(order.expressions):
                ordered = o if isinstance(o, exp.Ordered) else None
                targets = self._operand(ordered.this if ordered else o, scope, Usage.ORDER_BY)
                # sqlglot fills in PostgreSQL's default NULLS order (NULLS FIRST for DESC).
                desc = bool(ordered and ordered.args.get("desc"))
                nulls_first = bool(ordered.args.get("nulls_first")) if ordered else False
                for t in targets:
                    key = SortKey(t.column if isinstance(t, _Col) else t.text, isinstance(t, _Expr), desc,
                                  nulls_first, clause, position)
                    self._touch(t.table).sort_keys.append(key)

    def _condition(self, node: exp.Expr, scope: Scope, conjunct: bool = True) -> None:
        """Classify a condition; ``conjunct`` while every row read must meet it (not under OR), so a
        constant predicate in it can be a partial index's WHERE."""
        node = _unwrap(node)
        if isinstance(node, exp.And | exp.Or):
            inner = conjunct and isinstance(node, exp.And)
            self._condition(node.this, scope, inner)
            self._condition(node.expression, scope, inner)
        elif isinstance(node, exp.Not) or node.args.get("negate"):
            return  # NOT …, NOT LIKE, IS NOT NULL: no index finds what is not there
        elif isinstance(node, exp.EQ) and isinstance(_unwrap(node.expression), exp.Any):
            self._compare(node.this, [node.expression], Usage.IN, scope)
        elif type(node) in _COMPARISONS:
            self._compare(node.this, [node.expression], _COMPARISONS[type(node)], scope, symmetric=True)
            if conjunct and isinstance(node, exp.EQ):
                self._constant(node.this, scope) or self._constant(node.expression, scope)
        elif isinstance(node, exp.Between):
            self._compare(node.this, [node.args["low"], node.args["high"]], Usage.RANGE, scope)
        elif isinstance(node, exp.In):
            self._compare(node.this, list(node.expressions), Usage.IN, scope)
            if conjunct:
                self._constant(node.this, scope)
        elif type(node) in _CONTAINMENT:
            for t in self._compare(node.this, [node.expression], Usage.CONTAINMENT, scope):
                if isinstance(t, _Col):
                    self._touch(t.table).containment.setdefault(t.column, set()).add(_CONTAINMENT[type(node)])
        elif isinstance(node, exp.Escape) and isinstance(node.this, exp.Like):
            self._compare(node.this.this, [node.this.expression], self._like(node.this.expression), scope)
        elif isinstance(node, exp.Like):
            self._compare(node.this, [node.expression], self._like(node.expression), scope)
        elif isinstance(node, _PATTERNS):
            self._compare(node.this, [node.expression], Usage.PATTERN, scope)
        elif isinstance(node, exp.Is) and isinstance(node.expression, exp.Null):
            self._compare(node.this, [], Usage.IS_NULL, scope)
            if conjunct:
                self._constant(node.this, scope, PredicateOp.IS_NULL)
        elif isinstance(node, exp.Column):  # a boolean column as the condition
            self._compare(node, [], Usage.EQUALITY, scope)
            if conjunct:
                self._constant(node, scope, PredicateOp.TRUE)

    def _constant(self, side: exp.Expr, scope: Scope, op: PredicateOp | None = None) -> bool:
        """Record the constant predicate on column ``side`` of a table (``op`` IS NULL or a boolean column;
        else ``=``/``IN`` with the constants pglast finds beside the column in the statement's text).
        Whether one was recorded."""
        side = _unwrap(side)
        if not isinstance(side, exp.Column):
            return False
        targets = self._resolve(side, scope)
        if isinstance(targets, str) or len(targets) != 1 or not isinstance(targets[0], _Col):
            return False
        target = targets[0]
        slots: tuple[int, ...] = ()
        if op is not None:
            predicate = ConstantPredicate(target.column, op)
        else:
            position = _position(side)
            found = self.text.constant_operands(position) if position is not None else None
            if found is None:
                return False
            literals = [_literal(self.text.const_nodes[k]) for k in found[1]]
            if not literals or any(lit is None for lit in literals):
                return False
            predicate = ConstantPredicate(target.column, found[0], tuple(lit[0] for lit in literals if lit),
                                          tuple(lit[1] for lit in literals if lit))
            slots = tuple(found[1])
        self._touch(target.table).constants.setdefault((predicate, slots))
        return True

    def _like(self, pattern: exp.Expr) -> Usage:
        pattern = _unwrap(pattern)
        if isinstance(pattern, exp.Literal) and pattern.is_string:
            self.constants = True
            return Usage.LIKE_PREFIX if pattern.this and pattern.this[0] not in "%_" else Usage.PATTERN
        return Usage.LIKE_UNKNOWN

    def _source_ids(self, nodes: list[exp.Expr], scope: Scope) -> set[tuple[int, str]]:
        ids: set[tuple[int, str]] = set()
        for node in nodes:
            for column in _columns(node):
                found = _find_source(column, scope)
                ids.add((id(found[0]), column.table) if found else (0, column.sql()))
        return ids

    def _compare(self, left: exp.Expr, right: list[exp.Expr], kind: Usage, scope: Scope, *,
                 symmetric: bool = False) -> list[_Target]:
        """``left <op> right``: a side with the columns of one relation is used as ``kind``, or as a
        join when the other side holds columns of another relation (for equality). Only ``left`` is
        looked at unless ``symmetric`` (``=``, ``<`` …; not IN, BETWEEN, LIKE, IS NULL)."""
        left = _unwrap(left)
        sides = [(left, right)]
        if symmetric and len(right) == 1:
            sides.append((_unwrap(right[0]), [left]))
        recorded: list[_Target] = []
        for side, others in sides:
            own, other = self._source_ids([side], scope), self._source_ids(others, scope)
            if len(own) != 1 or (other and other == own):
                continue
            recorded += self._operand(side, scope, Usage.JOIN if other and kind is Usage.EQUALITY else kind)
        return recorded

    def _operand(self, node: exp.Expr, scope: Scope, kind: Usage) -> list[_Target]:
        """Record ``node``'s column or expression as used ``kind``; the targets recorded."""
        node = _unwrap(node)
        select = scope.expression
        if isinstance(node, exp.Column) and not node.table:
            if kind in (Usage.ORDER_BY, Usage.GROUP_BY) and isinstance(select, exp.Select):
                projection = next((p for p in select.expressions if p.alias_or_name == node.name), None)
                inner = _unwrap(projection.unalias()) if projection is not None else None
                if inner is not None and not (isinstance(inner, exp.Column) and not inner.table):
                    return self._operand(inner, scope, kind)
            self.unresolved.append(f"{_display(node)}: no relation in scope has this column")
            return []
        if (isinstance(node, exp.Literal) and not node.is_string and kind in (Usage.ORDER_BY, Usage.GROUP_BY)
                and isinstance(select, exp.Select)):
            self.constants = True
            index = int(node.this) - 1 if str(node.this).isdigit() else -1
            if 0 <= index < len(select.expressions):
                return self._operand(select.expressions[index].unalias(), scope, kind)
            return []
        if isinstance(node, exp.Cast) and isinstance(node.this, exp.Column) and self._text_cast(node, scope):
            node = node.this
        if isinstance(node, exp.Column):
            targets = self._resolve(node, scope)
            if isinstance(targets, str):
                self.unresolved.append(f"{_display(node)}: {targets}")
                return []
            return self._record(targets, kind)
        if not _columns(node) or node.find(exp.AggFunc, exp.Window):
            return []
        target = self._expression(node, scope, _context(kind))
        if isinstance(target, str):
            self.unresolved.append(target)
        elif target is not None:
            return self._record([target], kind)
        return []

    def _text_cast(self, cast: exp.Cast, scope: Scope) -> bool:
        """``varchar_column::text`` (as pg_get_viewdef writes it): binary-coercible, the column itself."""
        if cast.to.this not in _TEXT_TYPES:
            return False
        targets = self._resolve(cast.this, scope)
        if isinstance(targets, str) or len(targets) != 1 or not isinstance(targets[0], _Col):
            return False
        column_type = self.analyzer.column_type(targets[0].table, targets[0].column)
        return column_type.startswith(("text", "character varying", "varchar"))

    def insert(self, insert: _Insert) -> None:
        """An INSERT touches its target; ``ON CONFLICT (columns)`` uses them."""
        table = insert.table
        rel = self.schema.relation(table.db or None, table.name)
        if rel is None:
            self.unresolved.append(f"{_table_name(table)}: relation not in the catalog")
            return
        acc = self._touch(rel.qualified_name)
        for column in insert.conflict_columns:
            if column in rel.column_names:
                acc.columns.setdefault(column, set()).add(Usage.CONFLICT)
            else:
                self.unresolved.append(f"ON CONFLICT ({column}): {rel.qualified_name} has no such column")

    # -- lineage --

    def _resolve(self, column: exp.Column, scope: Scope) -> list[_Target] | str:
        """The base-table columns (or expressions) ``column`` comes from, or why there are none."""
        found = _find_source(column, scope)
        if found is None:
            return f"{column.table} is not a relation in scope"
        owner, source = found
        name = column.name
        if isinstance(source, Scope):
            return self._derived(source, name, None)
        if not isinstance(source.this, exp.Identifier):
            return "a column of a set-returning function"
        rel = self.schema.relation(source.db or None, source.name)
        if rel is None:
            return f"relation {_table_name(source)} is not in the catalog"
        if rel.is_view:
            view = self.analyzer.view(rel)
            if isinstance(view, str):
                return f"view {rel.qualified_name}: {view}"
            index = rel.column_names.index(name) if name in rel.column_names else None
            return view.run._derived(view.scope, name, index)
        if name not in rel.column_names:
            return f"{rel.qualified_name} has no column {name}"
        return [_Col(rel.qualified_name, name)]

    def _derived(self, scope: Scope, name: str, index: int | None) -> list[_Target] | str:
        """Column ``name`` (or output number ``index``) of a subquery, CTE, set operation or view."""
        # A recursive CTE's self-reference is a bare scope of its anchor: use the full one.
        scope = self._scope_of.get(id(scope.expression), scope)
        key = (id(scope), name, index)
        if key in self._visiting:
            return "a column of a recursive CTE"
        self._visiting.add(key)
        try:
            expression = scope.expression
            while isinstance(expression, exp.Subquery | exp.Lateral) and isinstance(expression.this, exp.Query):
                expression = expression.this
            if isinstance(expression, exp.SetOperation):
                if index is None:
                    names = expression.named_selects
                    index = names.index(name) if name in names else None
                if index is None:
                    return f"no column {name} in the set operation"
                out: list[_Target] = []
                for branch in scope.set_operation_scopes:
                    found = self._derived(branch, name, index)
                    if isinstance(found, str):
                        return found
                    out += found
                return out
            if not isinstance(expression, exp.Select):
                return f"a column of {type(expression).__name__.upper()} (a set-returning function or VALUES)"
            outputs = expression.expressions
            if index is not None and index < len(outputs):
                projection = outputs[index]
            else:
                projection = next((p for p in outputs if p.alias_or_name == name), None)
            if projection is None:
                return f"no output column {name}"
            inner = _unwrap(projection.unalias())
            if isinstance(inner, exp.Column):
                return self._resolve(inner, scope)
            if not _columns(inner):
                return []
            if inner.find(exp.AggFunc, exp.Window):
                return f"output column {name} is an aggregate or window function"
            found_expr = self._expression(inner, scope, "target")
            if found_expr is None:
                return f"output column {name} is computed from several relations"
            return found_expr if isinstance(found_expr, str) else [found_expr]
        finally:
            self._visiting.discard(key)

    def _expression(self, node: exp.Expr, scope: Scope, context: str) -> _Expr | str | None:
        """An expression over the columns of one table, with pglast's text of it; None when its columns
        come from several relations (no index can serve it), a reason when they cannot be resolved."""
        positions: dict[int, str] = {}
        tables: set[str] = set()
        for column in _columns(node):
            targets = self._resolve(column, scope)
            if isinstance(targets, str):
                return f"{_display(column)}: {targets}"
            if len(targets) != 1 or not isinstance(targets[0], _Col):
                return None
            position = _position(column)
            if position is None:
                return f"{_display(node)}: the expression could not be located in the statement text"
            positions[position] = targets[0].column
            tables.add(targets[0].table)
        if len(tables) != 1:
            return None
        text = self.text.render(positions, context)
        if text is None:
            return f"{_display(node)}: the expression could not be located in the statement text"
        # The text may hold constants the fingerprint ignores (payload ->> 'a' and ->> 'b' fingerprint alike).
        self.constants = True
        return _Expr(tables.pop(), text)


def _context(kind: Usage) -> str:
    return {Usage.ORDER_BY: "sort", Usage.GROUP_BY: "group"}.get(kind, "cmp")


def _find_source(column: exp.Column, scope: Scope) -> tuple[Scope, exp.Table | Scope] | None:
    """The scope (this one or an enclosing one, for a correlated reference) whose FROM clause has the
    column's relation, and that relation."""
    s: Scope | None = scope
    while s is not None:
        source = s.sources.get(column.table)
        if source is not None:
            return s, source
        s = s.parent
    return None


def _table_name(table: exp.Table) -> str:
    return ".".join(p.name for p in table.parts)


# --- the public function ------------------------------------------------------------------------------

_ANALYZERS: OrderedDict[int, tuple[object, UsageAnalyzer]] = OrderedDict()
_MAX_ANALYZERS = 8


def analyzer_for(schema: WorkloadSchema | Snapshot | Mapping[str, Mapping[str, Mapping[str, str]]]) -> UsageAnalyzer:
    """The (cached) :class:`UsageAnalyzer` of a schema given as :func:`column_usage` accepts it."""
    key = id(schema)
    found = _ANALYZERS.get(key)
    if found is not None and found[0] is schema:
        _ANALYZERS.move_to_end(key)
        return found[1]
    if isinstance(schema, WorkloadSchema):
        workload_schema = schema
    elif isinstance(schema, Snapshot):
        workload_schema = WorkloadSchema.from_snapshot(schema)
    else:
        workload_schema = WorkloadSchema.from_mapping(schema)
    analyzer = UsageAnalyzer(workload_schema)
    _ANALYZERS[key] = (schema, analyzer)
    if len(_ANALYZERS) > _MAX_ANALYZERS:
        _ANALYZERS.popitem(last=False)
    return analyzer


def column_usage(query_text: str,
                 schema: WorkloadSchema | Snapshot | Mapping[str, Mapping[str, Mapping[str, str]]]) -> QueryUsage:
    """The column usage of one statement (see the module docstring).

    ``schema`` is a :class:`WorkloadSchema` (tables and views; build it with
    ``WorkloadSchema.from_snapshot(snapshot, read_views(conn))``), a catalog :class:`Snapshot` (tables
    only: views are then unknown relations), or a mapping ``{schema: {table: {column: type}}}`` with
    search path ``public``. Never raises for bad SQL: the result's ``reason`` says why there is no usage.
    """
    return analyzer_for(schema).usage(query_text)
