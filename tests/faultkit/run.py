"""Running the real ``dbtune`` entry point in this process, without pytest, for the fault parts and their
tests (issue 9): the exit code, stdout, stderr and the traceback of anything that escaped the CLI's error
boundary."""

from __future__ import annotations

import io
import os
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

from dbtune.cli.app import main


@dataclass(frozen=True)
class Outcome:
    """One run: ``code`` (the exit code; ``None`` when an exception escaped ``main``), ``out``, ``err``,
    and ``escaped`` (the formatted traceback of that exception, else ``""``)."""

    args: tuple[str, ...]
    code: int | None
    out: str
    err: str
    escaped: str = ""

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("error:")]

    @property
    def traceback(self) -> bool:
        """Whether the run ended in an uncaught exception or printed a traceback."""
        return bool(self.escaped) or "Traceback" in self.err + self.out


def _is_ours(key: str) -> bool:
    return key.startswith(("PG", "DBTUNE_")) or key == "DATABASE_URL"


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Outcome:
    """``dbtune ARGS`` through ``dbtune.cli.app:main`` in ``cwd``, with no PG*/DBTUNE_*/DATABASE_URL
    variables but ``env``; the process's environment, working directory and ``sys.argv`` are restored."""
    saved_env = {k: v for k, v in os.environ.items() if _is_ours(k)}
    saved_cwd, saved_argv = os.getcwd(), sys.argv
    out, err = io.StringIO(), io.StringIO()
    code: int | None = None
    escaped = ""
    try:
        for key in saved_env:
            del os.environ[key]
        os.environ.update(env or {})
        os.chdir(cwd)
        sys.argv = ["dbtune", *args]
        with redirect_stdout(out), redirect_stderr(err):
            try:
                main()
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 1
            except Exception:  # what the error boundary let through: the defect a fuzz run looks for
                escaped = traceback.format_exc()
    finally:
        for key in [k for k in os.environ if _is_ours(k)]:
            del os.environ[key]
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
    return Outcome(tuple(args), code, out.getvalue(), err.getvalue(), escaped)
