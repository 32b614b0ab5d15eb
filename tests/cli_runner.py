"""Running the ``dbtune`` console entry point in tests, and checking its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from dbtune.cli.app import main


@dataclass
class Run:
    code: int
    out: str
    err: str


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PG", "DBTUNE_")) and k != "DATABASE_URL"}


def run_subprocess(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
    """``python -m dbtune ARGS`` in ``cwd``, with no PG*/DBTUNE_*/DATABASE_URL variables but ``env``."""
    result = subprocess.run([sys.executable, "-m", "dbtune", *args], capture_output=True, text=True, cwd=cwd,
                            env={**_clean_env(), **(env or {})}, timeout=60)
    return Run(result.returncode, result.stdout, result.stderr)


CLI = Callable[..., Run]


def make_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> CLI:
    """Run the console entry point (``dbtune.cli.app:main``, error boundary included) in this process, in
    ``cwd`` (default: an empty temporary folder, so no config is found), with no PG*/DBTUNE_*/DATABASE_URL
    variables but ``env``; its exit code, stdout and stderr. ``process=True`` runs ``python -m dbtune``."""

    def run(*args: str, cwd: Path = tmp_path, env: dict[str, str] | None = None,
            process: bool = False) -> Run:
        if process:
            return run_subprocess(*args, cwd=cwd, env=env)
        with monkeypatch.context() as m:
            for key in set(os.environ) - set(_clean_env()):
                m.delenv(key)
            for key, value in (env or {}).items():
                m.setenv(key, value)
            m.chdir(cwd)
            m.setattr(sys, "argv", ["dbtune", *args])
            capsys.readouterr()
            with pytest.raises(SystemExit) as stopped:
                main()
            out, err = capsys.readouterr()
        code = stopped.value.code
        assert isinstance(code, int)
        return Run(code, out, err)

    return run


def assert_error(run: Run, code: int, *culprits: str, secrets: tuple[str, ...] = ()) -> str:
    """Exactly one ``error:`` line naming every culprit, exit ``code``, nothing on stdout, no secret."""
    assert run.code == code, run
    assert "Traceback" not in run.err, run.err
    lines = run.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])
    assert run.out == ""
    for secret in secrets:
        assert secret not in run.out + run.err
    return lines[0]
