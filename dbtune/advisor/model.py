"""The advisor's types: candidate indexes, what an engine said a query costs with a set of them, and the
advice (recommended, rejected and not-needed indexes) with its versioned JSON form.

Costs are PostgreSQL planner cost units (the ``total_cost`` of a plan's top node,
https://www.postgresql.org/docs/current/using-explain.html); sizes are bytes; times are milliseconds.
A :class:`Candidate` is identified by its definition (method, key, INCLUDE, predicate on one table), never
by a name: names are given when DDL is written (:meth:`Candidate.index_name`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from functools import cached_property
from typing import Any, ClassVar, Protocol

from dbtune import __version__
from dbtune.model import Change, report_header
from dbtune.sqlnames import qualified, quote_ident

ADVICE_VERSION = 1
# Where ``Advice.engine_note`` lists what got no candidate on purpose (a foreign table, a table never analyzed).
NO_CANDIDATE_FOR = "; no candidate for "


class EngineKind(StrEnum):
    """What ranked (costed) a candidate."""

    HYPOPG = "hypopg"              # hypothetical indexes, planner cost of each query with and without them
    TRIAL_BUILD = "trial build"    # the index built for real inside a transaction that is rolled back
    STATISTICS = "pg_stats"        # no planner: selectivity of the key's leading columns from pg_stats


class Origin(StrEnum):
    """Who proposed a candidate: the workload's column usage, the team's checklist (``[[expect.index]]``),
    or a check of the catalogue (a foreign key's index)."""

    WORKLOAD = "workload"
    CHECKLIST = "checklist"
    CATALOGUE = "catalogue"


@dataclass(frozen=True)
class KeyPart:
    """One key column of a candidate: a column name (unquoted, exactly as in the catalog) or an
    expression (``expression=True``: SQL text as pglast prints it from the query, e.g. ``lower(email)``),
    its direction, and an operator class (``gin_trgm_ops``, ``jsonb_path_ops``) or None for the default.
    ``nulls_first`` is None for PostgreSQL's default (NULLS FIRST with DESC, NULLS LAST without), else
    the NULLS order the query asks for."""

    text: str
    expression: bool = False
    descending: bool = False
    opclass: str | None = None
    nulls_first: bool | None = None

    def sql(self) -> str:
        """The index-column text: ``"Name" DESC``, ``(lower(email))``, ``body gin_trgm_ops``,
        ``created_at DESC NULLS LAST``."""
        out = f"({self.text})" if self.expression else quote_ident(self.text)
        if self.opclass:
            out += f" {self.opclass}"
        if self.descending:
            out += " DESC"
        if self.nulls_first is not None and self.nulls_first != self.descending:
            out += " NULLS FIRST" if self.nulls_first else " NULLS LAST"
        return out


@dataclass(frozen=True)
class Candidate:
    """A possible index on one table (the parent, for a partitioned table).

    ``schema``/``table`` are unquoted catalog names; ``include`` unquoted column names; ``predicate`` the
    partial index's WHERE as SQL text (pglast's printing) or None; ``method`` an access method of pg_am.
    ``reason`` says in one line why it was proposed (``"equality on status, ORDER BY created_at DESC"``).
    Two candidates are equal when their definitions are (``reason`` and ``origin`` are not compared).
    """

    schema: str
    table: str
    keys: tuple[KeyPart, ...]
    include: tuple[str, ...] = ()
    predicate: str | None = None
    method: str = "btree"
    unique: bool = False
    origin: Origin = field(default=Origin.WORKLOAD, compare=False)
    reason: str = field(default="", compare=False)

    def __hash__(self) -> int:
        # computed once: the selection hashes each candidate many times (sets of them key the cost cache)
        found: int | None = self.__dict__.get("_hash")
        if found is None:
            found = hash((self.schema, self.table, self.keys, self.include, self.predicate, self.method, self.unique))
            self.__dict__["_hash"] = found
        return found

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k in {f.name for f in fields(self)}}

    @cached_property
    def qualified_table(self) -> str:
        """The table, schema-qualified and quoted as needed (``public."Order"``)."""
        return qualified(self.schema, self.table)

    @property
    def columns(self) -> tuple[str, ...]:
        """The key's index-column texts (:meth:`KeyPart.sql`)."""
        return tuple(k.sql() for k in self.keys)

    def definition(self) -> str:
        """What follows ``ON``: ``public.t USING gin ((…)) INCLUDE (…) WHERE …`` (``USING`` only when
        the method is not btree)."""
        using = "" if self.method == "btree" else f" USING {self.method}"
        body = f"{self.qualified_table}{using} ({', '.join(self.columns)})"
        if self.include:
            body += f" INCLUDE ({', '.join(quote_ident(c) for c in self.include)})"
        if self.predicate:
            body += f" WHERE {self.predicate}"
        return body

    def create_sql(self, name: str | None = None) -> str:
        """``CREATE [UNIQUE] INDEX [name] ON <definition>`` (no CONCURRENTLY: the form hypopg and trial
        builds take; migrations build with :func:`dbtune.migrate.changes.create_index`)."""
        kind = "UNIQUE INDEX" if self.unique else "INDEX"
        named = f" {quote_ident(name)}" if name else ""
        return f"CREATE {kind}{named} ON {self.definition()}"

    def index_name(self) -> str:
        """The deterministic name dbtune gives it (``<table>_<col>_<col>_idx``, at most 63 bytes)."""
        from dbtune.migrate.changes import index_name

        return index_name(self.table, list(self.columns))

    def describe(self) -> str:
        """A one-line display form: ``public.orders (retailer_id, created_at DESC) WHERE …``."""
        return self.definition()

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "table": self.table, "method": self.method, "unique": self.unique,
                "keys": [{"text": k.text, "expression": k.expression, "descending": k.descending,
                          "opclass": k.opclass} for k in self.keys],
                "include": list(self.include), "predicate": self.predicate, "origin": self.origin.value,
                "reason": self.reason, "sql": self.create_sql(self.index_name())}


