"""What the pooler checks share: the PgBouncer in front of the server as the config and the application's
configuration describe it, value by value with where it was read (a ``dbtune.toml`` value wins, then a
live PgBouncer's ``SHOW CONFIG``, then files, later over earlier: :mod:`dbtune.appconfig.plan`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.parser import ParseError
from pglast.stream import RawStream

from dbtune.appconfig.model import SessionFeature
from dbtune.appconfig.urls import session_settings
from dbtune.checks.runner import CheckContext
from dbtune.pgsql import parse_sql


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
