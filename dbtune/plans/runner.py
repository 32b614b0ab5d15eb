"""Run the catalogue's plan checks (area ``plans``) against explained queries.

A plan check is a function of a :class:`PlanContext` (one query's plan) that yields findings, as a
snapshot check is a function of a :class:`~dbtune.checks.runner.CheckContext`; the audit's snapshot runner
leaves them out (``PLAN_AREAS``) and :func:`run_plan_checks` runs them, once per plan::

    collection = collect_plans(settings, [PlanQuery("SELECT …", name="recent-orders")])
    result = run_plan_checks(load_catalogue(), collection.queries, config)
    for f in result.findings:
        print(f.object, f.message)      # recent-orders: Seq Scan on public.orders …
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dbtune.catalog.model import Skip
from dbtune.checks.registry import Catalogue, Check, CheckMeta
from dbtune.checks.runner import PLAN_AREAS, AuditResult, _options
from dbtune.config.model import Config
from dbtune.errors import ConfigError
from dbtune.model import Change, Finding, Severity
from dbtune.plans.collect import ExplainedQuery
from dbtune.plans.model import Plan, PlanNode

NEEDS_ANALYZE = "needs EXPLAIN ANALYZE: these plans were not run (`dbtune explain --analyze` runs them)"


@dataclass(frozen=True)
class PlanContext:
    """What a plan check receives: one query (text, name, fingerprint), its plan, whether the plan was
    run with ANALYZE, the server's ``server_version_num`` and recorded settings, the planner's row count
    of each relation the plan reads, the config, the check's metadata, options and configured severity,
    and a finding factory."""

    query: str
    name: str | None
    fingerprint: str
    plan: Plan
    kind: str
    server_version_num: int
    config: Config
    meta: CheckMeta
    options: dict[str, Any]
    severity: Severity
    settings: Mapping[str, str] = field(default_factory=dict)
    relation_rows: Mapping[str, float] = field(default_factory=dict)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def analyzed(self) -> bool:
        """Whether the plan carries EXPLAIN ANALYZE's actual rows, loops and times."""
        return self.plan.analyzed

    @property
    def label(self) -> str:
        """The query's name, else ``query <fingerprint>``."""
        return self.name or f"query {self.fingerprint}"

    def nodes(self) -> Iterator[PlanNode]:
        return self.plan.nodes()

    def reltuples(self, node: PlanNode) -> float | None:
        """The planner's row count of the relation ``node`` reads; ``None`` when unknown (never analyzed)."""
        rows = self.relation_rows.get(node.relation or "")
        return rows if rows is not None and rows >= 0 else None

    def skip(self, reason: str) -> None:
        """Record that this check could not judge this plan (a plan without ANALYZE …)."""
        self.skipped.append(Skip(self.meta.name, reason))

    def finding(self, node: PlanNode | str, message: str, *, evidence: dict[str, Any] | None = None,
                changes: Iterable[Change] = (), severity: Severity | None = None) -> Finding:
        """A :class:`Finding` carrying this check's id, name and (configured) severity. Its ``object`` is
        the query's label and the node, ``retailer-recent-orders: Seq Scan on public.orders`` (``node``
        may be a plain string for the whole plan, such as ``JIT``); ``evidence`` gets the query, its
        fingerprint, the node and the plan kind."""
        where = node if isinstance(node, str) else node.label
        scan = {} if isinstance(node, str) or not node.relation else {"relation": node.relation,
                                                                       "node_type": node.node_type}
        return Finding(check_id=self.meta.id, check_name=self.meta.name, severity=severity or self.severity,
                       object=f"{self.label}: {where}", message=message,
                       evidence={"query": self.name, "fingerprint": self.fingerprint, "node": where,
                                 "plan_kind": self.kind, **scan, **(evidence or {})},
                       changes=tuple(changes))


