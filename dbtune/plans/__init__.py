"""EXPLAIN plans: collection (generic plans for ``$n`` queries), the typed plan model, and the context and
runner of the catalogue's plan checks (area ``plans``, ids ``PL…``).

::

    from dbtune.plans import PlanQuery, explain
    report = explain(settings, [PlanQuery("SELECT * FROM orders WHERE status = $1", name="by-status")], config)
"""

from dbtune.plans.api import ExplainEntry, ExplainReport, audit_plans, explain
from dbtune.plans.collect import (
    Collection,
    ExplainedQuery,
    ExplainOptions,
    PlanQuery,
    PlanServer,
    collect_plans,
    fingerprint,
)
from dbtune.plans.model import JitTiming, Plan, PlanNode, WorkerStats
from dbtune.plans.runner import NEEDS_ANALYZE, PlanContext, plan_checks, run_plan_checks
from dbtune.plans.source import workload_queries

__all__ = [
    "NEEDS_ANALYZE", "Collection", "ExplainEntry", "ExplainOptions", "ExplainReport", "ExplainedQuery",
    "JitTiming", "Plan", "PlanContext", "PlanNode", "PlanQuery", "PlanServer", "WorkerStats", "audit_plans",
    "collect_plans", "explain", "fingerprint", "plan_checks", "run_plan_checks", "workload_queries",
]
