"""Selection on its own (dbtune/advisor/select.py), over a plain cost table: each query's planner cost with
no candidate and with each candidate alone, as an engine would report them. A pure function of those
figures; the end-to-end cases, through real servers and real engines, are in test_advisor_api.py."""

from __future__ import annotations

from collections.abc import Iterable

from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, EngineKind, KeyPart
from dbtune.advisor.select import Selection, select_indexes


def cand(table: str, *cols: str, method: str = "btree") -> Candidate:
    return Candidate("public", table, tuple(KeyPart(c) for c in cols), method=method)


def query(key: str, table: str, weight: float = 1.0, *more: str) -> AdvisorQuery:
    return AdvisorQuery(key, key, f"SELECT … FROM {table}", weight, (f"public.{table}", *(f"public.{t}" for t in more)))


class TableEngine:
    """What-if answers from a table: ``cannot_cost`` for GIN, as hypopg says."""

    kind = EngineKind.HYPOPG

    def cannot_cost(self, candidate: Candidate) -> str | None:
        return "hypopg cannot cost gin" if candidate.method == "gin" else None


class TableCosts:
    """A cost table: ``base[key]`` with no candidate, ``alone[(key, candidate)]`` with one; a set costs what
    its cheapest member does (and the plan uses that one). ``calls`` counts distinct requests, as the
    cost cache does."""

    def __init__(self, base: dict[str, float], alone: dict[tuple[str, Candidate], float],
                 sizes: dict[Candidate, int], engine: object | None = None) -> None:
        self.base, self.alone, self.sizes = base, alone, sizes
        self.engine = engine or TableEngine()
        self.calls = 0
        self._seen: set[tuple[str, frozenset[Candidate]]] = set()
        self.queries: dict[str, AdvisorQuery] = {}

    def cost(self, q: AdvisorQuery, indexes: Iterable[Candidate]) -> Costing:
        present = frozenset(c for c in indexes if c.qualified_table in q.tables)
        if (q.key, present) not in self._seen:
            self._seen.add((q.key, present))
            self.calls += 1
        if q.key not in self.base:
            return Costing(None, error='relation "gone" does not exist')
        best, used = self.base[q.key], frozenset[Candidate]()
        for c in present:
            cost = self.alone.get((q.key, c))
            if cost is not None and cost < best:
                best, used = cost, frozenset({c})
        return Costing(best, used)

    def size(self, candidate: Candidate) -> int:
        return self.sizes[candidate]


def no_writes(_: Candidate) -> float:
    return 0.0


def everything(sel: Selection) -> set[Candidate]:
    return {r.candidate for r in sel.recommendations} | {r.candidate for r in sel.rejected}


A, AB, B = cand("t", "a"), cand("t", "a", "b"), cand("t", "b")
Q1, Q2 = query("q1", "t"), query("q2", "t")


def test_one_wider_index_is_chosen_over_the_narrower_one_it_serves() -> None:
    costs = TableCosts({"q1": 100, "q2": 100}, {("q1", A): 10, ("q1", AB): 10.5, ("q2", A): 60, ("q2", AB): 5},
                       {A: 1000, AB: 1500})
    sel = select_indexes([Q1, Q2], {"q1": (A,), "q2": (A, AB)}, costs, budget_bytes=10**6, max_indexes=None,
                         write_cost=lambda c: 0.1)
    assert [r.candidate for r in sel.recommendations] == [AB]
    (rec,) = sel.recommendations
    assert {(q.key, q.before, q.after) for q in rec.queries} == {("q1", 100, 10.5), ("q2", 100, 5)}
    (narrow,) = sel.rejected
    assert narrow.candidate == A and narrow.stage == "selection"
    assert narrow.reason == f"served by {AB.describe()}" and narrow.write_cost == 0.1 and narrow.estimated_bytes == 1000


