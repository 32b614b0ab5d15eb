"""Candidate indexes from each query's column usage (issue 7, item 1).

For every table a query reads (:class:`~dbtune.workload.model.TableUsage`):

- **btree keys**: the equality and ``IN`` columns (and expressions) first, most selective first by
  ``pg_stats`` (:mod:`dbtune.advisor.stats`; for the query's own constants where it has them), then at
  most one join column (columns joined to different relations are not bound in the same scan), then one
  range column or the table's keys of one ORDER BY (in the query's directions: a latest-row-per-parent
  LATERAL query gets ``(parent_id, created_at DESC)``). Every prefix of the equality columns is a
  candidate, and so is each extension of it, one key at a time: a key and its widening are both proposed,
  and selection decides which pays for its bytes (Extend's step-by-step widening). Each equality, join,
  range and sort column alone is a candidate too; ``LIKE 'prefix%'`` gets a ``text_pattern_ops`` key;
- **INCLUDE**: the widest key of a query with the query's other referenced columns of the table as
  ``INCLUDE``, when they are few and narrow (an index-only scan);
- **partial**: a constant predicate (``status = 'pending'``, ``processed_at IS NULL``) that selects at
  most :data:`PARTIAL_MAX_FRACTION` of a column with few distinct values (``pg_stats``) gets the query's
  other keys ``WHERE`` that predicate;
- **expressions** (``lower(email)``, ``(payload ->> 'type')``, ``date_trunc('day', created_at)``) are
  keys exactly as the query writes them; a jsonb (or json, xml, geometric) column is never a btree key;
- **GIN** for jsonb containment (``jsonb_path_ops`` when every use is ``@>``), arrays (``@>``, ``<@``,
  ``&&``) and trigram patterns (``LIKE '%x%'``, ``ILIKE``, ``~``: ``gin_trgm_ops``, whose ``reason`` says
  when pg_trgm is not installed).

No candidate is proposed that an existing *valid* index already provides (same method and predicate, key
a prefix of its key in the same or mirrored directions, INCLUDE columns among its columns: the
normalisers of :mod:`dbtune.checks.matching`); an INVALID index provides nothing. Views are resolved to
their base tables by the usage analysis; a query naming a partition gets its candidates at the
partitioned parent (an index there is built on every partition, and is the one a partitioned table can
be given as a whole); foreign tables are skipped with a reason, and so are tables the planner has no
statistics for (never analyzed: their costs would be invented); CTE names and set-returning functions are
never tables (the usage analysis does not report them). Btree keys: see
https://www.postgresql.org/docs/current/indexes-multicolumn.html, ordering
https://www.postgresql.org/docs/current/indexes-ordering.html, index-only scans and INCLUDE
https://www.postgresql.org/docs/current/indexes-index-only-scans.html, partial indexes
https://www.postgresql.org/docs/current/indexes-partial.html, GIN operator classes
https://www.postgresql.org/docs/current/gin-builtin-opclasses.html and
https://www.postgresql.org/docs/current/pgtrgm.html.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pglast import ast
from pglast.parser import ParseError

from dbtune.advisor.model import AdvisorQuery, Candidate, KeyPart
from dbtune.advisor.stats import ColumnStats
from dbtune.catalog.model import Index, Relation, Snapshot
from dbtune.checks.matching import KeyColumn, index_key, index_signature, keys_match, same_predicate
from dbtune.pgsql import parse_sql
from dbtune.sqlnames import quote_ident
from dbtune.workload.model import ConstantPredicate, PredicateOp, QueryUsage, SortKey, TableUsage, Usage
from dbtune.workload.schema import parse_search_path
from dbtune.workload.statements import named_relations, walk

# A constant predicate selecting at most this fraction of the rows makes a partial index worth proposing.
PARTIAL_MAX_FRACTION = 0.05
# ... on a column with at most this many distinct values (a skewed status, not a unique key).
PARTIAL_MAX_DISTINCT = 1000
# The planner's selectivity of an equality it knows nothing about (DEFAULT_EQ_SEL in selfuncs.h).
DEFAULT_EQ_SEL = 0.005
# Equality columns in one key at most, and key columns at most.
MAX_EQUALITY_KEYS = 3
# Join columns that lead a wider key (after the filters), the most selective first.
MAX_JOIN_LEADS = 2
MAX_KEY_COLUMNS = 4
# INCLUDE columns: at most this many, of at most this many bytes in all (avg_width, or the type's size).
MAX_INCLUDE_COLUMNS = 3
MAX_INCLUDE_BYTES = 64

_EQUALITY = frozenset({Usage.EQUALITY, Usage.IN, Usage.JOIN})
_RANGE = frozenset({Usage.RANGE})
# Types a btree key on is useless (jsonb: containment is GIN's) or impossible (no default btree opclass).
_NO_BTREE = ("json", "jsonb", "xml", "point", "line", "lseg", "box", "path", "polygon", "circle")
_TEXT = ("text", "character varying", "varchar", "character", "bpchar", "citext")
_FIXED_WIDTH = {"smallint": 2, "integer": 4, "bigint": 8, "boolean": 1, "real": 4, "double precision": 8,
                "date": 4, "timestamp without time zone": 8, "timestamp with time zone": 8, "uuid": 16,
                "time without time zone": 8, "oid": 4}
# Operator classes that are not their type's default: an index built with one serves less than the default.
_SPECIAL_OPCLASS = ("pattern_ops", "path_ops", "trgm_ops")
# Functions whose result changes between calls: an expression holding one is no index key.
_VOLATILE = frozenset({"now", "random", "clock_timestamp", "statement_timestamp", "timeofday", "nextval",
                       "transaction_timestamp", "gen_random_uuid", "uuid_generate_v4", "setseed"})


@dataclass(frozen=True)
class CandidateSet:
    """The candidates of a workload: ``by_query`` maps each :attr:`AdvisorQuery.key` to its candidates
    (in the order proposed), ``skipped`` lists (object, reason) for what got none on purpose (a foreign
    table, a table not in the snapshot)."""

    by_query: dict[str, tuple[Candidate, ...]]
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def all(self) -> tuple[Candidate, ...]:
        """Every distinct candidate (by definition), in first-seen order."""
        seen: dict[Candidate, None] = {}
        for candidates in self.by_query.values():
            for c in candidates:
                seen.setdefault(c)
        return tuple(seen)


def generate_candidates(queries: Sequence[tuple[AdvisorQuery, QueryUsage]], snapshot: Snapshot,
                        stats: ColumnStats, *, without_statistics: Mapping[str, str] | None = None) -> CandidateSet:
    """The candidate indexes of ``queries`` (each with its column usage), see the module docstring.

    ``snapshot`` gives the tables (with their columns, kinds and partitions) and the existing indexes;
    ``stats`` the column statistics (:func:`~dbtune.advisor.stats.read_column_stats`; an empty one gives
    PostgreSQL's default selectivities and no partial indexes); ``without_statistics`` maps a table
    (qualified and quoted; a partitioned table at the root of its tree) the planner has no statistics for
    to the reason (:attr:`~dbtune.advisor.stats.WithoutStatistics.reason`): it gets no candidate, and is in
    ``skipped`` with that reason, since any cost for it is invented. A candidate proposed by several queries is
    the same object in each (its ``reason`` is the first query's). Never raises for a query: one whose usage
    has a ``reason`` gets no candidates. Sends nothing to the server.
    https://www.postgresql.org/docs/current/indexes.html
    """
    generator = _Generator(snapshot, stats, without_statistics=dict(without_statistics or {}))
    generator.count_containment(usage for _, usage in queries)
    by_query: dict[str, tuple[Candidate, ...]] = {}
    for query, usage in queries:
        found = generator.query(query, usage)
        by_query[query.key] = tuple({c: None for c in by_query.get(query.key, ()) + found})
    return CandidateSet(by_query, tuple(dict.fromkeys(generator.skipped)))


@dataclass
class _Key:
    """A key being built: its parts, and what each says about the query (for ``reason``)."""

    parts: tuple[KeyPart, ...]
    said: tuple[str, ...]


@dataclass
class _Generator:
    snapshot: Snapshot
    stats: ColumnStats
    skipped: list[tuple[str, str]] = field(default_factory=list)
    without_statistics: dict[str, str] = field(default_factory=dict)
    _seen: dict[Candidate, Candidate] = field(default_factory=dict)
    _by_name: dict[str, Relation] = field(default_factory=dict)
    _search_path: tuple[str, ...] = ("public",)
    # (table as usage names it, column) -> every containment operator the workload uses on it
    containment: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_name = {r.qualified_name: r for r in self.snapshot.relations.values()}
        self._search_path = parse_search_path(self.snapshot.setting("search_path") or "public",
                                              self.snapshot.server.current_user)

    def count_containment(self, usages: Iterable[QueryUsage]) -> None:
        """The containment operators of the whole workload per column: a jsonb GIN is ``jsonb_path_ops``
        only when every use of the column is ``@>``."""
        for usage in usages:
            for t in usage.tables:
                rel = self._by_name.get(t.table)
                table = self._root(rel).qualified_name if rel is not None else t.table
                for column, ops in t.containment.items():
                    self.containment.setdefault((table, column), set()).update(ops)

    # -- one query --

    def query(self, query: AdvisorQuery, usage: QueryUsage) -> tuple[Candidate, ...]:
        self._skip_foreign(query)
        out: list[Candidate] = []
        for t in usage.tables:
            rel = self._by_name.get(t.table)
            if rel is None:
                if self.snapshot.find_other_relation(t.table) is None:
                    self.skipped.append((t.table, "not a table of the catalog snapshot"))
                continue
            parent = self._root(rel)
            why = self.without_statistics.get(parent.qualified_name)
            if why is not None:
                self.skipped.append((parent.qualified_name, why))
                continue
            where = "" if parent is rel else f" (at the partitioned parent of partition {rel.qualified_name})"
            for c in _TableCandidates(self, parent, t, where).all():
                if not self._provided(c, parent):
                    out.append(self._seen.setdefault(c, c))
        return tuple(dict.fromkeys(out))

    def _skip_foreign(self, query: AdvisorQuery) -> None:
        """Foreign tables the statement names (or lists in ``tables``): skipped, with the reason."""
        try:
            names = list(named_relations(parse_sql(query.sql))) + list(query.tables)
        except ParseError:
            names = list(query.tables)
        for name in dict.fromkeys(names):
            found = self.snapshot.find_other_relation(name, self._search_path)
            if found is not None and found[2] == "f":
                self.skipped.append((f"{quote_ident(found[0])}.{quote_ident(found[1])}",
                                     "a foreign table: its rows live on another server, where any index "
                                     "must be built; no candidate here"))

    def _root(self, rel: Relation) -> Relation:
        """The partitioned table at the top of ``rel``'s partition tree (``rel`` itself when none)."""
        seen = {rel.oid}
        while rel.is_partition and rel.parent_oid in self.snapshot.relations and rel.parent_oid not in seen:
            rel = self.snapshot.relations[rel.parent_oid]
            seen.add(rel.oid)
        return rel

    # -- existing indexes --

    def _provided(self, c: Candidate, rel: Relation) -> bool:
        """Whether a valid index of ``rel`` already provides ``c``."""
        return any(provides(ix, c) for ix in self.snapshot.indexes_on(rel.oid))


def provides(index: Index, candidate: Candidate) -> bool:
    """Whether the existing ``index`` provides ``candidate``: it is valid, has the same access method and
    an equal predicate (:func:`~dbtune.checks.matching.same_predicate`), the candidate's key is a prefix of
    its key with the same or mirrored directions and NULLS orders (:func:`~dbtune.checks.matching.keys_match`),
    each explicit operator class is the index's (an index with the type's default ``jsonb_ops`` provides a
    ``jsonb_path_ops`` candidate; one with a special class such as ``text_pattern_ops`` does not provide a
    default one), and the candidate's INCLUDE columns are among the index's columns. An INVALID index
    (a failed ``CREATE INDEX CONCURRENTLY``) provides nothing.
    https://www.postgresql.org/docs/current/indexes-ordering.html"""
    if not index.is_valid or index.method != candidate.method:
        return False
    if not same_predicate(candidate.predicate, index.predicate):
        return False
    want = _key_of(candidate)
    if want is None or not keys_match(list(want), index_key(index), prefix_ok=True):
        return False
    for k, part in enumerate(candidate.keys):
        have = index.opclasses[k] if k < len(index.opclasses) else ""
        if part.opclass is None:
            if have.endswith(_SPECIAL_OPCLASS):
                return False
        elif have != part.opclass and not (part.opclass == "jsonb_path_ops" and have == "jsonb_ops"):
            return False
    return {quote_ident(c) for c in candidate.include} <= set(index.columns)


@functools.lru_cache(maxsize=4096)
def _key_of(candidate: Candidate) -> tuple[KeyColumn, ...] | None:
    """The candidate's key normalised as :mod:`dbtune.checks.matching` normalises an index's."""
    try:
        return tuple(k for k, _, _ in index_signature(candidate.create_sql()).key)
    except (ParseError, ValueError):
        return None


class _TableCandidates:
    """The candidates of one query on one table."""

    def __init__(self, gen: _Generator, rel: Relation, usage: TableUsage, where: str) -> None:
        self.gen = gen
        self.rel = rel
        self.usage = usage
        self.where = where
        self.types = {c.name: c.type for c in rel.columns}
        self.out: list[Candidate] = []

    def all(self) -> list[Candidate]:
        filters, joins = self._equality()
        keys = self._keys(filters, joins, self._tails(filters + joins))
        for key in keys:
            self._add(key)
        self._include(keys)
        self._partial()
        self._gin()
        return self.out

    # -- building blocks --

    def _btree_column(self, column: str) -> bool:
        return column in self.types and not self.types[column].startswith(_NO_BTREE)

    def _expression_ok(self, text: str) -> bool:
        """Whether an expression can be an index key; one that is not IMMUTABLE for a known reason is
        listed in ``skipped`` with it."""
        if not _indexable_expression(text):
            return False
        why = _not_immutable(text, self.types)
        if why is not None:
            self.gen.skipped.append((f"{self.rel.qualified_name} ({text})", why))
            return False
        return True

    def _selectivity(self, column: str) -> float:
        """The fraction of rows an equality on ``column`` selects: for the query's own constants when it
        compares the column with some (``status = 'pending'``), else for a value not known in advance."""
        values = [v for p in self.usage.constants if p.column == column
                  and p.op in (PredicateOp.EQUAL, PredicateOp.IN) for v in p.values]
        if values:
            known = [self.gen.stats.selectivity_eq(self.rel.schema, self.rel.name, column, v) for v in values]
            if all(k is not None for k in known):
                return sum(k for k in known if k is not None)
        s = self.gen.stats.selectivity_eq(self.rel.schema, self.rel.name, column)
        return s if s is not None else DEFAULT_EQ_SEL

    def _equality(self) -> tuple[list[_Key], list[_Key]]:
        """The equality and IN columns and expressions (filters), and the columns used only in joins,
        each most selective first, each as a one-part key."""
        found: list[tuple[float, int, bool, _Key]] = []
        for n, (column, kinds) in enumerate(self.usage.columns.items()):
            used = kinds & _EQUALITY
            if used and self._btree_column(column):
                key = _Key((KeyPart(column),), (_say(used, column),))
                found.append((self._selectivity(column), n, used == {Usage.JOIN}, key))
        for n, e in enumerate(self.usage.expressions, start=len(found)):
            used = e.kinds & _EQUALITY
            if used and self._expression_ok(e.text):
                key = _Key((KeyPart(e.text, expression=True),), (_say(used, e.text),))
                found.append((DEFAULT_EQ_SEL, n, used == {Usage.JOIN}, key))
        found.sort(key=lambda x: (x[0], x[1]))
        return [k for _, _, join, k in found if not join], [k for _, _, join, k in found if join]

    def _tails(self, equality: list[_Key]) -> list[_Key]:
        """What may follow the equality columns: one range column (or expression), or the table's keys of
        one ORDER BY (those the equality columns fix left out), in the query's directions."""
        fixed = {p.text for k in equality for p in k.parts}
        tails: list[_Key] = []
        for column, kinds in self.usage.columns.items():
            if kinds & _RANGE and column not in fixed and self._btree_column(column):
                tails.append(_Key((KeyPart(column),), (f"range on {column}",)))
            if Usage.LIKE_PREFIX in kinds and column not in fixed and self.types.get(column, "").startswith(_TEXT):
                tails.append(_Key((KeyPart(column, opclass=self._pattern_opclass(column)),),
                                  (f"LIKE 'prefix%' on {column}",)))
        for e in self.usage.expressions:
            if e.kinds & _RANGE and e.text not in fixed and self._expression_ok(e.text):
                tails.append(_Key((KeyPart(e.text, expression=True),), (f"range on {e.text}",)))
        for clause in self.usage.sort_clauses():
            keys = [k for k in clause if k.text not in fixed]
            parts = [_sort_part(k) for k in keys if (self._btree_column(k.text) if not k.expression
                                                     else self._expression_ok(k.text))]
            if parts and len(parts) == len(keys):
                tails.append(_Key(tuple(parts), (f"ORDER BY {', '.join(_sort_text(k) for k in keys)}",)))
        return tails

    def _keys(self, filters: list[_Key], joins: list[_Key], tails: list[_Key]) -> list[_Key]:
        """Each column alone; every prefix of the filter columns; the filters followed by one join column
        (columns joined to different relations are not bound at once, so never two); each of those leads,
        and the most selective filter alone, extended by each tail step by step (a sort tail one key at a
        time); each tail alone too."""
        lead = filters[:MAX_EQUALITY_KEYS]
        keys: list[_Key] = [*filters, *joins]
        keys += [_join(lead[:n]) for n in range(2, len(lead) + 1)]
        leads = ([lead] if lead else []) + [[*lead, j] for j in joins[:MAX_JOIN_LEADS]]
        keys += [_join(x) for x in leads if len(x) > 1]
        if len(lead) > 1:
            leads.append(lead[:1])
        for tail in tails:
            steps = [_Key(tail.parts[:n], tail.said) for n in range(1, len(tail.parts) + 1)]
            keys += steps
            keys += [_join([*x, step]) for x in leads for step in steps]
        return [k for k in keys if len(k.parts) <= MAX_KEY_COLUMNS]

    def _pattern_opclass(self, column: str) -> str | None:
        """The btree operator class that serves ``LIKE 'prefix%'`` on a text column: the default one under
        the C collation, ``text_pattern_ops``/``varchar_pattern_ops`` under any other
        (https://www.postgresql.org/docs/current/indexes-opclass.html)."""
        col = self.rel.column_by_name(column)
        if col is not None and col.collation in ("C", "POSIX"):
            return None
        return "varchar_pattern_ops" if self.types.get(column, "").startswith(("character varying", "varchar")) \
            else "text_pattern_ops"

    def _candidate(self, key: _Key, *, include: tuple[str, ...] = (), predicate: ConstantPredicate | None = None,
                   method: str = "btree", extra: str = "") -> Candidate:
        said = "; ".join(key.said)
        if include:
            said += f"; INCLUDE {', '.join(include)} for an index-only scan"
        if predicate is not None:
            said += f"; WHERE {predicate.sql}{extra}"
        elif extra:
            said += extra
        return Candidate(self.rel.schema, self.rel.name, key.parts, include,
                         predicate.sql if predicate is not None else None, method,
                         reason=said + self.where)

    def _add(self, key: _Key, **kwargs: object) -> None:
        self.out.append(self._candidate(key, **kwargs))  # type: ignore[arg-type]

    # -- INCLUDE --

    def _include(self, keys: list[_Key]) -> None:
        """The widest key(s) with the query's other referenced columns as INCLUDE, when few and narrow."""
        if not keys:
            return
        widest = max(len(k.parts) for k in keys)
        for key in [k for k in keys if len(k.parts) == widest][:2]:
            in_key = {p.text for p in key.parts if not p.expression}
            rest = tuple(c for c in self.usage.referenced if c not in in_key and c in self.types)
            if not rest or len(rest) > MAX_INCLUDE_COLUMNS:
                continue
            if sum(self._width(c) for c in rest) > MAX_INCLUDE_BYTES:
                continue
            order = [c.name for c in self.rel.columns]
            self._add(key, include=tuple(sorted(rest, key=order.index)))

    def _width(self, column: str) -> int:
        width = self.gen.stats.width(self.rel.schema, self.rel.name, column)
        if width is not None:
            return width
        return _FIXED_WIDTH.get(self.types.get(column, ""), 32)

    # -- partial --

    def _partial(self) -> None:
        """A partial index for each constant predicate on a skewed column, keyed by the query's other keys
        (or by the column itself when there are none)."""
        for predicate in self.usage.constants:
            fraction = self._fraction(predicate)
            if fraction is None or fraction > PARTIAL_MAX_FRACTION:
                continue
            extra = f" selects {fraction:.1%} of rows (pg_stats)"
            others = TableUsage(self.usage.table, {c: k for c, k in self.usage.columns.items()
                                                   if c != predicate.column},
                                self.usage.expressions, self.usage.sort_keys)
            sub = _TableCandidates(self.gen, self.rel, others, self.where)
            filters, joins = sub._equality()
            keys = sub._keys(filters, joins, sub._tails(filters + joins))
            if not keys:
                keys = [_Key((KeyPart(predicate.column),), (f"the rows of {predicate.sql}",))]
            widest = max(len(k.parts) for k in keys)
            for key in [k for k in keys if len(k.parts) == widest][:2]:
                self._add(key, predicate=predicate, extra=extra)

    def _fraction(self, predicate: ConstantPredicate) -> float | None:
        """The fraction of rows ``predicate`` selects, when the column is skewed (few distinct values);
        None when pg_stats cannot tell."""
        stat = self.gen.stats.stat(self.rel.schema, self.rel.name, predicate.column)
        if stat is None:
            return None
        if predicate.op is PredicateOp.IS_NULL:
            return stat.null_frac
        if stat.distinct > PARTIAL_MAX_DISTINCT or stat.distinct <= 0:
            return None
        values = ("true",) if predicate.op is PredicateOp.TRUE else predicate.values
        if self.types.get(predicate.column) == "boolean":  # pg_stats prints booleans as t and f
            values = tuple({"true": "t", "false": "f"}.get(v, v) for v in values)
        total = 0.0
        for value in values:
            s = stat.selectivity_eq(value)
            if s is None:
                return None
            total += s
        return total

    # -- GIN --

    def _gin(self) -> None:
        pg_trgm = "pg_trgm" in self.gen.snapshot.server.extensions
        for column, kinds in self.usage.columns.items():
            col_type = self.types.get(column, "")
            if Usage.CONTAINMENT in kinds:
                ops = self.usage.containment.get(column, frozenset())
                if col_type == "jsonb" and ops & {"@>", "?", "?|", "?&"}:
                    everywhere = self.gen.containment.get((self.rel.qualified_name, column), set(ops))
                    opclass = "jsonb_path_ops" if everywhere == {"@>"} else None
                    said = f"jsonb containment ({', '.join(sorted(ops))}) on {column}"
                    if opclass is None and ops == {"@>"}:
                        said += f" (jsonb_ops: other queries use {', '.join(sorted(everywhere - {'@>'}))})"
                    self._add(_Key((KeyPart(column, opclass=opclass),), (said,)), method="gin")
                elif col_type.endswith("[]") and ops & {"@>", "<@", "&&"}:
                    said = f"array containment ({', '.join(sorted(ops))}) on {column}"
                    self._add(_Key((KeyPart(column),), (said,)), method="gin")
            if Usage.PATTERN in kinds and col_type.startswith(_TEXT):
                self._trigram(KeyPart(column, opclass="gin_trgm_ops"), column, pg_trgm)
        for e in self.usage.expressions:
            if Usage.PATTERN in e.kinds and self._expression_ok(e.text):
                self._trigram(KeyPart(e.text, expression=True, opclass="gin_trgm_ops"), e.text, pg_trgm)

    def _trigram(self, part: KeyPart, text: str, pg_trgm: bool) -> None:
        if not pg_trgm:  # its DDL would fail (no operator class gin_trgm_ops): say what to do instead
            self.gen.skipped.append((f"{self.rel.qualified_name} ({text})",
                                     "a pattern match (LIKE '%…%', ILIKE, ~) needs a trigram index, which needs the "
                                     "pg_trgm extension: CREATE EXTENSION pg_trgm, then advise again"))
            return
        self._add(_Key((part,), (f"pattern match (LIKE '%…%', ILIKE, ~) on {text}",)), method="gin")


def _say(kinds: frozenset[Usage], text: str) -> str:
    names = [k.value.replace("_", " ") for k in (Usage.EQUALITY, Usage.IN, Usage.JOIN) if k in kinds]
    return f"{'/'.join(names)} on {text}"


def _join(keys: list[_Key]) -> _Key:
    return _Key(tuple(p for k in keys for p in k.parts), tuple(s for k in keys for s in k.said))


def _sort_part(key: SortKey) -> KeyPart:
    default_nulls = key.descending
    return KeyPart(key.text, expression=key.expression, descending=key.descending,
                   nulls_first=None if key.nulls_first == default_nulls else key.nulls_first)


def _sort_text(key: SortKey) -> str:
    return _sort_part(key).sql()


_TIMESTAMPTZ = "timestamp with time zone"
# Functions that are only STABLE on a timestamp with time zone (the TimeZone setting decides the result).
_ZONED_FUNCTIONS = frozenset({"date_trunc", "date_part", "extract", "to_char", "age"})
_ZONED_CASTS = frozenset({"date", "timestamp", "time", "text", "varchar", "timetz"})


def _not_immutable(text: str, types: dict[str, str]) -> str | None:
    """Why an expression over a ``timestamp with time zone`` column is not IMMUTABLE (``CREATE INDEX``
    refuses it: "functions in index expression must be marked IMMUTABLE"), or None when no such reason
    is known."""
    try:
        tree = parse_sql(f"SELECT {text}")
    except ParseError:
        return None

    def zoned(args: object) -> str | None:
        for arg in args if isinstance(args, tuple | list) else (args,):
            if isinstance(arg, ast.ColumnRef) and arg.fields:
                name = getattr(arg.fields[-1], "sval", "")
                if types.get(name) == _TIMESTAMPTZ:
                    return str(name)
        return None

    for node in walk(tree):
        column = None
        if isinstance(node, ast.FuncCall) and node.funcname and len(node.args or ()) == 2:
            if getattr(node.funcname[-1], "sval", "") in _ZONED_FUNCTIONS:
                column = zoned(node.args)
        elif isinstance(node, ast.TypeCast) and node.typeName is not None and node.typeName.names:
            if getattr(node.typeName.names[-1], "sval", "") in _ZONED_CASTS:
                column = zoned(node.arg)
        if column is not None:
            return (f"not IMMUTABLE: on {column}, a timestamp with time zone, its result depends on the "
                    f"TimeZone setting, so no index can be built on it (one on ({column} AT TIME ZONE 'UTC') "
                    "can, for queries written that way)")
    return None


def _indexable_expression(text: str) -> bool:
    """Whether an expression can be an index key as written: no ``$n`` parameter, no volatile function,
    no subquery (immutability of the functions it calls is the server's to check)."""
    try:
        tree = parse_sql(f"SELECT {text}")
    except ParseError:
        return False
    for node in walk(tree):
        if isinstance(node, ast.ParamRef | ast.SubLink | ast.SQLValueFunction):
            return False
        if isinstance(node, ast.FuncCall) and node.funcname:
            name = getattr(node.funcname[-1], "sval", "")
            if name in _VOLATILE:
                return False
    return True
