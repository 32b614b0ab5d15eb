"""The relations column usage is resolved against: tables (with their columns) and views (with their
defining query), plus the search path for unqualified names.

Built from a catalog :class:`~dbtune.catalog.model.Snapshot` (tables, partitioned tables, materialized
views) and :func:`read_views` (the snapshot has no views), from a plain mapping ``{schema: {table:
{column: type}}}``, or from ``CREATE TABLE`` / ``CREATE VIEW`` statements parsed by pglast (for schemas
kept in files).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import psycopg
from pglast import ast, parser
from pglast.parser import ParseError
from pglast.stream import RawStream
from psycopg.rows import dict_row

from dbtune.catalog.model import Snapshot
from dbtune.errors import ServerRefused, UsageError
from dbtune.sqlnames import qualified, quote_ident

VIEWS = """
-- Every view outside the system schemas and extensions: its schema, name, columns (names and types, in
-- attnum order) and defining query as pg_get_viewdef prints it.
SELECT n.nspname AS schema, c.relname AS name, pg_catalog.pg_get_viewdef(c.oid) AS definition,
       pg_catalog.array_agg(a.attname::text ORDER BY a.attnum) AS columns,
       pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum) AS types
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind = 'v'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
                    AND d.deptype = 'e')
GROUP BY n.nspname, c.relname, c.oid
ORDER BY n.nspname, c.relname
"""

# pg_get_viewdef qualifies a relation name only when the search path does not find it: with an empty
# search path (pg_catalog is still searched first) every user relation comes out schema-qualified.
_EMPTY_SEARCH_PATH = "SELECT pg_catalog.set_config('search_path', '', true)"


@dataclass(frozen=True)
class SchemaRelation:
    """A table (``r``), partitioned table (``p``), materialized view (``m``), foreign table (``f``) or
    view (``v``, with its defining query in ``definition``); ``columns`` are ``(name, type)`` pairs."""

    schema: str
    name: str
    kind: str
    columns: tuple[tuple[str, str], ...]
    definition: str | None = None

    @property
    def qualified_name(self) -> str:
        return qualified(self.schema, self.name)

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)

    @property
    def is_view(self) -> bool:
        return self.kind == "v"


@dataclass(frozen=True)
class WorkloadSchema:
    """The relations queries are resolved against, and the ``search_path`` for unqualified names."""

    relations: tuple[SchemaRelation, ...]
    search_path: tuple[str, ...] = ("public",)
    _index: dict[tuple[str, str], SchemaRelation] = field(default_factory=dict, repr=False, compare=False)

    def relation(self, schema: str | None, name: str) -> SchemaRelation | None:
        """The relation ``schema.name``, or ``name`` through the search path (exact, case-sensitive
        names, as stored in the catalog)."""
        if not self._index:
            self._index.update({(r.schema, r.name): r for r in self.relations})
        if schema is not None:
            return self._index.get((schema, name))
        for s in self.search_path:
            found = self._index.get((s, name))
            if found is not None:
                return found
        return None

    def mapping(self) -> dict[str, dict[str, dict[str, str]]]:
        """``{schema: {table: {column: type}}}`` for sqlglot's ``MappingSchema``, every name quoted as
        PostgreSQL's ``quote_ident`` would (so ``"Orders"`` keeps its case and ``orders`` matches an
        unquoted ``ORDERS``)."""
        out: dict[str, dict[str, dict[str, str]]] = {}
        for r in self.relations:
            out.setdefault(quote_ident(r.schema), {})[quote_ident(r.name)] = {
                quote_ident(c): t or "unknown" for c, t in r.columns}
        return out

    @classmethod
    def from_snapshot(cls, snapshot: Snapshot, views: Iterable[SchemaRelation] = (),
                      search_path: tuple[str, ...] | None = None) -> WorkloadSchema:
        """The snapshot's tables, partitioned tables, partitions and materialized views, plus ``views``
        (:func:`read_views`); the search path is the snapshot session's unless given."""
        relations = [SchemaRelation(r.schema, r.name, r.kind, tuple((c.name, c.type) for c in r.columns))
                     for r in snapshot.relations.values()]
        if search_path is None:
            search_path = parse_search_path(snapshot.setting("search_path") or "public",
                                            snapshot.server.current_user)
        return cls(tuple(relations) + tuple(views), search_path)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Mapping[str, Mapping[str, str]]],
                     search_path: tuple[str, ...] = ("public",)) -> WorkloadSchema:
        """Tables from ``{schema: {table: {column: type}}}`` (names exactly as in the catalog)."""
        return cls(tuple(SchemaRelation(s, t, "r", tuple(cols.items()))
                         for s, tables in mapping.items() for t, cols in tables.items()), search_path)

    @classmethod
    def from_sql(cls, text: str, search_path: tuple[str, ...] = ("public",)) -> WorkloadSchema:
        """Tables and views from the ``CREATE TABLE`` and ``CREATE VIEW`` statements of a SQL script
        (other statements are ignored; a partition's columns are its parent's). Names without a schema
        go to the first schema of ``search_path``. Raises :class:`UsageError` when the text does not parse.
        """
        try:
            statements = parser.parse_sql(text)
        except ParseError as exc:
            raise UsageError(f"schema SQL does not parse: {exc.args[0]}") from None
        default = search_path[0] if search_path else "public"
        relations: dict[tuple[str, str], SchemaRelation] = {}

        def key_of(rel: ast.RangeVar | None) -> tuple[str, str]:
            assert rel is not None and rel.relname is not None
            return (rel.schemaname or default, rel.relname)

        for raw in statements:
            stmt = raw.stmt
            if isinstance(stmt, ast.CreateStmt):
                key = key_of(stmt.relation)
                columns = [(str(e.colname), _type_name(e.typeName)) for e in stmt.tableElts or ()
                           if isinstance(e, ast.ColumnDef)]
                if stmt.partbound is not None and stmt.inhRelations:
                    found = relations.get(key_of(stmt.inhRelations[0]))
                    columns = list(found.columns) if found else columns
                kind = "p" if stmt.partspec is not None else "r"
                relations[key] = SchemaRelation(key[0], key[1], kind, tuple(columns))
            elif isinstance(stmt, ast.ViewStmt) and stmt.query is not None:
                key = key_of(stmt.view)
                names = tuple(str(a.sval) for a in stmt.aliases or ()) or _output_names(stmt.query)
                relations[key] = SchemaRelation(key[0], key[1], "v", tuple((n, "") for n in names),
                                                RawStream()(stmt.query))
        return cls(tuple(relations.values()), search_path)


