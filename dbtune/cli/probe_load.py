"""``dbtune probe load``, ``dbtune probe recovery`` and ``dbtune probe lag``: each measures, prints its
result and the profile's targets it measures (met or missed), and exits 1 when one is missed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from dbtune.appconfig import read_app_config
from dbtune.appconfig.read import relative_to
from dbtune.bench import load_workload, pg_stat_statements_workload
from dbtune.cli.common import (
    ConfigOption,
    DsnOption,
    NoColorOption,
    OutputOption,
    QuietOption,
    VerboseOption,
    WorkloadFormatOption,
    check_output,
    check_workload_format,
    connection_settings,
    format_option,
    note,
    write_output,
)
from dbtune.cli.progress import progress_display
from dbtune.config import load_config
from dbtune.config.model import Config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer, embedded_bindir
from dbtune.errors import ExitCode, UsageError
from dbtune.probe.lag import measure_lag, replica_settings
from dbtune.probe.load import Engine, LoadOptions, run_load
from dbtune.probe.profile import LAG_KEYS, LOAD_KEYS, RECOVERY_KEYS, ProfileTable, only, profile_table
from dbtune.probe.recovery import crash_and_recover, estimate_recovery
from dbtune.report import Format
from dbtune.report.probe import (
    LAG_RENDERERS,
    LOAD_RENDERERS,
    RECOVERY_RENDERERS,
    render_lag,
    render_load,
    render_recovery,
    with_profile,
)
from dbtune.samples import samples_dir

ProfileOption = Annotated[str | None, typer.Option(
    "--profile", help="Targets of a sample profile: development, staging, production, enterprise (instead of "
    "--config's [targets]).", show_default=False)]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
# Profiles on which a load needs no --yes: the guide's own non-production ones.
NOT_PRODUCTION = ("development", "staging")


def targets_config(config: Path | None, profile: str | None) -> tuple[Config, Path | None]:
    """The config whose ``[targets]`` the probe measures against, and its path: ``--profile``'s sample,
    else ``--config`` (or the nearest dbtune.toml). Raises :class:`UsageError` for both at once or an
    unknown profile."""
    if profile is not None:
        if config is not None:
            raise UsageError("give --config or --profile, not both")
        path = samples_dir() / f"{profile}.toml"
        if not path.exists():
            raise UsageError(f"--profile {profile!r}: no such sample profile (development, staging, production, "
                             "enterprise)")
        return load_config(path)
    return load_config(config)


def _finish(table: ProfileTable, format: Format, body: str, output: Path | None) -> None:
    write_output(with_profile(body, table, format), output)
    raise typer.Exit(int(ExitCode.FINDINGS if table.missed else ExitCode.CLEAN))


def load_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    workload: Annotated[Path | None, typer.Option(
        "--workload", help="SQL file of statements (as `bench run --workload`).", show_default=False)] = None,
    top: Annotated[int | None, typer.Option(
        "--from-pg-stat-statements", help="The top N statements of pg_stat_statements instead of a file.",
        show_default=False)] = None,
    workload_format: WorkloadFormatOption = None,
    clients: Annotated[int, typer.Option("--clients", help="Concurrent sessions.")] = 4,
    duration: Annotated[int, typer.Option("--duration", help="Seconds of load.")] = 10,
    engine: Annotated[Engine | None, typer.Option(
        "--engine", help="Force the engine: pgbench or dbtune (default: pgbench where the statements fit).",
        show_default=False)] = None,
    allow_writes: Annotated[bool, typer.Option(
        "--allow-writes", help="Also run INSERT/UPDATE/DELETE/MERGE, each in a transaction rolled back.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm the load may run on this server (needed unless "
                                                    "the profile is development or staging).")] = False,
    format: Annotated[Format, format_option(LOAD_RENDERERS, "dbtune probe load")] = Format.TEXT,
    output: OutputOption = None,
    quiet: QuietOption = False,
    no_color: NoColorOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Put the workload on the database at --clients x --duration and report its throughput and p50/p95/p99
    against the profile's targets; pgbench drives it where the statements fit, dbtune's runner elsewhere."""
    if (workload is None) == (top is None):
        raise UsageError("give exactly one of --workload FILE and --from-pg-stat-statements N")
    check_workload_format(workload_format, workload)
    check_output(output)
    cfg, _ = targets_config(config, profile)
    options = LoadOptions(clients=clients, duration_s=duration, allow_writes=allow_writes, engine=engine)
    options.validate()
    name = cfg.profile.name if cfg.profile else None
    if not yes and name not in NOT_PRODUCTION:
        raise UsageError(f"probe load puts {clients} sessions of load on the target for {duration} s and the "
                         f"profile is {name or 'not named'}: pass --yes (never on production without it)")
    settings = connection_settings(dsn, cfg)
    queries = load_workload(workload, workload_format) if workload is not None else None
    if queries is None:
        assert top is not None
        queries = pg_stat_statements_workload(settings, top)
    with progress_display(quiet, no_color) as display:
        result = run_load(settings, queries, options, progress=display.note, count=display.count)
    _finish(only(profile_table(cfg, load=result), LOAD_KEYS), format, render_load(result, format), output)


