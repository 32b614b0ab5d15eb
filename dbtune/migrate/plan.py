"""From findings to a migration plan: which changes become steps, in what order, without duplicates.

A step is one :class:`~dbtune.model.Change`. Index builds, rebuilds of INVALID indexes, partition index
attachments and constraint validations are included; drops only with ``include_drops``; role and database
settings only with ``include_settings``; server-level changes (``ALTER SYSTEM``, ``CREATE EXTENSION``) never.
Two findings that propose the same index (a foreign key's index and the team's expected index on the same
columns, say) yield one step, the team's name winning; a plain index whose key a planned unique index
already serves is left out. A unique build that the audit found duplicate keys for (evidence
``duplicate_keys`` > 0, counted by :mod:`dbtune.catalog.duplicate_keys`) would fail and stop the run
there: it is left out, with the query that lists the duplicate keys, and the rest is planned. Every table
whose indexes change is analyzed at the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from pglast import ast
from pglast.stream import RawStream

from dbtune.migrate.changes import MAX_IDENTIFIER_BYTES, pretty
from dbtune.model import Change, ChangeKind, Finding
from dbtune.pgsql import parse_one

SCHEMA_KINDS = {ChangeKind.CREATE_INDEX, ChangeKind.REBUILD_INDEX, ChangeKind.ATTACH_INDEX,
                ChangeKind.ADD_CONSTRAINT, ChangeKind.VALIDATE_CONSTRAINT}
# What a plan can carry; ``server`` and ``other`` changes (ALTER SYSTEM, CREATE EXTENSION) never are steps.
PLANNABLE_KINDS = SCHEMA_KINDS | {ChangeKind.DROP_INDEX, ChangeKind.SET_PARAMETER}
# Findings whose fix names the index the team chose come first, so their names win over generated ones.
# Rebuilds of INVALID indexes come first: their drop must precede any build under the same name.
_PRIORITY = {"invalid-index": 0, "expected-unique-missing": 1, "expected-index-missing": 2}


@dataclass(frozen=True)
class Step:
    """One change, with the finding it comes from (``check_name`` and ``object``) for comments, and that
    finding's position in the list given to :func:`plan_migration` (``finding``; -1 when unknown)."""

    change: Change
    check_name: str
    object: str
    finding: int = -1

    def to_json(self) -> dict[str, Any]:
        return {"check_name": self.check_name, "object": self.object, "change": self.change.to_json()}


@dataclass(frozen=True)
class LeftOut:
    """A fix left out of the plan because it is known to fail: a unique index over duplicate keys.
    ``query`` lists the duplicate keys (``SELECT key…, count(*) … HAVING count(*) > 1``)."""

    check_name: str
    object: str
    index: str
    reason: str
    query: str

    def to_json(self) -> dict[str, Any]:
        return {"check_name": self.check_name, "object": self.object, "index": self.index,
                "reason": self.reason, "query": self.query}


@dataclass(frozen=True)
class Folded:
    """A finding's change that no step carries because another step does the same: the same index under
    another name (``by``, the index built instead), or the same statement. ``finding`` and ``by_finding``
    are positions in the list given to :func:`plan_migration`."""

    finding: int
    change: Change
    by: str | None
    by_finding: int


_OfFinding = TypeVar("_OfFinding", Step, Folded)


@dataclass(frozen=True)
class MigrationPlan:
    """The ordered steps of one migration, the tables to ``ANALYZE`` after them, and the fixes left out."""

    steps: tuple[Step, ...]
    analyze: tuple[str, ...] = field(default_factory=tuple)
    left_out: tuple[LeftOut, ...] = field(default_factory=tuple)
    folded: tuple[Folded, ...] = field(default_factory=tuple)

    def steps_of(self, finding: int) -> tuple[Step, ...]:
        """The steps that come from the finding at position ``finding``."""
        return self._steps_by_finding.get(finding, ())

    def folded_of(self, finding: int) -> tuple[Folded, ...]:
        """The folded changes of the finding at position ``finding``."""
        return self._folded_by_finding.get(finding, ())

    @cached_property
    def _folded_by_finding(self) -> dict[int, tuple[Folded, ...]]:
        return _by_finding(self.folded)

    @cached_property
    def _steps_by_finding(self) -> dict[int, tuple[Step, ...]]:
        return _by_finding(self.steps)

    @property
    def empty(self) -> bool:
        return not self.steps

    def digest(self) -> str:
        """12 hex digits identifying the plan's content: the revision id, stable across runs."""
        # Sizes are left out: the same changes on a bigger table are the same migration.
        body = json.dumps([[s.check_name, s.object, s.change.kind.value, s.change.up, s.change.down]
                           for s in self.steps] + list(self.analyze))
        return hashlib.sha256(body.encode()).hexdigest()[:12]


