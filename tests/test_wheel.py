"""The wheel is complete: built from the working tree, installed into a fresh virtual environment outside
the repository, it runs ``dbtune checks list`` from its own files and carries every module of the package
(the ``packages`` list of pyproject.toml is explicit, so a new subpackage must be added there), the check
catalogue and the samples (configs and the guide's SQL).

The venv sees the site-packages of the interpreter running the suite (a ``.pth`` file lists them), so
dbtune's dependencies need no download and are the ones the suite itself runs with, whether that
interpreter is a virtual environment's or the system's. (``--system-site-packages`` would not do: a venv
made from a venv's Python sees the base interpreter, not the dependencies installed in the outer venv.)
dbtune itself must come from the new venv, which the test checks (``dbtune.__file__`` and the data folders).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import site
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Where the top-level folders are shipped ([tool.setuptools] package-dir in pyproject.toml).
SHIPPED = {"dbtune": "dbtune", "checks": "dbtune/catalogue", "sample_configs": "dbtune/sample_configs"}
CHECK_IDS = {"CN001", "CN002", "CN003", "IX001", "IX002", "IX003", "IX004", "IX005", "IX006", "IX007",
             "PO001", "ST001", "ST002", "ST003"}


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PG", "DBTUNE_", "PYTHON")) and k not in ("DATABASE_URL", "VIRTUAL_ENV")}
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
                            timeout=300)
    assert result.returncode == 0, f"{args}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``python -m build --wheel`` of a copy of the working tree (so no build/ or egg-info lands in the
    repository), with the installed setuptools (no download)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "__pycache__", "build", "dist", "*.egg-info", ".*_cache", ".venv", "tests", "benchmarks"))
    # --skip-dependency-check: setuptools has built wheels itself since 70.1; the `wheel` package that
    # [build-system] still lists is not needed and need not be installed.
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
        "--outdir", root / "dist", src, cwd=root)
    [built] = (root / "dist").glob("dbtune-*.whl")
    return built


def suite_site_packages() -> list[str]:
    """The site-packages folders of the interpreter running the suite: where dbtune's dependencies are."""
    folders = site.getsitepackages()
    if site.ENABLE_USER_SITE:
        folders.append(site.getusersitepackages())
    return [f for f in folders if Path(f).is_dir()]


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv outside the repository with the wheel installed (``--no-deps``); a ``.pth`` file in
    its site-packages appends the suite's own site-packages folders, after the venv's, to its path.

    The folders are plain path entries, so the ``.pth`` files inside them (the suite's editable install of
    dbtune among them) are not run, and the venv's own dbtune comes first.
    """
    where = tmp_path_factory.mktemp("venv") / "env"
    assert not where.resolve().is_relative_to(REPO)
    run(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent)
    python = where / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=where.parent)
    (Path(purelib.stdout.strip()) / "dbtune-test-suite-deps.pth").write_text(
        "".join(f"{folder}\n" for folder in suite_site_packages()))
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
        "--no-index", "--disable-pip-version-check", "-q", wheel, cwd=where.parent)
    yield where


def shipped_files(folder: str) -> set[str]:
    """The files of a top-level folder that the wheel must carry (everything but caches)."""
    base = REPO / folder
    return {p.relative_to(base).as_posix() for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.mark.parametrize("folder", SHIPPED)
def test_wheel_carries_every_file(wheel: Path, folder: str) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    prefix = SHIPPED[folder] + "/"
    missing = shipped_files(folder) - {n.removeprefix(prefix) for n in names if n.startswith(prefix)}
    assert not missing, (f"{folder}/ files not in the wheel: {sorted(missing)}; list the package in "
                         "[tool.setuptools] packages / package-data of pyproject.toml")


def test_wheel_carries_the_guide_sql(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for sql in ("schema.sql", "data.sql", "workload.sql"):
        assert f"dbtune/sample_configs/guide/{sql}" in names


def test_installed_dbtune_runs_from_the_venv(venv: Path, tmp_path: Path) -> None:
    probe = ("import json, dbtune, dbtune.samples as s, dbtune.checks.registry as r;"
             "print(json.dumps({'dbtune': dbtune.__file__, 'samples': str(s.samples_dir()),"
             " 'schema': str(s.guide_file('schema.sql')), 'catalogue': str(r.builtin_dir())}))")
    paths = json.loads(run(venv / "bin" / "python", "-c", probe, cwd=tmp_path).stdout)
    site = (venv / "lib").resolve()
    for name, path in paths.items():
        assert Path(path).resolve().is_relative_to(site), (name, path)
    assert Path(paths["schema"]).is_file()
    assert "CREATE TABLE vendor_routing_responses" in Path(paths["schema"]).read_text()


def test_installed_dbtune_lists_all_checks(venv: Path, tmp_path: Path) -> None:
    out = run(venv / "bin" / "dbtune", "checks", "list", cwd=tmp_path).stdout
    assert {line.split()[0] for line in out.splitlines() if line[:5] in CHECK_IDS} == CHECK_IDS
    shown = run(venv / "bin" / "dbtune", "checks", "show", "ST001", cwd=tmp_path).stdout
    assert shown.startswith("ST001 pg-stat-statements-missing\n") and "## References" in shown
    version = run(venv / "bin" / "dbtune", "--version", cwd=tmp_path).stdout
    assert version.startswith("dbtune ")


def test_venv_uses_the_suites_dependencies(venv: Path, tmp_path: Path) -> None:
    """Each of dbtune's requirements resolves, in the venv, to the distribution the suite runs with
    (not to a base interpreter's copy, or to none)."""
    probe = ("import json, importlib.metadata as m, re;"
             "names = [re.match(r'[A-Za-z0-9._-]+', r).group(0) for r in m.requires('dbtune') if 'extra ==' not in r];"
             "print(json.dumps({n: str(m.distribution(n).locate_file('')) for n in names}))")
    seen = json.loads(run(venv / "bin" / "python", "-c", probe, cwd=tmp_path).stdout)
    assert {"psycopg", "pglast", "sqlglot", "alembic", "typer"} <= set(seen)
    here = {name: str(importlib.metadata.distribution(name).locate_file("")) for name in seen}
    assert seen == here