def plan_checks(catalogue: Catalogue, config: Config, select: Iterable[str] = (),
                ignore: Iterable[str] = ()) -> list[Check]:
    """The catalogue's plan checks that the config's ``audit.select``/``audit.ignore`` and ``select``/
    ``ignore`` keep. Raises :class:`ConfigError` for a name that is no check."""
    wanted = [*config.audit.select, *select]
    unwanted = [*config.audit.ignore, *ignore]
    for key in (*wanted, *unwanted, *config.checks):
        if catalogue.get(key) is None:
            raise ConfigError(f"no check named {key!r} (see `dbtune checks list`)")
    chosen = [c for c in catalogue if c.meta.area in PLAN_AREAS]
    if wanted:
        ids = {catalogue.get(k).meta.id for k in wanted}  # type: ignore[union-attr]
        chosen = [c for c in chosen if c.meta.id in ids]
    drop = {catalogue.get(k).meta.id for k in unwanted}  # type: ignore[union-attr]
    return [c for c in chosen if c.meta.id not in drop]


def run_plan_checks(catalogue: Catalogue, plans: Iterable[ExplainedQuery], config: Config, *,
                    select: Iterable[str] = (), ignore: Iterable[str] = ()) -> AuditResult:
    """Run every selected plan check on every plan (queries without a plan are passed over).

    Findings come query by query, in check-id order within a query. ``skipped`` holds each (check,
    reason) once, such as a check that needs EXPLAIN ANALYZE on plans that were not run. Raises
    :class:`ConfigError` for unknown check names or options.
    """
    result = AuditResult()
    checks = [(c, *_options(c, config)) for c in plan_checks(catalogue, config, select, ignore)]
    result.checks_run = [c.meta.id for c, _, _ in checks]
    skipped: list[Skip] = []
    for explained in plans:
        if explained.plan is None:
            continue
        for check, options, severity in checks:
            if explained.server.version_num < check.meta.min_version_num:
                skipped.append(Skip(check.meta.name, f"needs server_version_num >= {check.meta.min_version_num}"))
                continue
            ctx = PlanContext(query=explained.query.sql, name=explained.query.name,
                              fingerprint=explained.fingerprint, plan=explained.plan, kind=explained.kind,
                              server_version_num=explained.server.version_num, config=config, meta=check.meta,
                              options=options, severity=severity, settings=explained.server.settings,
                              relation_rows=explained.relation_rows, skipped=skipped)
            found = list(check.run(ctx))  # type: ignore[arg-type]
            result.findings.extend(at_partitioned_tables(found, explained.partition_roots, ctx.label))
    result.skipped = list(dict.fromkeys(skipped))
    return result


def at_partitioned_tables(findings: list[Finding], roots: Mapping[str, str], label: str) -> list[Finding]:
    """One check's findings on one plan, with those on partitions of one partitioned table (``roots``:
    partition → root, as :attr:`ExplainedQuery.partition_roots`) merged into one finding at that table,
    in the place of the first: its object and node are ``<node type> on <table>``, its evidence lists the
    ``partitions``, their plan ``nodes`` and each one's evidence (``per_partition``); the severity is the
    worst of them. The audit's own checks report partitions at their parent the same way."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    order: list[Finding | tuple[str, str, str]] = []
    for f in findings:
        root = roots.get(str(f.evidence.get("relation", "")))
        if root is None:
            order.append(f)
            continue
        key = (f.check_id, root, str(f.evidence.get("node_type", "")))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(f)
    out: list[Finding] = []
    for item in order:
        if isinstance(item, Finding):
            out.append(item)
            continue
        _, root, node_type = item
        group = groups[item]
        first = group[0]
        node = f"{node_type} on {root}"
        partitions = list(dict.fromkeys(str(f.evidence["relation"]) for f in group))
        message = (f"{node}: on {len(partitions)} of its partitions ({', '.join(partitions)}); "
                   f"{first.message}" + (f" (and alike on the other {len(group) - 1})" if len(group) > 1 else ""))
        out.append(replace(
            first, object=f"{label}: {node}", message=message,
            severity=max((f.severity for f in group), key=lambda s: s.rank),
            evidence={**first.evidence, "node": node, "relation": root, "partitions": partitions,
                      "nodes": [f.evidence["node"] for f in group],
                      "per_partition": [{k: v for k, v in f.evidence.items() if k not in ("query", "fingerprint")}
                                        for f in group]},
            changes=tuple({c.up: c for f in group for c in f.changes}.values())))
    return out
