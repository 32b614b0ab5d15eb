"""Sizes for people: the one helper every text output uses (JSON keeps bytes).

Follows PostgreSQL's ``pg_size_pretty`` (src/backend/utils/adt/dbsize.c,
https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-DBSIZE): bytes below 10 kB,
then kB, MB, GB, TB, PB, each used below 20,480 of it and rounded half away from zero, so dbtune prints
what ``SELECT pg_size_pretty(n)`` prints for the same ``n``.
"""

from __future__ import annotations

import re

# (unit, limit in this unit's own steps, rounded half-up, bits of the unit)
_UNITS = (("bytes", 10 * 1024, False, 0), ("kB", 20 * 1024 - 1, True, 10), ("MB", 20 * 1024 - 1, True, 20),
          ("GB", 20 * 1024 - 1, True, 30), ("TB", 20 * 1024 - 1, True, 40), ("PB", 20 * 1024 - 1, True, 50))


def _c_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as C's ``/``."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def size_pretty(size_bytes: int) -> str:
    """``size_bytes`` as ``pg_size_pretty`` shows it: ``8192 bytes``, ``16 kB``, ``120 MB``."""
    size = int(size_bytes)
    for i, (name, limit, rounded, bits) in enumerate(_UNITS):
        last = i == len(_UNITS) - 1
        if last or abs(size) < limit:
            if rounded:
                size = _c_div(size + (-1 if size < 0 else 1), 2)
            return f"{size} {name}"
        next_bits, next_rounded = _UNITS[i + 1][3], _UNITS[i + 1][2]
        shift = next_bits - bits - int(next_rounded) + int(rounded)
        size = _c_div(size, 1 << shift)
    raise AssertionError("unreachable")


def kb_pretty(size_kb: int) -> str:
    """A size EXPLAIN reports in kB (``Sort Space Used``, ``Peak Memory Usage``) as :func:`size_pretty`."""
    return size_pretty(int(size_kb) * 1024)


# PostgreSQL's memory units (postgresql.conf: https://www.postgresql.org/docs/current/config-setting.html),
# multiples of 1024, and ``B`` for bytes; case-insensitive here, as people type ``200mb``.
_SIZE_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*")


def parse_size(text: str) -> int:
    """``200MB``, ``1.5GB``, ``8192B``, ``64kB`` as bytes (units as in postgresql.conf, 1024-based,
    case-insensitive). Raises ValueError, saying what is accepted, for anything else (a bare number, a
    negative size, an unknown unit)."""
    m = _SIZE.fullmatch(text)
    unit = _SIZE_UNITS.get(m.group(2).lower()) if m else None
    if m is None or unit is None:
        raise ValueError(f"{text!r} is not a size: give a number and one of B, kB, MB, GB, TB (such as 200MB)")
    return int(float(m.group(1)) * unit)
