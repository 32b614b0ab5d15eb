"""The checklist's and the catalogue's own proposals, judged like the advisor's: an index is built because
the workload needs it, not because a rule names it.

Judged: findings of ``expected-index-missing`` (IX006, the team's ``[[expect.index]]``) and
``foreign-key-without-index`` (IX001). Each proposed index is *not needed* when

1. **another index serves it**: an index that exists or that another finding proposes
   (``expected-unique-missing``'s partial unique index, say; for a foreign key's index, also one the
   advisor recommends: an expected index the advisor's choice extends is needed, in that form) has the
   same access method and
   predicate, and its key, once the columns its predicate fixes by equality are removed from both keys,
   starts with the proposed key (same directions, or all mirrored: a btree scans both ways,
   https://www.postgresql.org/docs/current/indexes-ordering.html) and holds its INCLUDE columns. The guide's
   ``(routing_id, response) WHERE response = 'ACCEPTED'`` is served by the unique ``(routing_id) WHERE
   response = 'ACCEPTED'``: ``response`` is fixed by the predicate. A foreign key's index is served by any
   non-partial btree whose leading columns are the key's. Unless the what-if engine says the proposed
   index still saves more than its write cost with the other present: then it stays needed;
2. for a foreign key's index, **nothing needs it**: the referenced (parent) table is never deleted from
   (``n_tup_del = 0`` in ``pg_stat_user_tables``), no workload statement updates the referenced key, and
   no workload query joins or filters through the foreign key's columns
   (https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK: the index serves the
   referential checks of deletes and key updates on the parent, and joins).

An expected index that no other index serves stays needed: the team named it. Each one not needed is a
:class:`~dbtune.advisor.model.Rejected` of stage ``not needed`` with its write cost, for ``Advice.not_needed``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pglast import ast, enums
from pglast.parser import ParseError

from dbtune.advisor.model import AdvisorQuery, Candidate, KeyPart, Origin, Recommendation, Rejected
from dbtune.advisor.select import Costs
from dbtune.catalog.model import Snapshot
from dbtune.checks.matching import same_predicate
from dbtune.model import ChangeKind, Finding
from dbtune.pgsql import parse_one, parse_sql, render
from dbtune.sqlnames import qualified, quote_ident
from dbtune.workload.model import QueryUsage, Usage

STAGE = "not needed"
EXPECTED_INDEX = "IX006"
FOREIGN_KEY = "IX001"
THROUGH = frozenset({Usage.EQUALITY, Usage.IN, Usage.JOIN, Usage.RANGE, Usage.ORDER_BY, Usage.GROUP_BY})


@dataclass(frozen=True)
class _Proposal:
    finding: Finding
    candidate: Candidate


def candidate_from_sql(create_index_sql: str, origin: Origin = Origin.WORKLOAD, reason: str = "") -> Candidate:
    """The :class:`Candidate` a ``CREATE INDEX`` statement builds (dbtune's, or ``pg_get_indexdef``'s; the
    table must be schema-qualified). Raises :class:`pglast.parser.ParseError` or :class:`ValueError` for
    anything else."""
    stmt = parse_one(create_index_sql, ast.IndexStmt)
    rel = stmt.relation
    if rel is None or not rel.schemaname or not rel.relname:
        raise ValueError(f"not a schema-qualified CREATE INDEX: {create_index_sql!r}")
    keys = []
    for elem in stmt.indexParams or ():
        opclass = ".".join(n.sval for n in elem.opclass) if elem.opclass else None
        descending = elem.ordering == enums.SortByDir.SORTBY_DESC
        if elem.name:
            keys.append(KeyPart(elem.name, descending=descending, opclass=opclass))
        else:
            keys.append(KeyPart(render(elem.expr), expression=True, descending=descending, opclass=opclass))
    include = tuple(p.name for p in stmt.indexIncludingParams or () if p.name)
    predicate = render(stmt.whereClause) if stmt.whereClause is not None else None
    return Candidate(rel.schemaname, rel.relname, tuple(keys), include=include, predicate=predicate,
                     method=(stmt.accessMethod or "btree").lower(), unique=bool(stmt.unique), origin=origin,
                     reason=reason)


def fixed_columns(predicate: str | None) -> frozenset[str]:
    """The columns a partial index's predicate fixes by equality with a constant (``response =
    'ACCEPTED'``, each conjunct of an AND)."""
    if not predicate:
        return frozenset()
    try:
        stmt = parse_one(f"SELECT 1 WHERE {predicate}", ast.SelectStmt)
    except (ParseError, ValueError):
        return frozenset()
    where = stmt.whereClause
    terms = list(where.args or ()) if isinstance(where, ast.BoolExpr) \
        and where.boolop == enums.BoolExprType.AND_EXPR else [where]
    fixed: set[str] = set()
    for term in terms:
        if not (isinstance(term, ast.A_Expr) and term.kind == enums.A_Expr_Kind.AEXPR_OP and term.name
                and term.name[-1].sval == "="):
            continue
        for col, const in ((term.lexpr, term.rexpr), (term.rexpr, term.lexpr)):
            value = const.arg if isinstance(const, ast.TypeCast) else const
            if isinstance(col, ast.ColumnRef) and isinstance(value, ast.A_Const) and col.fields:
                last = col.fields[-1]
                if isinstance(last, ast.String) and last.sval:
                    fixed.add(last.sval)
    return frozenset(fixed)


def _reduced(cand: Candidate, fixed: frozenset[str]) -> list[KeyPart]:
    return [k for k in cand.keys if k.expression or k.text not in fixed]


def serves(other: Candidate, wanted: Candidate) -> bool:
    """Whether ``other`` serves every lookup ``wanted`` would (see the module docstring, rule 1)."""
    if other == wanted or other.qualified_table != wanted.qualified_table or other.method != wanted.method:
        return False
    if not same_predicate(wanted.predicate, other.predicate):
        return False
    fixed = fixed_columns(wanted.predicate)
    want, have = _reduced(wanted, fixed), _reduced(other, fixed)
    if not want or len(have) < len(want):
        return False
    head = have[: len(want)]
    if [(k.text, k.expression, k.opclass) for k in want] != [(k.text, k.expression, k.opclass) for k in head]:
        return False
    same = all(w.descending == h.descending for w, h in zip(want, head, strict=True))
    mirrored = all(w.descending != h.descending for w, h in zip(want, head, strict=True))
    covered = {k.text for k in other.keys if not k.expression} | set(other.include)
    return (same or mirrored) and set(wanted.include) <= covered


def _serves_foreign_key(other: Candidate, table: str, columns: Sequence[str]) -> bool:
    lead = other.keys[: len(columns)]
    return (other.qualified_table == table and other.method == "btree" and other.predicate is None
            and len(lead) == len(columns) and not any(k.expression for k in lead)
            and {k.text for k in lead} == set(columns))


def proposals(findings: Sequence[Finding]) -> list[_Proposal]:
    """The index each finding proposes (its first CREATE INDEX change), as a candidate."""
    out = []
    for f in findings:
        build = next((c for c in f.changes if c.kind is ChangeKind.CREATE_INDEX), None)
        if build is None:
            continue
        origin = Origin.CATALOGUE if f.check_id == FOREIGN_KEY else Origin.CHECKLIST
        try:
            out.append(_Proposal(f, candidate_from_sql(build.up, origin, f.message)))
        except (ParseError, ValueError):
            continue
    return out


def _existing(snapshot: Snapshot, table_oid: int) -> list[Candidate]:
    out = []
    for ix in snapshot.indexes_on(table_oid):
        if ix.is_valid:
            try:
                out.append(candidate_from_sql(ix.definition))
            except (ParseError, ValueError):
                continue
    return out


def judge_findings(findings: Sequence[Finding], snapshot: Snapshot, queries: Sequence[AdvisorQuery],
                   usages: Mapping[str, QueryUsage], recommendations: Sequence[Recommendation],
                   write_cost: Callable[[Candidate], float], deleted: Mapping[str, int], *,
                   cache: Costs | None = None) -> tuple[Rejected, ...]:
    """The IX006 and IX001 proposals among ``findings`` that the workload does not need (module
    docstring), as ``Rejected(stage="not needed")`` with their write cost (planner units, weighted like
    the benefit) and estimated size (``cache.size``, 0 without a cache).

    ``usages`` maps each query's key to its column usage; ``recommendations`` are the advisor's;
    ``deleted`` maps a table (qualified) to its ``n_tup_del`` (a table missing from it counts as deleted
    from: the proposal stays). With ``cache`` (the selection's what-if costs), a served expected index
    that still saves more than its write cost with its server present stays needed. Never raises for a
    proposal it cannot read: that one stays needed.
    """
    everything = proposals(findings)
    planned = [r.candidate for r in recommendations]
    out: list[Rejected] = []
    dropped: set[Candidate] = set()
    # A proposal serves only proposals on its own table, so each is compared with its table's alone.
    on_table: dict[str, list[int]] = {}
    for n, p in enumerate(everything):
        on_table.setdefault(p.candidate.qualified_table, []).append(n)
    for n, p in enumerate(everything):
        if p.finding.check_id not in (EXPECTED_INDEX, FOREIGN_KEY):
            continue
        cand = p.candidate
        table = snapshot.find_relation(cand.qualified_table)
        # Of two proposals that serve each other, the first is kept and the second is the one not needed.
        proposed = [o.candidate for k, o in ((k, everything[k]) for k in on_table[cand.qualified_table])
                    if k != n and o.candidate not in dropped
                    and not (k > n and _judged(o) and serves(cand, o.candidate))]
        existing = _existing(snapshot, table.oid) if table is not None else []
        reason: str | None = None
        server: Candidate | None = None
        benefit = 0.0
        if p.finding.check_id == EXPECTED_INDEX:
            # Not the advisor's own choice: a recommendation that extends the expected index (an INCLUDE
            # added) says the workload needs it, in that form.
            server = next((o for o in (*proposed, *existing) if serves(o, cand)), None)
            if server is not None:
                benefit = _still_saves(cand, server, planned, queries, cache)
                if benefit <= write_cost(cand):
                    reason = f"served by {_named(server, planned, snapshot)}"
        else:
            reason, server = _foreign_key_not_needed(p.finding, cand, [*planned, *proposed, *existing], planned,
                                                     snapshot, queries, usages, deleted)
        if reason is not None:
            out.append(Rejected(cand, STAGE, reason, benefit=benefit, write_cost=write_cost(cand),
                                estimated_bytes=cache.size(cand) if cache is not None else 0,
                                served_by=server))
            dropped.add(cand)
    return tuple(out)


def _judged(p: _Proposal) -> bool:
    return p.finding.check_id in (EXPECTED_INDEX, FOREIGN_KEY)


def _named(index: Candidate, planned: Sequence[Candidate], snapshot: Snapshot) -> str:
    if index in planned:
        return f"the recommended {index.describe()}"
    table = snapshot.find_relation(index.qualified_table)
    for ix in snapshot.indexes_on(table.oid) if table is not None else ():
        try:
            if ix.is_valid and candidate_from_sql(ix.definition) == index:
                return f"the existing index {ix.qualified_name}"
        except (ParseError, ValueError):
            continue
    return f"the proposed {'UNIQUE ' if index.unique else ''}{index.describe()}"


def _still_saves(cand: Candidate, server: Candidate, planned: Sequence[Candidate], queries: Sequence[AdvisorQuery],
                 cache: Costs | None) -> float:
    """What ``cand`` saves the workload (weighted) on top of ``server`` and the recommended indexes, by the
    what-if engine; 0 without one, or when it cannot cost them."""
    if cache is None or cache.engine.cannot_cost(cand) or cache.engine.cannot_cost(server):
        return 0.0
    present = [*planned, server]
    total = 0.0
    for q in queries:
        if cand.qualified_table not in q.tables:
            continue
        without, with_ = cache.cost(q, present), cache.cost(q, [*present, cand])
        if without.cost is not None and with_.cost is not None and cand in with_.used:
            total += q.weight * max(0.0, without.cost - with_.cost)
    return total


def _foreign_key_not_needed(finding: Finding, cand: Candidate, others: Sequence[Candidate],
                            planned: Sequence[Candidate], snapshot: Snapshot, queries: Sequence[AdvisorQuery],
                            usages: Mapping[str, QueryUsage], deleted: Mapping[str, int]
                            ) -> tuple[str | None, Candidate | None]:
    """Why a foreign key's proposed index is not needed (``None``: it is), and the index that serves the
    foreign key instead, if that is why."""
    columns = [str(c) for c in finding.evidence.get("columns", [])]
    parent = str(finding.evidence.get("referenced_table", ""))
    if not columns or not parent:
        return None, None
    server = next((o for o in others if _serves_foreign_key(o, cand.qualified_table, columns)), None)
    if server is not None:
        return f"served by {_named(server, planned, snapshot)}", server
    if deleted.get(parent, 1) != 0:
        return None, None
    keys = _referenced_columns(snapshot, finding)
    if keys is None or any(_updates(q, parent, keys, snapshot) for q in queries if q.writes):
        return None, None
    for q in queries:
        usage = usages.get(q.key)
        used = usage.table(cand.qualified_table) if usage is not None else None
        if used is not None and any(used.kinds(c) & THROUGH for c in columns):
            return None, None
    listed = ", ".join(columns)
    return (f"{parent} is never deleted from (n_tup_del = 0), no workload statement updates its key "
            f"({', '.join(keys)}), and no workload query joins or filters through {cand.qualified_table} "
            f"({listed})"), None


def _referenced_columns(snapshot: Snapshot, finding: Finding) -> list[str] | None:
    """The parent's key columns the finding's foreign key references."""
    name = finding.evidence.get("constraint")
    child = snapshot.find_relation(finding.object)
    for con in snapshot.constraints:
        if con.type == "f" and con.name == name and child is not None and con.table_oid == child.oid:
            parent = snapshot.relations.get(con.ref_table_oid or 0)
            if parent is None:
                return None
            cols = [parent.column(a) for a in con.ref_columns]
            return [c.name for c in cols if c is not None]
    return None


def _updates(query: AdvisorQuery, parent: str, keys: Sequence[str], snapshot: Snapshot) -> bool:
    """Whether ``query`` is an UPDATE (or MERGE) of ``parent`` that sets one of ``keys``; a statement that
    cannot be read counts as one."""
    try:
        statements = parse_sql(query.sql)
    except ParseError:
        return True
    for raw in statements:
        stmt = raw.stmt
        if isinstance(stmt, ast.MergeStmt):
            target = stmt.relation
            if target is not None and _resolves_to(target, parent, snapshot):
                return True
        if not isinstance(stmt, ast.UpdateStmt) or stmt.relation is None:
            continue
        if not _resolves_to(stmt.relation, parent, snapshot):
            continue
        if any(isinstance(t, ast.ResTarget) and t.name in keys for t in stmt.targetList or ()):
            return True
    return False


def _resolves_to(rel: ast.RangeVar, parent: str, snapshot: Snapshot) -> bool:
    name = qualified(rel.schemaname, str(rel.relname)) if rel.schemaname else quote_ident(str(rel.relname))
    found = snapshot.find_relation(name)
    return found is not None and found.qualified_name == parent
