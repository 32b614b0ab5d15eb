"""Matching a team's expected index (from the config) against the indexes that exist, by meaning.

Texts are compared after normalising both sides with pglast: constants lose their casts (so the
config's ``response = 'ACCEPTED'`` equals ``pg_get_expr``'s ``(response = 'ACCEPTED'::text)``, or
``'ACCEPTED'::response_kind`` for an enum), columns and arrays lose casts to text types, ``IN (…)``
is written ``= ANY (ARRAY[…])`` as PostgreSQL stores it, parentheses and spacing are PostgreSQL's
deparse. A btree serves a key order and its exact mirror (every
column's direction and NULLS order flipped) alike, since it can be scanned backwards
(https://www.postgresql.org/docs/current/indexes-ordering.html).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast, enums
from pglast.parser import ParseError
from pglast.stream import RawStream
from pglast.visitors import Visitor

from dbtune.catalog.model import Index, Relation
from dbtune.config.model import ExpectedIndex
from dbtune.errors import ConfigError
from dbtune.pgsql import parse_one
from dbtune.sqlnames import quote_ident

_TEXT_TYPES = {"text", "varchar", "bpchar", "unknown", "character varying", "name"}


class _StripConstCasts(Visitor):  # type: ignore[misc]
    """Undo what PostgreSQL's deparse adds to what a person writes: casts of constants (a literal takes
    its type from the column it meets: ``'ACCEPTED'::response_kind``, ``(0)::numeric``), casts of columns
    and arrays to text types (``(v)::text`` for varchar), and ``x IN (…)`` stored as ``x = ANY (ARRAY[…])``
    (``NOT IN`` as ``<> ALL``). A replaced node's children are not visited: see :func:`_strip`."""

    def visit_TypeCast(self, ancestors: object, node: ast.TypeCast) -> ast.Node | None:
        names = [n.sval for n in node.typeName.names or ()] if node.typeName is not None else []
        if isinstance(node.arg, ast.A_Const):
            return node.arg
        if isinstance(node.arg, ast.ColumnRef | ast.A_ArrayExpr) and names and names[-1] in _TEXT_TYPES:
            return node.arg
        return None

    def visit_A_Expr(self, ancestors: object, node: ast.A_Expr) -> ast.Node | None:
        if node.kind == enums.A_Expr_Kind.AEXPR_IN and isinstance(node.rexpr, tuple):
            op = node.name[-1].sval if node.name else "="
            kind = enums.A_Expr_Kind.AEXPR_OP_ANY if op == "=" else enums.A_Expr_Kind.AEXPR_OP_ALL
            return ast.A_Expr(kind=kind, name=node.name, lexpr=node.lexpr,
                              rexpr=ast.A_ArrayExpr(elements=node.rexpr))
        return None


def _strip(node: ast.Node) -> str:
    """``node`` without the casts :class:`_StripConstCasts` drops, deparsed; repeated until stable."""
    text = str(RawStream()(node))
    for _ in range(10):
        node = _StripConstCasts()(node)
        new = str(RawStream()(node))
        if new == text:
            break
        text = new
    return text


def normalize_expr(text: str) -> str:
    """A canonical text for a scalar expression (predicate or index expression).

    Raises :class:`pglast.parser.ParseError` when ``text`` is not an expression.
    """
    stmt = parse_one(f"SELECT 1 WHERE {text}", ast.SelectStmt)
    if stmt.whereClause is None:
        raise ValueError(f"not an expression: {text!r}")
    return _strip(stmt.whereClause)


@dataclass(frozen=True)
class KeyColumn:
    """One index key column: its normalised text, whether it sorts descending and NULLS FIRST."""

    text: str
    desc: bool
    nulls_first: bool
    expression: bool = False

    @property
    def sql(self) -> str:
        """The column as written in ``CREATE INDEX`` (expressions parenthesised, non-default orders)."""
        out = f"({self.text})" if self.expression else self.text
        if self.desc:
            out += " DESC"
        if self.nulls_first != self.desc:
            out += " NULLS FIRST" if self.nulls_first else " NULLS LAST"
        return out


def _key_column(elem: ast.IndexElem) -> KeyColumn:
    """One ``CREATE INDEX`` column (a pglast ``IndexElem``) as a :class:`KeyColumn` (opclass and collation
    aside)."""
    text = quote_ident(elem.name or "") if elem.name or elem.expr is None else _strip(elem.expr)
    desc = elem.ordering == enums.SortByDir.SORTBY_DESC
    if elem.nulls_ordering == enums.SortByNulls.SORTBY_NULLS_FIRST:
        nulls_first = True
    elif elem.nulls_ordering == enums.SortByNulls.SORTBY_NULLS_LAST:
        nulls_first = False
    else:
        nulls_first = bool(desc)  # PostgreSQL's default: NULLS FIRST for DESC
    return KeyColumn(text, bool(desc), nulls_first, expression=not elem.name)


