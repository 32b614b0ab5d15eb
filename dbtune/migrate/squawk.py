"""Run squawk (https://squawkhq.com, pip ``squawk-cli``), the second migration linter, and read its JSON.

``squawk --reporter json FILE…`` prints one JSON list of violations, each with ``file``, a **0-based**
``line`` and ``column``, ``level`` (``Warning``/``Error``), ``message``, ``help`` and ``rule_name``. It
exits 0 when it found only warnings and 1 when it found errors; anything else, or output that is not
that list, is a failure (:class:`SquawkFailed`), which the linter reports instead of squawk's findings.
squawk reads its own ``.squawk.toml`` from the working directory, so its rule selection is the user's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dbtune.model import Severity

TIMEOUT_S = 120
_LEVELS = {"error": Severity.ERROR, "warning": Severity.WARNING}


class SquawkFailed(Exception):
    """squawk ran but did not give a usable answer; ``str()`` says why, in one line."""


@dataclass(frozen=True)
class SquawkViolation:
    """One squawk finding; ``line`` and ``column`` are 1-based lines of ``path`` (as squawk read it)."""

    path: Path
    line: int
    column: int
    rule: str
    severity: Severity
    message: str
    help: str | None = None


def _script_dirs() -> list[str]:
    """Where pip put the console scripts of this interpreter's packages (the venv's ``bin``, the user
    scheme's), so the ``squawk`` installed with dbtune is found even when that folder is not on PATH."""
    dirs = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    try:
        dirs.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        pass
    return list(dict.fromkeys(d for d in dirs if d))


def find_squawk() -> str | None:
    """The ``squawk`` executable on PATH, else the one installed with dbtune (pip ``squawk-cli``, a
    dependency) beside this interpreter, else ``None``."""
    return shutil.which("squawk", path=os.pathsep.join([os.environ.get("PATH", ""), *_script_dirs()]))


def squawk_version(executable: str) -> str | None:
    """``2.70.0`` from ``squawk --version``, or ``None`` if it does not answer."""
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    words = out.split()
    return words[-1] if words else None


def run_squawk(executable: str, paths: Sequence[Path]) -> list[SquawkViolation]:
    """squawk's violations for ``paths`` (absolute paths). Raises :class:`SquawkFailed`."""
    if not paths:
        return []
    by_name = {str(p): p for p in paths} | {str(p.resolve()): p for p in paths}
    try:
        proc = subprocess.run([executable, "--reporter", "json", *map(str, paths)], capture_output=True,
                              text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SquawkFailed(f"squawk did not finish within {TIMEOUT_S} s") from None
    except OSError as exc:
        raise SquawkFailed(f"squawk could not be started: {exc.strerror or exc}") from None
    stderr = " ".join(proc.stderr.split())[:300]
    if proc.returncode not in (0, 1):
        raise SquawkFailed(f"squawk exited with {proc.returncode}" + (f": {stderr}" if stderr else ""))
    try:
        data = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise SquawkFailed("squawk's output is not JSON" + (f": {stderr}" if stderr else "")) from None
    if not isinstance(data, list):
        raise SquawkFailed("squawk's JSON output is not a list of violations")
    out = []
    for item in data:
        try:
            name = str(item["file"])
            path = by_name.get(name) or by_name.get(str(Path(name).resolve()), Path(name))
            out.append(SquawkViolation(
                path=path, line=int(item["line"]) + 1, column=int(item.get("column") or 0) + 1,
                rule=str(item["rule_name"]), severity=_LEVELS.get(str(item.get("level", "")).lower(),
                                                                  Severity.WARNING),
                message=" ".join(str(item.get("message", "")).split()), help=item.get("help") or None))
        except (KeyError, TypeError, ValueError):
            raise SquawkFailed(f"squawk's JSON output has an entry dbtune cannot read: {item!r}"[:300]) from None
    return out
