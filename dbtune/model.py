"""The core types shared by every layer: :class:`Severity`, :class:`Change` and :class:`Finding`.

See ../shared/DESIGN.md, "The core types".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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


@dataclass(frozen=True)
class Change:
    """One schema or settings change: SQL up and down, whether it may run in a transaction, the lock it
    takes, and the size (bytes) of the relation it touches, as an estimate of its duration."""

    up: str
    down: str | None = None
    transactional: bool = True
    lock: Lock = Lock.NONE
    relation_bytes: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"up": self.up, "down": self.down, "transactional": self.transactional,
                "lock": self.lock.value, "relation_bytes": self.relation_bytes}


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
