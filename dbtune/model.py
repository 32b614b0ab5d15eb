"""The core types shared by every layer: :class:`Severity`, :class:`Change` and :class:`Finding`, and the
:class:`CommandReport` protocol that every command's report satisfies.

See ../shared/DESIGN.md, "The core types".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

# The version of the keys every report's JSON form shares (report_header); each command's own keys keep theirs.
REPORT_VERSION = 1


class Severity(StrEnum):
    """How bad a finding is. Ordered: ``error`` > ``warning`` > ``info``."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


class Lock(StrEnum):
    """The table lock a change takes (https://www.postgresql.org/docs/current/explicit-locking.html)."""

    NONE = "none"
    SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
    SHARE = "SHARE"
    SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
    ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"


class ChangeKind(StrEnum):
    """What a change does; ``dbtune migrate`` decides by kind which changes become migration steps."""

    CREATE_INDEX = "create_index"
    DROP_INDEX = "drop_index"
    REBUILD_INDEX = "rebuild_index"
    ATTACH_INDEX = "attach_index"
    ADD_CONSTRAINT = "add_constraint"
    VALIDATE_CONSTRAINT = "validate_constraint"
    SET_PARAMETER = "set_parameter"
    SERVER = "server"  # ALTER SYSTEM, CREATE EXTENSION: not a schema migration
    OTHER = "other"


@dataclass(frozen=True)
class Change:
    """One schema or settings change: SQL up and down, whether it may run in a transaction, the lock it
    takes, the relation it touches (schema-qualified, quoted) and that relation's size in bytes, as an
    estimate of its duration. ``index`` names the index a change creates, drops or attaches (qualified),
    ``constraint`` the constraint it adds (bare name)."""

    up: str
    down: str | None = None
    transactional: bool = True
    lock: Lock = Lock.NONE
    relation_bytes: int | None = None
    kind: ChangeKind = ChangeKind.OTHER
    table: str | None = None
    index: str | None = None
    constraint: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form in a report's ``fix.changes``; read back, as untrusted input, by
        :mod:`dbtune.migrate.report_input`."""
        return {"kind": self.kind.value, "up": self.up, "down": self.down, "transactional": self.transactional,
                "lock": self.lock.value, "table": self.table, "index": self.index, "constraint": self.constraint,
                "relation_bytes": self.relation_bytes}


@dataclass(frozen=True)
class Finding:
    """One problem found by a check.

    ``object`` is schema-qualified and quoted as PostgreSQL would (``public."Order"``); ``evidence`` holds
    the numbers that justify the finding (JSON-serialisable values with their units in the key, such as
    ``size_bytes`` or ``stats_age_days``); ``changes`` fix it, in order.
    """

    check_id: str
    check_name: str
    severity: Severity
    object: str
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()

    @property
    def fix_sql(self) -> list[str]:
        return [c.up for c in self.changes]


@runtime_checkable
class CommandReport(Protocol):
    """What every command's report is, whatever else it holds (an audit's :class:`Report`, the lint's
    ``LintResult``, the advisor's ``Advice``, ``explain``'s ``ExplainReport``, the bench ``Comparison`` and
    ``BenchResult``, the probes' results, the loop's ``LoopResult``): the ``command`` that produced it
    (``"audit"``, ``"migrate lint"`` …, as typed after ``dbtune``) and its JSON form, a dict with
    ``report_version`` (:data:`REPORT_VERSION`) and ``command`` beside the command's own keys.
    :func:`dbtune.report.render.render` picks its renderer by its type."""

    @property
    def command(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...


def report_header(report: CommandReport) -> dict[str, Any]:
    """The keys every report's JSON form starts with: ``{"report_version": 1, "command": …}``."""
    return {"report_version": REPORT_VERSION, "command": report.command}
