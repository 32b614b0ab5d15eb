"""The recommendations of a JSON advice file (``dbtune advise --format json``, ``advice_version`` 1) for
``migrate generate --from``, read as untrusted input exactly as a report is
(:mod:`dbtune.migrate.report_input`):

1. The whole file is validated against its schema (:class:`AdviceIn`: strict types, unknown keys refused
   at every level) before anything is written; the error names the recommendation and the key.
2. No SQL is copied from it: each recommendation's ``changes`` are rebuilt by
   :func:`~dbtune.migrate.report_input.rebuild_change` (parsed with pglast as the one statement its kind
   says, names checked against the change's fields, printed again from the parse tree). A recommendation
   builds an index, so only ``create_index`` changes (and ``attach_index``, for a partitioned table) are
   accepted, and every change must be on the recommended index's table (or build the partition's index
   that one of its ``attach_index`` steps attaches to the parent's).
3. Each recommendation becomes one ``IX008 index-recommended`` finding
   (:func:`dbtune.checks.advice.recommendation_finding`), which ``migrate generate`` plans like any other.

The index's key texts, reasons, query texts and messages are free text; whatever they hold, the renderers
escape them where they reach a comment or a terminal (:mod:`dbtune.escape`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr

from dbtune.advisor.model import (
    ADVICE_VERSION,
    Candidate,
    EngineKind,
    KeyPart,
    Measured,
    Origin,
    QueryCost,
    Recommendation,
)
from dbtune.checks.advice import recommendation_finding
from dbtune.errors import UsageError
from dbtune.escape import printable
from dbtune.migrate.report_input import (
    ChangeIn,
    ChangeRefused,
    _In,
    rebuild_change,
    validated,
)
from dbtune.model import ChangeKind, Finding

Bytes = Annotated[StrictInt, Field(ge=0)]
Number = StrictFloat | StrictInt
_INDEX_KINDS = (ChangeKind.CREATE_INDEX, ChangeKind.ATTACH_INDEX)


class KeyPartIn(_In):
    text: StrictStr
    expression: StrictBool = False
    descending: StrictBool = False
    opclass: StrictStr | None = None


class CandidateIn(_In):
    """``index`` (:meth:`dbtune.advisor.model.Candidate.to_json`); ``sql`` is shown, never read."""

    schema_: StrictStr = Field(alias="schema")
    table: StrictStr
    method: StrictStr = "btree"
    unique: StrictBool = False
    keys: list[KeyPartIn]
    include: list[StrictStr] = []
    predicate: StrictStr | None = None
    origin: Origin = Origin.WORKLOAD
    reason: StrictStr = ""
    sql: StrictStr = ""


class QueryCostIn(_In):
    key: StrictStr
    name: StrictStr
    sql: StrictStr
    weight: Number
    cost_before: Number
    cost_after: Number


class MeasuredIn(_In):
    key: StrictStr
    name: StrictStr
    before_ms: Number
    after_ms: Number
    ratio: Number
    verdict: StrictStr
    reason: StrictStr = ""


class RecommendationIn(_In):
    index: CandidateIn
    changes: list[ChangeIn]
    estimated_bytes: Bytes
    real_bytes: Bytes | None = None
    benefit: Number
    write_cost: Number
    engine: EngineKind
    slows_writes_to: list[StrictStr] = []
    not_costed: StrictStr | None = None
    queries: list[QueryCostIn] = []
    measured: list[MeasuredIn] = []


class RejectedIn(_In):
    index: CandidateIn
    stage: StrictStr
    reason: StrictStr
    benefit: Number = 0
    write_cost: Number = 0
    estimated_bytes: Bytes = 0
    measured: list[MeasuredIn] = []


class ProblemIn(_In):
    name: StrictStr
    sql: StrictStr
    message: StrictStr


class AdviceIn(_In):
    """The whole advice file (:meth:`dbtune.advisor.model.Advice.to_json`); nothing else is accepted."""

    report_version: Literal[1]
    command: Literal["advise"]
    advice_version: StrictInt
    dbtune_version: StrictStr
    target: StrictStr
    server_version: StrictStr
    engine: EngineKind
    engine_note: StrictStr
    budget_bytes: Bytes
    max_indexes: Annotated[StrictInt, Field(ge=1)] | None = None
    database_bytes: Bytes
    queries: Bytes = 0
    candidates: Bytes = 0
    whatif_calls: Bytes = 0
    validated: StrictBool = False
    duration_ms: Number = 0
    recommendations: list[RecommendationIn]
    rejected: list[RejectedIn] = []
    not_needed: list[RejectedIn] = []
    problems: list[ProblemIn] = []


def findings_from_advice(path: Path) -> list[Finding]:
    """The recommendations of the advice file ``path`` as ``index-recommended`` findings (see the module's
    docstring). Raises :class:`UsageError` (one line naming the file, the recommendation and the key) when
    the file is missing, not JSON, not advice, written by another dbtune version, not valid against the
    schema, or when a change is not the one statement its kind says, names other objects than its fields
    do, builds no index, or is on another table than the recommended index (other than a partition's index
    that the recommendation attaches to it)."""
    from dbtune.migrate.report_input import read_json

    data = read_json(path)
    if not isinstance(data, dict) or "advice_version" not in data:
        raise UsageError(f"--from {path}: not a dbtune advice file (no advice_version)")
    return advice_findings(path, data)


def advice_findings(path: Path, data: dict[str, Any]) -> list[Finding]:
    """:func:`findings_from_advice` on the JSON ``data`` already read from ``path``."""
    advice = validated(path, data, AdviceIn, version_key="advice_version", version=ADVICE_VERSION,
                       again="advise again", items="recommendations", label=_label)
    findings = []
    for n, rec in enumerate(advice.recommendations):
        recommendation = _recommendation(rec)
        changes = []
        # On a partitioned table, a partition's own build is the index one of the steps attaches to the parent's.
        attached = {c.index for c in rec.changes if c.kind is ChangeKind.ATTACH_INDEX and c.index is not None
                    and c.table == recommendation.candidate.qualified_table}
        for m, change in enumerate(rec.changes):
            try:
                if change.kind not in _INDEX_KINDS:
                    raise ChangeRefused("kind", f"a recommendation builds an index (create_index, attach_index), "
                                                f"not {change.kind.value}")
                if change.table != recommendation.candidate.qualified_table and change.index not in attached:
                    raise ChangeRefused("table", f"{printable(str(change.table))[:200]} is not the recommended "
                                                 f"index's table {printable(recommendation.candidate.qualified_table)}")
                changes.append(rebuild_change(change))
            except ChangeRefused as exc:
                raise UsageError(f"--from {path}: {_label(n, data['recommendations'][n])}: "
                                 f"changes[{m}].{exc.key}: {exc}") from None
        findings.append(recommendation_finding(replace(recommendation, changes=tuple(changes))))
    return findings


def _label(n: int, raw: dict[str, Any]) -> str:
    index = raw.get("index")
    table = index.get("table") if isinstance(index, dict) else None
    return f"recommendation {n + 1}" + (f" (on {printable(table)[:120]})" if isinstance(table, str) else "")


def _recommendation(rec: RecommendationIn) -> Recommendation:
    c = rec.index
    candidate = Candidate(schema=c.schema_, table=c.table, method=c.method, unique=c.unique,
                          keys=tuple(KeyPart(k.text, k.expression, k.descending, k.opclass) for k in c.keys),
                          include=tuple(c.include), predicate=c.predicate, origin=c.origin, reason=c.reason)
    return Recommendation(
        candidate=candidate, estimated_bytes=rec.estimated_bytes, benefit=float(rec.benefit),
        write_cost=float(rec.write_cost), engine=rec.engine, slows_writes_to=tuple(rec.slows_writes_to),
        real_bytes=rec.real_bytes, not_costed=rec.not_costed,
        queries=tuple(QueryCost(q.key, q.name, q.sql, float(q.weight), float(q.cost_before), float(q.cost_after))
                      for q in rec.queries),
        measured=tuple(Measured(m.key, m.name, float(m.before_ms), float(m.after_ms), float(m.ratio), m.verdict,
                                m.reason) for m in rec.measured))
