"""Progress of the long steps on stderr: rich's progress bar (count, rate, elapsed) when stderr is a
terminal, the one-line notes otherwise (a pipe or a CI log reads the same lines as before).

The library reports counts through a :data:`dbtune.progress.Count` callable and notes through a
``progress(message)`` callable; :class:`ProgressDisplay` is both, so commands pass ``display.note`` and
``display.count``. Nothing is drawn with ``--quiet``; ``NO_COLOR`` (any value, even empty) or
``--no-color`` turn every colour and style off. stdout and ``--output`` files are never written to: what a
command prints on stdout while the bars run (the demo's and tune's stages) goes there, the bars cleared
for it first (:meth:`ProgressDisplay.paused`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from dbtune.cli.common import note
from dbtune.escape import one_line


def colour_off(no_color: bool = False) -> bool:
    """Whether colour is off: ``--no-color``, or ``NO_COLOR`` set to anything (https://no-color.org)."""
    return no_color or "NO_COLOR" in os.environ


class ProgressDisplay:
    """Notes and counts of one command on ``stream`` (stderr): a bar per kind of count on a terminal,
    the notes alone elsewhere, nothing at all when ``quiet``."""

    def __init__(self, quiet: bool = False, no_color: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self._tasks: dict[str, TaskID] = {}
        self._bar: Progress | None = None
        if not quiet and self.stream.isatty():
            off = colour_off(no_color)
            console = Console(file=self.stream, force_terminal=True, no_color=off,
                              color_system=None if off else "auto", highlight=False)
            # stdout stays stdout (a report, a stage's result); stray lines on stderr go above the bars.
            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console,
                                 transient=False, redirect_stdout=False)

    @property
    def live(self) -> bool:
        """Whether bars are drawn (stderr is a terminal and not ``--quiet``)."""
        return self._bar is not None

    def note(self, message: str) -> None:
        """A one-line note: above the bars on a terminal, a plain line on stderr otherwise."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(one_line(message), markup=False, highlight=False, soft_wrap=True)
        else:
            note(message)

    def count(self, what: str, done: float, total: float | None) -> None:
        """The bar of ``what`` at ``done`` of ``total`` (a :data:`dbtune.progress.Count`); a count that
        starts again (``done`` below the bar's, the loop's second benchmark) starts its bar again."""
        if self._bar is None:
            return
        if what not in self._tasks:
            self._tasks[what] = self._bar.add_task(what, total=total, rate="")
        task = self._tasks[what]
        if done < self._bar.tasks[task].completed:
            self._bar.reset(task, total=total, completed=int(done))
        self._bar.update(task, completed=done, total=total)
        speed = self._bar.tasks[self._tasks[what]].speed
        self._bar.update(task, rate=f"{speed:,.1f}/s" if speed else "")

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Around a write to stdout or a question on the terminal while the bars run: the bars are cleared
        first and drawn again after it (stdout may be the bars' terminal too: the two would overwrite each
        other's lines)."""
        if self._bar is None or not self._bar.live.is_started:
            yield
            return
        self._bar.live.transient = True
        self._bar.stop()
        try:
            yield
        finally:
            self._bar.live.transient = False
            self._bar.start()

    def __enter__(self) -> ProgressDisplay:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def progress_display(quiet: bool = False, no_color: bool = False) -> Iterator[ProgressDisplay]:
    """A started :class:`ProgressDisplay` on stderr, stopped (its bars left as they ended) on exit."""
    with ProgressDisplay(quiet, no_color) as display:
        yield display
