"""Values for a statement's ``$n`` parameters, sampled from the table's own data.

How sampling works:

1. A ``-- params:`` SQL given with the query in the workload file wins: its rows (up to ``k``, in the
   order it returns them) are the parameter sets, one column per ``$n``.
2. Otherwise pglast finds, for every ``$n``, the column it is compared with: ``column <op> $n`` and
   ``$n <op> column`` (``=``, ``<``, ``>=`` …), ``column IN ($n, …)``, ``column [NOT] LIKE/ILIKE $n``,
   ``column = ANY($n)`` (sent as a one-element array), ``column BETWEEN $n AND $m``, ``INSERT … (column, …)
   VALUES ($n, …)``, ``UPDATE … SET column = $n``; casts on either side (``$1::int``) are looked through.
   ``LIMIT $n`` is sent as 100 and ``OFFSET $n`` as 0. A comparison with a function of one column, or of
   the parameter, counts too when the function is IMMUTABLE (every function of that name the search path
   reaches, by ``pg_proc.provolatile``; its other arguments constants): ``lower(email) = $1`` and
   ``lower(email) = lower($1)`` sample values of ``lower(email)``, ``email = lower($1)`` values of
   ``email`` (an immutable function's values are what an expression index holds; a volatile one is never
   called to sample).
3. The column's relation is resolved through the FROM clause of the statement (or subquery) it sits in:
   ``alias.column`` by the alias or table name, ``schema.table.column`` directly, and a bare ``column`` by
   asking the catalog which of the FROM clause's tables has it (it must be exactly one), looking outwards
   through enclosing queries. Columns of subqueries, CTEs and functions are not followed.
4. For each relation, distinct non-NULL tuples of the needed columns (as text) are drawn in one query:
   ``SELECT DISTINCT c::text … FROM t TABLESAMPLE SYSTEM (p) REPEATABLE (seed)``, where ``p`` aims at
   about 50 rows per wanted value (at least 5,000) from ``pg_class.reltuples``, raised tenfold while too
   few values come back (until a larger sample finds no new value, or would read over a million rows);
   small tables (under 20,000 rows, or never analysed), views, and a sample that found nothing use
   ``ORDER BY random() LIMIT k`` after ``setseed``. So the same data gives the same values before and after
   a change, and two columns of one table get values that occur together in a row.
5. Execution ``i`` uses parameter set ``i mod (number of sets)``; repeated uses of one column (``IN ($1,
   $2)``) take values from different rows. Values are sent as text of unknown type, so the server infers
   each parameter's type from the statement, as it does for a driver that sends strings.

A ``$n`` none of this can place makes the query *skipped* with the reason (:class:`ParameterUnresolved`),
not a crash. See https://www.postgresql.org/docs/current/sql-select.html#SQL-FROM (TABLESAMPLE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import psycopg
from pglast import ast, enums
from pglast.stream import RawStream
from psycopg.types.string import TextLoader

from dbtune.errors import DbtuneError
from dbtune.pgsql import parse_sql
from dbtune.sqlnames import qualified, quote_ident
from dbtune.workload.statements import fields

SMALL_TABLE_ROWS = 20_000
ROWS_PER_VALUE = 50
MIN_SAMPLE_ROWS = 5_000
MAX_SAMPLE_ROWS = 1_000_000
LIMIT_VALUE = "100"
OFFSET_VALUE = "0"
SAMPLE_COMMENT = "/* dbtune bench: parameter sample */"


class ParameterUnresolved(DbtuneError):
    """A ``$n`` whose values cannot be found; the benchmark skips the query with this reason."""


@dataclass(frozen=True)
class Parameters:
    """Parameter sets (text values, one tuple per set, cycled through the executions) and where each
    ``$n`` came from, e.g. ``$1: public.items.code (37 distinct values, TABLESAMPLE SYSTEM (2.5%))``."""

    sets: tuple[tuple[str, ...], ...]
    sources: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        """Number of ``$n`` per set."""
        return len(self.sets[0]) if self.sets else 0


NO_PARAMETERS = Parameters(sets=((),))


# --- finding the column of each $n ----------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """The relations one FROM clause makes visible: name or alias → (schema or None, relname), plus the
    names of subqueries, CTE references and functions (whose columns are not followed)."""

    tables: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    derived: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Use:
    """``$number`` compared with the column ``names`` (resolved through ``scopes``); ``expression`` the
    function of that column it is compared with, as SQL on the bare column (``lower(email)``), and
    ``functions`` the names (as written) of the functions that must be IMMUTABLE for it to count."""

    number: int
    names: tuple[str, ...]
    scopes: tuple[_Scope, ...]
    array: bool = False
    expression: str | None = None
    functions: tuple[tuple[str, ...], ...] = ()


@dataclass
class _Analysis:
    numbers: set[int] = field(default_factory=set)
    uses: list[_Use] = field(default_factory=list)
    fixed: dict[int, tuple[str, str]] = field(default_factory=dict)  # $n -> (value, what)


def analyse(sql: str) -> _Analysis:
    """The ``$n`` numbers of ``sql`` and the column comparisons, LIMIT and OFFSET they appear in. Raises
    ParseError when ``sql`` does not parse, :class:`ParameterUnresolved` when it nests too deep to walk."""
    found = _Analysis()
    stmt = parse_sql(sql)[0].stmt
    try:
        _visit(stmt, (), frozenset(), found)
    except RecursionError:  # hundreds of levels deep (deeper ones never get here: see dbtune.pgsql)
        raise ParameterUnresolved("the statement nests too deep to find the columns of its parameters") from None
    return found


def _names(node: ast.ColumnRef) -> tuple[str, ...] | None:
    names = []
    for f in node.fields or ():
        if not isinstance(f, ast.String):
            return None  # A_Star
        names.append(str(f.sval))
    return tuple(names)


def _strip_cast(node: object) -> object:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    return node


def _param(node: object) -> int | None:
    node = _strip_cast(node)
    return node.number if isinstance(node, ast.ParamRef) else None  # type: ignore[return-value]


def _column(node: object) -> tuple[str, ...] | None:
    node = _strip_cast(node)
    return _names(node) if isinstance(node, ast.ColumnRef) else None


def _plain_call(node: object) -> ast.FuncCall | None:
    """``node`` (casts looked through) when it is a plain function call: no aggregate, window or VARIADIC."""
    node = _strip_cast(node)
    if not isinstance(node, ast.FuncCall) or node.over is not None or node.agg_order or node.agg_filter \
            or node.agg_star or node.agg_distinct or node.func_variadic or not node.args:
        return None
    return node


def _function_name(call: ast.FuncCall) -> tuple[str, ...]:
    return tuple(str(n.sval) for n in call.funcname or () if isinstance(n, ast.String))


def _one_argument(call: ast.FuncCall, matches: Callable[[object], bool]) -> object | None:
    """The one argument of ``call`` that ``matches`` when every other one is a constant, else None."""
    found = [a for a in call.args or () if matches(a)]
    others = [a for a in call.args or () if not matches(a)]
    if len(found) != 1 or not all(isinstance(_strip_cast(a), ast.A_Const) for a in others):
        return None
    return found[0]


def _param_side(node: object) -> tuple[int, tuple[tuple[str, ...], ...]] | None:
    """``$n`` or ``f($n)`` (other arguments constants): the number, and the function to check."""
    number = _param(node)
    if number is not None:
        return number, ()
    call = _plain_call(node)
    arg = _one_argument(call, lambda a: _param(a) is not None) if call is not None else None
    return (_param(arg), (_function_name(call),)) if call is not None and arg is not None else None  # type: ignore[return-value]


def _column_side(node: object) -> tuple[tuple[str, ...], str | None, tuple[tuple[str, ...], ...]] | None:
    """``column`` or ``f(column)`` (other arguments constants): the column's names, the function as SQL on
    the bare column (``lower(email)``; None for a plain column), and the function to check."""
    names = _column(node)
    if names is not None:
        return names, None, ()
    call = _plain_call(node)
    arg = _one_argument(call, lambda a: _column(a) is not None) if call is not None else None
    if call is None or arg is None:
        return None
    names = _column(arg)
    assert names is not None
    bare = ast.ColumnRef(fields=(ast.String(sval=names[-1]),))
    args = tuple(bare if a is arg else a for a in call.args or ())
    return names, RawStream()(ast.FuncCall(funcname=call.funcname, args=args, funcformat=call.funcformat)), (
        _function_name(call),)


def _scope_of(items: object, ctes: frozenset[str]) -> _Scope:
    tables: dict[str, tuple[str | None, str]] = {}
    derived: set[str] = set()

    def add(item: object) -> None:
        if isinstance(item, ast.RangeVar):
            relname = str(item.relname)
            key = str(item.alias.aliasname) if item.alias else relname
            if item.schemaname is None and relname in ctes:
                derived.add(key)
            else:
                tables[key] = (item.schemaname, relname)
        elif isinstance(item, ast.JoinExpr):
            add(item.larg)
            add(item.rarg)
            if item.alias:
                derived.add(str(item.alias.aliasname))
        elif isinstance(item, ast.RangeSubselect | ast.RangeFunction | ast.RangeTableFunc):
            derived.add(str(item.alias.aliasname) if item.alias else "?")
        elif item is not None:
            derived.add("?")

    for item in items if isinstance(items, tuple | list) else (items,):
        add(item)
    return _Scope(tables, frozenset(derived))


def _cte_names(with_clause: ast.WithClause | None) -> frozenset[str]:
    if with_clause is None:
        return frozenset()
    return frozenset(str(c.ctename) for c in with_clause.ctes or ())


def _visit(node: object, scopes: tuple[_Scope, ...], ctes: frozenset[str], found: _Analysis) -> None:
    if isinstance(node, tuple | list):
        for item in node:
            _visit(item, scopes, ctes, found)
        return
    if not isinstance(node, ast.Node):
        return
    if isinstance(node, ast.ParamRef):
        if node.number is not None:
            found.numbers.add(node.number)
        return
    if isinstance(node, ast.SelectStmt):
        _visit_select(node, scopes, ctes, found)
        return
    if isinstance(node, ast.InsertStmt | ast.UpdateStmt | ast.DeleteStmt | ast.MergeStmt):
        _visit_dml(node, scopes, ctes, found)
        return
    if isinstance(node, ast.A_Expr):
        _record_comparison(node, scopes, found)
    for attr in fields(node):
        _visit(getattr(node, attr, None), scopes, ctes, found)


def _visit_select(node: ast.SelectStmt, scopes: tuple[_Scope, ...], ctes: frozenset[str],
                  found: _Analysis) -> None:
    if node.withClause is not None:
        _visit(node.withClause, scopes, ctes, found)
        ctes = ctes | _cte_names(node.withClause)
    if node.op != enums.SetOperation.SETOP_NONE:
        _visit(node.larg, scopes, ctes, found)
        _visit(node.rarg, scopes, ctes, found)
        _visit((node.sortClause, node.limitCount, node.limitOffset), scopes, ctes, found)
    else:
        inner = (_scope_of(node.fromClause or (), ctes), *scopes)
        for attr in fields(node):
            if attr not in ("withClause", "larg", "rarg"):
                _visit(getattr(node, attr, None), inner, ctes, found)
    for attr, value, what in (("limitCount", LIMIT_VALUE, "LIMIT"), ("limitOffset", OFFSET_VALUE, "OFFSET")):
        number = _param(getattr(node, attr))
        if number is not None:
            found.fixed.setdefault(number, (value, f"{what} (sent as {value})"))


def _visit_dml(node: ast.Node, scopes: tuple[_Scope, ...], ctes: frozenset[str], found: _Analysis) -> None:
    with_clause = getattr(node, "withClause", None)
    if with_clause is not None:
        _visit(with_clause, scopes, ctes, found)
        ctes = ctes | _cte_names(with_clause)
    target = _scope_of(node.relation, ctes)  # type: ignore[attr-defined]
    extra: object = ()
    if isinstance(node, ast.UpdateStmt):
        extra = node.fromClause or ()
    elif isinstance(node, ast.DeleteStmt):
        extra = node.usingClause or ()
    elif isinstance(node, ast.MergeStmt):
        extra = node.sourceRelation
    joined = _scope_of((node.relation, *(extra if isinstance(extra, tuple | list) else (extra,))), ctes)  # type: ignore[attr-defined]
    inner = (joined, *scopes)
    if isinstance(node, ast.InsertStmt) and isinstance(node.selectStmt, ast.SelectStmt):
        cols = [c.name for c in node.cols or ()]
        for row in node.selectStmt.valuesLists or ():
            for i, expr in enumerate(row):
                number = _param(expr)
                if number is not None and i < len(cols):
                    found.uses.append(_Use(number, (cols[i],), (target, *scopes)))
    set_lists = []
    if isinstance(node, ast.UpdateStmt):
        set_lists.append(node.targetList or ())
    if isinstance(node, ast.MergeStmt):
        set_lists += [w.targetList or () for w in node.mergeWhenClauses or ()
                      if w.commandType == enums.CmdType.CMD_UPDATE]
    for targets in set_lists:
        for t in targets:
            number = _param(t.val)
            if number is not None and t.name:
                found.uses.append(_Use(number, (t.name,), (target, *scopes)))
    for attr in fields(node):
        if attr not in ("withClause", "relation"):
            _visit(getattr(node, attr, None), inner, ctes, found)


_COMPARISONS = {"=", "<>", "!=", "<", "<=", ">", ">="}


def _record_comparison(node: ast.A_Expr, scopes: tuple[_Scope, ...], found: _Analysis) -> None:
    kind = node.kind
    op = node.name[-1].sval if node.name and isinstance(node.name[-1], ast.String) else ""
    K = enums.A_Expr_Kind
    pairs: list[tuple[object, object, bool]] = []
    if kind == K.AEXPR_OP and op in _COMPARISONS:
        pairs += [(node.lexpr, node.rexpr, False), (node.rexpr, node.lexpr, False)]
    elif kind in (K.AEXPR_LIKE, K.AEXPR_ILIKE):
        pairs.append((node.lexpr, node.rexpr, False))
    elif kind == K.AEXPR_OP_ANY and op in _COMPARISONS:
        pairs.append((node.lexpr, node.rexpr, True))
    elif kind in (K.AEXPR_IN, K.AEXPR_BETWEEN, K.AEXPR_NOT_BETWEEN, K.AEXPR_BETWEEN_SYM, K.AEXPR_NOT_BETWEEN_SYM):
        pairs += [(node.lexpr, item, False) for item in node.rexpr or ()]
    for col_node, param_node, array in pairs:
        column, param = _column_side(col_node), _param_side(param_node)
        if column is not None and param is not None and column[0]:
            names, expression, wrapped = column
            found.uses.append(_Use(param[0], names, scopes, array, expression, (*wrapped, *param[1])))


# --- resolving columns to relations -----------------------------------------------------------------


_RELATION = """
-- A relation (by name, as the search path resolves it): schema, name, kind, estimated rows, columns.
SELECT n.nspname, c.relname, c.relkind, c.reltuples,
       array(SELECT a.attname::text FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = pg_catalog.to_regclass(%s)
"""


@dataclass(frozen=True)
class _Relation:
    schema: str
    name: str
    kind: str
    reltuples: float
    columns: frozenset[str]

    @property
    def label(self) -> str:
        return qualified(self.schema, self.name)


_VOLATILITY = """
-- How many functions of that name the search path reaches (or in that schema), and whether all are IMMUTABLE.
SELECT count(*), COALESCE(bool_and(p.provolatile = 'i'), false)
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE p.proname = %(name)s
  AND CASE WHEN %(schema)s::text IS NULL THEN n.nspname = ANY (pg_catalog.current_schemas(true))
           ELSE n.nspname = %(schema)s END
"""


class _Catalog:
    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.cache: dict[tuple[str | None, str], _Relation | None] = {}

    def not_immutable(self, function: tuple[str, ...]) -> str | None:
        """Why values of ``function`` (its name as written: ``(name,)`` or ``(schema, name)``) are not
        sampled, or None when every function of that name is IMMUTABLE."""
        schema, name = (None, function[-1]) if len(function) == 1 else (function[-2], function[-1])
        shown = ".".join(function)
        row = self.conn.execute(_VOLATILITY, {"name": name, "schema": schema}).fetchone()  # type: ignore[call-overload]
        if row is None or not row[0]:
            return f"no function {shown}"
        return None if row[1] else f"{shown} is not IMMUTABLE, so dbtune does not call it to sample values"

    def relation(self, schema: str | None, name: str) -> _Relation | None:
        key = (schema, name)
        if key not in self.cache:
            ref = qualified(schema, name) if schema else quote_ident(name)
            row = self.conn.execute(_RELATION, (ref,)).fetchone()  # type: ignore[call-overload]
            self.cache[key] = _Relation(row[0], row[1], row[2], float(row[3]), frozenset(row[4])) if row else None
        return self.cache[key]


def _resolve(use: _Use, catalog: _Catalog) -> tuple[_Relation, str]:
    """The relation and column a use refers to; raises ParameterUnresolved with the reason."""
    names = use.names
    ref = ".".join(names)
    if len(names) == 3:
        rel = catalog.relation(names[0], names[1])
        if rel is None or names[2] not in rel.columns:
            raise ParameterUnresolved(f"${use.number}: no column {ref}")
        return rel, names[2]
    if len(names) == 2:
        qualifier, column = names
        for scope in use.scopes:
            if qualifier in scope.tables:
                rel = catalog.relation(*scope.tables[qualifier])
                if rel is None:
                    schema, name = scope.tables[qualifier]
                    raise ParameterUnresolved(f"${use.number}: relation {qualified(schema, name) if schema else name}"
                                              " does not exist")
                if column not in rel.columns:
                    raise ParameterUnresolved(f"${use.number}: {rel.label} has no column {column}")
                return rel, column
            if qualifier in scope.derived:
                raise ParameterUnresolved(f"${use.number}: {ref} is a column of a subquery, CTE or function")
        raise ParameterUnresolved(f"${use.number}: {qualifier!r} is not in the FROM clause")
    column = names[0]
    for scope in use.scopes:
        having = []
        for schema, name in scope.tables.values():
            rel = catalog.relation(schema, name)
            if rel is not None and column in rel.columns:
                having.append(rel)
        if len(having) == 1:
            return having[0], column
        if len(having) > 1:
            raise ParameterUnresolved(f"${use.number}: column {column} is ambiguous "
                                      f"({', '.join(r.label for r in having)})")
        if scope.derived:
            raise ParameterUnresolved(f"${use.number}: column {column} is not in a table of the FROM clause "
                                      "(subqueries, CTEs and functions are not followed)")
    raise ParameterUnresolved(f"${use.number}: no table in the FROM clause has a column {column}")


# --- sampling ------------------------------------------------------------------------------------------


def _text_rows(cur: psycopg.Cursor, limit: int) -> list[tuple[str, ...]]:
    """The rest of ``cur``'s rows (up to ``limit``) with every value as PostgreSQL's text output."""
    for col in cur.description or ():
        cur.adapters.register_loader(col.type_code, TextLoader)
    return [tuple(v for v in row) for row in cur.fetchmany(limit)]


def _sample_relation(conn: psycopg.Connection, rel: _Relation, columns: list[str], k: int,
                     seed: int) -> tuple[list[tuple[str, ...]], str]:
    """Up to ``k`` distinct non-NULL tuples of ``columns`` of ``rel`` (each a quoted column name or a
    function call on one, as SQL) as text, and how they were drawn."""
    cols = ", ".join(f"{c}::text" for c in columns)
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in columns)
    conn.execute("SELECT pg_catalog.setseed(%s)", (((seed % 1000) / 1000.0),))  # type: ignore[call-overload]
    cur = conn.cursor()
    if rel.kind in ("r", "m", "p") and rel.reltuples >= SMALL_TABLE_ROWS:
        pct = min(100.0, 100.0 * max(ROWS_PER_VALUE * k, MIN_SAMPLE_ROWS) / rel.reltuples)
        rows: list[tuple[str, ...]] = []
        while True:
            sql = (f"{SAMPLE_COMMENT} SELECT * FROM (SELECT DISTINCT {cols} FROM {rel.label} "
                   f"TABLESAMPLE SYSTEM ({pct:.6f}) REPEATABLE ({int(seed)}) WHERE {not_null}) AS d "
                   f"ORDER BY pg_catalog.random() LIMIT {int(k)}")
            before, rows = len(rows), _text_rows(cur.execute(sql), k)  # type: ignore[arg-type]
            # Enough values; or a larger sample found no new ones (a column with few distinct values); or
            # the next step would read more than MAX_SAMPLE_ROWS.
            if (len(rows) >= k or pct >= 100.0 or (before and len(rows) <= before)
                    or pct * 10 * rel.reltuples / 100.0 > MAX_SAMPLE_ROWS):
                break
            pct = min(100.0, pct * 10)
        if rows:
            return rows, f"TABLESAMPLE SYSTEM ({pct:.3g}%)"
    sql = (f"{SAMPLE_COMMENT} SELECT * FROM (SELECT DISTINCT {cols} FROM {rel.label} WHERE {not_null}) AS d "
           f"ORDER BY pg_catalog.random() LIMIT {int(k)}")
    return _text_rows(cur.execute(sql), k), "ORDER BY random()"  # type: ignore[arg-type]


def sample_parameters(conn: psycopg.Connection, sql: str, params_sql: str | None = None, *, k: int = 100,
                      seed: int = 1) -> Parameters:
    """Up to ``k`` parameter sets for ``sql`` (see the module docstring for how they are found).

    ``conn`` is an autocommit connection; only SELECTs are sent. Raises :class:`ParameterUnresolved` when
    some ``$n`` cannot be given values, and lets ``psycopg.Error`` from the sampling queries through.
    """
    found = analyse(sql)
    expected = max(found.numbers, default=0)
    if params_sql:
        rows = _text_rows(conn.cursor().execute(params_sql), k)  # type: ignore[arg-type]
        if not rows:
            raise ParameterUnresolved("its -- params: query returned no rows")
        if len(rows[0]) != expected:
            raise ParameterUnresolved(f"its -- params: query returns {len(rows[0])} columns for {expected} "
                                      "parameters")
        return Parameters(tuple(rows), (f"$1..${expected}: -- params: query ({len(rows)} rows)",))
    if expected == 0:
        return NO_PARAMETERS
    catalog = _Catalog(conn)
    bound: dict[int, tuple[_Relation, str, bool]] = {}  # $n -> (relation, the SQL sampled, array)
    reasons: dict[int, str] = {}
    expressions: set[int] = set()  # the $n compared with a function of a column
    for use in found.uses:
        if use.number in bound:
            continue
        try:
            rel, column = _resolve(use, catalog)
            why = next((w for f in use.functions if (w := catalog.not_immutable(f)) is not None), None)
            if why is not None:
                raise ParameterUnresolved(f"${use.number}: {why}")
        except ParameterUnresolved as exc:
            reasons.setdefault(use.number, str(exc))
            continue
        bound[use.number] = (rel, use.expression or quote_ident(column), use.array)
        if use.expression is not None:
            expressions.add(use.number)
    for number in range(1, expected + 1):
        if number not in bound and number not in found.fixed:
            reason = reasons.get(number) or (
                f"${number} is not compared with a table column (column = ${number}, column IN (${number}, …), "
                f"column LIKE ${number}, INSERT … VALUES, UPDATE … SET, LIMIT/OFFSET); "
                "give it a -- params: line in a workload file")
            raise ParameterUnresolved(reason)
    # One sampling query per relation, for all its columns, so values that occur together stay together.
    per_relation: dict[str, tuple[_Relation, list[str]]] = {}
    for rel, column, _array in bound.values():
        columns = per_relation.setdefault(rel.label, (rel, []))[1]
        if column not in columns:
            columns.append(column)
    samples: dict[str, tuple[list[tuple[str, ...]], str]] = {}
    for label, (rel, columns) in per_relation.items():
        rows, how = _sample_relation(conn, rel, columns, k, seed)
        if not rows:
            raise ParameterUnresolved(f"{label} has no rows with non-NULL {', '.join(columns)} to sample")
        samples[label] = (rows, how)
    n_sets = max((len(rows) for rows, _ in samples.values()), default=1)  # only LIMIT/OFFSET: one set
    sets = []
    for i in range(n_sets):
        values: list[str] = []
        seen: dict[tuple[str, str], int] = {}
        for number in range(1, expected + 1):
            if number in bound:
                rel, column, array = bound[number]
                rows = samples[rel.label][0]
                occurrence = seen.get((rel.label, column), 0)
                seen[(rel.label, column)] = occurrence + 1
                value = rows[(i + occurrence) % len(rows)][per_relation[rel.label][1].index(column)]
                values.append(_array_literal(value) if array else value)
            else:
                values.append(found.fixed[number][0])
        sets.append(tuple(values))
    sources = []
    for number in range(1, expected + 1):
        if number in bound:
            rel, column, array = bound[number]
            rows, how = samples[rel.label]
            shown = f"{column} of {rel.label}" if number in expressions else f"{rel.label}.{column}"
            sources.append(f"${number}: {shown} ({len(rows)} distinct values, {how}"
                           + (", as a one-element array)" if array else ")"))
        else:
            sources.append(f"${number}: {found.fixed[number][1]}")
    return Parameters(tuple(sets), tuple(sources))


def _array_literal(value: str) -> str:
    return '{"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"}'


def cycle(params: Parameters, start: int = 0) -> Iterator[tuple[str, ...]]:
    """Parameter sets forever, from set ``start`` (mod the number of sets)."""
    i = start
    n = len(params.sets)
    while True:
        yield params.sets[i % n]
        i += 1
