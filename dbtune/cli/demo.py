"""``dbtune demo``: the guide's application on an embedded PostgreSQL, and the whole loop on it: audit,
advise (the index advisor with trial builds, its choice proven on the server: what helps is kept, the rest
reverted; beside the guide's expected indexes, which of them the workload needs), generate the migration,
lint it, benchmark before, race concurrent vendor accepts (``probe race``: the guide's vendor win rate),
apply, benchmark after, race again, compare, audit again (what the migration left, and why), and last the
profile's targets measured on the demo's server (:mod:`dbtune.probe.measure`: load, replication lag on a
standby, a crash and restart; the vendor win rate from the race after the migration). Each stage's result
is printed as the stage ends.

Both audits read, beside the database, the guide's application config (:data:`GUIDE_APP_CONFIG`: its
``.env.production``, its PgBouncer as docker-compose and as ``pgbouncer.ini``, and ``database.js``'s
``SET lock_timeout``) and the statements of its write paths (``accept.sql``: the vendor accept and the
webhook record, for the check-then-insert checks)."""

from __future__ import annotations

import shlex
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from dbtune.appconfig import read_app_config
from dbtune.audit import audit
from dbtune.bench import BenchOptions, load_workload
from dbtune.bench.runner import DEFAULT_ROUNDS
from dbtune.cli.common import NoColorOption, check_output, echo, format_option, note, write_output
from dbtune.cli.loop import LOOP_RENDERERS, LoopPrinter
from dbtune.cli.progress import ProgressDisplay
from dbtune.config import load_config
from dbtune.db.connect import resolve
from dbtune.db.demo import DEMO_DATABASE, STATE_FILE, Demo, stop_saved_demo
from dbtune.errors import UsageError
from dbtune.loop import AdvisorStage, RaceStage, run_loop
from dbtune.migrate.runtime import ApplyOptions
from dbtune.probe.measure import measure_targets
from dbtune.report import Format, render
from dbtune.report.probe import render_profile
from dbtune.samples import guide_file, samples_dir
from dbtune.workload import load_queries

STAGES = ["audit", "advise", "generate", "lint", "benchmark before", "race before", "apply", "benchmark after",
          "race after", "compare", "audit after the migration", "profile table"]

# The guide's application config (sample_configs/guide/), audited with the database, and its write paths.
GUIDE_APP_CONFIG = (".env.production", "docker-compose.yml", "pgbouncer.ini", "database.js")
GUIDE_STATEMENTS = "accept.sql"


def demo_command(
    scale: Annotated[float, typer.Option("--scale", help="Data size multiplier (1.0: 500,000 orders, "
                                                          "1,000,000 webhook rows).")] = 1.0,
    iterations: Annotated[int, typer.Option("--iterations", help="Runs of each query of the application's "
                                                                 "mix before the audit.")] = 50,
    bench_iterations: Annotated[int, typer.Option("--bench-iterations", help="Measured runs of each query in "
                                                                             "each benchmark.")] = 15,
    profile: Annotated[str, typer.Option("--profile", help="Sample config profile to audit against: "
                                         "development, staging, production, enterprise.")] = "production",
    format: Annotated[Format, format_option(LOOP_RENDERERS, "dbtune demo", "Report format (html: the whole "
                                            "loop's review on one page, written at the end)")] = Format.TEXT,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the review page (--format html) or, with --audit-only, the report to FILE "
                               "instead of stdout.", show_default=False)] = None,
    audit_only: Annotated[bool, typer.Option("--audit-only", help="Stop after the audit.")] = False,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the server running and print its DSN; "
                                                      "stop it with `dbtune demo --stop`.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop a demo left running by --keep.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
    no_color: NoColorOption = False,
) -> None:
    """Start a throwaway PostgreSQL with the guide's schema, data and query mix, audit it, then generate,
    lint and apply the fixes, benchmark the queries and race concurrent vendor accepts (the vendor win rate)
    before and after, and audit again."""
    if stop:
        where = stop_saved_demo()
        note(f"stopped the demo server in {where}" if where else "no demo server is running", quiet)
        return
    if keep and STATE_FILE.exists():
        raise UsageError(f"a demo server is already running (see {STATE_FILE}); stop it with `dbtune demo --stop`")
    if iterations < 1 or bench_iterations < 1:
        raise UsageError("--iterations and --bench-iterations must be at least 1")
    if output is not None and format is not Format.HTML and not audit_only:
        raise UsageError(f"--output {output}: the demo prints each stage as it ends; --output writes the review "
                         "page of --format html (or the report of --audit-only)")
    check_output(output)
    config_path = samples_dir() / f"{profile}.toml"
    if not config_path.exists():
        raise UsageError(f"--profile {profile!r}: no such sample profile")
    started = time.perf_counter()
    with ProgressDisplay(quiet, no_color) as display:
        _run_demo(display, demo_start=started, scale=scale, iterations=iterations, bench_iterations=bench_iterations,
                  profile=profile, config_path=config_path, format=format, output=output, audit_only=audit_only,
                  keep=keep)