def recovery_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    local_server: Annotated[bool, typer.Option(
        "--local-server", help="Start a throwaway PostgreSQL (embedded), crash it under write load and time "
        "its restart.")] = False,
    crash: Annotated[bool, typer.Option(
        "--crash", help="Crash the target and time its restart: only a server dbtune started "
        "(--local-server).")] = False,
    writers: Annotated[int, typer.Option("--writers", help="Sessions writing before the crash.")] = 4,
    load: Annotated[float, typer.Option("--load", help="Seconds of writes before the crash.")] = 3.0,
    sample: Annotated[float, typer.Option("--sample", help="Seconds over which the target's WAL rate is "
                                                           "measured for the estimate.")] = 5.0,
    format: Annotated[Format, format_option(RECOVERY_RENDERERS, "dbtune probe recovery")] = Format.TEXT,
    output: OutputOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Crash recovery: measured on a server dbtune started (--local-server: pg_ctl stop -m immediate under
    write load, restart, time to the first query), estimated for any server from checkpoint_timeout,
    max_wal_size and its WAL rate, against the profile's recovery target."""
    check_output(output)
    cfg, _ = targets_config(config, profile)
    if crash and not local_server:
        raise UsageError("probe recovery --crash refused: dbtune crashes only a server it started "
                         "(--local-server); for --dsn it estimates the recovery from the checkpoint settings")
    if local_server and dsn:
        raise UsageError("give --local-server or --dsn, not both")
    measured = None
    if local_server:
        server = LocalServer.create(embedded_bindir())
        try:
            note("starting a throwaway PostgreSQL (embedded)", quiet)
            server.init()
            server.start()
            measured = crash_and_recover(server, "postgres", writers=writers, load_s=load,
                                         progress=lambda m: note(m, quiet))
            estimate = estimate_recovery(resolve(server.dsn()), wal_rate_bytes_s=measured.wal_rate_bytes_s,
                                         replay_rate_bytes_s=measured.replay_rate_bytes_s,
                                         replay_rate_source="measured by this crash's redo")
        finally:
            server.destroy()
    else:
        settings = connection_settings(dsn, cfg)
        note(f"measuring the WAL rate for {sample:g} s", quiet)
        estimate = estimate_recovery(settings, sample_s=sample)
    table = only(profile_table(cfg, recovery=measured, estimate=estimate), RECOVERY_KEYS)
    _finish(table, format, render_recovery(measured, estimate, format), output)


def lag_command(
    dsn: DsnOption = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    replica: Annotated[list[str] | None, typer.Option(
        "--replica", metavar="DSN", help="A replica to probe (pg_last_xact_replay_timestamp()); repeat for "
        "more.", show_default=False)] = None,
    app_config: Annotated[list[str] | None, typer.Option(
        "--app-config", metavar="PATH", help="The application's config, whose read replicas "
        "(DATABASE_READ_REPLICA_URL …) are probed; repeat for more. Added to the config's app_config.",
        show_default=False)] = None,
    format: Annotated[Format, format_option(LAG_RENDERERS, "dbtune probe lag")] = Format.TEXT,
    output: OutputOption = None,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Replication lag: the primary's pg_stat_replication (write/flush/replay lag) and each replica's
    replay lag, against the profile's target."""
    check_output(output)
    cfg, cfg_path = targets_config(config, profile)
    settings = connection_settings(dsn, cfg)
    replicas = [(replace(connection_settings(r, cfg), source="--replica"), "--replica") for r in replica or []]
    paths = [*(relative_to(item, cfg_path.parent if cfg_path else None) for item in cfg.app_config),
             *(app_config or [])]
    if paths:
        replicas += [(replica_settings(r, settings), str(r.origin)) for r in read_app_config(paths).replicas]
    result = measure_lag(settings, replicas)
    _finish(only(profile_table(cfg, lag=result), LAG_KEYS), format, render_lag(result, format), output)


def register(app: typer.Typer) -> None:
    """Add ``load``, ``recovery`` and ``lag`` to the ``probe`` group."""
    app.command("load")(load_command)
    app.command("recovery")(recovery_command)
    app.command("lag")(lag_command)