def parse_columns(columns: list[str], key: str) -> list[KeyColumn]:
    """Parse config column specs (``"created_at DESC"``, ``"lower(email)"``) as ``CREATE INDEX`` would.

    Raises :class:`ConfigError` naming ``key`` when a spec does not parse.
    """
    try:
        stmt = parse_one(f"CREATE INDEX x ON t ({', '.join(columns)})", ast.IndexStmt)
    except ParseError as exc:
        raise ConfigError(f"{key}: cannot parse index columns {columns!r}: {exc}") from None
    return [_key_column(elem) for elem in stmt.indexParams or ()]


@dataclass(frozen=True)
class IndexSignature:
    """What an index is, whatever its name, its table's spelling, ``CONCURRENTLY``, ``IF NOT EXISTS`` or
    ``ON ONLY``: its access method, uniqueness (and ``NULLS NOT DISTINCT``), key columns in order with
    their direction, NULLS order, operator class and collation, INCLUDE columns and normalised predicate."""

    method: str
    unique: bool
    nulls_not_distinct: bool
    key: tuple[tuple[KeyColumn, str, str], ...]
    include: tuple[str, ...]
    predicate: str


def index_signature(create_index_sql: str) -> IndexSignature:
    """The :class:`IndexSignature` of a ``CREATE INDEX`` statement, as dbtune plans it or as
    ``pg_get_indexdef`` prints it (which leaves out the default operator class and collation, as dbtune's
    statements do). Raises :class:`pglast.parser.ParseError` or :class:`ValueError` when ``create_index_sql``
    is not a ``CREATE INDEX`` statement."""

    def names(node: object) -> str:
        return ".".join(str(getattr(n, "sval", n)) for n in node or ())  # type: ignore[attr-defined]

    stmt = parse_one(create_index_sql, ast.IndexStmt)
    key = tuple((_key_column(elem), names(elem.opclass), names(elem.collation)) for elem in stmt.indexParams or ())
    include = tuple(quote_ident(p.name) if p.name else _strip(p.expr) for p in stmt.indexIncludingParams or ())
    predicate = _strip(stmt.whereClause) if stmt.whereClause is not None else ""
    return IndexSignature((stmt.accessMethod or "btree").lower(), bool(stmt.unique),
                          bool(getattr(stmt, "nulls_not_distinct", False)), key, include, predicate)


def index_key(index: Index) -> list[KeyColumn]:
    """The key columns of an existing index, in the same normalised form."""
    out = []
    for k, col in enumerate(index.key_columns):
        attnum = index.key_attnums[k] if k < len(index.key_attnums) else 0
        text = col if attnum != 0 else _normalize_index_expr(col)
        opt = index.options[k] if k < len(index.options) else 0
        out.append(KeyColumn(text, bool(opt & 1), bool(opt & 2)))
    return out


def _normalize_index_expr(text: str) -> str:
    try:
        stmt = parse_one(f"CREATE INDEX x ON t (({text}))", ast.IndexStmt)
        return _strip(stmt.indexParams[0].expr) if stmt.indexParams else text
    except ParseError:
        return text


def predicate_conjuncts(text: str | None) -> frozenset[str]:
    """The top-level ``AND`` terms of a predicate, each normalised as :func:`normalize_expr` does (empty
    for ``None``). Raises :class:`pglast.parser.ParseError` when ``text`` is not an expression."""
    if text is None:
        return frozenset()
    stmt = parse_one(f"SELECT 1 WHERE {text}", ast.SelectStmt)
    return _conjuncts(stmt.whereClause)


def _conjuncts(node: ast.Node | None) -> frozenset[str]:
    if node is None:
        return frozenset()
    if isinstance(node, ast.BoolExpr) and node.boolop == enums.BoolExprType.AND_EXPR:
        return frozenset(t for arg in node.args or () for t in _conjuncts(arg))
    return frozenset({_strip(node)})


def same_predicate(expected: str | None, actual: str | None) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    try:
        return normalize_expr(expected) == normalize_expr(actual)
    except ParseError:
        return False


def keys_match(want: list[KeyColumn], have: list[KeyColumn], prefix_ok: bool) -> bool:
    """Whether index key ``have`` serves key ``want``: the same columns in order (``want`` a prefix of
    ``have`` when ``prefix_ok``), with the same directions and NULLS orders or their exact mirror."""
    if len(have) < len(want) or (not prefix_ok and len(have) != len(want)):
        return False
    head = have[: len(want)]
    if [w.text for w in want] != [h.text for h in head]:
        return False
    same = all(w.desc == h.desc and w.nulls_first == h.nulls_first for w, h in zip(want, head, strict=True))
    mirror = all(w.desc != h.desc and w.nulls_first != h.nulls_first for w, h in zip(want, head, strict=True))
    return same or mirror


