"""The parts of ``benchmarks/faults.py``: one module per fault, each with ``run(args) -> list[Figure]``
and optionally ``add_arguments(parser)`` (option names prefixed by the part, e.g. ``--kill-trials``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure: ``part`` (the module's name), ``name`` ("INVALID indexes left"), ``value``
    (a number, or text), ``unit`` ("ms", "" for counts), ``target`` in words ("0", "< lock_timeout
    2000 ms") and whether it was ``met``."""

    part: str
    name: str
    value: float | int | str
    unit: str
    target: str
    met: bool
