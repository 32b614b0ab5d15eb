"""What the settings checks share: a setting's value in bytes, the machine facts of ``[server]``, the band
of a pgtune rule (le0pard/pgtune) outside which a setting is reported, and the ``ALTER SYSTEM`` fix that is
shown, never applied by ``dbtune migrate`` (https://www.postgresql.org/docs/current/sql-altersystem.html).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from pglast.parser import ParseError

from dbtune.catalog.settings_health import StatementStats
from dbtune.checks.runner import CheckContext
from dbtune.escape import one_line
from dbtune.migrate.changes import pretty, set_parameter
from dbtune.model import Change, ChangeKind
from dbtune.sqlnames import quote_literal
from dbtune.units import size_pretty
from dbtune.workload.statements import statement_kind

# pg_settings.unit of the memory and size settings, in bytes
# (https://www.postgresql.org/docs/current/view-pg-settings.html).
_UNIT_BYTES = {"B": 1, "kB": 1024, "8kB": 8192, "16kB": 16384, "32kB": 32768, "MB": 1 << 20, "GB": 1 << 30}
_MB = 1 << 20


def setting_bytes(ctx: CheckContext, name: str) -> int | None:
    """The audit session's value of a memory or size setting, in bytes; ``None`` when the setting is
    absent, not a size, or ``-1`` (no limit / derived from another setting)."""
    s = ctx.snapshot.settings.get(name)
    if s is None or s.unit not in _UNIT_BYTES:
        return None
    try:
        value = int(s.setting)
    except ValueError:
        return None
    return None if value < 0 else value * _UNIT_BYTES[s.unit]


def setting_number(ctx: CheckContext, name: str) -> float | None:
    """The audit session's value of a numeric setting (``random_page_cost``, ``checkpoint_completion_target``)."""
    value = ctx.snapshot.setting(name)
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def config_size(size_bytes: int) -> str:
    """``size_bytes`` as a postgresql.conf value, rounded down to whole MB (GB when exact): ``"4GB"``,
    ``"819MB"``; at least ``"1MB"``."""
    mb = max(1, size_bytes // _MB)
    return f"{mb // 1024}GB" if mb % 1024 == 0 else f"{mb}MB"


def machine(ctx: CheckContext, *facts: str) -> dict[str, Any] | None:
    """The ``[server]`` facts a rule needs (``"ram"``, ``"storage"``, ``"workload"`` …), or ``None`` after
    recording a skip that says which are not set and that nothing was assumed for them."""
    server = ctx.config.server
    missing = [f for f in facts if getattr(server, f) is None]
    if missing:
        ctx.skip(f"needs [server] {', '.join(missing)} in the config (SQL cannot see the machine; nothing is "
                 "assumed)")
        return None
    return {f: getattr(server, f) for f in facts}


@dataclass(frozen=True)
class Band:
    """A rule's ``target`` (bytes or a plain number) and the ``low``/``high`` bounds within which a
    setting is left alone."""

    target: float
    low: float
    high: float

    def judge(self, value: float) -> str | None:
        """``"below"``, ``"above"``, or ``None`` within the band."""
        if value < self.low:
            return "below"
        if value > self.high:
            return "above"
        return None


def band(target: float, tolerance: float, *, high: float | None = None) -> Band:
    """The band ``target / tolerance`` … ``target × tolerance`` (or … ``high`` when given)."""
    return Band(target, target / tolerance, target * tolerance if high is None else high)


def ram_text(ram: int) -> str:
    """``ram`` (bytes) as a message says it: ``"16 GB of RAM"``."""
    return f"{size_pretty(ram)} of RAM"


def alter_system(ctx: CheckContext, name: str, value: str, *, server_wide: bool = False) -> Change:
    """The fix that sets ``name`` to ``value`` where its effective value comes from: ``ALTER SYSTEM SET``
    (a server change, shown as a fix, never part of a migration; a reload or, for postmaster settings,
    a restart applies it), or ``ALTER DATABASE … SET`` when the database sets it itself (unless
    ``server_wide``)."""
    _, source = ctx.snapshot.effective(name)
    if source == "database" and not server_wide:
        # Shown like ALTER SYSTEM, never migrated: a setting is the DBA's to change, not a schema step.
        return replace(set_parameter("DATABASE", ctx.snapshot.server.database, name, value), kind=ChangeKind.SERVER)
    return Change(up=pretty(f"ALTER SYSTEM SET {name} = {quote_literal(value)}"),
                  down=pretty(f"ALTER SYSTEM RESET {name}"), transactional=False, kind=ChangeKind.SERVER)


def switched_off(ctx: CheckContext, name: str, *, server_wide: bool = False) -> bool:
    """Whether boolean setting ``name`` is ``off``: the running value (``pg_settings.setting``), or with
    ``server_wide`` the server's own value before role and database settings
    (:meth:`~dbtune.catalog.model.Snapshot.server_level`)."""
    value = ctx.snapshot.server_level(name) if server_wide else ctx.snapshot.setting(name)
    return value is not None and value.strip("'\"").lower() in ("off", "false", "0", "no")


def top_statements(ctx: CheckContext) -> tuple[StatementStats, ...] | None:
    """pg_stat_statements' top statements of this database but utility statements (DDL, ``VACUUM``,
    ``SET`` …), or ``None`` after recording a skip that says
    why (not created in this database, which ``pg-stat-statements-missing`` reports; not readable)."""
    health = ctx.snapshot.settings_health
    if health is None or health.statements is None:
        pgss = ctx.snapshot.pg_stat_statements
        if pgss.installed and not pgss.readable:
            ctx.skip(f"pg_stat_statements cannot be read: {pgss.error}", pgss.privilege or "pg_read_all_stats")
        else:
            ctx.skip("pg_stat_statements is not created in this database (see pg-stat-statements-missing)")
        return None
    return tuple(s for s in health.statements if not _utility(s.query))


@lru_cache(maxsize=16384)
def _utility(text: str) -> bool:
    """Whether a statement is DDL, maintenance or session control (``CREATE``, ``VACUUM``, ``SET`` …),
    which is not a query to tune; a text pglast cannot parse is kept. Remembered (pg_stat_statements keeps
    5,000 statements by default), so the checks that read the top statements parse each text once."""
    try:
        return statement_kind(text) == "other"
    except (ParseError, ValueError):
        return False


def statement_object(stmt: StatementStats, width: int = 100) -> str:
    """A statement's normalised text on one line, cut at ``width`` characters, as a finding's object."""
    text = one_line(" ".join(stmt.query.split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def heaviest(ctx: CheckContext, measure: Callable[[StatementStats], float], minimum: float
             ) -> list[StatementStats]:
    """The top statements (:func:`top_statements`) whose ``measure`` is at least ``minimum``, the
    heaviest first, at most the check's ``top`` option of them; empty (after a skip) without
    pg_stat_statements."""
    statements = top_statements(ctx) or ()
    return sorted((s for s in statements if measure(s) >= minimum), key=lambda s: -measure(s))[: ctx.options["top"]]