@dataclass(frozen=True)
class AdvisorQuery:
    """One workload statement as the advisor costs it: ``key`` identifies it in the run (its fingerprint
    and relations), ``sql`` is its text with ``$n`` parameters (generic plans for those), ``weight`` its
    calls (pg_stat_statements) or the workload file's weight (1 by default), ``tables`` the tables it
    reads or writes (qualified, quoted), ``writes`` whether it modifies ``tables``' rows, ``columns`` for
    each table whose columns are known, every column of it the statement references in any clause
    (:attr:`dbtune.workload.model.TableUsage.referenced`, unquoted catalog names; a table left out, or
    ``columns`` None, is one whose columns are not known)."""

    key: str
    name: str
    sql: str
    weight: float
    tables: tuple[str, ...]
    writes: bool = False
    columns: tuple[tuple[str, frozenset[str]], ...] | None = None

    def referenced(self, table: str) -> frozenset[str] | None:
        """The columns of ``table`` (qualified, quoted) the statement references, or None when not known."""
        for name, columns in self.columns or ():
            if name == table:
                return columns
        return None


@dataclass(frozen=True)
class Costing:
    """What an engine said one query costs with a set of candidates present: the planner's total cost,
    the candidates the plan uses (a subset of those present), and the server's message when it could not
    plan the query (``cost`` is then None)."""

    cost: float | None
    used: frozenset[Candidate] = frozenset()
    error: str | None = None


class Engine(Protocol):
    """A what-if engine: hypopg, trial builds, or pg_stats selectivity. ``kind`` names it in reports.

    ``cost`` plans ``query`` as if exactly ``indexes`` (plus the existing ones) were there; ``size`` is
    the candidate's estimated (or, for a trial build, real) size in bytes; ``cannot_cost`` says why a
    candidate cannot be costed by this engine (hypopg and GIN, a foreign table), None when it can.
    ``close`` leaves nothing behind on the server (every hypothetical index dropped, ``hypopg_reset()``).
    """

    kind: EngineKind

    def cost(self, query: AdvisorQuery, indexes: frozenset[Candidate]) -> Costing: ...

    def size(self, candidate: Candidate) -> int: ...

    def cannot_cost(self, candidate: Candidate) -> str | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class QueryCost:
    """One query's planner cost without (``before``) and with (``after``) an index set, and its weight."""

    key: str
    name: str
    sql: str
    weight: float
    before: float
    after: float

    @property
    def saved(self) -> float:
        """The share of the planner cost the index set saves (0.25 for a quarter; 0 without a cost before)."""
        return 1 - self.after / self.before if self.before > 0 else 0.0


@dataclass(frozen=True)
class Measured:
    """What validation measured for one query on the real server (``dbtune bench``): median latency
    before and after (ms), the ratio after/before, and the comparison's verdict (``faster``, ``slower``,
    ``unchanged``, …) with its reason."""

    key: str
    name: str
    before_ms: float
    after_ms: float
    ratio: float
    verdict: str
    reason: str = ""


@dataclass(frozen=True)
class Recommendation:
    """A recommended index (DESIGN.md's ``Recommendation``): the candidate, the queries it serves with
    their cost before and after, its estimated size (bytes; ``real_bytes`` after a build), the tables whose
    writes it slows with the write cost counted (planner units, weighted like the benefit), the weighted
    benefit (planner units saved), the engine that costed it, and, after validation, what was measured."""

    candidate: Candidate
    queries: tuple[QueryCost, ...]
    estimated_bytes: int
    benefit: float
    write_cost: float
    engine: EngineKind
    slows_writes_to: tuple[str, ...] = ()
    real_bytes: int | None = None
    measured: tuple[Measured, ...] = ()
    not_costed: str | None = None  # a GIN suggestion hypopg cannot cost: why, and the ranking is by pg_stats
    changes: tuple[Change, ...] = ()  # the migration steps that build it (dbtune.migrate.changes.create_index)

    @property
    def faster(self) -> int:
        """How many of the queries validation measured got significantly faster."""
        return sum(1 for m in self.measured if m.verdict == "faster")

    def to_json(self) -> dict[str, Any]:
        return {"index": self.candidate.to_json(), "changes": [c.to_json() for c in self.changes],
                "estimated_bytes": self.estimated_bytes,
                "real_bytes": self.real_bytes, "benefit": round(self.benefit, 2),
                "write_cost": round(self.write_cost, 2), "engine": self.engine.value,
                "slows_writes_to": list(self.slows_writes_to), "not_costed": self.not_costed,
                "queries": [_query_cost_json(q) for q in self.queries],
                "measured": [_measured_json(m) for m in self.measured]}


