"""``dbtune demo``: the guide's application on an embedded PostgreSQL, audited."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from dbtune.audit import audit
from dbtune.cli.common import note
from dbtune.config import load_config
from dbtune.db.connect import resolve
from dbtune.db.demo import STATE_FILE, Demo, stop_saved_demo
from dbtune.errors import UsageError
from dbtune.report import Format, render
from dbtune.samples import samples_dir


def demo_command(
    scale: Annotated[float, typer.Option("--scale", help="Data size multiplier (1.0: 500,000 orders, "
                                                          "1,000,000 webhook rows).")] = 1.0,
    iterations: Annotated[int, typer.Option("--iterations", help="Runs of each workload query.")] = 50,
    profile: Annotated[str, typer.Option("--profile", help="Sample config profile to audit against: "
                                         "development, staging, production, enterprise.")] = "production",
    format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.TEXT,
    keep: Annotated[bool, typer.Option("--keep", help="Leave the server running and print its DSN; "
                                                      "stop it with `dbtune demo --stop`.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop a demo left running by --keep.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
) -> None:
    """Start a throwaway PostgreSQL with the guide's schema, data and query mix, then audit it."""
    if stop:
        where = stop_saved_demo()
        note(f"stopped the demo server in {where}" if where else "no demo server is running", quiet)
        return
    if keep and STATE_FILE.exists():
        raise UsageError(f"a demo server is already running (see {STATE_FILE}); stop it with `dbtune demo --stop`")
    if iterations < 1:
        raise UsageError(f"--iterations must be at least 1, got {iterations}")
    config_path = samples_dir() / f"{profile}.toml"
    if not config_path.exists():
        raise UsageError(f"--profile {profile!r}: no such sample profile")
    config, _ = load_config(config_path)
    started = time.perf_counter()
    note("[1/4] starting PostgreSQL (embedded)", quiet)
    demo = Demo.start()
    kept = False
    try:
        note(f"[2/4] creating the guide's schema and generating data (scale {scale})", quiet)
        counts = demo.load(scale, progress=lambda m: note("      " + m, quiet))
        note("      " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), quiet)
        note(f"[3/4] running the application's query mix ({iterations} runs per query)", quiet)
        demo.run_workload(iterations, progress=lambda m: note("    " + m, quiet))
        note(f"[4/4] auditing against sample_configs/{profile}.toml", quiet)
        report = audit(resolve(demo.dsn), config, config_path=config_path)
        typer.echo(render(report, format), nl=False)
        note(f"demo finished in {time.perf_counter() - started:.1f} s", quiet)
        if keep:
            demo.save_state()
            kept = True
            note(f"the demo server is running: dbtune audit --dsn '{demo.dsn}'\n"
                 "stop it with: dbtune demo --stop", quiet)
    finally:
        if not kept:
            demo.destroy()
