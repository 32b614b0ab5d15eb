"""``dbtune migrate generate``, ``apply`` and ``status`` (registered on the ``migrate`` sub-app)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from tabulate import tabulate

from dbtune.cli.common import (
    ConfigOption,
    DsnOption,
    NoColorOption,
    QuietOption,
    VerboseOption,
    connection_settings,
    echo,
    note,
)
from dbtune.cli.progress import progress_display
from dbtune.config import load_config
from dbtune.config.model import parse_timeout_ms
from dbtune.db.connect import describe
from dbtune.errors import UsageError

DirOption = Annotated[Path, typer.Option("--dir", help="The migrations directory (an Alembic environment).")]


def _settings(dsn: str | None, config: Path | None):  # type: ignore[no-untyped-def]
    cfg, cfg_path = load_config(config)
    settings = connection_settings(dsn, cfg)
    return cfg, cfg_path, settings


def generate_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    from_report: Annotated[Path | None, typer.Option(
        "--from", help="Use the findings of a JSON report (dbtune audit --format json), or the recommendations "
        "of a JSON advice file (dbtune advise --format json), instead of auditing.",
        show_default=False)] = None,
    directory: DirOption = Path("migrations"),
    format: Annotated[str, typer.Option(
        "--format", help="alembic (a revision) or sql (plain SQL files for psql).")] = "alembic",
    include_drops: Annotated[bool, typer.Option(
        "--include-drops", help="Also drop duplicate, redundant and unused indexes.")] = False,
    message: Annotated[str, typer.Option("--message", "-m", help="The revision's title.")] =
        "dbtune recommended indexes and constraints",
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Turn findings into migrations: an Alembic revision in --dir, or plain SQL files for psql with --format sql."""
    from dbtune.audit import audit
    from dbtune.migrate.api import findings_from_file, generate

    if format not in ("alembic", "sql"):
        raise UsageError(f"--format {format!r}: use alembic or sql")
    existing: set[str] | None = None
    if from_report is not None:
        findings = findings_from_file(from_report)
    else:
        cfg, cfg_path, settings = _settings(dsn, config)
        report = audit(settings, cfg, config_path=cfg_path)
        findings = list(report.findings)
        existing = set(report.index_names)
        for skip in report.skipped:
            if skip.what.startswith("table "):  # held in ACCESS EXCLUSIVE: not read, so nothing for it here
                note(f"warning: {skip.what} is left out of this migration: {skip.reason}")
    result = generate(findings, directory, fmt=format, include_drops=include_drops, message=message,
                      existing_index_names=existing)
    for left in result.plan.left_out:
        note(f"left out: {left.check_name} {left.object}: {left.reason}; list the duplicate keys with:")
        for line in left.query.splitlines():
            note("  " + line)
    if result.generated is None:
        note("nothing else to generate" if result.plan.left_out else
             "nothing to generate: no finding has a schema fix", quiet)
        return
    if not result.generated.new:
        note(f"nothing new: revision {result.generated.revision} already holds these changes", quiet)
        return
    for path in result.generated.files:
        echo(str(path))
    note(f"{len(result.plan.steps)} step(s), then ANALYZE of {len(result.plan.analyze)} table(s)", quiet)


def apply_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    directory: DirOption = Path("migrations"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print each step, its lock and table size; "
                                                           "change nothing.")] = False,
    lock_timeout: Annotated[str, typer.Option("--lock-timeout", help="Per step.")] = "2s",
    statement_timeout: Annotated[str, typer.Option("--statement-timeout",
                                                   help="Per step; 0 = none (index builds can be long).")] = "0",
    retries: Annotated[int, typer.Option("--retries", help="Retries when a lock is not granted.")] = 5,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for another applier's migration lock (an "
                                       "orphaned build included), or with --no-wait exit 3 at once naming "
                                       "it.")] = True,
    target: Annotated[str, typer.Option("--target", help="Revision to upgrade to.")] = "head",
    downgrade_to: Annotated[str | None, typer.Option("--downgrade-to", help="Undo revisions down to this "
                                                     "revision (base: all).", show_default=False)] = None,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Apply pending revisions, each step under lock_timeout with retries (writes to the target)."""
    from dbtune.migrate.api import apply, downgrade, status
    from dbtune.migrate.runtime import ApplyOptions

    cfg, _, settings = _settings(dsn, config)
    version_table = cfg.migrate.version_table
    try:
        options = ApplyOptions(lock_timeout_ms=parse_timeout_ms(lock_timeout),
                               statement_timeout_ms=parse_timeout_ms(statement_timeout), retries=retries,
                               dry_run=dry_run, wait=wait, announce_steps=True,
                               # A dry run's report is its output (stdout); a real run's is progress (stderr).
                               report=typer.echo if dry_run else lambda m: note(m, quiet))
    except ValueError as exc:
        raise UsageError(f"--lock-timeout/--statement-timeout: {exc}") from None
    if downgrade_to is not None:
        note(f"{'dry run: ' if dry_run else ''}downgrading {directory} to {downgrade_to}", quiet)
        downgrade(directory, settings, downgrade_to, options, version_table=version_table)
        return
    revisions = status(directory, settings, version_table=version_table)
    pending = [s.revision for s in revisions if not s.applied]
    if not pending:
        applied_ones = [s.revision for s in revisions]
        say = echo if dry_run else (lambda m: note(m, quiet))
        say(f"nothing to apply: {directory} has no revisions" if not applied_ones else
            f"nothing to apply: {describe(settings)} has all {len(applied_ones)} revision(s) of {directory} "
            f"applied ({', '.join(applied_ones)})")
        return
    note(f"{'dry run: ' if dry_run else ''}applying {directory} up to {target}: pending "
         f"{', '.join(pending)}", quiet)
    # The bars: steps run and indexes built (none in a dry run, which runs nothing).
    with progress_display(quiet or dry_run, no_color) as display:
        if not dry_run:
            options = replace(options, report=display.note, count=display.count)
        applied = apply(directory, settings, options, target, version_table=version_table)
    if dry_run:
        return
    if applied or target != "head":
        note(f"applied {len(applied)} revision(s)" + (f": {', '.join(applied)}" if applied else ""), quiet)
    else:
        note(f"nothing left to apply: another run applied {', '.join(pending)} while this one waited for the "
             "migration lock", quiet)


def status_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    directory: DirOption = Path("migrations"),
    verbose: VerboseOption = False,
) -> None:
    """Show applied and pending revisions."""
    from dbtune.migrate.api import status

    cfg, _, settings = _settings(dsn, config)
    rows = [(s.revision, "applied" if s.applied else "pending", s.message)
            for s in status(directory, settings, version_table=cfg.migrate.version_table)]
    echo(tabulate(rows, headers=["revision", "state", "message"]) if rows else "no revisions")


def register(app: typer.Typer) -> None:
    """Add generate, apply and status to the ``migrate`` sub-app."""
    app.command("generate")(generate_command)
    app.command("apply")(apply_command)
    app.command("status")(status_command)
