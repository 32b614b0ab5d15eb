"""Advice built from the advisor's types, as pure data (no server), for the renderers' and the readers'
tests: two recommendations on ``schema.table`` (one validated, one a GIN suggestion not costed), a
candidate rejected at selection and one at validation, a checklist proposal not needed, and a workload
statement that failed."""

from __future__ import annotations

from typing import cast

from dbtune.advisor.model import (
    Advice,
    Candidate,
    EngineKind,
    KeyPart,
    Measured,
    Origin,
    QueryCost,
    QueryProblem,
    Recommendation,
    Rejected,
)
from dbtune.catalog.model import Relation, Snapshot
from dbtune.migrate.changes import create_index


def relation(schema: str, table: str, size_bytes: int = 8_192_000) -> Relation:
    return Relation(oid=16384, schema=schema, name=table, kind="r", reltuples=100_000, relpages=1000,
                    size_bytes=size_bytes, is_partition=False, parent_oid=None, columns=(), stats=None)


def recommendation(candidate: Candidate, queries: tuple[QueryCost, ...], **more: object) -> Recommendation:
    """A recommendation whose changes are what ``migrate generate`` writes for its candidate."""
    changes = create_index(cast(Snapshot, None), relation(candidate.schema, candidate.table),
                           candidate.index_name(), list(candidate.columns), method=candidate.method,
                           include=candidate.include, where=candidate.predicate)
    fields: dict[str, object] = {"estimated_bytes": 2_260_992, "benefit": 41_234.5, "write_cost": 120.25,
                                 "engine": EngineKind.HYPOPG, "slows_writes_to": (candidate.qualified_table,)}
    fields.update(more)
    return Recommendation(candidate=candidate, queries=queries, changes=changes, **fields)  # type: ignore[arg-type]


def sample_advice(schema: str = "public", table: str = "orders", column: str = "customer_id",
                  query_name: str = "recent-orders", message: str = 'relation "nope" does not exist') -> Advice:
    """The sample advice; ``schema``, ``table``, ``column``, ``query_name`` and ``message`` may be hostile."""
    served = QueryCost(key="q1", name=query_name, sql=f"SELECT * FROM {table} WHERE {column} = $1 ORDER BY created_at "
                       "DESC LIMIT 10", weight=1200, before=1834.5, after=12.75)
    other = QueryCost(key="q2", name="", sql="SELECT count(*) FROM orders WHERE customer_id = $1", weight=30,
                      before=1790.0, after=8.5)
    wide = Candidate(schema, table, (KeyPart(column), KeyPart("created_at", descending=True)),
                     reason=f"equality on {column}, ORDER BY created_at DESC")
    gin = Candidate(schema, table, (KeyPart("payload", opclass="jsonb_path_ops"),), method="gin",
                    reason="jsonb containment on payload")
    narrow = Candidate(schema, table, (KeyPart(column),), reason=f"equality on {column}")
    slow = Candidate(schema, table, (KeyPart("status"),), predicate="status = 'pending'",
                     reason="constant predicate status = 'pending'")
    expected = Candidate(schema, table, (KeyPart(column), KeyPart("status")), origin=Origin.CHECKLIST,
                         reason="[[expect.index]] idx_orders_customer_status")
    measured = (Measured("q1", query_name, before_ms=14.2, after_ms=0.085, ratio=0.006, verdict="faster"),
                Measured("q2", "q2", before_ms=12.9, after_ms=0.07, ratio=0.0054, verdict="faster"))
    return Advice(
        target="postgresql://app@db.example/shop", server_version="15.8", engine=EngineKind.HYPOPG,
        engine_note="planner costs with hypothetical indexes (hypopg 1.3.1); GIN suggestions ranked by pg_stats",
        budget_bytes=50_000_000, max_indexes=None, database_bytes=100_000_000,
        recommendations=(
            recommendation(wide, (served, other), real_bytes=2_318_336, measured=measured),
            recommendation(gin, (), estimated_bytes=1_048_576, benefit=0.0, write_cost=35.0,
                           engine=EngineKind.STATISTICS, not_costed="hypopg cannot cost a GIN index"),
        ),
        rejected=(
            Rejected(narrow, "selection", f"served by {wide.describe()}", benefit=40_100.0, write_cost=95.5,
                     estimated_bytes=2_100_000),
            Rejected(slow, "validation", "no query got significantly faster", benefit=310.0, write_cost=20.0,
                     estimated_bytes=16_384,
                     measured=(Measured("q3", "pending", before_ms=1.5, after_ms=1.52, ratio=1.01,
                                        verdict="unchanged"),)),
        ),
        not_needed=(Rejected(expected, "not needed", f"served by {wide.describe()}", write_cost=88.0,
                             estimated_bytes=2_400_000),),
        problems=(QueryProblem("broken", "SELECT * FROM nope", message),),
        queries=3, candidates=9, whatif_calls=57, validated=True, duration_ms=1234.5,
    )
