"""Every renderer renders the same report fixtures (issue 11): one fixture per report type with a renderer
table in :data:`dbtune.report.render.REGISTRY` (audit, migrate lint, advise, explain, bench compare, the
tune/demo loop's review page), each rendered with every format of its table and compared exactly with
``tests/golden/reports/<command>.<ext>``. The test is parametrized over the registry's tables, so a format
added to a table without its golden file fails (``DBTUNE_UPDATE_GOLDEN=1`` writes it; review the diff).

The fixtures are real results: an audit, an ``advise`` and an ``explain`` of the workload
``tests/golden/reports/inputs/workload.sql`` run once per module against a small database on
PostgreSQL 18 (``inputs/schema.sql``), the lint of ``inputs/0001_orders.sql`` (with squawk), and the
comparison of two ``bench run`` results saved as JSON (``inputs/bench_before.json``, before and after
an index, from the same schema). The probes' reports come from short runs on the same server (see
:func:`_probes`): a race on the guide's response table with its partial unique index, a load of the
workload, the recovery estimate and the lag of a standby, and production's profile table of them. What
varies from run to run is frozen: the target's label, the database's name and size, the server's minor
version, durations and timestamps, rates, latencies, counts that depend on the interleaving, WAL sizes.
HTML pages are compared with plotly's embedded bundle replaced by a marker.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import conftest
import pytest

from dbtune.advisor.api import AdviseOptions, advise
from dbtune.audit import audit
from dbtune.bench.compare import compare
from dbtune.bench.result import BenchResult
from dbtune.config import load_config
from dbtune.config.model import Config
from dbtune.db.connect import ConnectionSettings, resolve
from dbtune.db.local_server import LocalServer
from dbtune.loop import LoopResult
from dbtune.migrate.lint import lint_paths
from dbtune.model import CommandReport
from dbtune.plans.api import explain
from dbtune.plans.source import workload_queries
from dbtune.probe.lag import LagResult, measure_lag
from dbtune.probe.load import Engine, LoadOptions, LoadResult, run_load
from dbtune.probe.profile import profile_table
from dbtune.probe.race import RaceOptions, RaceResult, run_race
from dbtune.probe.recovery import RecoveryReport, estimate_recovery
from dbtune.report.render import EXTENSIONS, REGISTRY, Format, render, table_of
from dbtune.samples import samples_dir
from dbtune.workload import load_queries
from dbtune.workload.load import load_workload

GOLDEN = Path(__file__).parent / "golden" / "reports"
INPUTS = GOLDEN / "inputs"
FROZEN_AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TARGET = "postgres@localhost/golden"
VERSION = "18.0"
# The checks the audit runs: the schema's own problems, none of the server's settings (which depend on
# what other tests did to the shared server).
CHECKS = ("foreign-key-without-index", "duplicate-index", "table-without-primary-key", "seq-scan-with-selective-filter")
PLOTLY = "<!-- plotly.js bundle -->"
# A page's time of writing (the advice, explain and comparison pages say when they were written).
QUERY_ID = re.compile(r"(Query Identifier(?:&#34;|\"|:)*:? *)-?\d+")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")


def _freeze_audit(report):  # type: ignore[no-untyped-def]
    server = replace(report.server, version=f"PostgreSQL {VERSION} on the test server", version_num=180000,
                     database="golden", current_user="postgres")
    return replace(report, target=TARGET, server=server, duration_ms=0.0, generated_at=FROZEN_AT)


# The guide's schema (sample_configs/guide/schema.sql) with its "one winning vendor" fix: every round of the
# race has exactly one winner, whatever the interleaving.
RACE_FIX = ("CREATE UNIQUE INDEX unique_routing_acceptance ON vendor_routing_responses (routing_id) "
            "WHERE response = 'ACCEPTED'")
STANDBY = "postgres@localhost:5433/postgres"


def _freeze_race(race: RaceResult) -> RaceResult:
    # how many losers reached the insert (and hit the index) depends on the interleaving
    errors = tuple(replace(e, count=race.rounds * (race.sessions - 1)) for e in race.errors)
    return replace(race, errors=errors, scratch_schema="dbtune_probe_0", elapsed_s=0.5, total_s=0.75)


def _freeze_load(load: LoadResult) -> LoadResult:
    # 125 transactions a second per statement: below production's 500 tps, so the profile table has a miss
    statements = tuple(replace(s, count=125, errors=0, p50_ms=0.5, p95_ms=1.0, p99_ms=2.0) for s in load.statements)
    return replace(load, elapsed_s=1.0, transactions=125 * len(statements), errors=0, tps=125.0 * len(statements),
                   p50_ms=0.5, p95_ms=1.0, p99_ms=2.0, statements=statements, target=TARGET)


def _freeze_recovery(report: RecoveryReport) -> RecoveryReport:
    estimate = report.estimate
    assert estimate is not None
    # 64 kB/s of WAL, and what the estimate makes of it (dbtune.probe.recovery.estimate_recovery)
    worst = int(min(estimate.max_wal_size_bytes,
                    65536.0 * (1 + estimate.completion_target) * estimate.checkpoint_timeout_s))
    estimate = replace(estimate, wal_rate_bytes_s=65536.0, worst_replay_bytes=worst,
                       estimate_s=round(worst / estimate.replay_rate_bytes_s, 3), since_redo_bytes=1_048_576)
    return replace(report, estimate=estimate)


def _freeze_lag(lag: LagResult) -> LagResult:
    standbys = tuple(replace(s, client_addr=None, write_lag_s=0.001, flush_lag_s=0.002, replay_lag_s=0.003,
                             replay_gap_bytes=0) for s in lag.standbys)
    replicas = tuple(replace(r, target=STANDBY, lag_s=0.0, caught_up=True) for r in lag.replicas)
    return replace(lag, primary="postgres@localhost/postgres", standbys=standbys, replicas=replicas)


def _probes(server: LocalServer, golden: ConnectionSettings) -> list[CommandReport]:
    """The probes' reports from short real runs on the module's server (see the module docstring): a race
    of 3 sessions over 4 rounds, a load of 1 client for 1 s (the runner, which every machine has), the
    recovery estimate over 0.2 s, the lag of a standby, and production's profile table of them."""
    race_db = conftest.new_database(server, "race")
    race_db.execute((samples_dir() / "guide" / "schema.sql").read_text())
    race_db.execute(RACE_FIX)
    race = _freeze_race(run_race(resolve(race_db.dsn), RaceOptions(sessions=3, rounds=4), yes=True))
    options = LoadOptions(clients=1, duration_s=1, engine=Engine.RUNNER)
    load = _freeze_load(run_load(golden, load_workload(INPUTS / "workload.sql"), options))
    recovery = _freeze_recovery(RecoveryReport(None, estimate_recovery(golden, sample_s=0.2)))
    standby = conftest.standby_of(server)
    try:
        lag = _freeze_lag(measure_lag(resolve(server.dsn()), [(resolve(standby.dsn()), "--replica")]))
    finally:
        standby.destroy()
    config, _ = load_config(samples_dir() / "production.toml")
    table = profile_table(config, load=load, race=race, estimate=recovery.estimate, lag=lag)
    return [race, load, recovery, lag, table]


