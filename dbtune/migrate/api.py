"""``dbtune migrate`` as a plain Python API: generate, status, apply."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dbtune import __version__
from dbtune.config.model import MigrateConfig
from dbtune.db.connect import ConnectionSettings, connect
from dbtune.errors import DbtuneError, UsageError
from dbtune.migrate.advice_input import findings_from_advice
from dbtune.migrate.alembic_source import runtime_calls
from dbtune.migrate.env import engine_for, recorded_heads
from dbtune.migrate.plan import MigrationPlan, plan_migration
from dbtune.migrate.report_input import findings_from_file, findings_from_report
from dbtune.migrate.runtime import INDEXES_BUILT, STEP_HELPERS, STEPS_RUN, ApplyError, ApplyOptions
from dbtune.migrate.workspace import Generated, alembic_config, script_directory, write_revision, write_sql
from dbtune.model import Finding

__all__ = ["DEFAULT_VERSION_TABLE", "apply", "downgrade", "findings_from_advice", "findings_from_file",
           "findings_from_report", "generate", "plan_migration",
           "status"]

DEFAULT_VERSION_TABLE = MigrateConfig().version_table


@dataclass(frozen=True)
class GenerateResult:
    plan: MigrationPlan
    generated: Generated | None


def generate(findings: list[Finding], directory: Path, *, fmt: str = "alembic", include_drops: bool = False,
             message: str = "dbtune recommended indexes and constraints",
             existing_index_names: set[str] | None = None) -> GenerateResult:
    """Plan the findings' fixes and write them as an Alembic revision (``fmt="alembic"``) or SQL files
    (``fmt="sql"``) into ``directory``. An empty plan writes nothing."""
    plan = plan_migration(findings, include_drops=include_drops, existing_index_names=existing_index_names)
    if plan.empty:
        return GenerateResult(plan, None)
    if fmt == "sql":
        return GenerateResult(plan, write_sql(plan, directory, version=__version__, message=message))
    return GenerateResult(plan, write_revision(plan, directory, message=message))


@dataclass(frozen=True)
class RevisionStatus:
    revision: str
    message: str
    applied: bool
    path: str


def status(directory: Path, settings: ConnectionSettings, *,
           version_table: str = DEFAULT_VERSION_TABLE) -> list[RevisionStatus]:
    """Every revision in ``directory``, oldest first, and whether ``version_table`` on the target records it
    as applied. Only ``version_table`` is read: an application's own ``alembic_version`` is not dbtune's.

    Raises :class:`UsageError` when ``version_table`` records a revision that ``directory`` does not hold,
    :class:`~dbtune.errors.ConnectionFailed` when the target cannot be reached.
    """
    script = script_directory(directory)
    conn = connect(settings)
    conn.close()  # fail early with dbtune's own connection error
    engine = engine_for(settings)
    with engine.connect() as connection:
        current = recorded_heads(connection, version_table)
    known = {r.revision for r in script.walk_revisions()}
    for head in current:
        if head not in known:
            raise UsageError(f"{version_table} on the target records revision {head!r}, which --dir {directory} "
                             "does not hold (another migrations directory, or a revision file removed)")
    applied = _applied_below(script, current)
    revisions = list(reversed(list(script.walk_revisions())))
    return [RevisionStatus(r.revision, (r.doc or "").strip(), r.revision in applied, r.path) for r in revisions]


def _applied_below(script: Any, heads: tuple[str, ...]) -> set[str]:
    """The revisions that recorded ``heads`` stand for: each head and every revision below it."""
    applied: set[str] = set()
    for head in heads:
        applied.update(r.revision for r in script.iterate_revisions(head, "base"))
    return applied


def apply(directory: Path, settings: ConnectionSettings, options: ApplyOptions | None = None,
          target: str = "head", *, version_table: str = DEFAULT_VERSION_TABLE) -> list[str]:
    """Apply the pending revisions up to ``target`` (``options.dry_run``: only report each step), recording
    them in ``version_table``. Another applier's migration lock is waited for (``options.wait``, the
    default) or refused.

    Returns the revisions this run applied: not those another applier applied while this one waited for
    the lock (the version table is read again once the lock is held). Raises
    :class:`~dbtune.migrate.runtime.ApplyError` when a step fails, :class:`~dbtune.migrate.env.ApplyInProgress`
    when another applier runs and ``options.wait`` is false, :class:`UsageError` as :func:`status` does.
    """
    from alembic import command

    options = options or ApplyOptions()
    revisions = status(directory, settings, version_table=version_table)
    before = {s.revision for s in revisions if s.applied}
    if target == "head":  # the progress bars' totals: the step helpers the pending revisions call
        options = replace(options, totals=step_totals([Path(s.path) for s in revisions if not s.applied]))
        if not options.dry_run:  # the bars from the start: the first build may take minutes
            for what, total in options.totals.items():
                options.count(what, 0, total)
    cfg = alembic_config(directory, settings, dbtune_apply=options, dbtune_dry_run=options.dry_run,
                         dbtune_version_table=version_table, dbtune_wait=options.wait)
    _run(command.upgrade, cfg, target)
    at_lock = cfg.attributes.get("dbtune_heads_at_lock")
    if isinstance(at_lock, tuple):
        before |= _applied_below(script_directory(directory), at_lock)
    after = status(directory, settings, version_table=version_table)
    return [s.revision for s in after if s.applied and s.revision not in before]


def step_totals(paths: list[Path]) -> dict[str, int]:
    """The steps (:data:`~dbtune.migrate.runtime.STEPS_RUN`: calls of the runtime's step helpers) and the
    index builds (:data:`~dbtune.migrate.runtime.INDEXES_BUILT`) in the ``upgrade()`` of the revision files
    ``paths``, as written (:func:`~dbtune.migrate.alembic_source.runtime_calls`)."""
    calls: Counter[str] = Counter()
    for path in paths:
        calls.update(runtime_calls(path.read_text(encoding="utf-8")))
    return {STEPS_RUN: sum(n for name, n in calls.items() if name in STEP_HELPERS),
            INDEXES_BUILT: calls["build_index"]}


def downgrade(directory: Path, settings: ConnectionSettings, target: str,
              options: ApplyOptions | None = None, *, version_table: str = DEFAULT_VERSION_TABLE) -> None:
    """Undo revisions down to ``target`` (``base`` for all), each step under the same safety rules.
    Raises what :func:`apply` raises."""
    from alembic import command

    options = options or ApplyOptions()
    status(directory, settings, version_table=version_table)
    cfg = alembic_config(directory, settings, dbtune_apply=options, dbtune_dry_run=options.dry_run,
                         dbtune_version_table=version_table, dbtune_wait=options.wait)
    _run(command.downgrade, cfg, target)


def _run(fn: Any, cfg: Any, target: str) -> None:
    import psycopg
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from dbtune.escape import one_line

    try:
        fn(cfg, target)
    except DbtuneError:
        raise
    except CommandError as exc:
        raise UsageError(f"alembic: {exc}") from None
    except (SQLAlchemyError, psycopg.Error) as exc:
        # A step's own error (the server ended the session during it) that Alembic's clean-up replaced with
        # its own (SQLAlchemy's "Can't reconnect until invalid transaction is rolled back"): the step's names
        # the culprit.
        step = _dbtune_error_below(exc)
        if step is not None:
            raise step from None
        # Outside any step (the version table, the migration lock): the session failed or the server went
        # away (a fast or immediate shutdown).
        orig = getattr(exc, "orig", None) or exc
        raise ApplyError(f"the server ended the migration run: {one_line(' '.join(str(orig).split()))}") from None


def _dbtune_error_below(exc: BaseException) -> DbtuneError | None:
    """The :class:`DbtuneError` that ``exc`` was raised while handling (its ``__context__`` chain), if any."""
    seen: set[int] = set()
    below = exc.__context__
    while below is not None and id(below) not in seen:
        if isinstance(below, DbtuneError):
            return below
        seen.add(id(below))
        below = below.__context__
    return None
