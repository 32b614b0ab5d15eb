"""The plan model: typed plan nodes parsed from the output of ``EXPLAIN (FORMAT JSON)``.

Field names follow EXPLAIN's own (https://www.postgresql.org/docs/current/using-explain.html), in
snake_case, with the unit in the name where there is one: ``actual_total_ms``, ``sort_space_kb``. The
``actual_*`` fields, and everything EXPLAIN prints only when the statement ran (sort method, hash batches,
heap blocks, heap fetches, workers launched, rows removed, JIT timing), are ``None`` in a plan that was not
run with ``ANALYZE``.

As in EXPLAIN, ``actual_rows`` and ``actual_*_ms`` are averages per loop (execution of the node), and
``rows_removed_by_*`` are averages per loop too; multiply by ``actual_loops`` for totals. ``heap_fetches``
is, as EXPLAIN prints it, the total over all loops (PostgreSQL 15 to 18).

Usage::

    plan = Plan.from_json(cursor.execute("EXPLAIN (FORMAT JSON) SELECT …").fetchone()[0])
    for node in plan.nodes():
        print(node.label, node.plan_rows, node.actual_rows)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from dbtune.sqlnames import qualified, quote_ident

_AGGREGATE = {"Sorted": "GroupAggregate", "Hashed": "HashAggregate", "Mixed": "MixedAggregate"}
_SETOP = {"Hashed": "HashSetOp", "Sorted": "SetOp"}
_JOINS = {"Hash Join", "Merge Join", "Nested Loop"}
INDEX_NODES = frozenset({"Index Scan", "Index Only Scan", "Bitmap Index Scan", "Bitmap Heap Scan"})


def _float(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return str(value) if value is not None else None


@dataclass(frozen=True)
class WorkerStats:
    """What one parallel worker reports of a node (``Workers`` in EXPLAIN ANALYZE VERBOSE): its number,
    and the sort it did (method, space in kB, ``Memory`` or ``Disk``)."""

    worker_number: int
    sort_method: str | None = None
    sort_space_kb: int | None = None
    sort_space_type: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerStats:
        return cls(worker_number=_int(data, "Worker Number") or 0, sort_method=_str(data, "Sort Method"),
                   sort_space_kb=_int(data, "Sort Space Used"), sort_space_type=_str(data, "Sort Space Type"))


@dataclass(frozen=True)
class PlanNode:
    """One node of a plan, with its children in EXPLAIN's order (outer before inner).

    ``relation`` is schema-qualified and quoted (``public.orders``) when EXPLAIN was run with VERBOSE
    (which prints ``Schema``), else the bare relation name. ``raw`` is the node's JSON, children excluded.
    """

    node_type: str
    label: str
    parent_relationship: str | None = None
    subplan_name: str | None = None
    relation: str | None = None
    alias: str | None = None
    index: str | None = None
    join_type: str | None = None
    strategy: str | None = None
    parallel_aware: bool = False
    startup_cost: float = 0.0
    total_cost: float = 0.0
    plan_rows: float = 0.0
    plan_width: int = 0
    actual_startup_ms: float | None = None
    actual_total_ms: float | None = None
    actual_rows: float | None = None
    actual_loops: float | None = None
    filter: str | None = None
    index_cond: str | None = None
    recheck_cond: str | None = None
    join_filter: str | None = None
    hash_cond: str | None = None
    sort_key: tuple[str, ...] = ()
    rows_removed_by_filter: float | None = None
    rows_removed_by_index_recheck: float | None = None
    rows_removed_by_join_filter: float | None = None
    sort_method: str | None = None
    sort_space_kb: int | None = None
    sort_space_type: str | None = None
    hash_buckets: int | None = None
    hash_batches: int | None = None
    original_hash_batches: int | None = None
    peak_memory_kb: int | None = None
    hashagg_batches: int | None = None
    disk_usage_kb: int | None = None
    exact_heap_blocks: int | None = None
    lossy_heap_blocks: int | None = None
    heap_fetches: float | None = None
    workers_planned: int | None = None
    workers_launched: int | None = None
    temp_written_blocks: int | None = None
    workers: tuple[WorkerStats, ...] = ()
    children: tuple[PlanNode, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanNode:
        """Parse one node (and its ``Plans``) of ``EXPLAIN (FORMAT JSON)``."""
        schema = _str(data, "Schema")
        name = _str(data, "Relation Name")
        relation = (qualified(schema, name) if schema else quote_ident(name)) if name else None
        sort_key = data.get("Sort Key") or ()
        return cls(
            node_type=str(data.get("Node Type", "?")),
            label=node_label(data),
            parent_relationship=_str(data, "Parent Relationship"),
            subplan_name=_str(data, "Subplan Name"),
            relation=relation,
            alias=_str(data, "Alias"),
            index=_str(data, "Index Name"),
            join_type=_str(data, "Join Type"),
            strategy=_str(data, "Strategy"),
            parallel_aware=bool(data.get("Parallel Aware")),
            startup_cost=_float(data, "Startup Cost") or 0.0,
            total_cost=_float(data, "Total Cost") or 0.0,
            plan_rows=_float(data, "Plan Rows") or 0.0,
            plan_width=_int(data, "Plan Width") or 0,
            actual_startup_ms=_float(data, "Actual Startup Time"),
            actual_total_ms=_float(data, "Actual Total Time"),
            actual_rows=_float(data, "Actual Rows"),
            actual_loops=_float(data, "Actual Loops"),
            filter=_str(data, "Filter"),
            index_cond=_str(data, "Index Cond"),
            recheck_cond=_str(data, "Recheck Cond"),
            join_filter=_str(data, "Join Filter"),
            hash_cond=_str(data, "Hash Cond"),
            sort_key=tuple(str(k) for k in sort_key),
            rows_removed_by_filter=_float(data, "Rows Removed by Filter"),
            rows_removed_by_index_recheck=_float(data, "Rows Removed by Index Recheck"),
            rows_removed_by_join_filter=_float(data, "Rows Removed by Join Filter"),
            sort_method=_str(data, "Sort Method"),
            sort_space_kb=_int(data, "Sort Space Used"),
            sort_space_type=_str(data, "Sort Space Type"),
            hash_buckets=_int(data, "Hash Buckets"),
            hash_batches=_int(data, "Hash Batches"),
            original_hash_batches=_int(data, "Original Hash Batches"),
            peak_memory_kb=_int(data, "Peak Memory Usage"),
            hashagg_batches=_int(data, "HashAgg Batches"),
            disk_usage_kb=_int(data, "Disk Usage"),
            exact_heap_blocks=_int(data, "Exact Heap Blocks"),
            lossy_heap_blocks=_int(data, "Lossy Heap Blocks"),
            heap_fetches=_float(data, "Heap Fetches"),
            workers_planned=_int(data, "Workers Planned"),
            workers_launched=_int(data, "Workers Launched"),
            temp_written_blocks=_int(data, "Temp Written Blocks"),
            workers=tuple(WorkerStats.from_json(w) for w in data.get("Workers") or () if isinstance(w, dict)),
            children=tuple(cls.from_json(c) for c in data.get("Plans") or ()),
            raw={k: v for k, v in data.items() if k != "Plans"},
        )

    @property
    def analyzed(self) -> bool:
        """Whether the node carries EXPLAIN ANALYZE's actual numbers."""
        return self.actual_loops is not None

    @property
    def never_executed(self) -> bool:
        return self.actual_loops == 0

    @property
    def loops(self) -> float:
        """Executions of the node (1 when not analyzed)."""
        return self.actual_loops if self.actual_loops is not None else 1.0

    @property
    def total_actual_rows(self) -> float | None:
        """Rows the node returned over all its loops."""
        return None if self.actual_rows is None else self.actual_rows * self.loops

    @property
    def total_actual_ms(self) -> float | None:
        """Time spent in the node and below over all its loops (ms)."""
        return None if self.actual_total_ms is None else self.actual_total_ms * self.loops

    @property
    def uses_index(self) -> bool:
        return self.node_type in INDEX_NODES

    @property
    def inner(self) -> PlanNode | None:
        """A join's inner child (the second one)."""
        plans = [c for c in self.children if c.parent_relationship in ("Outer", "Inner")]
        return plans[1] if len(plans) > 1 else None

    @property
    def outer(self) -> PlanNode | None:
        plans = [c for c in self.children if c.parent_relationship in ("Outer", "Inner")]
        return plans[0] if plans else None

    @property
    def exclusive_cost(self) -> float:
        """The node's own planner cost: its total cost minus its children's (arbitrary units, >= 0)."""
        return max(0.0, self.total_cost - sum(c.total_cost for c in self.children
                                              if c.parent_relationship not in ("InitPlan",)))

    @property
    def exclusive_ms(self) -> float | None:
        """The node's own time over all loops (ms, >= 0): its total time minus its children's."""
        mine = self.total_actual_ms
        if mine is None:
            return None
        below = sum(c.total_actual_ms or 0.0 for c in self.children if c.parent_relationship != "InitPlan")
        return max(0.0, mine - below)

    def walk(self) -> Iterator[PlanNode]:
        """This node and every node below it, depth first, in EXPLAIN's order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def scans(self) -> Iterator[PlanNode]:
        """The nodes below (and including) this one that read a relation."""
        return (n for n in self.walk() if n.relation)


@dataclass(frozen=True)
class JitTiming:
    """``JIT`` of EXPLAIN: functions compiled, and (with ANALYZE) the time of each phase (ms)."""

    functions: int
    generation_ms: float | None = None
    inlining_ms: float | None = None
    optimization_ms: float | None = None
    emission_ms: float | None = None
    total_ms: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JitTiming:
        timing = data.get("Timing") or {}

        def ms(key: str) -> float | None:
            value = timing.get(key)
            if isinstance(value, dict):  # PostgreSQL 17+: {"Deform": …, "Total": …}
                value = value.get("Total")
            return float(value) if isinstance(value, int | float) else None

        return cls(functions=_int(data, "Functions") or 0, generation_ms=ms("Generation"),
                   inlining_ms=ms("Inlining"), optimization_ms=ms("Optimization"), emission_ms=ms("Emission"),
                   total_ms=ms("Total"))


@dataclass(frozen=True)
class Plan:
    """One statement's plan: the top node, the summary times (ms, with ANALYZE), JIT, and the server's
    JSON exactly as returned (``raw``, the list EXPLAIN returns)."""

    root: PlanNode
    planning_ms: float | None = None
    execution_ms: float | None = None
    jit: JitTiming | None = None
    raw: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, explain_json: Any) -> Plan:
        """Parse the output of ``EXPLAIN (FORMAT JSON)`` (a one-element list, or its element).

        Raises ValueError when it holds no ``Plan``.
        """
        top = explain_json[0] if isinstance(explain_json, list) and explain_json else explain_json
        if not isinstance(top, dict) or not isinstance(top.get("Plan"), dict):
            raise ValueError("not the output of EXPLAIN (FORMAT JSON): no Plan")
        jit = top.get("JIT")
        return cls(root=PlanNode.from_json(top["Plan"]), planning_ms=_float(top, "Planning Time"),
                   execution_ms=_float(top, "Execution Time"),
                   jit=JitTiming.from_json(jit) if isinstance(jit, dict) else None, raw=explain_json)

    @property
    def analyzed(self) -> bool:
        return self.root.analyzed

    @property
    def total_cost(self) -> float:
        return self.root.total_cost

    @cached_property
    def summed_exclusive_cost(self) -> float:
        """Every node's own cost added up: under a Limit the children cost more than the plan's total."""
        return sum(n.exclusive_cost for n in self.nodes())

    @cached_property
    def summed_exclusive_ms(self) -> float:
        """Every node's own time added up (ms): a parallel node's time adds up over its workers."""
        return sum(n.exclusive_ms or 0.0 for n in self.nodes())

    def cost_share(self, node: PlanNode) -> float | None:
        """The node's own cost as a share of :attr:`summed_exclusive_cost` (0.4 for 40 %); None when the plan
        costs nothing."""
        return node.exclusive_cost / self.summed_exclusive_cost if self.summed_exclusive_cost > 0 else None

    def time_share(self, node: PlanNode) -> float | None:
        """The node's own time (EXPLAIN ANALYZE) as a share of :attr:`summed_exclusive_ms`; None when no
        time was measured."""
        return (node.exclusive_ms or 0.0) / self.summed_exclusive_ms if self.summed_exclusive_ms > 0 else None

    def nodes(self) -> Iterator[PlanNode]:
        """Every node, depth first, in EXPLAIN's order."""
        return self.root.walk()

    def nodes_with_ancestors(self) -> Iterator[tuple[PlanNode, tuple[PlanNode, ...]]]:
        """Every node with its ancestors (the root first), depth first, in EXPLAIN's order."""

        def walk(node: PlanNode, above: tuple[PlanNode, ...]) -> Iterator[tuple[PlanNode, tuple[PlanNode, ...]]]:
            yield node, above
            for child in node.children:
                yield from walk(child, (*above, node))

        return walk(self.root, ())

    def relations(self) -> set[str]:
        """The relations the plan reads (qualified as in :attr:`PlanNode.relation`)."""
        return {n.relation for n in self.nodes() if n.relation}