def _by_finding(items: Iterable[_OfFinding]) -> dict[int, tuple[_OfFinding, ...]]:
    """``items`` (steps or folded changes) grouped by the position of their finding, each group in the
    order given: one pass for all findings, since a report of 10,000 findings asks once per finding."""
    out: dict[int, list[_OfFinding]] = {}
    for item in items:
        out.setdefault(item.finding, []).append(item)
    return {n: tuple(group) for n, group in out.items()}


def _index_stmt(sql: str) -> ast.IndexStmt | None:
    try:
        return parse_one(sql, ast.IndexStmt)
    except Exception:  # noqa: BLE001 - a statement pglast cannot read, or another kind, is not deduplicated
        return None


def _index_key(stmt: ast.IndexStmt) -> tuple[str, ...]:
    """What makes two planned indexes the same, whatever their names."""
    rel = RawStream()(stmt.relation) if stmt.relation is not None else ""
    params = ", ".join(RawStream()(p) for p in stmt.indexParams or ())
    include = ", ".join(RawStream()(p) for p in stmt.indexIncludingParams or ())
    where = RawStream()(stmt.whereClause) if stmt.whereClause is not None else ""
    return (rel, stmt.accessMethod or "btree", params, include, where)


def plan_migration(findings: list[Finding] | tuple[Finding, ...], *, include_drops: bool = False,
                   include_settings: bool = False, existing_index_names: set[str] | None = None) -> MigrationPlan:
    """Turn findings into an ordered, de-duplicated :class:`MigrationPlan`.

    ``existing_index_names`` (schema-qualified, quoted as in ``Change.index``) are names already taken in
    the database: a generated name that collides is given a numeric suffix.
    """
    kinds = set(SCHEMA_KINDS)
    if include_drops:
        kinds.add(ChangeKind.DROP_INDEX)
    if include_settings:
        kinds.add(ChangeKind.SET_PARAMETER)
    ordered = sorted(enumerate(findings), key=lambda p: (_PRIORITY.get(p[1].check_name, 9), p[0]))
    steps: list[Step] = []
    seen_sql: dict[str, Change] = {}
    planned: dict[tuple[str, ...], str] = {}
    unique_keys: dict[tuple[str, ...], str] = {}
    taken = set(existing_index_names or ())
    analyze: list[str] = []
    analyzed: set[str] = set()
    left_out: list[LeftOut] = []
    folded: list[tuple[int, Change, str | None]] = []
    # Each index build parsed once (by its final SQL): the statement and its key, for the pass below.
    parsed: dict[str, tuple[ast.IndexStmt, tuple[str, ...]]] = {}
    for position, finding in ordered:
        blocked = _known_to_fail(finding)
        if blocked is not None and blocked.index not in {x.index for x in left_out}:
            left_out.append(blocked)
        for change in finding.changes:
            if change.kind not in kinds:
                continue
            if change.up in seen_sql:
                folded.append((position, change, seen_sql[change.up].index))
                continue
            if blocked is not None and change.kind in _INDEX_BUILD_KINDS:
                continue
            if change.kind in (ChangeKind.CREATE_INDEX, ChangeKind.REBUILD_INDEX) and change.transactional is False:
                stmt = _index_stmt(change.up)
                if stmt is not None:
                    key = _index_key(stmt)
                    if change.kind == ChangeKind.CREATE_INDEX and key in planned:
                        # The same index is already planned (perhaps under the team's name).
                        folded.append((position, change, planned[key]))
                        continue
                    if change.kind == ChangeKind.CREATE_INDEX:
                        change = _unique_name(change, stmt, taken)
                    planned[key] = change.index or ""
                    if stmt.unique:
                        unique_keys[key] = change.index or ""
                    parsed[change.up] = (stmt, key)
            seen_sql[change.up] = change
            if change.index:
                taken.add(change.index)
            steps.append(Step(change, finding.check_name, finding.object, position))
            if change.table and change.kind in (ChangeKind.CREATE_INDEX, ChangeKind.REBUILD_INDEX,
                                                ChangeKind.DROP_INDEX) and change.table not in analyzed:
                analyze.append(change.table)
                analyzed.add(change.table)
    # A plain index whose key a planned unique index has, or whose key leads another planned full btree
    # index of the same table (a foreign key's index beside the team's two-column index), is not built.
    full_btrees: dict[str, list[tuple[str, str]]] = {}
    for s in steps:
        if s.change.kind == ChangeKind.CREATE_INDEX:
            found = parsed.get(s.change.up) or _parsed(s.change.up)
            if found is not None and found[1][1] == "btree" and not found[1][4]:
                full_btrees.setdefault(found[1][0], []).append((found[1][2], s.change.index or ""))
    kept: list[Step] = []
    for step in steps:
        by = _served_by_other(step, parsed.get(step.change.up) or _parsed(step.change.up), unique_keys, full_btrees)
        if by is None:
            kept.append(step)
        else:
            folded.append((step.finding, step.change, by))
    tables = {s.change.table for s in kept}
    by_finding = {s.change.index: s.finding for s in kept if s.change.index}
    return MigrationPlan(tuple(kept), tuple(t for t in analyze if t in tables), tuple(left_out),
                         tuple(Folded(position, change, by, by_finding.get(by, -1) if by else -1)
                               for position, change, by in folded))


