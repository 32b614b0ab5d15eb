"""The typed results of the workload layer: queries as their sources recorded them, and which columns each
query uses. Frozen dataclasses; times in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import NamedTuple, TypeVar

from dbtune.sqlnames import quote_ident

_N = TypeVar("_N", int, float)


class Source(StrEnum):
    """Where a :class:`Query` was read from (its format, not its path)."""

    SQL = "sql"
    STDERR_LOG = "stderr log"
    CSVLOG = "csvlog"
    JSONLOG = "jsonlog"
    PG_STAT_STATEMENTS = "pg_stat_statements"


@dataclass(frozen=True)
class Query:
    """One statement as a source recorded it.

    ``text`` is the statement as sent to the server (``$n`` parameters kept, no trailing ``;``);
    ``location`` says where it was found: ``path:line`` for files and logs (``<stdin>:line`` for standard
    input), ``pgss:<queryid>`` for pg_stat_statements. ``fingerprint`` is pglast's (libpg_query's)
    fingerprint, equal for statements that differ only in constants and whitespace.

    ``name``, ``params_sql`` and ``weight`` come from ``-- name:`` / ``-- params:`` / ``-- weight:``
    comments (``weight``: how often the statement runs relative to the others, ``None`` when the file
    does not say; the advisor then weighs it by ``calls``, else 1); ``params`` are the bind
    values a server log showed for ``$1``, ``$2`` … (text as logged; ``None`` for NULL). ``calls``,
    ``total_ms`` (ms) and ``rows`` are known for pg_stat_statements and logs (one call per logged
    execution). ``occurrences`` counts the records merged into this one by :func:`group_by_fingerprint`.
    ``warnings`` (``path:line: message``) say where the statement may not be read as its author meant (a
    psql variable inside a string literal). ``relations`` are the relations the statement names as they
    resolve under its session's ``search_path``
    (:func:`~dbtune.workload.statements.named_relations`): ``sales.orders`` and ``other.orders``
    fingerprint alike, but are not the same statement; ``search_path`` is the path a ``SET search_path``
    earlier in the statement's session left (``None``: the session's default). ``skipped`` says why the
    statement is read but neither planned nor run (a pgbench meta-command, whose text it is, or pgbench's
    ``BEGIN``/``END``).
    """

    text: str
    source: Source
    location: str
    fingerprint: str
    name: str | None = None
    params_sql: str | None = None
    params: tuple[str | None, ...] | None = None
    weight: float | None = None
    calls: int | None = None
    total_ms: float | None = None
    rows: int | None = None
    occurrences: int = 1
    warnings: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()
    search_path: tuple[str, ...] | None = None
    skipped: str | None = None

    @property
    def mean_ms(self) -> float | None:
        """Mean time per call (ms), when both the total and the calls are known."""
        if self.total_ms is None or not self.calls:
            return None
        return self.total_ms / self.calls


@dataclass(frozen=True)
class SourceError:
    """A statement (or record) that could not be read: where (``path:line``), the parser's message, and
    the statement's ``-- name:`` if it had one."""

    location: str
    message: str
    name: str | None = None

    @property
    def line(self) -> int | None:
        """The line number of :attr:`location`, if it has one."""
        tail = self.location.rpartition(":")[2]
        return int(tail) if tail.isdigit() else None

    def __str__(self) -> str:
        named = f"query {self.name!r}: " if self.name else ""
        return f"{self.location}: {named}{self.message}"


@dataclass(frozen=True)
class LoadResult:
    """What :func:`~dbtune.workload.load_queries` found: the queries, the statements that did not parse
    (the rest were still read), the format the input was read as, and for a script the tool's format it
    was read in (``psql``, ``pgbench``, ``qgen``, ``plain``)."""

    queries: tuple[Query, ...]
    errors: tuple[SourceError, ...] = ()
    format: Source = Source.SQL
    script_format: str | None = None


@dataclass(frozen=True)
class WorkloadQuery:
    """One statement to benchmark: its name, its text with ``$n`` parameters, and the SQL that yields
    sample parameter rows from the data (``None``: find them from the statement's predicates);
    ``parse_error`` when it does not parse and ``skipped`` when it is not the server's (a pgbench
    meta-command, pgbench's ``BEGIN``/``END``): the bench then lists it as skipped with the reason."""

    name: str
    sql: str
    params_sql: str | None = None
    parse_error: str | None = None  # ``path:line: message`` when the statement does not parse
    skipped: str | None = None


