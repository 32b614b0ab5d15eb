"""The examples of issue 11, item 6: the GitHub Actions workflow in ``sample_configs/`` parses and every
``dbtune …`` command line in it is accepted by dbtune's own parser; the pre-commit hooks' entries (the
repository's ``.pre-commit-hooks.yaml`` and the ``repo: local`` sample), run for real, exit 1 on an
unsafe migration and 0 on a safe one, and pre-commit itself runs the local sample offline."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_runner import _clean_env
from typer.main import get_command

from dbtune.cli.app import app

ROOT = Path(__file__).parent.parent
WORKFLOW = ROOT / "sample_configs" / "github-actions.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
LOCAL_HOOKS = ROOT / "sample_configs" / "pre-commit-config.yaml"
BAD = "CREATE INDEX orders_customer ON orders (customer_id);\n"
GOOD = "SET lock_timeout = '5s';\nSET statement_timeout = '5min';\nANALYZE orders;\n"


def dbtune_lines() -> list[list[str]]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    lines = []
    for job in workflow["jobs"].values():
        for step in job["steps"]:
            for line in step.get("run", "").splitlines():
                line = line.strip()
                if line.startswith("dbtune "):
                    lines.append(shlex.split(line.replace("$changed", "migrations/0001.sql"))[1:])
    return lines


def test_workflow_runs_audit_as_sarif_against_a_service_and_lints_changed_migrations() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    audit = workflow["jobs"]["audit"]
    assert audit["services"]["postgres"]["image"] == "postgres:16"
    assert "--health-cmd" in audit["services"]["postgres"]["options"]
    assert any(s.get("uses", "").startswith("github/codeql-action/upload-sarif") for s in audit["steps"])
    commands = dbtune_lines()
    assert ["audit", "--format", "sarif", "--output", "dbtune.sarif", "--fail-on", "error"] in commands
    assert ["migrate", "lint", "--format", "github", "migrations/0001.sql"] in commands
    assert "git diff --name-only" in workflow["jobs"]["lint"]["steps"][-1]["run"]


def test_every_dbtune_line_of_the_workflow_parses_with_dbtune_s_cli() -> None:
    command = get_command(app)
    for args in dbtune_lines():
        # make_context parses the options (an unknown one or a bad --format raises) without running.
        group = command
        while hasattr(group, "commands") and args and args[0] in group.commands:  # type: ignore[attr-defined]
            # get_command imports a command the root group holds by name only (dbtune.cli.app.LazyGroup)
            group, args = group.get_command(None, args[0]), args[1:]  # type: ignore[attr-defined]
        group.make_context(group.name, list(args), resilient_parsing=False)


def hook_env() -> dict[str, str]:
    """The environment a hook runs in: this venv's ``dbtune`` first on PATH, as where it is installed."""
    env = _clean_env()
    return {**env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])}


@pytest.fixture
def migrations(tmp_path: Path) -> dict[str, Path]:
    """An unsafe and a safe migration under ``migrations/versions/`` of ``tmp_path``."""
    folder = tmp_path / "migrations" / "versions"
    folder.mkdir(parents=True)
    (folder / "0001_bad.sql").write_text(BAD)
    (folder / "0002_good.sql").write_text(GOOD)
    return {"bad": folder / "0001_bad.sql", "good": folder / "0002_good.sql"}


def test_pre_commit_hook_entry_exits_1_on_an_unsafe_migration_and_0_on_a_safe_one(
        migrations: dict[str, Path], tmp_path: Path) -> None:
    (hook,) = yaml.safe_load(HOOKS.read_text())
    assert hook["id"] == "dbtune-migrate-lint" and hook["language"] == "python"
    entry = shlex.split(hook["entry"])
    codes = {}
    for name, path in migrations.items():
        relative = path.relative_to(tmp_path).as_posix()
        assert re.search(hook["files"], relative)
        result = subprocess.run([*entry, relative], cwd=tmp_path, env=hook_env(), capture_output=True, text=True,
                                timeout=60)
        codes[name] = result.returncode
    assert codes == {"bad": 1, "good": 0}
    subprocess.run([sys.executable, "-m", "pre_commit", "validate-manifest", str(HOOKS)], check=True, timeout=60)


def test_pre_commit_runs_the_local_hook_offline(migrations: dict[str, Path], tmp_path: Path) -> None:
    """The ``repo: local`` sample (``language: system``: the ``dbtune`` on PATH) as a repository's
    ``.pre-commit-config.yaml``, run by ``pre-commit run --files`` with every proxy pointing nowhere
    (nothing is fetched): its entry fails on the unsafe migration and passes the safe one; Alembic's env.py
    is no migration, outside its ``files``."""
    ((hook,),) = [r["hooks"] for r in yaml.safe_load(LOCAL_HOOKS.read_text())["repos"] if r["repo"] == "local"]
    assert (hook["id"], hook["language"], hook["entry"]) == ("dbtune-migrate-lint", "system", "dbtune migrate lint")
    assert not re.search(hook["files"], "migrations/env.py")
    (tmp_path / ".pre-commit-config.yaml").write_text(LOCAL_HOOKS.read_text())
    nowhere = "http://127.0.0.1:9"
    env = {**hook_env(), "PRE_COMMIT_HOME": str(tmp_path / ".cache"), "HTTP_PROXY": nowhere, "HTTPS_PROXY": nowhere,
           "http_proxy": nowhere, "https_proxy": nowhere, "PIP_NO_INDEX": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, env=env, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, env=env, check=True)
    runs = {}
    for name, path in migrations.items():
        result = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--files", str(path.relative_to(tmp_path))],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        runs[name] = (result.returncode, re.findall(r"^dbtune migrate lint\.+(\w+)$", result.stdout, re.M))
    assert runs == {"bad": (1, ["Failed"]), "good": (0, ["Passed"])}, runs