_INDEX_BUILD_KINDS = {ChangeKind.CREATE_INDEX, ChangeKind.REBUILD_INDEX, ChangeKind.ATTACH_INDEX}


def _known_to_fail(finding: Finding) -> LeftOut | None:
    """The finding's unique index build, when the audit counted duplicate keys for it."""
    keys = finding.evidence.get("duplicate_keys")
    query = finding.evidence.get("duplicate_keys_query")
    if not isinstance(keys, int) or isinstance(keys, bool) or keys <= 0 or not isinstance(query, str):
        return None
    index = next((c.index for c in finding.changes if c.kind in _INDEX_BUILD_KINDS and c.index), finding.object)
    rows = finding.evidence.get("duplicate_key_tuples")
    held = f" ({rows} rows in all)" if isinstance(rows, int) else ""
    return LeftOut(finding.check_name, finding.object, index,
                   f"{keys} key value(s) of unique index {index} are each held by more than one row{held}, so "
                   f"its build would fail (leaving an INVALID index) and stop the migration there; remove "
                   f"the duplicates, audit and generate again", query)


def _parsed(sql: str) -> tuple[ast.IndexStmt, tuple[str, ...]] | None:
    stmt = _index_stmt(sql)
    return None if stmt is None else (stmt, _index_key(stmt))


def _served_by_other(step: Step, parsed: tuple[ast.IndexStmt, tuple[str, ...]] | None,
                     unique_keys: dict[tuple[str, ...], str],
                     full_btrees: dict[str, list[tuple[str, str]]]) -> str | None:
    """The planned index that serves ``step``'s plain index (a unique index of the same key, or a full
    btree index that leads with its key), or ``None``. ``parsed`` is the step's statement and key;
    ``full_btrees`` the planned full btree indexes by relation, as ``(key columns, name)``."""
    if step.change.kind != ChangeKind.CREATE_INDEX or parsed is None:
        return None
    stmt, key = parsed
    if stmt.unique:
        return None
    if key in unique_keys and unique_keys[key] != step.change.index:
        return unique_keys[key]
    rel, method, params, include, where = key
    if method != "btree" or include or where:
        return None
    return next((name for other, name in full_btrees.get(rel, ())
                 if other != params and other.startswith(params + ", ")), None)


def _unique_name(change: Change, stmt: ast.IndexStmt, taken: set[str]) -> Change:
    if not change.index or change.index not in taken:
        return change
    schema = change.index.rsplit(".", 1)[0]
    base = stmt.idxname or ""
    for n in range(1, 1000):
        suffix = f"_{n}"
        name = base.encode()[: MAX_IDENTIFIER_BYTES - len(suffix)].decode(errors="ignore") + suffix
        qualified_name = f"{schema}.{_quote(name)}"
        if qualified_name not in taken:
            stmt.idxname = name
            up = pretty(RawStream()(stmt))
            down = change.down.replace(change.index, qualified_name) if change.down else None
            return Change(up=up, down=down, transactional=change.transactional, lock=change.lock,
                          relation_bytes=change.relation_bytes, kind=change.kind, table=change.table,
                          index=qualified_name)
    return change


def _quote(name: str) -> str:
    from dbtune.sqlnames import quote_ident

    return quote_ident(name)