def group_by_fingerprint(queries: list[Query] | tuple[Query, ...]) -> list[Query]:
    """One query per fingerprint and relations, in order of first appearance.

    pglast's fingerprint ignores schemas (``sales.orders`` and ``other.orders`` fingerprint alike), so
    statements are merged only when they also name the same relations under their sessions'
    ``search_path`` (:attr:`Query.relations`). The first occurrence keeps its text, location, name and
    parameters; ``occurrences`` is the number of records merged, ``calls``/``total_ms``/``rows`` the sums
    of the known values (``None`` when no record knew them).
    """
    merged: dict[tuple[str, tuple[str, ...]], Query] = {}
    for q in queries:
        key = (q.fingerprint, q.relations)
        first = merged.get(key)
        if first is None:
            merged[key] = q
            continue
        merged[key] = replace(
            first,
            calls=_add(first.calls, q.calls),
            total_ms=_add(first.total_ms, q.total_ms),
            rows=_add(first.rows, q.rows),
            occurrences=first.occurrences + q.occurrences,
        )
    return list(merged.values())


def _add(a: _N | None, b: _N | None) -> _N | None:
    if a is None:
        return b
    if b is None:
        return a
    total = a + b
    return round(total, 6) if isinstance(total, float) else total  # no 0.013999999999999999 ms


# --- column usage ------------------------------------------------------------------------------------


class Usage(StrEnum):
    """How a query uses a column (or an expression over the columns of one table)."""

    EQUALITY = "equality"        # column = constant / $n / uncorrelated subquery; IS NOT DISTINCT FROM
    RANGE = "range"              # <, <=, >, >=, BETWEEN
    IN = "in"                    # IN (list), IN (subquery), = ANY (array)
    JOIN = "join"                # column = column of another relation (also correlated subqueries)
    ORDER_BY = "order_by"
    GROUP_BY = "group_by"
    LIKE_PREFIX = "like_prefix"  # LIKE 'abc%' (a B-tree with text_pattern_ops or C collation can serve it)
    LIKE_UNKNOWN = "like_unknown"  # LIKE $1, LIKE column: the pattern is not known until execution
    PATTERN = "pattern"          # LIKE '%abc', ILIKE, SIMILAR TO, ~ (trigram territory)
    IS_NULL = "is_null"
    CONFLICT = "conflict"        # INSERT … ON CONFLICT (columns): needs a unique index on them
    CONTAINMENT = "containment"  # @>, <@, ?, ?|, ?&, && on a jsonb or array column (GIN territory)


class ExpressionUse(NamedTuple):
    """An expression over the columns of one table (``lower(email)``, ``(payload ->> 'status')``) and how
    it is used. ``text`` is pglast's rendering of the statement's own expression, with the table
    qualifiers dropped (and view columns renamed to their base columns), so it can go into
    ``CREATE INDEX … ((text))``."""

    text: str
    kinds: frozenset[Usage]


@dataclass(frozen=True)
class SortKey:
    """One key of an ``ORDER BY`` on a column (``text`` its catalog name, unquoted) or an expression
    (``expression=True``, pglast's text as in :class:`ExpressionUse`) of one table, with its direction and
    NULLS order as PostgreSQL reads them (``DESC`` alone means ``NULLS FIRST``,
    https://www.postgresql.org/docs/current/queries-order.html). ``clause`` numbers the statement's
    ORDER BY clauses (one per scope: a LATERAL subquery's is its own), ``position`` is the key's place in
    its clause (0 first): an index serves a clause's keys only from its first one on, in order."""

    text: str
    expression: bool = False
    descending: bool = False
    nulls_first: bool = False
    clause: int = 0
    position: int = 0


class PredicateOp(StrEnum):
    """The shape of a :class:`ConstantPredicate`."""

    EQUAL = "="
    IN = "IN"
    IS_NULL = "IS NULL"
    TRUE = "IS TRUE"   # a boolean column as the condition (``WHERE active``)


