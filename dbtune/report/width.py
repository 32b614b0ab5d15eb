"""The width a text report is laid out for, and the two tools that keep it there: tables whose widest
columns wrap until the table fits (:func:`fit_table`, over tabulate's ``maxcolwidths``) and prose or SQL
lines broken at a space outside quotes (:func:`fit_lines`).

The width is the terminal's when stdout is one (``COLUMNS`` first, as :func:`shutil.get_terminal_size`
reads it), never under :data:`MIN_WIDTH`; :data:`WIDTH` (120) when stdout is a file, a pipe or a CI log.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

WIDTH = 120  # when stdout is not a terminal (a file, a CI log)
MIN_WIDTH = 80  # narrower terminals get 80 columns and scroll
MIN_COLUMN = 6  # a wrapped column never gets narrower than this


def line_width(otherwise: int = WIDTH) -> int:
    """Columns for a text report: the terminal's (at least 80) when stdout is a terminal, else
    ``otherwise`` (120, or the width a renderer has always laid its report out for: advise's 100)."""
    if not sys.stdout.isatty():
        return otherwise
    return max(MIN_WIDTH, shutil.get_terminal_size((WIDTH, 24)).columns)


def _widest(text: str) -> int:
    return max((len(line) for line in text.splitlines()), default=0)


def fit_table(rows: Sequence[Sequence[Any]], headers: Sequence[str], width: int,
              maxcolwidths: Sequence[int | None] | None = None, wrap: Sequence[int] | None = None,
              disable_numparse: bool = False) -> str:
    """``tabulate(rows, headers, tablefmt="simple")`` no wider than ``width`` columns where it can be: the
    widest of the ``wrap`` columns (default: every column) is narrowed, its cells wrapped, until the
    table fits or every wrapped column is down to :data:`MIN_COLUMN` characters, when stdout is a
    terminal (elsewhere the table as ``maxcolwidths`` lays it out). ``maxcolwidths`` are the starting
    limits (``None``: none); ``disable_numparse`` as tabulate's (figures already formatted, left-aligned)."""
    limits: list[int | None] = list(maxcolwidths or [None] * len(headers))
    limits += [None] * (len(headers) - len(limits))
    wrappable = list(wrap) if wrap is not None else list(range(len(headers)))

    def render() -> str:
        return tabulate(rows, headers=list(headers), maxcolwidths=limits, maxheadercolwidths=limits,
                        tablefmt="simple", disable_numparse=disable_numparse)

    table = render()
    if not sys.stdout.isatty():  # a file, a pipe, a CI log: the tables as they always were
        return table
    if rows and _widest(table) > width:
        _share(limits, _spans(table), wrappable, width)
        table = render()
    while rows and _widest(table) > width:  # a cell wrapped wider than its share (a header, a long word)
        spans = _spans(table)
        candidates = [i for i in wrappable if i < len(spans) and spans[i] > MIN_COLUMN]
        if not candidates:
            break
        i = max(candidates, key=lambda c: spans[c])
        limit = max(MIN_COLUMN, spans[i] - (_widest(table) - width))
        if limits[i] == limit:  # tabulate cannot make it narrower (a long word, a header): leave it
            wrappable.remove(i)
            continue
        limits[i] = limit
        table = render()
    return table


def _spans(table: str) -> list[int]:
    """The columns' rendered widths, read from the rule under the header (``---  -----  ---``)."""
    rule = next(line for line in table.splitlines() if line and set(line) <= {"-", " "})
    return [len(part) for part in rule.split("  ") if part]


def _share(limits: list[int | None], spans: list[int], wrappable: list[int], width: int) -> None:
    """Set ``limits`` of the ``wrappable`` columns so that the table's columns (``spans`` wide now) fit
    ``width``: the columns narrower than their share keep their width, the others share what is left in
    proportion to their widths (a long message keeps more room than a long name)."""
    wrap = [i for i in wrappable if i < len(spans)]
    room = width - sum(w for i, w in enumerate(spans) if i not in wrap) - 2 * (len(spans) - 1)
    while wrap:
        total = sum(spans[i] for i in wrap)
        keep = [i for i in wrap if spans[i] <= room * spans[i] // total]
        if not keep:
            break
        room -= sum(spans[i] for i in keep)
        wrap = [i for i in wrap if i not in keep]
    total = sum(spans[i] for i in wrap)
    for i in wrap:
        limits[i] = max(MIN_COLUMN, room * spans[i] // total)


def _break_points(line: str, at: str = " ") -> list[int]:
    """The positions of the spaces of ``line`` outside '…' and "…" (where SQL may be broken); with
    ``at="/"``, the positions just after its slashes outside quotes instead (where a path or a socket
    directory may be broken)."""
    points, quote = [], ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (i == 0 or not line[i - 1].isalnum()):  # not the apostrophe of "machine's"
            quote = ch
        elif ch == at:
            points.append(i + (at != " "))
    return points


def wrap_line(line: str, width: int) -> list[str]:
    """``line`` broken at spaces outside quotes into lines of at most ``width`` characters where a space
    allows; the continuations indented two more than ``line``, and a ``-- `` comment's kept a comment (a
    comment with no space to break at, a long path, is cut at ``width``). A word longer than the room left
    (a target such as ``postgres@/long/socket/directory:5432/db``) is broken just after one of its slashes
    outside quotes, where it has one that fits."""
    if len(line) <= width:
        return [line]
    indent = line[:len(line) - len(line.lstrip(" "))]
    prefix = indent + ("-- " if line.lstrip(" ").startswith("-- ") else "  ")
    out: list[str] = []
    rest = line
    while len(rest) > width:
        points = [p for p in _break_points(rest) if len(prefix) < p <= width]
        if not points and prefix.endswith("-- "):  # a comment (a long path) may break anywhere
            points = [width]
        if not points:
            points = [p for p in _break_points(rest, "/") if len(prefix) < p <= width]
        if not points:
            points = [p for p in _break_points(rest) if p > len(prefix)][:1]
            if not points:
                break
        cut = points[-1]
        out.append(rest[:cut].rstrip())
        rest = prefix + rest[cut:].lstrip(" ")
    out.append(rest)
    return out


def fit_lines(lines: Sequence[str], width: int) -> list[str]:
    """Every line of ``lines`` (each may hold several) wrapped by :func:`wrap_line` to ``width`` when
    stdout is a terminal; elsewhere (a file, a pipe, a CI log) long lines stay whole, as before."""
    if not sys.stdout.isatty():
        return [physical for line in lines for physical in line.split("\n")]
    return [part for line in lines for physical in line.split("\n") for part in wrap_line(physical, width)]