def test_budget_and_max_indexes_bound_the_choice_and_every_other_candidate_says_why() -> None:
    qa, qb, qc = query("qa", "t"), query("qb", "u"), query("qc", "v")
    b_u, c_v = cand("u", "b"), cand("v", "c")
    costs = TableCosts({"qa": 100, "qb": 100, "qc": 100}, {("qa", A): 10, ("qb", b_u): 20, ("qc", c_v): 50},
                       {A: 1000, b_u: 2000, c_v: 500})
    by_query = {"qa": (A,), "qb": (b_u,), "qc": (c_v,)}
    sel = select_indexes([qa, qb, qc], by_query, costs, budget_bytes=1600, max_indexes=None, write_cost=no_writes)
    assert [r.candidate for r in sel.recommendations] == [c_v, A]  # by net saving per byte: 0.1, 0.09
    assert sum(r.estimated_bytes for r in sel.recommendations) <= 1600
    (over,) = sel.rejected
    assert over.candidate == b_u and over.reason.startswith("over budget") and over.benefit == 80

    capped = select_indexes([qa, qb, qc], by_query, costs, budget_bytes=10**6, max_indexes=1, write_cost=no_writes)
    # Greedy takes c_v (the best per byte: saves 50); the swap puts A, which saves most (90), in the only slot.
    assert [r.candidate for r in capped.recommendations] == [A]
    replaced = f"replaced by {A.describe()}, which saves more within the budget and --max-indexes"
    assert {(r.candidate, r.reason) for r in capped.rejected} == {(b_u, "beyond --max-indexes 1"), (c_v, replaced)}
    assert everything(capped) == {A, b_u, c_v}


def test_a_swap_replaces_a_small_index_with_one_that_saves_more_within_the_budget() -> None:
    costs = TableCosts({"q1": 100, "q2": 600}, {("q1", A): 40, ("q1", AB): 40, ("q2", AB): 160},
                       {A: 100, AB: 1000})
    sel = select_indexes([Q1, Q2], {"q1": (A, AB), "q2": (AB,)}, costs, budget_bytes=1000, max_indexes=None,
                         write_cost=no_writes)
    # Greedy alone takes A (60 per 100 bytes) and then has no room for AB (500 per 1000 bytes).
    assert [r.candidate for r in sel.recommendations] == [AB]
    (rejected,) = sel.rejected
    assert rejected.candidate == A
    assert rejected.reason == f"replaced by {AB.describe()}, which saves more within the budget and --max-indexes"


def test_write_cost_and_useless_candidates_are_rejected_with_their_figures() -> None:
    costs = TableCosts({"q1": 100}, {("q1", A): 30, ("q1", B): 100}, {A: 800, B: 800})
    sel = select_indexes([Q1], {"q1": (A, B)}, costs, budget_bytes=10**6, max_indexes=None,
                         write_cost=lambda c: 500.0)
    assert sel.recommendations == ()
    reasons = {r.candidate: r for r in sel.rejected}
    assert reasons[B].reason == "no query gets cheaper by 10% or more" and reasons[B].benefit == 0
    assert reasons[A].reason == "write cost 500.0 above benefit 70.0"
    assert (reasons[A].benefit, reasons[A].write_cost, reasons[A].estimated_bytes) == (70, 500, 800)


def test_a_saving_within_the_estimates_noise_is_no_help() -> None:
    """4 % cheaper (an index-only scan beside an index that exists, say) is not a reason for an index."""
    costs = TableCosts({"q1": 133}, {("q1", A): 128}, {A: 800})
    sel = select_indexes([Q1], {"q1": (A,)}, costs, budget_bytes=10**6, max_indexes=None, write_cost=no_writes)
    assert sel.recommendations == ()
    assert [(r.candidate, r.reason) for r in sel.rejected] == [(A, "no query gets cheaper by 10% or more")]


def test_weights_scale_the_benefit() -> None:
    """The same two queries, weighted 1 and 50: the index of the frequent one is worth its write cost."""
    qa, qb = query("qa", "t", 1.0), query("qb", "u", 50.0)
    b_u = cand("u", "b")
    costs = TableCosts({"qa": 100, "qb": 100}, {("qa", A): 50, ("qb", b_u): 50}, {A: 100, b_u: 100})
    sel = select_indexes([qa, qb], {"qa": (A,), "qb": (b_u,)}, costs, budget_bytes=10**6, max_indexes=None,
                         write_cost=lambda c: 100.0)
    assert [(r.candidate, r.benefit) for r in sel.recommendations] == [(b_u, 2500)]
    assert [(r.candidate, r.benefit) for r in sel.rejected] == [(A, 50)]