@pytest.fixture(scope="module")
def fixtures() -> Iterator[dict[str, CommandReport]]:
    """The report of each type in the registry, from real runs (see the module docstring), on a server of
    their own: the shared ones carry what other tests set with ALTER SYSTEM, which changes plans."""
    server = conftest.create_server("pg18")
    try:
        db = conftest.new_database(server, "golden")
        db.execute((INPUTS / "schema.sql").read_text())
        settings, config, workload = resolve(db.dsn), Config(), INPUTS / "workload.sql"
        report = _freeze_audit(audit(settings, config, select=CHECKS, workload=workload))
        queries = [q for q in load_queries(str(workload)).queries if q.skipped is None]
        advice = advise(settings, config, queries, AdviseOptions(budget=1.0))
        # a write cost is a rate over the seconds since the tables were analyzed: it moves with the clock
        advice = replace(advice, target=TARGET, server_version=VERSION, duration_ms=0.0, database_bytes=8_000_000,
                         budget_bytes=8_000_000,
                         **{kind: tuple(replace(r, write_cost=0.0) for r in getattr(advice, kind))
                            for kind in ("recommendations", "rejected", "not_needed")})
        plans = explain(settings, workload_queries(settings, path=workload), config)
        plans = replace(plans, target=TARGET, duration_ms=0.0,
                        server=replace(plans.server, version=VERSION, version_num=180000, database="golden"))
        probes = _probes(server, settings)
    finally:
        server.destroy()
    cwd = Path.cwd()
    os.chdir(INPUTS)  # the lint names its files as given: relative to the inputs
    try:
        lint = lint_paths([Path("0001_orders.sql")])
    finally:
        os.chdir(cwd)
    before, after = (BenchResult.from_json(json.loads((INPUTS / f"bench_{n}.json").read_text()))
                     for n in ("before", "after"))
    comparison = compare(before, after)
    loop = LoopResult(report=report, plan=report.fix_plan, files=(Path("0001_dbtune.py"),), lint=lint,
                      before=before, applied=("0001_dbtune",), after=after, comparison=comparison, advice=advice)
    yield {table.command: r for r in (report, lint, advice, plans, comparison, before, loop, *probes)
           for table in [table_of(r)]}


