"""Selection: which candidate indexes a whole workload should get, under a storage budget.

The model, in planner cost units (the ``total_cost`` of each query's plan,
https://www.postgresql.org/docs/current/using-explain.html) weighted by each query's weight (its calls,
or the workload file's ``-- weight:``):

* ``c_q(S)``: the cost of query ``q`` with the set ``S`` of candidates present (``CostCache.cost``, which
  looks only at the candidates on ``q``'s own tables and caches);
* ``benefit(S) = Σ_q w_q × (c_q(∅) − c_q(S))``;
* ``W(i)``: the write cost of index ``i`` (:mod:`dbtune.advisor.writes`), what the rows modified in its
  table pay to keep it up to date, in the same units;
* ``net(S) = benefit(S) − Σ_{i∈S} W(i)``; a candidate's net value is its marginal benefit minus ``W(i)``.

The steps:

1. **Alone.** Each candidate is costed on its own against the queries that could use it (those that
   propose it, and those that propose another candidate with the same leading key column on its table).
   One that makes no query at least :data:`MIN_GAIN` (10 %) cheaper is rejected ("no query gets cheaper
   by 10% or more") and never costed again; the queries it makes that much cheaper alone are the only
   ones re-costed for it later (a candidate that does not help a query alone is not asked about that
   query again), which keeps the what-if calls to a few per candidate. The costs alone are found query by
   query, peeled from the set of every candidate its plan could use (:func:`_cost_alone`), so a query takes
   one request per candidate that helps it, plus one, not one per candidate on its tables; and what the
   later steps ask (a chosen set with one more) is mostly answered by those records.
2. **Greedy** (lazily re-evaluated): repeatedly add the candidate with the highest net marginal value per
   byte (``CostCache.size``) that fits the budget, until none has a positive net value or
   ``max_indexes`` is reached. A candidate's value is recomputed only when an index was chosen that
   makes one of its queries cheaper alone (the others' plans do not change), and then only on the
   queries that could still get cheaper: one that costs with the chosen set what it costs with every
   candidate present is not asked again.
3. **Swaps.** A candidate passed over for the budget or ``max_indexes`` replaces a chosen one when the
   net total rises and the set still fits.
4. **Merging.** An unchosen candidate replaces two or more chosen indexes on its table whose queries it
   helps too, when the net total does not fall: one wider index over two narrower ones it serves.
5. **Filling.** What now pays against the set as it stands (one judged not worth it beside an index that
   a swap or merge then took out) is added, best per byte first, while it fits: the greedy step again,
   from the set as it stands (lazily: only what the set's queries touch is re-evaluated).
6. **Pruning.** A chosen index whose removal lowers the net total by less than
   :data:`PRUNE_TOLERANCE` of what it saves alone is dropped: one wider index is kept over two it serves,
   and the narrower one is rejected "served by <wider>".

Every candidate left out is judged against the final set: "served by" the chosen indexes its queries'
plans use instead, or its write cost above what it would add; over the budget; beyond ``max_indexes``.

Candidates the engine cannot cost (``Engine.cannot_cost``: a GIN suggestion under hypopg) are not
dropped: with a ``ranker`` (a cost cache over the pg_stats :class:`~dbtune.advisor.ranking.StatisticsEngine`)
each is recommended, marked "not costed", when that ranking finds it worth its write cost and it fits
what the budget and ``max_indexes`` leave; otherwise it is rejected with the reason.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dbtune.advisor.costing import could_use
from dbtune.advisor.model import AdvisorQuery, Candidate, Costing, EngineKind, QueryCost, Recommendation, Rejected
from dbtune.units import size_pretty

# A chosen index whose removal costs the workload less than this fraction of what the index saves alone is
# served by the other chosen indexes (a wider one on the same leading columns, mostly).
PRUNE_TOLERANCE = 0.05
# Savings below this (planner cost units, weighted) are noise: a plan that did not change.
EPSILON = 1e-6
# A candidate helps a query when it alone makes the query's plan at least this much cheaper (a fraction of
# its cost without candidates): a smaller change is within what the estimates can tell apart, and is left
# to indexes that pay for themselves.
MIN_GAIN = 0.10
NO_GAIN = f"no query gets cheaper by {MIN_GAIN:.0%} or more"
STAGE = "selection"


class EngineLike(Protocol):
    kind: EngineKind

    def cannot_cost(self, candidate: Candidate) -> str | None: ...


class Costs(Protocol):
    """What selection needs of a :class:`~dbtune.advisor.costing.CostCache`."""

    @property
    def engine(self) -> EngineLike: ...

    @property
    def calls(self) -> int: ...

    def cost(self, query: AdvisorQuery, indexes: Iterable[Candidate]) -> Costing: ...

    def size(self, candidate: Candidate) -> int: ...


@dataclass(frozen=True)
class Selection:
    """What :func:`select_indexes` chose: ``recommendations`` in the order chosen (without their
    ``changes``: the API builds those), every other candidate as a :class:`Rejected` of stage
    ``selection`` with its figures, and the queries whose base cost the engine could not get (name, the
    server's message): they took no part."""

    recommendations: tuple[Recommendation, ...]
    rejected: tuple[Rejected, ...] = ()
    failed: tuple[tuple[AdvisorQuery, str], ...] = ()


@dataclass
class _State:
    """The run's working figures: base cost per query key, each candidate's benefit alone and the
    queries it helps alone."""

    queries: dict[str, AdvisorQuery]
    base: dict[str, float]
    alone: dict[Candidate, float] = field(default_factory=dict)
    helps: dict[Candidate, tuple[str, ...]] = field(default_factory=dict)
    # each query's cost with every costable candidate present: no set of them makes it cheaper
    best: dict[str, float] = field(default_factory=dict)


def select_indexes(queries: Sequence[AdvisorQuery], by_query: Mapping[str, Sequence[Candidate]], cache: Costs, *,
                   budget_bytes: int, max_indexes: int | None, write_cost: Callable[[Candidate], float],
                   ranker: Costs | None = None) -> Selection:
    """Choose indexes for ``queries`` among the candidates ``by_query`` proposes (``AdvisorQuery.key`` →
    candidates), under ``budget_bytes`` (bytes of new indexes, estimated by ``cache.size``) and
    ``max_indexes`` (None: no limit), counting ``write_cost(candidate)`` (planner cost units, weighted
    like the benefit) against each index. See the module docstring for the method; ``ranker`` ranks the
    candidates ``cache.engine`` cannot cost. Sends only what-if requests through ``cache`` (and
    ``ranker``); lets their errors through. Queries whose base cost fails are left out, in
    :attr:`Selection.failed`.
    """
    state, failed = _base(queries, cache)
    rejected: dict[Candidate, Rejected] = {}
    costable: list[Candidate] = []
    uncostable: list[tuple[Candidate, str]] = []
    for cand in _distinct(by_query.get(q.key, ()) for q in queries if q.key in state.base):
        why = cache.engine.cannot_cost(cand)
        if why is None:
            costable.append(cand)
        else:
            uncostable.append((cand, why))
    _cost_alone(state, by_query, cache, costable)
    for cand in costable:
        if state.alone[cand] <= EPSILON:
            rejected[cand] = _reject(cand, cache, write_cost, NO_GAIN, 0.0)
    live = [c for c in costable if c not in rejected]
    not_worth: list[Candidate] = []
    chosen, passed_over = _greedy(state, cache, live, budget_bytes, max_indexes, write_cost, not_worth)
    chosen, swapped_out = _swap(state, cache, chosen, passed_over, budget_bytes, write_cost)
    chosen = _merge(state, cache, chosen, [c for c in live if c not in passed_over], budget_bytes, write_cost)
    chosen, _ = _greedy(state, cache, [c for c in live if c not in chosen], budget_bytes, max_indexes, write_cost,
                        [], chosen=chosen)
    chosen, marginal = _prune(state, cache, chosen, write_cost, not_worth)
    for old, new in swapped_out.items():
        if old not in chosen and old not in not_worth:
            rejected[old] = _reject(old, cache, write_cost, f"replaced by {new.describe()}, which saves more "
                                    "within the budget and --max-indexes", state.alone[old])
    for cand, reason in passed_over.items():
        if cand not in chosen:
            rejected[cand] = _reject(cand, cache, write_cost, reason, state.alone[cand])
    for cand in dict.fromkeys(c for c in live if c not in chosen and c not in rejected):
        rejected[cand] = _not_worth(state, cache, chosen, cand, write_cost)
    recommendations = [_recommend(state, cache, chosen, cand, marginal[cand], write_cost) for cand in chosen]
    used_bytes = sum(cache.size(c) for c in chosen)
    for cand, why in uncostable:
        verdict = _not_costed(cand, why, queries, by_query, state, ranker, write_cost, cache,
                              budget_bytes - used_bytes, max_indexes, len(recommendations))
        if isinstance(verdict, Recommendation):
            recommendations.append(verdict)
            used_bytes += verdict.estimated_bytes
        else:
            rejected[cand] = verdict
    order = {c: i for i, c in enumerate(_distinct(by_query.get(q.key, ()) for q in queries))}
    return Selection(tuple(recommendations), tuple(sorted(rejected.values(), key=lambda r: order[r.candidate])),
                     tuple(failed))


# --- the figures -------------------------------------------------------------------------------------------


def _distinct(groups: Iterable[Sequence[Candidate]]) -> list[Candidate]:
    seen: dict[Candidate, None] = {}
    for group in groups:
        for cand in group:
            seen.setdefault(cand, None)
    return list(seen)


def _base(queries: Sequence[AdvisorQuery], cache: Costs) -> tuple[_State, list[tuple[AdvisorQuery, str]]]:
    base: dict[str, float] = {}
    failed: list[tuple[AdvisorQuery, str]] = []
    for q in queries:
        costing = cache.cost(q, ())
        if costing.cost is None:
            failed.append((q, costing.error or "the engine could not cost it"))
        else:
            base[q.key] = costing.cost
    return _State({q.key: q for q in queries}, base), failed


def _leading(cand: Candidate) -> str:
    return cand.keys[0].sql() if cand.keys else ""


def _neighbours(state: _State, by_query: Mapping[str, Sequence[Candidate]], costable: Sequence[Candidate]
                ) -> dict[str, list[Candidate]]:
    """For each query that has a base cost, the candidates it could be helped by alone: those it proposes,
    and those with the leading key column of one it proposes, on the same table (``costable``'s order)."""
    out: dict[str, list[Candidate]] = {}
    for key in state.base:
        proposed = by_query.get(key, ())
        leading = {(p.qualified_table, _leading(p)) for p in proposed}
        out[key] = [c for c in costable if c in proposed or (c.qualified_table, _leading(c)) in leading]
    return out


def _cost_alone(state: _State, by_query: Mapping[str, Sequence[Candidate]], cache: Costs,
                costable: Sequence[Candidate]) -> None:
    """Each candidate's weighted saving alone (``state.alone``) over the queries it helps alone
    (``state.helps``: by more than :data:`MIN_GAIN`), among those that propose it or a candidate with its
    leading key column on its table; and each query's cost with every costable candidate (``state.best``).

    Peeled, query by query (not under trial builds, where a build of each candidate serves all its
    queries): the query is costed with every remaining candidate its plan could use present
    (:func:`~dbtune.advisor.costing.could_use`); a plan that uses one of them, ``c``, costs what it does
    with ``c`` alone (the cache's argument, :mod:`dbtune.advisor.costing`), so ``c`` is settled and taken
    out; several used are each costed alone and taken out; a plan that uses none, or saves no more than
    the threshold, settles all the rest as not helping. That assumes, as the cache does, that the planner
    finds the cheapest plan the present indexes allow, so a cost never rises when an index is added. Each
    query then takes one request per candidate that helps it, plus one, rather than one per neighbour;
    and the cache's records of those plans answer most later requests (any set of the query's candidates
    whose first-peeled member its plan used)."""
    neighbours = _neighbours(state, by_query, costable)
    savings: dict[Candidate, dict[str, float]] = {c: {} for c in costable}
    peel = cache.engine.kind is not EngineKind.TRIAL_BUILD
    if not peel:
        for cand in costable:
            for key in state.base:
                if cand in neighbours[key]:
                    _settle(state, cache, key, cand, savings)
    for key in state.base if peel else ():
        query = state.queries[key]
        best = cache.cost(query, costable)
        if best.cost is not None:
            state.best[key] = best.cost
        threshold = max(EPSILON, MIN_GAIN * state.base[key])
        mine = set(neighbours[key])
        todo = [c for c in costable if could_use(query, c)]
        while todo:
            costing = cache.cost(query, todo)
            used = [c for c in todo if c in costing.used]
            if costing.cost is None:  # one of them is refused: each on its own
                for cand in todo:
                    if cand in mine:
                        _settle(state, cache, key, cand, savings)
                break
            if not used or state.base[key] - costing.cost <= threshold:
                break  # no subset of ``todo`` saves more than the threshold
            for cand in used:
                if cand in mine:
                    _settle(state, cache, key, cand, savings)
            todo = [c for c in todo if c not in used]
    for cand in costable:
        found = savings[cand]
        state.alone[cand] = sum(state.queries[k].weight * found[k] for k in state.base if k in found)
        state.helps[cand] = tuple(k for k in state.base if k in found)


def _settle(state: _State, cache: Costs, key: str, cand: Candidate, savings: dict[Candidate, dict[str, float]]
            ) -> None:
    """Record ``cand``'s saving alone on query ``key`` when it is above the threshold."""
    saving = _saving(state, cache, state.queries[key], [cand], cand)
    if saving > max(EPSILON, MIN_GAIN * state.base[key]):
        savings[cand][key] = saving


def _saving(state: _State, cache: Costs, query: AdvisorQuery, present: Iterable[Candidate],
            cand: Candidate | None = None) -> float:
    """``c_q(∅) − c_q(present)`` (unweighted); 0 when the plan does not use ``cand`` (when given) or the
    query cannot be costed with them."""
    costing = cache.cost(query, present)
    if costing.cost is None or (cand is not None and cand not in costing.used):
        return 0.0
    return max(0.0, state.base[query.key] - costing.cost)


def _benefit(state: _State, cache: Costs, keys: Iterable[str], present: Sequence[Candidate]) -> float:
    """``Σ w_q × (c_q(∅) − c_q(present))`` over the queries ``keys``."""
    return sum(state.queries[k].weight * _saving(state, cache, state.queries[k], present) for k in keys)


def _marginal(state: _State, cache: Costs, chosen: Sequence[Candidate], cand: Candidate) -> float:
    """What adding ``cand`` to ``chosen`` saves on the queries it helps alone (weighted). A query that
    costs with ``chosen`` what it costs with every candidate (``state.best``) gains nothing from one more
    (a cost never falls below that), and is not asked again."""
    total = 0.0
    for key in state.helps[cand]:
        if _room(state, cache, chosen, key) <= EPSILON:
            continue
        query = state.queries[key]
        total += query.weight * (_saving(state, cache, query, [*chosen, cand]) - _saving(state, cache, query, chosen))
    return total


def _room(state: _State, cache: Costs, chosen: Sequence[Candidate], key: str) -> float:
    """How much cheaper query ``key`` could still get with more candidates than ``chosen``: its cost with
    ``chosen`` less its cost with every candidate (``state.best``; infinite when that is not known). No
    set of candidates takes more off it."""
    best = state.best.get(key)
    if best is None:
        return math.inf
    return max(0.0, state.base[key] - _saving(state, cache, state.queries[key], chosen) - best)


def _reject(cand: Candidate, cache: Costs, write_cost: Callable[[Candidate], float], reason: str,
            benefit: float) -> Rejected:
    return Rejected(cand, STAGE, reason, benefit=benefit, write_cost=write_cost(cand),
                    estimated_bytes=cache.size(cand))


# --- the steps -------------------------------------------------------------------------------------------


def _greedy(state: _State, cache: Costs, live: list[Candidate], budget_bytes: int, max_indexes: int | None,
            write_cost: Callable[[Candidate], float], not_worth: list[Candidate],
            chosen: Sequence[Candidate] = ()) -> tuple[list[Candidate], dict[Candidate, str]]:
    """Lazy greedy by net value per byte, adding to ``chosen`` (filling: after swaps and merges, what now
    pays against the set as it stands); returns the chosen candidates and those passed over for the
    budget or ``max_indexes`` (with the reason), and adds to ``not_worth`` those whose net value is not
    positive."""
    chosen = list(chosen)
    used = sum(cache.size(c) for c in chosen)
    passed_over: dict[Candidate, str] = {}
    # query key -> the round an index it helps alone was last chosen (round 0: those chosen already)
    changed: dict[str, int] = {k: 0 for c in chosen for k in state.helps[c]}
    evaluated: dict[Candidate, int] = {}
    heap: list[tuple[float, int, Candidate, float]] = []
    for n, cand in enumerate(live):
        net = state.alone[cand] - write_cost(cand)
        heapq.heappush(heap, (-net / max(cache.size(cand), 1), n, cand, net))
        evaluated[cand] = 0
    round_ = 0
    while heap:
        _, n, cand, net = heapq.heappop(heap)
        if max_indexes is not None and len(chosen) >= max_indexes:
            if net > EPSILON:
                passed_over[cand] = f"beyond --max-indexes {max_indexes}"
            else:
                not_worth.append(cand)
            continue
        if any(changed.get(k, -1) >= evaluated[cand] for k in state.helps[cand]):
            net = _marginal(state, cache, chosen, cand) - write_cost(cand)
            evaluated[cand] = round_ + 1
            heapq.heappush(heap, (-net / max(cache.size(cand), 1), n, cand, net))
            continue
        if net <= EPSILON:
            not_worth.append(cand)
            continue
        size = cache.size(cand)
        if used + size > budget_bytes:
            passed_over[cand] = (f"over budget: {size_pretty(size)} with {size_pretty(used)} chosen, "
                                 f"budget {size_pretty(budget_bytes)}")
            continue
        chosen.append(cand)
        used += size
        round_ += 1
        changed.update(dict.fromkeys(state.helps[cand], round_))
    return chosen, passed_over


def _not_worth(state: _State, cache: Costs, chosen: Sequence[Candidate], cand: Candidate,
               write_cost: Callable[[Candidate], float]) -> Rejected:
    """Why a candidate with a saving alone adds nothing worth its write cost to the final ``chosen`` set:
    served by the chosen indexes its queries' plans use instead, or its write cost."""
    benefit = _marginal(state, cache, chosen, cand)
    if benefit <= PRUNE_TOLERANCE * state.alone[cand]:
        servers = _serving(state, cache, chosen, cand)
        if servers:
            return _reject(cand, cache, write_cost, f"served by {' and '.join(c.describe() for c in servers)}",
                           benefit)
    wc = write_cost(cand)
    if benefit - wc > EPSILON:  # it would pay, but the chosen set leaves no room (_fill added what fits)
        return _reject(cand, cache, write_cost, "over the budget or --max-indexes with the chosen indexes, which "
                       "save more per byte", benefit)
    return _reject(cand, cache, write_cost, f"write cost {wc:.1f} above benefit {benefit:.1f}", benefit)


def _serving(state: _State, cache: Costs, chosen: Sequence[Candidate], cand: Candidate) -> list[Candidate]:
    """The chosen indexes the plans of ``cand``'s queries use, with ``chosen`` present, most used (by
    weight) first."""
    weights: dict[Candidate, float] = {}
    for key in state.helps[cand]:
        costing = cache.cost(state.queries[key], chosen)
        for other in costing.used:
            if other in chosen and other != cand:
                weights[other] = weights.get(other, 0.0) + state.queries[key].weight
    return sorted(weights, key=lambda c: -weights[c])


def _net(state: _State, cache: Costs, keys: Iterable[str], present: Sequence[Candidate],
         write_cost: Callable[[Candidate], float]) -> float:
    return _benefit(state, cache, keys, present) - sum(write_cost(c) for c in present)


def _swap(state: _State, cache: Costs, chosen: list[Candidate], passed_over: Mapping[Candidate, str],
          budget_bytes: int, write_cost: Callable[[Candidate], float]
          ) -> tuple[list[Candidate], dict[Candidate, Candidate]]:
    """One pass of swaps: each candidate passed over for the budget or ``max_indexes`` (best alone
    first) replaces the chosen index whose replacement raises the net total most, when the set still fits
    the budget (an index whose value alone does not exceed what the chosen one adds is not tried).
    Returns the new set and what replaced each index swapped out."""
    chosen = list(chosen)
    swapped_out: dict[Candidate, Candidate] = {}
    adds: dict[Candidate, float] = {}  # what each chosen index adds to the others, while ``chosen`` stands
    for cand in sorted(passed_over, key=lambda c: -(state.alone[c] - write_cost(c))):
        if cand in chosen:
            continue
        best: tuple[float, Candidate] | None = None
        used = sum(cache.size(c) for c in chosen)
        for old in chosen:
            if used - cache.size(old) + cache.size(cand) > budget_bytes:
                continue
            if old not in adds:
                adds[old] = _marginal(state, cache, [c for c in chosen if c != old], old)
            if state.alone[cand] - write_cost(cand) <= adds[old] - write_cost(old):
                continue  # it cannot beat what ``old`` adds
            keys = sorted(set(state.helps[cand]) | set(state.helps[old]))
            # only a query whose plan could use ``cand`` can get cheaper, and by no more than its room
            bound = sum(state.queries[k].weight * _room(state, cache, chosen, k) for k in keys
                        if could_use(state.queries[k], cand))
            if bound - write_cost(cand) + write_cost(old) <= EPSILON:
                continue
            swapped = [cand if c == old else c for c in chosen]
            gain = _net(state, cache, keys, swapped, write_cost) - _net(state, cache, keys, chosen, write_cost)
            if gain > EPSILON and (best is None or gain > best[0]):
                best = (gain, old)
        if best is not None:
            chosen = [cand if c == best[1] else c for c in chosen]
            swapped_out[best[1]] = cand
            adds.clear()
    return chosen, swapped_out


def _merge(state: _State, cache: Costs, chosen: list[Candidate], others: Sequence[Candidate], budget_bytes: int,
           write_cost: Callable[[Candidate], float]) -> list[Candidate]:
    """One wider index instead of several chosen ones it serves: each unchosen candidate (best net value
    alone per byte first) replaces the chosen indexes on its table whose queries it helps too, when there
    are two or more of them, the net total does not fall, and the set fits the budget."""
    chosen = list(chosen)
    for cand in sorted(others, key=lambda c: -(state.alone[c] - write_cost(c)) / max(cache.size(c), 1)):
        if cand in chosen:
            continue
        helps = set(state.helps[cand])
        olds = [c for c in chosen if c.qualified_table == cand.qualified_table and set(state.helps[c]) <= helps]
        if len(olds) < 2:
            continue
        merged = [c for c in chosen if c not in olds] + [cand]
        if sum(cache.size(c) for c in merged) > budget_bytes:
            continue
        keys = sorted(helps | {k for c in olds for k in state.helps[c]})
        if _net(state, cache, keys, merged, write_cost) >= _net(state, cache, keys, chosen, write_cost) - EPSILON:
            chosen = merged
    return chosen


def _prune(state: _State, cache: Costs, chosen: list[Candidate], write_cost: Callable[[Candidate], float],
           not_worth: list[Candidate]) -> tuple[list[Candidate], dict[Candidate, float]]:
    """Drop every chosen index whose removal lowers the net total by less than :data:`PRUNE_TOLERANCE` of
    its saving alone (the least valuable first); returns the rest and each one's marginal benefit (what
    the workload loses without it, before its write cost)."""
    chosen = list(chosen)
    while True:
        marginal = {c: _marginal(state, cache, [o for o in chosen if o != c], c) for c in chosen}
        worst = min(chosen, key=lambda c: marginal[c] - write_cost(c) - PRUNE_TOLERANCE * state.alone[c],
                    default=None)
        if worst is None or marginal[worst] - write_cost(worst) > PRUNE_TOLERANCE * state.alone[worst]:
            return chosen, marginal
        chosen.remove(worst)
        not_worth.append(worst)


def _recommend(state: _State, cache: Costs, chosen: Sequence[Candidate], cand: Candidate, benefit: float,
               write_cost: Callable[[Candidate], float]) -> Recommendation:
    """``cand`` as a :class:`Recommendation`: the queries whose plans use it with every chosen index
    present, their cost before (no candidate) and after (all chosen)."""
    served = []
    for key in state.helps[cand]:
        query = state.queries[key]
        costing = cache.cost(query, chosen)
        if cand in costing.used and costing.cost is not None:
            served.append(QueryCost(query.key, query.name, query.sql, query.weight, state.base[key], costing.cost))
    wc = write_cost(cand)
    return Recommendation(candidate=cand, queries=tuple(served), estimated_bytes=cache.size(cand), benefit=benefit,
                          write_cost=wc, engine=cache.engine.kind,
                          slows_writes_to=(cand.qualified_table,) if wc > 0 else ())


def _not_costed(cand: Candidate, why: str, queries: Sequence[AdvisorQuery],
                by_query: Mapping[str, Sequence[Candidate]], state: _State, ranker: Costs | None,
                write_cost: Callable[[Candidate], float], cache: Costs, budget_left: int,
                max_indexes: int | None, count: int) -> Recommendation | Rejected:
    """A candidate ``cache.engine`` cannot cost, judged by ``ranker`` (pg_stats selectivity)."""
    size = ranker.size(cand) if ranker is not None else cache.size(cand)
    wc = write_cost(cand)
    if ranker is None:
        return Rejected(cand, STAGE, f"not costed: {why}; no other ranking available", write_cost=wc,
                        estimated_bytes=size)
    unranked = ranker.engine.cannot_cost(cand)
    if unranked is not None:
        return Rejected(cand, STAGE, f"not costed: {why}; not ranked either: {unranked}", write_cost=wc,
                        estimated_bytes=size)
    served, benefit = [], 0.0
    for q in queries:
        if cand not in by_query.get(q.key, ()) or q.key not in state.base:
            continue
        before, after = ranker.cost(q, ()), ranker.cost(q, [cand])
        if before.cost is None or after.cost is None or cand not in after.used \
                or before.cost - after.cost <= max(EPSILON, MIN_GAIN * before.cost):
            continue
        benefit += q.weight * (before.cost - after.cost)
        served.append(QueryCost(q.key, q.name, q.sql, q.weight, before.cost, after.cost))
    note = f"not costed: {why}; ranked by pg_stats selectivity"
    if benefit <= EPSILON:
        return Rejected(cand, STAGE, f"{note}: {NO_GAIN}", write_cost=wc, estimated_bytes=size)
    if benefit - wc <= EPSILON:
        return Rejected(cand, STAGE, f"{note}: write cost {wc:.1f} above benefit {benefit:.1f}", benefit=benefit,
                        write_cost=wc, estimated_bytes=size)
    if max_indexes is not None and count >= max_indexes:
        return Rejected(cand, STAGE, f"{note}: beyond --max-indexes {max_indexes}", benefit=benefit,
                        write_cost=wc, estimated_bytes=size)
    if size > budget_left:
        return Rejected(cand, STAGE, f"{note}: over budget ({size_pretty(size)}, {size_pretty(max(budget_left, 0))} "
                        "left)", benefit=benefit, write_cost=wc, estimated_bytes=size)
    return Recommendation(candidate=cand, queries=tuple(served), estimated_bytes=size, benefit=benefit, write_cost=wc,
                          engine=EngineKind.STATISTICS, slows_writes_to=(cand.qualified_table,) if wc > 0 else (),
                          not_costed=f"{why}; ranked by pg_stats selectivity")
