"""Typed values read from text, with errors that name the file, line and key: integers, durations
(milliseconds) and the builder that turns read values into a :class:`~dbtune.appconfig.model.Pool`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbtune.appconfig.model import Origin, Pool, SessionFeature, Target, Via
from dbtune.config.model import parse_duration_ms
from dbtune.errors import UsageError


def where(origin: Origin) -> str:
    """``file:line: KEY`` for an error message."""
    place = f"{origin.file}:{origin.line}" if origin.line is not None else origin.file
    return f"{place}: {origin.key}" if origin.key else place


def integer(value: str, origin: Origin, *, minimum: int = 0) -> int:
    """``value`` as an integer of at least ``minimum``. Raises :class:`UsageError` naming ``origin``."""
    try:
        number = int(value.strip())
    except ValueError:
        raise UsageError(f"{where(origin)}: expected an integer, got {value.strip()[:40]!r}") from None
    if number < minimum:
        raise UsageError(f"{where(origin)}: must be at least {minimum}, got {number}")
    return number


def duration_ms(value: str, origin: Origin, *, unit_ms: int = 1) -> int:
    """A duration: a bare number in ``unit_ms`` (1 for milliseconds, 1000 for PgBouncer's seconds) or a
    number with a unit (``30s``, ``500ms``, ``2min``). Raises :class:`UsageError` naming ``origin``."""
    text = value.strip()
    try:
        number = float(text) * unit_ms
    except ValueError:
        pass
    else:
        if not math.isfinite(number):
            raise UsageError(f"{where(origin)}: expected a duration such as 30000 or 30s, got {text[:40]!r} "
                             "(not a finite number)")
        return int(round(number))
    try:
        return parse_duration_ms(text)
    except ValueError:
        raise UsageError(f"{where(origin)}: expected a duration such as 30000 or 30s, got {text[:40]!r}") from None


@dataclass
class PoolBuilder:
    """Collects a pool's values as they are read, each with its origin, then builds the frozen
    :class:`Pool`."""

    name: str
    origin: Origin
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, Origin] = field(default_factory=dict)
    features: list[SessionFeature] = field(default_factory=list)

    def set(self, key: str, value: Any, origin: Origin) -> None:
        if value is None:
            return
        self.values[key] = value
        self.origins[key] = origin

    def target(self, target: Target, origin: Origin) -> None:
        self.set("target", target, origin)
        self.set("driver", target.driver, origin)
        if target.user:
            self.set("role", target.user, origin)
        for name, setting in target.session_settings.items():
            self.features.append(SessionFeature("options", f"-c {name}={setting}", origin))

    def via(self, via: Via, reason: str, origin: Origin) -> None:
        self.set("via", via, origin)
        self.set("via_reason", reason, origin)

    @property
    def declared(self) -> bool:
        return bool(self.values)

    def build(self) -> Pool:
        return Pool(name=self.name, origin=self.origin, session_features=tuple(self.features),
                    origins=dict(self.origins), **self.values)


def read_source(path: Path, shown: str) -> str:
    """The text of an application config file (UTF-8). Raises :class:`UsageError` naming ``shown`` when it
    is missing, a directory, unreadable or not UTF-8."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{shown}: not found") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a directory; name the files") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{shown}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {exc.strerror or exc}") from None