def _cases() -> list[tuple[str, Format]]:
    """Every format of every table in the registry."""
    return [(t.command, fmt) for t in REGISTRY.values() for fmt in t.renderers]


def _golden_name(command: str, fmt: Format) -> str:
    return f"{command.removeprefix('dbtune ').replace(' ', '-')}.{EXTENSIONS[fmt]}"


def _normalised(text: str, fmt: Format) -> str:
    # A plan's query identifier hashes the relations' OIDs, which differ from one database to the next.
    text = QUERY_ID.sub(r"\g<1>0", text)
    if fmt is Format.HTML:
        from dbtune.report.html import plotly_js

        text = STAMP.sub("<written at>", text.replace(str(plotly_js()), PLOTLY))
    return text


@pytest.mark.parametrize(("command", "fmt"), _cases(), ids=lambda v: str(v))
def test_every_renderer_matches_its_golden(fixtures: dict[str, CommandReport], command: str, fmt: Format) -> None:
    assert command in fixtures, f"no fixture for {command}: add one to fixtures()"
    text = _normalised(render(fixtures[command], fmt), fmt)
    path = GOLDEN / _golden_name(command, fmt)
    if os.environ.get("DBTUNE_UPDATE_GOLDEN"):  # regenerate after a deliberate change, then review the diff
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path.name} missing: DBTUNE_UPDATE_GOLDEN=1 writes it"
    assert text == path.read_text(encoding="utf-8")
    assert len(text.encode()) < 200_000


def test_every_golden_file_has_a_renderer() -> None:
    names = {_golden_name(command, fmt) for command, fmt in _cases()}
    assert {p.name for p in GOLDEN.iterdir() if p.is_file()} <= names


def test_every_report_is_a_command_report(fixtures: dict[str, CommandReport]) -> None:
    for command, report in fixtures.items():
        assert isinstance(report, CommandReport)
        data = report.to_json()
        # the profile table is no command's own: every probe writes it after its result
        assert data["report_version"] == 1 and f"dbtune {data['command']}" == command.replace("the profile table",
                                                                                           "dbtune probe")


def test_the_readme_formats_table_is_the_registry() -> None:
    """The README's table of formats by command says what the registry (and, for the loop, the formats
    its stages stream) writes."""
    from dbtune.cli.loop import LOOP_RENDERERS

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    header = next(line for line in readme.splitlines() if line.startswith("| command | `text` |"))
    formats = [Format(c.strip(" `")) for c in header.strip("|").split("|")[1:]]
    written: dict[str, set[Format]] = {}
    for line in readme.splitlines()[readme.splitlines().index(header) + 2:]:
        if not line.startswith("|"):
            break
        commands, *cells = (c.strip() for c in line.strip("|").split("|"))
        for command in re.findall(r"`([^`]+)`", commands):
            written[command] = {f for f, c in zip(formats, cells, strict=True) if c != "—"}
    expected = {t.command.removeprefix("dbtune "): set(t.renderers) for t in REGISTRY.values()
                if t.command.startswith("dbtune ") and t.command != "dbtune tune"}
    expected |= {"demo": set(LOOP_RENDERERS), "tune": set(LOOP_RENDERERS)}
    assert written == expected


def test_the_registry_imports_no_renderer_until_one_is_used() -> None:
    """Reading every table (what a CLI start does to check --format) imports neither the HTML renderer
    (Jinja2, plotly) nor any other renderer module; rendering imports the one it needs."""
    import subprocess
    import sys

    code = ("import sys; import dbtune.report, dbtune.report.lint, dbtune.report.bench, dbtune.report.advice, "
            "dbtune.report.explain, dbtune.report.race, dbtune.report.probe; "
            "import json; print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith(('dbtune.report.', 'jinja2', 'plotly')))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(loaded) == ["dbtune.report.advice", "dbtune.report.bench", "dbtune.report.explain",
                            "dbtune.report.lint", "dbtune.report.model", "dbtune.report.probe",
                            "dbtune.report.race", "dbtune.report.render"]