def _output_names(query: ast.Node) -> tuple[str, ...]:
    """The column names PostgreSQL gives a query's output (its FigureColname rules, simplified)."""
    while isinstance(query, ast.SelectStmt) and query.larg is not None:
        query = query.larg
    names: list[str] = []
    for target in getattr(query, "targetList", None) or ():
        val = target.val
        if target.name:
            names.append(target.name)
        elif isinstance(val, ast.ColumnRef) and val.fields and isinstance(val.fields[-1], ast.String):
            names.append(str(val.fields[-1].sval))
        elif isinstance(val, ast.FuncCall) and val.funcname:
            names.append(str(val.funcname[-1].sval))
        elif isinstance(val, ast.TypeCast) and isinstance(val.arg, ast.ColumnRef) and val.arg.fields:
            names.append(str(val.arg.fields[-1].sval))
        else:
            names.append("?column?")
    return tuple(names)


def _type_name(node: ast.TypeName | None) -> str:
    if node is None:
        return ""
    names = [str(n.sval) for n in node.names or () if isinstance(n, ast.String)]
    if names and names[0] == "pg_catalog":
        names = names[1:]
    return ".".join(names) + ("[]" * len(node.arrayBounds or ()))


def parse_search_path(value: str, current_user: str) -> tuple[str, ...]:
    """The schemas of a ``search_path`` setting (``"$user", public``), ``$user`` replaced by
    ``current_user``; quoted names keep their case, unquoted ones are folded to lower case."""
    schemas: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith('"') and part.endswith('"'):
            name = part[1:-1].replace('""', '"')
        else:
            name = part.lower()
        schemas.append(current_user if name == "$user" else name)
    return tuple(schemas)


def read_views(conn: psycopg.Connection) -> tuple[SchemaRelation, ...]:
    """Every user view with its columns and defining query (one catalog query, :data:`VIEWS`, under an
    empty search path so the definitions name every relation with its schema; the caller's search path
    is restored). Works inside the read-only snapshot transaction. Raises :class:`ServerRefused` when
    the server refuses the query."""
    try:
        with conn.transaction(force_rollback=True), conn.cursor(row_factory=dict_row) as cur:
            cur.execute(_EMPTY_SEARCH_PATH)
            rows = cur.execute(VIEWS).fetchall()  # type: ignore[arg-type]
    except psycopg.Error as exc:
        raise ServerRefused(f"cannot read the view definitions: {' '.join(str(exc).split())}") from None
    return tuple(SchemaRelation(r["schema"], r["name"], "v", tuple(zip(r["columns"], r["types"], strict=True)),
                                (r["definition"] or "").strip().rstrip(";")) for r in rows)