def node_label(node: dict[str, Any], *, qualified_names: bool = True) -> str:
    """One plan node (a ``Plan`` object of ``EXPLAIN (FORMAT JSON)``) as EXPLAIN's text format names it:
    ``Seq Scan on public.orders``, ``Index Scan using orders_pkey on public.orders o``, ``Hash Left Join``,
    ``Partial HashAggregate``, ``Insert on public.t``, ``Function Scan on pg_catalog.generate_series g``.

    ``qualified_names=False`` names relations bare and without their alias (``Seq Scan on orders``), as
    ``dbtune bench`` shows plan shapes, which compare across databases whatever the aliases. Identifiers are
    quoted as PostgreSQL would (https://www.postgresql.org/docs/current/using-explain.html)."""
    kind = str(node.get("Node Type", "?"))
    if kind == "Aggregate":
        kind = _AGGREGATE.get(str(node.get("Strategy")), "Aggregate")
        if node.get("Partial Mode") in ("Partial", "Finalize"):
            kind = f"{node['Partial Mode']} {kind}"
    elif kind == "SetOp":
        kind = _SETOP.get(str(node.get("Strategy")), "SetOp")
    elif kind in _JOINS and node.get("Join Type", "Inner") != "Inner":
        join = str(node["Join Type"])
        kind = f"{kind} {join} Join" if kind == "Nested Loop" else kind.replace(" Join", f" {join} Join")
    elif kind == "ModifyTable":
        kind = str(node.get("Operation", "Modify"))
    if node.get("Parallel Aware"):
        kind = f"Parallel {kind}"
    if node.get("Scan Direction") == "Backward":
        kind += " Backward"
    alias = node.get("Alias")
    if node.get("Index Name") and kind != "Bitmap Index Scan":
        kind += f" using {quote_ident(str(node['Index Name']))}"
    elif node.get("Index Name"):
        kind += f" on {quote_ident(str(node['Index Name']))}"
    target = None
    if node.get("Relation Name"):
        name = str(node["Relation Name"])
        if not qualified_names:
            target = quote_ident(name)
        else:
            target = qualified(str(node["Schema"]), name) if node.get("Schema") else quote_ident(name)
            if alias and alias != name:
                target += f" {alias}"
    elif node.get("Function Name"):
        name = str(node["Function Name"])
        target = qualified(str(node["Schema"]), name) if node.get("Schema") and qualified_names else name
        if alias and alias != name and qualified_names:
            target += f" {alias}"
    elif node.get("CTE Name"):
        target = str(node["CTE Name"])
        if alias and alias != target and qualified_names:
            target += f" {alias}"
    elif alias and kind.endswith("Scan") and qualified_names:
        target = str(alias)
    if target:
        kind += f" on {target}"
    return kind
