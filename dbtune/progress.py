"""How the library reports the progress of a long step without drawing it: a :data:`Count` callable
that receives what is counted, how many are done and how many there are in all. The CLI draws it as a
progress bar on a terminal (:mod:`dbtune.cli.progress`); the library never imports a display."""

from __future__ import annotations

from collections.abc import Callable

# (what is counted, e.g. "statements run"; done so far; total, or None when not known beforehand)
Count = Callable[[str, float, float | None], None]


def no_count(what: str, done: float, total: float | None) -> None:
    """The :data:`Count` that ignores every count (the default of the library's functions)."""