@dataclass(frozen=True)
class ConstantPredicate:
    """A condition of a column with constants that every row the statement reads must meet (a top-level
    ``AND`` term of a WHERE or JOIN … ON, not under OR or NOT): ``status = 'pending'``, ``n = 42``,
    ``deleted_at IS NULL``, ``kind IN ('a', 'b')``, ``WHERE active``; what a partial index's WHERE can say.

    ``column`` is the catalog name (unquoted); ``values`` the constants as text (``'pending'`` is
    ``pending``, as ``pg_stats.most_common_vals`` prints it; empty for IS NULL and a boolean column);
    ``literals`` the same constants as SQL (:func:`~dbtune.sqlnames.quote_literal` for strings, digits for
    numbers, ``true``/``false``): :attr:`sql` is built from them and the quoted column, never from the
    statement's own text or sqlglot's."""

    column: str
    op: PredicateOp
    values: tuple[str, ...] = ()
    literals: tuple[str, ...] = ()

    @property
    def sql(self) -> str:
        """The predicate as SQL text: ``status = 'pending'``, ``"Kind" IN ('a', 'b')``, ``active``."""
        column = quote_ident(self.column)
        if self.op is PredicateOp.IS_NULL:
            return f"{column} IS NULL"
        if self.op is PredicateOp.TRUE:
            return column
        if self.op is PredicateOp.IN:
            return f"{column} IN ({', '.join(self.literals)})"
        return f"{column} = {self.literals[0]}"


@dataclass(frozen=True)
class TableUsage:
    """The columns and expressions of one table (``table`` is its qualified name, quoted as needed)
    that a query uses, each with its kinds of use.

    ``sort_keys`` are the table's keys of every ORDER BY, clause by clause in the ORDER BY's order;
    ``referenced`` every column of the table the statement reads in any clause, select list included
    (``SELECT *`` and ``t.*`` are all columns), in order of first use; ``constants`` the constant
    predicates on its columns (for partial indexes); ``containment`` the containment operators
    (``@>``, ``<@``, ``?``, ``?|``, ``?&``, ``&&``) used on each column."""

    table: str
    columns: dict[str, frozenset[Usage]] = field(default_factory=dict)
    expressions: tuple[ExpressionUse, ...] = ()
    sort_keys: tuple[SortKey, ...] = ()
    referenced: tuple[str, ...] = ()
    constants: tuple[ConstantPredicate, ...] = ()
    containment: dict[str, frozenset[str]] = field(default_factory=dict)

    def sort_clauses(self) -> tuple[tuple[SortKey, ...], ...]:
        """:attr:`sort_keys` grouped by ORDER BY clause, each clause's keys on this table that an index
        can serve: the leading ones, up to the first key of another table or a gap."""
        clauses: dict[int, list[SortKey]] = {}
        for key in self.sort_keys:
            keys = clauses.setdefault(key.clause, [])
            if key.position == len(keys):
                keys.append(key)
        return tuple(tuple(keys) for keys in clauses.values() if keys)

    def kinds(self, column: str) -> frozenset[Usage]:
        """The kinds of use of ``column`` (empty when unused)."""
        return self.columns.get(column, frozenset())


@dataclass(frozen=True)
class QueryUsage:
    """The column usage of one statement.

    ``tables`` lists every table the statement reads or writes (views are replaced by their base tables,
    CTEs and subqueries are looked through), in order of first use. ``unresolved`` holds the column
    references that could not be tied to a table, each with why (``"x.y: relation x is not in the
    catalog"``). ``reason`` is set when the statement as a whole yields no column usage (it does not
    parse, is a utility statement, or sqlglot cannot read it).
    """

    tables: tuple[TableUsage, ...] = ()
    unresolved: tuple[str, ...] = ()
    reason: str | None = None

    def table(self, name: str) -> TableUsage | None:
        """The usage of table ``name`` (qualified, ``public.t``; or a bare name when it is unique)."""
        for t in self.tables:
            if t.table == name:
                return t
        bare = [t for t in self.tables if t.table.rsplit(".", 1)[-1] == name]
        return bare[0] if len(bare) == 1 else None