@dataclass(frozen=True)
class Rejected:
    """A candidate left out, and why: ``stage`` is ``selection`` (did not pay for its bytes and writes,
    over budget, served by a wider index) or ``validation`` (built and measured: no query got significantly
    faster, or one got significantly slower); ``measured`` holds the figures for the latter. ``served_by``:
    for a proposal judged ``not needed`` because another index serves it, that index (a recommendation, an
    existing index or another proposal), so that validation can tell which judgements rested on an index
    it reverted."""

    candidate: Candidate
    stage: str
    reason: str
    benefit: float = 0.0
    write_cost: float = 0.0
    estimated_bytes: int = 0
    measured: tuple[Measured, ...] = ()
    served_by: Candidate | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.candidate.to_json(), "stage": self.stage, "reason": self.reason,
                "benefit": round(self.benefit, 2), "write_cost": round(self.write_cost, 2),
                "estimated_bytes": self.estimated_bytes, "measured": [_measured_json(m) for m in self.measured]}


@dataclass(frozen=True)
class QueryProblem:
    """A workload statement the advisor could not use: where it came from, and the parser's or server's
    message; the rest of the workload went on."""

    name: str
    sql: str
    message: str


@dataclass(frozen=True)
class Advice:
    """Everything one ``dbtune advise`` produced.

    ``engine`` ranked the candidates (``engine_note`` says how, and what it could not cost); ``budget_bytes``
    and ``max_indexes`` bound the selection; ``recommendations`` are in the order chosen; ``not_needed``
    are the checklist's and the catalogue's own proposals that the workload does not need (with their
    write cost); ``validated`` says whether ``--validate`` ran; ``whatif_calls`` counts the planner
    requests sent (cache hits not counted); ``duration_ms`` the advisor's wall time.
    """

    command: ClassVar[str] = "advise"

    @property
    def recommended_bytes(self) -> int:
        """The estimated size of every recommended index together (bytes)."""
        return sum(r.estimated_bytes for r in self.recommendations)

    @property
    def budget_share(self) -> float | None:
        """The budget as a share of the database's size (0.1 for 10 %); None when the size is unknown (0)."""
        return self.budget_bytes / self.database_bytes if self.database_bytes else None
    target: str
    server_version: str
    engine: EngineKind
    engine_note: str
    budget_bytes: int
    max_indexes: int | None
    database_bytes: int
    recommendations: tuple[Recommendation, ...]
    rejected: tuple[Rejected, ...] = ()
    not_needed: tuple[Rejected, ...] = ()
    problems: tuple[QueryProblem, ...] = ()
    queries: int = 0
    candidates: int = 0
    whatif_calls: int = 0
    validated: bool = False
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``report_version``, ``command`` ``"advise"``, ``advice_version`` 1, and the
        ``dbtune_version`` that wrote it), read back by ``migrate generate --from`` as untrusted input."""
        return {**report_header(self), "advice_version": ADVICE_VERSION, "dbtune_version": __version__,
                "target": self.target,
                "server_version": self.server_version,
                "engine": self.engine.value, "engine_note": self.engine_note, "budget_bytes": self.budget_bytes,
                "max_indexes": self.max_indexes, "database_bytes": self.database_bytes,
                "queries": self.queries, "candidates": self.candidates, "whatif_calls": self.whatif_calls,
                "validated": self.validated, "duration_ms": round(self.duration_ms, 1),
                "recommendations": [r.to_json() for r in self.recommendations],
                "rejected": [r.to_json() for r in self.rejected],
                "not_needed": [r.to_json() for r in self.not_needed],
                "problems": [{"name": p.name, "sql": p.sql, "message": p.message} for p in self.problems]}


def _query_cost_json(q: QueryCost) -> dict[str, Any]:
    return {"key": q.key, "name": q.name, "sql": q.sql, "weight": q.weight,
            "cost_before": round(q.before, 2), "cost_after": round(q.after, 2)}


def _measured_json(m: Measured) -> dict[str, Any]:
    return {"key": m.key, "name": m.name, "before_ms": round(m.before_ms, 4), "after_ms": round(m.after_ms, 4),
            "ratio": round(m.ratio, 4), "verdict": m.verdict, "reason": m.reason}
