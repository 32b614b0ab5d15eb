"""The shape of a statement's plan, so a before/after comparison can say what the planner changed.

The plan comes from ``EXPLAIN (FORMAT JSON)``, once per query and never executed: on PostgreSQL 16+ a
statement with ``$n`` gets its generic plan (``EXPLAIN (GENERIC_PLAN)``); before 16 it is planned with the
first sampled parameter set (a custom plan). See https://www.postgresql.org/docs/current/sql-explain.html.

The shape is a compact string: a node with one child is ``parent > child``, with several
``parent > [child, child]``; scans name their relation and index, e.g.
``Limit > Sort > Seq Scan on orders`` or ``Hash Join > [Seq Scan on a, Hash > Index Scan using b_pkey on b]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from dbtune.db.connect import MarkedRawCursor
from dbtune.plans.model import node_label as plans_node_label


@dataclass(frozen=True)
class PlanShape:
    """``shape``: the compact plan string; ``scans``: the scan nodes (type, index, relation), sorted;
    ``kind``: ``generic`` (GENERIC_PLAN), ``custom`` (planned with sampled parameters) or ``plain`` (no
    parameters); ``total_cost``: the planner's cost estimate of the top node (arbitrary units); ``tree``: the
    same nodes as a tree, each ``(depth, label)`` in pre-order (the top node at depth 0), for a report to
    draw (empty in a result file written before it was kept)."""

    shape: str
    scans: tuple[str, ...]
    kind: str
    total_cost: float
    tree: tuple[tuple[int, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"shape": self.shape, "scans": list(self.scans), "kind": self.kind, "total_cost": self.total_cost,
                "tree": [[depth, label] for depth, label in self.tree]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanShape:
        return cls(str(data["shape"]), tuple(str(s) for s in data["scans"]), str(data["kind"]),
                   float(data["total_cost"]), tuple((int(d), str(label)) for d, label in data.get("tree", ())))


def node_label(node: dict[str, Any]) -> str:
    """A plan node as a shape names it: :func:`dbtune.plans.model.node_label` with bare relation names."""
    return plans_node_label(node, qualified_names=False)


def _shape(node: dict[str, Any]) -> str:
    children = node.get("Plans") or []
    label = node_label(node)
    if not children:
        return label
    if len(children) == 1:
        return f"{label} > {_shape(children[0])}"
    return f"{label} > [{', '.join(_shape(c) for c in children)}]"


def _scans(node: dict[str, Any]) -> set[str]:
    found = set()
    if "Scan" in str(node.get("Node Type", "")):
        found.add(node_label(node).removeprefix("Parallel "))
    for child in node.get("Plans") or []:
        found |= _scans(child)
    return found


def _tree(node: dict[str, Any], depth: int = 0) -> list[tuple[int, str]]:
    return [(depth, node_label(node)), *(n for child in node.get("Plans") or [] for n in _tree(child, depth + 1))]


def plan_shape(explain_json: Any, kind: str) -> PlanShape:
    """The shape of the output of ``EXPLAIN (FORMAT JSON)`` (a list with one object holding ``Plan``)."""
    top = explain_json[0]["Plan"] if isinstance(explain_json, list) else explain_json["Plan"]
    return PlanShape(_shape(top), tuple(sorted(_scans(top))), kind, float(top.get("Total Cost", 0.0)),
                     tuple(_tree(top)))


def explain(conn: psycopg.Connection, sql: str, params: tuple[str, ...], version_num: int) -> PlanShape:
    """Plan ``sql`` without running it: the generic plan on PostgreSQL 16+ when it has parameters, else
    with ``params`` (text values). Lets ``psycopg.Error`` through (a statement the server cannot plan)."""
    cur = MarkedRawCursor(conn)
    if params and version_num >= 160000:
        rows = cur.execute(f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {sql}").fetchall()  # type: ignore[arg-type]
        kind = "generic"
    else:
        rows = cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", params or None).fetchall()  # type: ignore[arg-type]
        kind = "custom" if params else "plain"
    return plan_shape(rows[0][0], kind)
