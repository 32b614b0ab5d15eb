"""The examples of issue 11, item 6: the GitHub Actions workflow in ``sample_configs/`` parses and every
``dbtune …`` command line in it is accepted by dbtune's own parser; the pre-commit hook's entry, run for
real, exits 1 on an unsafe migration and 0 on a safe one."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from cli_runner import _clean_env
from typer.main import get_command

from dbtune.cli.app import app

ROOT = Path(__file__).parent.parent
WORKFLOW = ROOT / "sample_configs" / "github-actions.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"


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
            group, args = group.commands[args[0]], args[1:]  # type: ignore[attr-defined]
        group.make_context(group.name, list(args), resilient_parsing=False)


def test_pre_commit_hook_entry_exits_1_on_an_unsafe_migration_and_0_on_a_safe_one(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load(HOOKS.read_text())
    assert hook["id"] == "dbtune-migrate-lint" and hook["language"] == "python"
    bad = tmp_path / "migrations" / "0001_bad.sql"
    good = tmp_path / "migrations" / "0002_good.sql"
    bad.parent.mkdir()
    bad.write_text("CREATE INDEX orders_customer ON orders (customer_id);\n")
    good.write_text("SET lock_timeout = '5s';\nSET statement_timeout = '5min';\nANALYZE orders;\n")
    assert re.search(hook["files"], "migrations/0001_bad.sql")
    venv_bin = Path(sys.executable).parent
    entry = shlex.split(hook["entry"])
    codes = {}
    for path in (bad, good):
        result = subprocess.run([str(venv_bin / entry[0]), *entry[1:], str(path.relative_to(tmp_path))],
                                cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=60)
        codes[path.name] = result.returncode
    assert codes == {"0001_bad.sql": 1, "0002_good.sql": 0}
