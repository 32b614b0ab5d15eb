"""Duplicate keys under a proposed unique index: the rows that would make its build fail.

A ``CREATE UNIQUE INDEX CONCURRENTLY`` over rows that share a key fails after scanning the whole table and
leaves an INVALID index behind; a migration that runs it first stops there. For every unique index that a
finding proposes to build (or rebuild), the audit counts the key values held by more than one row, with a
query built from the index statement itself (its table, key columns or expressions and predicate, parsed
by pglast, so names stay quoted exactly as written). Rows whose key has a NULL are left out, as a unique
index allows them, unless the index is ``NULLS NOT DISTINCT``. The count runs in a read-only session under
the audit's ``statement_timeout``, one savepoint per index, so a probe that is cancelled or refused (no
SELECT privilege on the table) is reported as skipped and the others go on.
See https://www.postgresql.org/docs/current/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY and
https://www.postgresql.org/docs/current/indexes-unique.html.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg
from pglast import ast, prettify
from pglast.stream import RawStream

from dbtune.catalog.model import Skip
from dbtune.db.connect import ConnectionSettings, read_only_snapshot
from dbtune.model import ChangeKind, Finding
from dbtune.pgsql import parse_one
from dbtune.sqlnames import quote_ident

_BUILDS = {ChangeKind.CREATE_INDEX, ChangeKind.REBUILD_INDEX}


def duplicate_keys_query(create_index_sql: str) -> str | None:
    """``SELECT key…, count(*) AS tuples FROM table WHERE key IS NOT NULL … GROUP BY key… HAVING count(*) >
    1 ORDER BY count(*) DESC``: the duplicate keys under the unique index ``create_index_sql`` creates, or
    ``None`` when it is not a ``CREATE UNIQUE INDEX`` that pglast reads."""
    try:
        stmt = parse_one(create_index_sql, ast.IndexStmt)
    except Exception:  # noqa: BLE001 - not an index statement: nothing to probe
        return None
    if not stmt.unique or stmt.relation is None or not stmt.indexParams:
        return None
    keys = [quote_ident(p.name) if p.name else f"({RawStream()(p.expr)})" for p in stmt.indexParams]
    conditions = [] if getattr(stmt, "nulls_not_distinct", False) else [f"{k} IS NOT NULL" for k in keys]
    if stmt.whereClause is not None:
        conditions.append(f"({RawStream()(stmt.whereClause)})")
    relation = RawStream()(ast.RangeVar(schemaname=stmt.relation.schemaname, relname=stmt.relation.relname,
                                        inh=True, relpersistence="p"))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    listing = ", ".join(keys)
    return prettify(f"SELECT {listing}, count(*) AS tuples FROM {relation}{where} GROUP BY {listing} "
                    f"HAVING count(*) > 1 ORDER BY count(*) DESC", semicolon_after_last_statement=True)


def _unique_build(finding: Finding) -> str | None:
    for change in finding.changes:
        if change.kind in _BUILDS:
            query = duplicate_keys_query(change.up)
            if query is not None:
                return query
    return None


def probe_duplicate_keys(settings: ConnectionSettings, findings: tuple[Finding, ...]
                         ) -> tuple[tuple[Finding, ...], tuple[Skip, ...]]:
    """``findings`` with, on each that builds a unique index, the evidence ``duplicate_keys`` (key values
    held by more than one row), ``duplicate_key_tuples`` (the rows holding them) and
    ``duplicate_keys_query`` (the query listing them); plus what could not be counted, as skips.

    Opens one read-only session only when some finding builds a unique index. Raises
    :class:`~dbtune.errors.ConnectionFailed` or :class:`~dbtune.errors.ServerRefused` as
    :func:`~dbtune.db.connect.read_only_snapshot` does; a single probe's failure is a skip, not an error.
    """
    queries = {n: q for n, q in ((n, _unique_build(f)) for n, f in enumerate(findings)) if q is not None}
    if not queries:
        return findings, ()
    out = list(findings)
    skipped: list[Skip] = []
    counted: dict[str, tuple[int, int] | str] = {}
    with read_only_snapshot(settings) as conn:
        for n, query in queries.items():
            if query not in counted:
                counted[query] = _count(conn, query)
            result = counted[query]
            if isinstance(result, str):
                skipped.append(Skip(f"duplicate keys of {findings[n].object}", result,
                                    "SELECT on the table" if "permission denied" in result else None))
                continue
            keys, tuples = result
            out[n] = replace(findings[n], evidence={**findings[n].evidence, "duplicate_keys": keys,
                                                    "duplicate_key_tuples": tuples, "duplicate_keys_query": query})
    return tuple(out), tuple(dict.fromkeys(skipped))


def _count(conn: psycopg.Connection, query: str) -> tuple[int, int] | str:
    """(key values, rows) of ``query``'s duplicate keys, or the server's reason for refusing to count."""
    try:
        with conn.transaction():  # a savepoint: a cancelled or refused count leaves the session usable
            row = conn.execute(f"/* dbtune */ SELECT count(*), coalesce(sum(d.tuples), 0)::bigint "  # type: ignore[arg-type]
                               f"FROM ({query.rstrip().rstrip(';')}) AS d").fetchone()
    except psycopg.Error as exc:
        return " ".join(str(exc).split())
    return (int(row[0]), int(row[1])) if row else (0, 0)
