"""Shared logic of ``expected-index-missing`` and ``expected-unique-missing``: each expectation of the
config is resolved against the snapshot, matched by meaning, and turned into a finding with its fix."""

from __future__ import annotations

from collections.abc import Iterator

from dbtune.checks.matching import check_columns_exist, parse_columns, satisfies
from dbtune.checks.runner import CheckContext
from dbtune.config.model import ExpectedIndex
from dbtune.errors import ConfigError
from dbtune.migrate.changes import create_index, index_name
from dbtune.model import Finding
from dbtune.sqlnames import quote_ident


def _describe(e: ExpectedIndex, unique: bool) -> str:
    text = f"{'UNIQUE ' if unique else ''}({', '.join(e.columns)})"
    if e.include:
        text += f" INCLUDE ({', '.join(quote_ident(c) for c in e.include)})"
    if e.where:
        text += f" WHERE {e.where}"
    return text


def expectation_findings(ctx: CheckContext, section: str, unique: bool) -> Iterator[Finding]:
    """Findings for the expectations under ``[[expect.<section>]]``.

    Raises :class:`~dbtune.errors.ConfigError` when an expectation names a missing table or column.
    """
    expectations = ctx.config.expect.unique if section == "unique" else ctx.config.expect.index
    for n, expect in enumerate(expectations):
        key = f"expect.{section}[{n}]"
        wants_unique = unique or expect.unique
        table = ctx.resolve_table(expect.table, f"{key}.table")
        methods = ctx.snapshot.server.index_methods
        if expect.method not in methods:
            raise ConfigError(f"{key}.method: {expect.method!r} is not an index access method of this server "
                              f"(it has {', '.join(sorted(methods))})")
        check_columns_exist(expect, table, key)
        indexes = [ix for ix in ctx.snapshot.indexes_on(table.oid) if ix.parent_index_oid is None]
        if any(satisfies(expect, ix, unique=wants_unique, key=key) for ix in indexes):
            continue
        invalid = [ix.qualified_name for ix in indexes if not ix.is_valid
                   and satisfies(expect, _as_valid(ix), unique=wants_unique, key=key)]
        parsed = parse_columns(expect.columns, key)
        cols = [c.text for c in parsed]
        spec = _describe(expect, wants_unique)
        name = expect.name or index_name(table.name, cols, "key" if wants_unique else "idx")
        message = (f"{table.qualified_name} has no {'unique ' if wants_unique else ''}index "
                   f"{_describe(expect, unique=False)}")
        if expect.name:
            message += f" (expected as {quote_ident(expect.name)})"
        if invalid:
            message += f"; {', '.join(invalid)} matches but is INVALID"
        if expect.reason:
            message += f": {expect.reason}"
        evidence = {"expected": spec, "table_size_bytes": table.size_bytes,
                    "table_reltuples": max(table.reltuples, 0), "invalid_matches": invalid}
        yield ctx.finding(
            table.qualified_name, message, evidence=evidence,
            # The config's columns as PostgreSQL's grammar printed them back (see ExpectedIndex), with their
            # operator classes and collations.
            changes=create_index(ctx.snapshot, table, name, list(expect.columns), unique=wants_unique,
                                 method=expect.method, include=[quote_ident(c) for c in expect.include],
                                 where=expect.where),
        )


def _as_valid(ix):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(ix, is_valid=True)


def team_index_names(ctx: CheckContext) -> frozenset[tuple[int, str]]:
    """``(table oid, index name)`` of every index the team's checklist names (``name`` of an
    ``[[expect.index]]`` or ``[[expect.unique]]`` entry on a table that exists): between twins, the index
    to keep."""
    path = tuple(ctx.config.database.search_path)
    found = set()
    for expect in (*ctx.config.expect.index, *ctx.config.expect.unique):
        table = ctx.snapshot.find_relation(expect.table, path)
        if expect.name and table is not None:
            found.add((table.oid, expect.name))
    return frozenset(found)
