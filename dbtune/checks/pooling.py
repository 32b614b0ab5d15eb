"""What the pooler checks share: the PgBouncer in front of the server as the config and the application's
configuration describe it, value by value with where it was read (a ``dbtune.toml`` value wins, then a
live PgBouncer's ``SHOW CONFIG``, then files, later over earlier: :mod:`dbtune.appconfig.plan`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.parser import ParseError
from pglast.stream import RawStream

from dbtune.appconfig.model import Origin, SessionFeature
from dbtune.appconfig.urls import session_settings
from dbtune.checks.runner import CheckContext
from dbtune.pgsql import parse_sql
from dbtune.workload.session_features import session_feature_uses


@dataclass(frozen=True)
class PoolerValue:
    """A PgBouncer setting's ``value`` (``None``: not stated anywhere, PgBouncer's default applies) and its
    ``source`` (``file:line (key)``, ``SHOW CONFIG …``, ``dbtune.toml``)."""

    value: Any
    source: str | None


def pooler_value(ctx: CheckContext, attr: str) -> PoolerValue:
    """The PgBouncer setting ``attr`` (a :class:`~dbtune.appconfig.model.Pooler` field name, milliseconds
    for times) as the application's configuration states it, a live PgBouncer over its files."""
    poolers = [b for b in ctx.app_config.poolers if not b.live] + [b for b in ctx.app_config.poolers if b.live]
    found = PoolerValue(None, None)
    for b in poolers:
        value = getattr(b, attr)
        if value is not None:
            found = PoolerValue(value, str(b.origins.get(attr, b.origin)))
    return found


def transaction_pooler(ctx: CheckContext) -> PoolerValue | None:
    """``pool_mode`` with its source when a PgBouncer in ``transaction`` (or ``statement``) mode is in
    front of the server (``None`` otherwise)."""
    plan = ctx.pool_plan()
    if plan.pgbouncer is None or plan.pgbouncer.pool_mode == "session":
        return None
    return PoolerValue(plan.pgbouncer.pool_mode, plan.source_of("pgbouncer", "pool_mode"))


def feature_settings(feature: SessionFeature) -> dict[str, str]:
    """The settings (name → value as written) a session feature of the config sets: a ``SET`` statement
    read with PostgreSQL's grammar, or ``-c name=value`` options; empty for other SQL."""
    if feature.kind == "options":
        return session_settings(feature.text)
    try:
        statements = parse_sql(feature.text)
    except ParseError:
        return {}
    out: dict[str, str] = {}
    for raw in statements:
        stmt = raw.stmt
        if isinstance(stmt, ast.VariableSetStmt) and stmt.name and stmt.args:
            out[stmt.name] = ", ".join(_value(a) for a in stmt.args)
    return out


def _value(node: ast.Node) -> str:
    if isinstance(node, ast.A_Const) and node.val is not None:
        val = node.val
        return str(getattr(val, "sval", None) or getattr(val, "ival", None) or getattr(val, "fval", ""))
    return str(RawStream()(node))


# The timeouts an application should set on its role, not per session, behind a transaction pooler.
ROLE_TIMEOUTS = frozenset({"statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"})


def session_timeouts(ctx: CheckContext) -> dict[str, tuple[str, str]]:
    """The :data:`ROLE_TIMEOUTS` the application sets per session, name → (value as written, where): a
    plain ``SET`` in the workload, a ``SET`` of a connect hook or ``connectionInitSql``, ``options=-c …`` of
    a URL; the first place each is set wins."""
    found: dict[str, tuple[str, str]] = {}
    for use in session_feature_uses(ctx.workload):
        if use.kind == "SET" and use.detail in ROLE_TIMEOUTS and use.detail not in found:
            value = feature_settings(SessionFeature("set", use.statement, Origin(use.location))).get(use.detail)
            if value is not None:
                found[use.detail] = (value, use.location)
    for pool in ctx.app_config.pools:
        for feature in pool.session_features:
            for name, value in feature_settings(feature).items():
                if name in ROLE_TIMEOUTS:
                    found.setdefault(name, (value, str(feature.origin)))
        if pool.target is not None:
            for name, value in pool.target.session_settings.items():
                if name in ROLE_TIMEOUTS:
                    found.setdefault(name, (value, str(pool.origin)))
    return found


def left_to_the_pooler_check(ctx: CheckContext) -> frozenset[str]:
    """The timeouts ``session-timeout-behind-transaction-pooler`` (PO006) reports with their per-role fix:
    those the application sets per session behind a transaction pooler (empty without one)."""
    return frozenset(session_timeouts(ctx)) if transaction_pooler(ctx) is not None else frozenset()