def _run_demo(display: ProgressDisplay, *, demo_start: float, scale: float, iterations: int, bench_iterations: int,
              profile: str, config_path: Path, format: Format, output: Path | None, audit_only: bool,
              keep: bool) -> None:
    """The demo's stages, their notes and progress bars on ``display`` (stderr), their results on stdout."""
    say = display.note
    config, _ = load_config(config_path)
    total = 3 + (1 if audit_only else len(STAGES))
    step = iter(range(1, total + 1))
    say(f"[{next(step)}/{total}] starting PostgreSQL (embedded)")
    demo = Demo.start()
    kept = False
    try:
        say(f"[{next(step)}/{total}] creating the guide's schema and generating data (scale {scale})")
        counts = demo.load(scale, progress=lambda m: say("      " + m), count=display.count)
        say("      " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
        say(f"[{next(step)}/{total}] running the application's query mix ({iterations} runs per query)")
        demo.run_workload(iterations, progress=lambda m: say("    " + m))
        settings = resolve(demo.dsn)
        app_config = read_app_config([guide_file(name) for name in GUIDE_APP_CONFIG])
        statements = guide_file(GUIDE_STATEMENTS)
        if audit_only:
            say(f"[{next(step)}/{total}] auditing against sample_configs/{profile}.toml")
            report = audit(settings, config, config_path=config_path, app_config=app_config, statements=statements)
            with display.paused():
                write_output(render(report, format), output)
        else:
            from dbtune.advisor.api import AdviseOptions
            from dbtune.probe.race import RaceOptions

            printer = LoopPrinter(format, expected=config.expect.index, display=display)
            workload = guide_file("workload.sql")
            advisor = AdvisorStage(AdviseOptions(trial_builds=True, validate=True, yes=True),
                                   queries=tuple(q for q in load_queries(workload).queries if q.skipped is None))
            with tempfile.TemporaryDirectory(prefix="dbtune-demo-") as tmp:
                result = run_loop(
                    settings, config, load_workload(workload), Path(tmp) / "migrations",
                    bench=BenchOptions(iterations=bench_iterations, warmup=2, param_samples=20, allow_writes=True,
                                       rounds=min(DEFAULT_ROUNDS, bench_iterations)),
                    apply_options=ApplyOptions(report=say), stage=lambda s: say(f"[{next(step)}/{total}] {s}"),
                    progress=lambda m: say("      " + m), observer=printer, advisor=advisor,
                    race=RaceStage(RaceOptions.from_config(config.probe.race), yes=True),
                    app_config=app_config, statements=statements)
                printer.finish(result)
            # The profile's targets, measured on the demo's server (load, replication lag, crash recovery).
            say(f"[{next(step)}/{total}] profile table: the {profile} profile's targets, measured")
            measured = measure_targets(demo.server, DEMO_DATABASE, config, load_workload(workload),
                                       race=result.race_after, app_config=app_config,
                                       progress=lambda m: say("      " + m), count=display.count)
            with display.paused():
                if format is Format.HTML:
                    write_output(render(result, Format.HTML, profile=measured.table), output)
                else:
                    echo("\n" + render_profile(measured.table, format), nl=False)
        say(f"demo finished in {time.perf_counter() - demo_start:.1f} s")
        if keep:
            demo.save_state()
            kept = True
            app_flags = " ".join(f"--app-config {shlex.quote(str(guide_file(n)))}" for n in GUIDE_APP_CONFIG)
            say(f"the demo server is running: dbtune audit --dsn {shlex.quote(demo.dsn)} "
                f"--config {shlex.quote(str(config_path))} {app_flags} "
                f"--workload {shlex.quote(str(statements))}")
            say("stop it with: dbtune demo --stop")
    finally:
        if not kept:
            demo.destroy()