def test_what_if_calls_stay_low_and_a_failing_query_takes_no_part() -> None:
    """Forty candidates that help no query are settled by one request together and never costed again;
    the failing query is reported, not costed with candidates."""
    useless = [cand("t", f"c{i}") for i in range(40)]
    gone = query("gone", "t")
    costs = TableCosts({"q1": 100}, {("q1", A): 10}, {A: 100, **{c: 100 for c in useless}})
    sel = select_indexes([Q1, gone], {"q1": (A, *useless), "gone": (B,)}, costs, budget_bytes=10**6,
                         max_indexes=None, write_cost=no_writes)
    assert [r.candidate for r in sel.recommendations] == [A]
    assert [(q.key, msg) for q, msg in sel.failed] == [("gone", 'relation "gone" does not exist')]
    assert B not in everything(sel)
    # 2 base costs; q1 with all 41 candidates (its plan uses A), A alone, the 40 others (their plan uses
    # none: none of them helps alone, without asking each); then only A's set again (cached).
    assert costs.calls == 2 + 3


def test_a_candidate_the_engine_cannot_cost_is_ranked_by_pg_stats_and_says_so() -> None:
    gin = cand("t", "payload", method="gin")
    hypopg = TableCosts({"q1": 100}, {}, {gin: 4000})
    class Ranks(TableEngine):
        kind = EngineKind.STATISTICS

        def cannot_cost(self, candidate: Candidate) -> str | None:
            return None

    stats = TableCosts({"q1": 100}, {("q1", gin): 20}, {gin: 4000}, engine=Ranks())
    kept = select_indexes([Q1], {"q1": (gin,)}, hypopg, budget_bytes=10**6, max_indexes=None, write_cost=no_writes,
                          ranker=stats)
    (rec,) = kept.recommendations
    assert rec.candidate == gin and rec.engine is EngineKind.STATISTICS and rec.benefit == 80
    # why it is not costed, without the renderers' own "not costed:" prefix (the text said it twice)
    assert rec.not_costed == "hypopg cannot cost gin; ranked by pg_stats selectivity"
    unranked = select_indexes([Q1], {"q1": (gin,)}, hypopg, budget_bytes=10**6, max_indexes=None,
                              write_cost=no_writes)
    assert unranked.recommendations == ()
    assert [r.reason for r in unranked.rejected] == ["not costed: hypopg cannot cost gin; no other ranking available"]
    class BtreeOnly(TableEngine):
        def cannot_cost(self, candidate: Candidate) -> str | None:
            return "pg_stats ranks btree keys only, not gin" if candidate.method == "gin" else None

    btree_only = TableCosts({"q1": 100}, {("q1", gin): 20}, {gin: 4000}, engine=BtreeOnly())
    neither = select_indexes([Q1], {"q1": (gin,)}, hypopg, budget_bytes=10**6, max_indexes=None,
                             write_cost=no_writes, ranker=btree_only)
    assert neither.recommendations == ()
    assert [r.reason for r in neither.rejected] == [
        "not costed: hypopg cannot cost gin; not ranked either: pg_stats ranks btree keys only, not gin"]
    too_big = select_indexes([Q1], {"q1": (gin,)}, hypopg, budget_bytes=1000, max_indexes=None, write_cost=no_writes,
                             ranker=stats)
    assert too_big.recommendations == () and "over budget" in too_big.rejected[0].reason


def test_one_wider_index_replaces_two_narrower_ones_greedy_took() -> None:
    """Greedy takes (b) and (a), the best per byte; (a, b) serves both their queries for one write cost."""
    costs = TableCosts({"q1": 437, "q2": 487},
                       {("q1", A): 168, ("q1", AB): 170, ("q2", A): 300, ("q2", B): 14, ("q2", AB): 12},
                       {A: 155_000, B: 155_000, AB: 467_000})
    sel = select_indexes([Q1, Q2], {"q1": (A, AB), "q2": (A, B, AB)}, costs, budget_bytes=10**7, max_indexes=None,
                         write_cost=lambda c: 10.0)
    assert [r.candidate for r in sel.recommendations] == [AB]
    assert {(r.candidate, r.reason) for r in sel.rejected} == {(A, f"served by {AB.describe()}"),
                                                              (B, f"served by {AB.describe()}")}
