"""A migrations directory: an Alembic environment that dbtune creates, writes revisions into, reads the
status of, and applies from. See https://alembic.sqlalchemy.org/en/latest/api/."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbtune.db.connect import ConnectionSettings
from dbtune.errors import DbtuneError, UsageError
from dbtune.escape import printable
from dbtune.migrate.plan import MigrationPlan
from dbtune.migrate.render import render_alembic, render_sql

TEMPLATES = Path(__file__).resolve().parent / "templates"
ENV_FILES = ("env.py", "script.py.mako")


def ensure_environment(directory: Path) -> bool:
    """Create an Alembic environment in ``directory`` if there is none; return True when created.

    Raises :class:`UsageError` when ``directory`` holds files but is not an Alembic environment.
    """
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--dir {directory}: not a directory")
    if directory.is_dir() and any(directory.iterdir()):
        missing = [name for name in ENV_FILES if not (directory / name).is_file()]
        if missing:
            raise UsageError(f"--dir {directory}: not an Alembic environment (no {', '.join(missing)})")
        (directory / "versions").mkdir(exist_ok=True)
        return False
    directory.mkdir(parents=True, exist_ok=True)
    for name in ENV_FILES:
        shutil.copyfile(TEMPLATES / name, directory / name)
    (directory / "versions").mkdir(exist_ok=True)
    return True


def alembic_config(directory: Path, settings: ConnectionSettings | None = None, **attributes: Any) -> Any:
    """An Alembic ``Config`` for ``directory`` carrying dbtune's settings in ``attributes``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(directory))
    if settings is not None:
        cfg.attributes["dbtune_settings"] = settings
    cfg.attributes.update(attributes)
    return cfg


def script_directory(directory: Path) -> Any:
    """Alembic's view of the revisions; a revision that cannot be loaded is a :class:`UsageError`."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    if not all((directory / name).is_file() for name in ENV_FILES):
        raise UsageError(f"--dir {directory}: not an Alembic environment (run `dbtune migrate generate` first)")
    try:
        script = ScriptDirectory.from_config(alembic_config(directory))
        list(script.walk_revisions())
    except SyntaxError as exc:
        raise UsageError(f"{exc.filename}:{exc.lineno}: revision file has a syntax error: {exc.msg}") from None
    except CommandError as exc:
        raise UsageError(f"--dir {directory}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a revision module that fails to import
        raise UsageError(f"--dir {directory}: a revision cannot be loaded: {type(exc).__name__}: {exc}") from None
    return script


SLUG_LENGTH = 60


def slug(message: str) -> str:
    """The file-name part of a migration's title: its words in lower case joined by ``_``, cut after the
    last whole word that fits in :data:`SLUG_LENGTH` characters (a first word longer than that is cut)."""
    words = re.findall(r"[a-z0-9]+", message.lower())
    out = ""
    for word in words:
        joined = f"{out}_{word}" if out else word
        if len(joined) > SLUG_LENGTH:
            return out or word[:SLUG_LENGTH]
        out = joined
    return out


def file_stem(revision: str, message: str) -> str:
    """``<revision>_<slug of message>``, or the revision alone when the message has no word."""
    words = slug(message)
    return f"{revision}_{words}" if words else revision


@dataclass(frozen=True)
class Generated:
    """What ``generate`` wrote: the files, and whether the plan was new."""

    files: tuple[Path, ...]
    revision: str | None
    new: bool


def write_sql(plan: MigrationPlan, directory: Path, *, version: str, message: str) -> Generated:
    """Write ``<digest>_<slug>.sql`` and ``….down.sql``; nothing when the same plan was written before."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = file_stem(plan.digest(), message)
    up_path, down_path = directory / f"{stem}.sql", directory / f"{stem}.down.sql"
    if up_path.exists():
        return Generated((up_path, down_path), plan.digest(), False)
    up, down = render_sql(plan, version=version, title=message)
    up_path.write_text(up)
    down_path.write_text(down)
    return Generated((up_path, down_path), plan.digest(), True)


def write_revision(plan: MigrationPlan, directory: Path, *, message: str) -> Generated:
    """Write an Alembic revision (id: the plan's digest) on top of the current head.

    The revision is rendered from the environment's ``script.py.mako`` into a temporary file beside the
    revisions (``.<name>.py.tmp``, which Alembic does not load), compiled, and only then renamed into
    place; when it cannot be rendered, does not compile, or does not load as a revision, nothing is left
    in ``versions/`` and :class:`~dbtune.errors.DbtuneError` names the cause.
    """
    from alembic import util as alembic_util

    ensure_environment(directory)
    script = script_directory(directory)
    rev_id = plan.digest()
    existing = script.get_revision(rev_id) if rev_id in {r.revision for r in script.walk_revisions()} else None
    if existing is not None:
        return Generated((Path(existing.path),), rev_id, False)
    imports, upgrades, downgrades = render_alembic(plan)
    indent = lambda body: body.replace("\n", "\n    ").replace("\n    \n", "\n\n")  # noqa: E731
    heads = script.get_heads()
    versions = Path(script.versions)
    # Named as the SQL files are (Alembic would cut its slug at 40 characters, mid-title).
    path = versions / f"{file_stem(rev_id, message)}.py"
    temporary = versions / f".{path.name}.tmp"
    try:
        # The message becomes the revision's docstring: escaped so that nothing in it ends the string.
        doc = printable(message).replace('"', '\\"')
        alembic_util.template_to_file(
            Path(script.dir) / "script.py.mako", temporary, script.output_encoding,
            up_revision=rev_id, down_revision=heads[0] if heads else None, branch_labels=None, depends_on=None,
            create_date=script._generate_create_date(), comma=alembic_util.format_as_comma, message=doc,
            imports=imports, upgrades=indent(upgrades), downgrades=indent(downgrades))
        text = re.sub(r"[ \t]+\n", "\n", temporary.read_text())  # no trailing blanks in the generated file
        compile(text, str(path), "exec")
        temporary.write_text(text)
        temporary.replace(path)
    except Exception as exc:  # noqa: BLE001 - a template that fails to render, or a file that does not compile
        temporary.unlink(missing_ok=True)
        cause = f"{exc.msg} (line {exc.lineno})" if isinstance(exc, SyntaxError) else f"{type(exc).__name__}: {exc}"
        raise DbtuneError(f"--dir {directory}: Alembic could not write the revision ({printable(cause)}); "
                          "nothing was written") from None
    try:
        script_directory(directory)
    except UsageError as exc:
        path.unlink(missing_ok=True)
        raise DbtuneError(f"--dir {directory}: the revision written does not load ({exc}); it was removed") from None
    return Generated((path,), rev_id, True)