def satisfies(expect: ExpectedIndex, index: Index, *, unique: bool, key: str) -> bool:
    """Whether a *valid* ``index`` fulfils ``expect``.

    Non-unique expectations: the index's leading key columns are the expected ones in order (same or
    mirrored directions), INCLUDE columns are a superset, the predicate and method are equal. Unique
    expectations: a unique index whose key columns are exactly the expected set, with an equal predicate.
    """
    if not index.is_valid or index.method != expect.method:
        return False
    if not same_predicate(expect.where, index.predicate):
        return False
    want = parse_columns(expect.columns, key)
    have = index_key(index)
    if unique:
        return index.is_unique and sorted(w.text for w in want) == sorted(h.text for h in have)
    if not keys_match(want, have, prefix_ok=True):
        return False
    include = {quote_ident(c) for c in expect.include}
    return include <= set(index.include_columns)


def check_columns_exist(expect: ExpectedIndex, table: Relation, key: str) -> None:
    """Raise :class:`ConfigError` when a plain column named by ``expect`` is not in ``table``."""
    for col in parse_columns(expect.columns, key):
        if col.expression:
            continue
        name = col.text[1:-1].replace('""', '"') if col.text.startswith('"') else col.text
        if table.column_by_name(name) is None:
            raise ConfigError(f"{key}: column {name!r} does not exist in table {table.qualified_name}")
    for name in expect.include:
        if table.column_by_name(name) is None:
            raise ConfigError(f"{key}: column {name!r} does not exist in table {table.qualified_name}")


def covers_leading(index: Index, attnums: tuple[int, ...]) -> bool:
    """Whether a valid, non-partial btree (or single-column hash) index has ``attnums`` as its leading
    key columns in any order, so equality lookups on them can use it (foreign-key support)."""
    if not index.is_valid or index.predicate is not None or not attnums:
        return False
    if index.method not in ("btree", "hash") or (index.method == "hash" and len(attnums) != 1):
        return False
    lead = index.key_attnums[: len(attnums)]
    return len(lead) == len(attnums) and set(lead) == set(attnums) and index.n_key_columns >= len(attnums)


@dataclass(frozen=True)
class ConstraintSignature:
    """What a foreign key or check constraint means, whatever its name and validation state: its kind
    (``f`` or ``c``), its columns, the referenced relation (schema, name) and columns, its ON DELETE/UPDATE
    actions, or its normalised CHECK expression."""

    kind: str
    columns: tuple[str, ...] = ()
    ref_table: tuple[str, str] | None = None
    ref_columns: tuple[str, ...] = ()
    actions: tuple[str, str] = ("a", "a")
    expression: str = ""


def constraint_signature(definition: str, search_path: tuple[str, ...], resolve: Any) -> ConstraintSignature:
    """Parse a constraint definition (as in ``ADD CONSTRAINT``, or ``pg_get_constraintdef``) into its
    :class:`ConstraintSignature`. ``resolve(schema_or_None, name)`` returns the referenced relation's
    (schema, name) or None. Raises :class:`pglast.parser.ParseError` or :class:`ValueError` when the text is
    not a foreign key or check constraint."""
    stmt = parse_one(f"ALTER TABLE t ADD CONSTRAINT x {definition}", ast.AlterTableStmt)
    cmd = stmt.cmds[0] if stmt.cmds else None
    con = getattr(cmd, "def_", None)
    if not isinstance(con, ast.Constraint):
        raise ValueError(f"not a constraint: {definition!r}")
    if con.contype == enums.ConstrType.CONSTR_CHECK and con.raw_expr is not None:
        return ConstraintSignature("c", expression=_strip(con.raw_expr))
    if con.contype == enums.ConstrType.CONSTR_FOREIGN and con.pktable is not None:
        ref = resolve(con.pktable.schemaname, con.pktable.relname)
        return ConstraintSignature(
            "f", columns=tuple(s.sval for s in con.fk_attrs or ()), ref_table=ref,
            ref_columns=tuple(s.sval for s in con.pk_attrs or ()),
            actions=(con.fk_del_action or "a", con.fk_upd_action or "a"))
    raise ValueError(f"only FOREIGN KEY and CHECK constraints can be expected, not {definition!r}")


def same_constraint(expected: ConstraintSignature, actual: ConstraintSignature) -> bool:
    """Equal meaning; an expected foreign key that names no referenced columns matches any (the primary
    key is what PostgreSQL uses then)."""
    if expected.kind != actual.kind:
        return False
    if expected.kind == "c":
        return expected.expression == actual.expression
    ref_cols_ok = not expected.ref_columns or expected.ref_columns == actual.ref_columns
    return (expected.columns == actual.columns and expected.ref_table == actual.ref_table and ref_cols_ok
            and expected.actions == actual.actions)
