"""``dbtune probe load``, ``probe recovery``, ``probe lag`` and the profile table, on real servers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import assert_error
from conftest import TestDatabase, drop_database, new_database, standby_of

from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer, embedded_bindir
from dbtune.probe.lag import measure_lag
from dbtune.probe.load import Engine, LoadOptions, run_load
from dbtune.probe.profile import Status, profile_table
from dbtune.probe.recovery import crash_and_recover, estimate_recovery
from dbtune.workload.load import parse_workload

WORKLOAD = """
-- name: by-id
SELECT qty FROM items WHERE id = $1;
-- name: bump
UPDATE items SET qty = qty + 1 WHERE id = $1;
"""
TEXT_WORKLOAD = """
-- name: by-code
SELECT qty FROM items WHERE code = $1;
"""


@pytest.fixture(scope="module")
def items(pg18: LocalServer) -> Iterator[TestDatabase]:
    db = new_database(pg18, "load")
    db.execute("CREATE TABLE items (id int PRIMARY KEY, code text UNIQUE, qty int NOT NULL);"
               "INSERT INTO items SELECT g, 'c' || g, 0 FROM generate_series(1, 2000) g; ANALYZE items")
    yield db
    drop_database(db)


@pytest.mark.parametrize("engine", [Engine.PGBENCH, Engine.RUNNER])
def test_load_runs_the_mix_on_both_engines(items: TestDatabase, engine: Engine) -> None:
    result = run_load(resolve(items.dsn), parse_workload(WORKLOAD),
                      LoadOptions(clients=2, duration_s=1, allow_writes=True, engine=engine))
    assert result.engine == engine
    assert {s.name for s in result.statements} == {"by-id", "bump"}
    assert all(s.count > 0 for s in result.statements)
    assert result.transactions == sum(s.count for s in result.statements)
    assert result.errors == 0 and result.tps > 0
    assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms
    # the writes were rolled back, whichever engine ran them
    assert items.query("SELECT sum(qty) FROM items") == [(0,)]


def test_load_picks_pgbench_for_numbers_and_the_runner_for_text(items: TestDatabase) -> None:
    numbers = run_load(resolve(items.dsn), parse_workload(WORKLOAD), LoadOptions(clients=1, duration_s=1))
    assert numbers.engine == Engine.PGBENCH
    assert [s.reason for s in numbers.skipped] and "--allow-writes" in numbers.skipped[0].reason
    text = run_load(resolve(items.dsn), parse_workload(TEXT_WORKLOAD), LoadOptions(clients=1, duration_s=1))
    assert text.engine == Engine.RUNNER
    assert "by-code: $1 takes values such as 'c" in text.engine_reason
    assert text.statements[0].count > 0


def test_probe_load_cli_reports_the_profile_targets(cli, items: TestDatabase, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wl = tmp_path / "w.sql"
    wl.write_text(WORKLOAD)
    run = cli("probe", "load", "--dsn", items.dsn, "--workload", str(wl), "--clients", "1", "--duration", "1",
              "--profile", "development")
    assert run.code == 0, run.err
    assert "engine: pgbench (every statement fits pgbench -f" in run.out
    assert "Webhook p99" in run.out and "≤ 2,000 ms" in run.out and "met" in run.out
    as_json = cli("probe", "load", "--dsn", items.dsn, "--workload", str(wl), "--clients", "1", "--duration", "1",
                  "--profile", "development", "--format", "json")
    body = json.loads(as_json.out)
    assert body["result"]["kind"] == "dbtune-probe-load" and body["result"]["engine"] == "pgbench"
    assert [r["key"] for r in body["profile"]["rows"]] == ["webhook_rps_min", "webhook_p99_ms_max",
                                                           "webhook_error_rate_pct_max"]
    assert body["profile"]["rows"][0]["measured"] == body["result"]["tps"]
    refused = cli("probe", "load", "--dsn", items.dsn, "--workload", str(wl), "--profile", "production")
    assert refused.code == 2
    assert refused.err.strip().splitlines() == [
        "error: probe load puts 4 sessions of load on the target for 10 s and the profile is production: pass "
        "--yes (never on production without it)"]
    forced = cli("probe", "load", "--dsn", items.dsn, "--workload", str(wl), "--profile", "staging",
                 "--engine", "pgbench", "--duration", "0")
    assert forced.code == 2 and forced.err.startswith("error: --duration must be at least 1 second, got 0")


def test_profile_table_sets_measured_values_against_the_targets(items: TestDatabase) -> None:
    from dbtune.config import load_config
    from dbtune.samples import samples_dir

    config, _ = load_config(samples_dir() / "enterprise.toml")
    result = run_load(resolve(items.dsn), parse_workload(WORKLOAD), LoadOptions(clients=1, duration_s=1))

    class Race:
        win_rate_pct = 97.5
        sessions = 16
        rounds = 40

    table = profile_table(config, load=result, race=Race())
    rows = {r.key: r for r in table.rows}
    assert rows["webhook_rps_min"].bound == 1000 and rows["webhook_rps_min"].measured == result.tps
    assert rows["webhook_rps_min"].status == (Status.MET if result.tps >= 1000 else Status.MISSED)
    assert rows["vendor_win_rate_pct_min"].status == Status.MISSED
    assert rows["db_recovery_s_max"].status == Status.NOT_MEASURED
    assert rows["replication_lag_s_max"].bound == 5 and rows["replication_lag_s_max"].status == Status.NOT_MEASURED
    assert rows["redis_availability"].how == "not measured: outside the database"


def test_recovery_on_a_throwaway_server_and_the_estimate() -> None:
    server = LocalServer.create(embedded_bindir())
    try:
        server.init()
        server.start()
        measured = crash_and_recover(server, "postgres", writers=2, load_s=1)
        assert measured.transactions > 0 and measured.recovery_s > 0
        assert measured.wal_to_replay_bytes and measured.wal_to_replay_bytes > 0
        assert "redo done" in server.logfile.read_text()
        estimate = estimate_recovery(resolve(server.dsn()), wal_rate_bytes_s=measured.wal_rate_bytes_s,
                                     replay_rate_bytes_s=1024 * 1024, replay_rate_source="test")
        assert estimate.checkpoint_timeout_s == 300 and estimate.max_wal_size_bytes == 1024 ** 3
        expected = min(1024 ** 3, measured.wal_rate_bytes_s * 1.9 * 300)
        assert estimate.worst_replay_bytes == int(expected)
        assert estimate.estimate_s == round(int(expected) / (1024 * 1024), 3)
        # the scratch table is gone
        import psycopg
        with psycopg.connect(server.dsn()) as conn:
            assert conn.execute("SELECT to_regclass('dbtune_probe_recovery')").fetchone() == (None,)
    finally:
        server.destroy()


def test_probe_recovery_on_a_local_server_measures_and_estimates(cli) -> None:  # type: ignore[no-untyped-def]
    """The crash's redo gives the estimate its replay rate, unless the server logged it as taking 0.00 s
    (too short to time): then the rate is the assumed one, and the report says so."""
    run = cli("probe", "recovery", "--local-server", "--writers", "1", "--load", "0.5", "--profile", "production",
              "--format", "json")
    assert run.code in (0, 1), run.err
    body = json.loads(run.out)
    measured, estimate = body["result"]["measured"], body["result"]["estimate"]
    assert measured["writers"] == 1 and measured["transactions"] > 0 and measured["wal_to_replay_bytes"] > 0
    assert measured["redo_s"] is not None
    assert estimate["replay_rate_source"] == ("measured by this crash's redo" if measured["redo_s"] > 0
                                              else "assumed, not measured")
    assert estimate["wal_rate_source"] == "the write load's WAL"
    row = body["profile"]["rows"][0]
    assert row["key"] == "db_recovery_s_max" and row["bound"] == 10 and row["measured"] == measured["recovery_s"]
    assert run.code == (1 if row["status"] == "missed" else 0)


def test_recovery_estimate_on_each_server(db: TestDatabase) -> None:
    """The estimate reads the settings and the WAL rate from pg_stat_wal on every server (15 and 18)."""
    db.execute("CREATE TABLE w (x int)")
    estimate = estimate_recovery(resolve(db.dsn), sample_s=0.2)
    assert estimate.wal_rate_source == "pg_stat_wal.wal_bytes over 0.2 s"
    assert estimate.replay_rate_source == "assumed, not measured"
    assert estimate.worst_replay_bytes == int(min(estimate.max_wal_size_bytes, estimate.wal_rate_bytes_s
                                                  * (1 + estimate.completion_target) * estimate.checkpoint_timeout_s))
    assert estimate.since_redo_bytes is not None and estimate.since_redo_bytes > 0


def test_recovery_refuses_to_crash_a_server_dbtune_did_not_start(cli, items: TestDatabase) -> None:  # type: ignore[no-untyped-def]
    run = cli("probe", "recovery", "--dsn", items.dsn, "--crash", "--profile", "staging")
    assert run.code == 2
    assert run.err.strip().splitlines() == [
        "error: probe recovery --crash refused: dbtune crashes only a server it started (--local-server); for "
        "--dsn it estimates the recovery from the checkpoint settings"]
    estimate = cli("probe", "recovery", "--dsn", items.dsn, "--sample", "0.2", "--profile", "staging",
                   "--format", "json")
    assert estimate.code == 0, estimate.err
    body = json.loads(estimate.out)
    result = body["result"]
    assert result["measured"] is None and result["estimate"]["docs"].endswith("wal-configuration.html")
    assert [r["key"] for r in body["profile"]["rows"]] == ["db_recovery_s_max"]
    assert body["profile"]["rows"][0]["measured"] == result["estimate"]["estimate_s"]


def test_lag_on_a_real_standby(pg18: LocalServer, cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    standby = standby_of(pg18)
    try:
        result = measure_lag(resolve(pg18.dsn()), [(resolve(standby.dsn()), "--replica"),
                                                   (resolve(pg18.dsn()), "--replica")])
        assert len(result.standbys) == 1 and result.standbys[0].state == "streaming"
        replica, not_a_replica = result.replicas
        assert replica.error is None and replica.lag_s is not None and replica.lag_s >= 0
        assert not_a_replica.error == "not a standby (pg_is_in_recovery() is false)"
        assert result.worst_s is not None
        run = cli("probe", "lag", "--dsn", pg18.dsn(), "--replica", standby.dsn(), "--profile", "production")
        assert "1 standby(s) in pg_stat_replication" in run.out
        assert "Replication lag" in run.out and "≤ 5 s" in run.out
        assert run.code == (0 if result.worst_s <= 5 else 1)
        # The application config's read replica, its password from PGPASSWORD (never in the file's model).
        env = tmp_path / ".env.production"
        env.write_text(f"DATABASE_URL=postgresql://postgres@127.0.0.1:{pg18.port}/postgres\n"
                       f"DATABASE_READ_REPLICA_URL=postgresql://postgres@127.0.0.1:{standby.port}/postgres\n")
        run = cli("probe", "lag", "--dsn", pg18.dsn(), "--app-config", str(env), "--profile", "production",
                  env={"PGPASSWORD": pg18.password})
        assert re.search(rf"^replica postgres@127\.0\.0\.1:{standby.port}/postgres \({re.escape(str(env))}:2 "
                         r"\(DATABASE_READ_REPLICA_URL\)\): replay lag ", run.out, re.MULTILINE), run.out
        assert pg18.password not in run.out + run.err
    finally:
        standby.destroy()


FAILING = """
-- name: by-id
SELECT qty FROM items WHERE id = $1;
-- name: divide
SELECT 1 / (qty - qty) FROM items WHERE id = $1;
"""


def test_a_failing_statement_is_counted_and_pgbench_gives_way_to_the_runner(items: TestDatabase) -> None:
    """pgbench stops a session at its first error, so the load is no longer clients x duration: unless it
    was forced, the runner measures instead, counting the errors and going on; forced, the report says so."""
    settings, workload = resolve(items.dsn), parse_workload(FAILING)
    result = run_load(settings, workload, LoadOptions(clients=2, duration_s=1))
    assert result.engine == Engine.RUNNER
    assert result.engine_reason.startswith("pgbench stopped 2 of 2 sessions at their first error (")
    assert "division by zero" in result.engine_reason
    by_name = {s.name: s for s in result.statements}
    assert by_name["divide"].count == 0 and by_name["divide"].errors > 0
    assert by_name["divide"].first_error == "division by zero" and by_name["by-id"].errors == 0
    assert result.errors == by_name["divide"].errors and 0 < result.error_rate_pct < 100
    forced = run_load(settings, workload, LoadOptions(clients=2, duration_s=1, engine=Engine.PGBENCH))
    assert forced.engine == Engine.PGBENCH and forced.errors == 2
    assert "; pgbench stopped 2 of 2 sessions at their first error" in forced.engine_reason


@pytest.mark.parametrize(("args", "message"), [
    (["--clients", "0"], "error: --clients must be at least 1, got 0"),
    (["--engine", "pgbench", "--workload", "TEXT"], "error: --engine pgbench: by-code: $1 takes values such as "
                                                    "'c"),
    (["--profile", "nosuch"], "error: --profile 'nosuch': no such sample profile"),
    (["--from-pg-stat-statements", "3"], "error: give exactly one of --workload FILE and --from-pg-stat-statements N"),
])
def test_probe_load_bad_input_is_one_error_line(cli, items: TestDatabase, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                args: list[str], message: str) -> None:
    (tmp_path / "w.sql").write_text(WORKLOAD)
    (tmp_path / "t.sql").write_text(TEXT_WORKLOAD)
    args = [str(tmp_path / "t.sql") if a == "TEXT" else a for a in args]
    if "--workload" not in args:
        args += ["--workload", str(tmp_path / "w.sql")]
    if "--profile" not in args:
        args += ["--profile", "staging"]
    run = cli("probe", "load", "--dsn", items.dsn, "--duration", "1", *args)
    assert run.code == 2
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), run.err


def test_lag_reports_an_unreachable_replica_and_goes_on(cli, items: TestDatabase) -> None:  # type: ignore[no-untyped-def]
    from dbtune.db.local_server import free_port

    run = cli("probe", "lag", "--dsn", items.dsn, "--replica", f"host=127.0.0.1 port={free_port()} dbname=x",
              "--profile", "production")
    assert run.code == 0, run.err
    assert "0 standby(s) in pg_stat_replication" in run.out
    assert re.search(r"\(--replica\): not measured: cannot connect to \S+ \(--replica\)", run.out), run.out
    assert "not measured: no replica reached" in run.out


def test_probe_output_writes_the_report_to_the_file(cli, items: TestDatabase, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``--output FILE`` on the probes: the report in the file, nothing on stdout; a missing directory is
    refused before the probe runs."""
    out = tmp_path / "lag.json"
    run = cli("probe", "lag", "--dsn", items.dsn, "--format", "json", "--output", str(out), "--profile", "production")
    assert run.code == 0 and run.out == "", run
    data = json.loads(out.read_text())
    assert data["result"]["command"] == "probe lag" and data["result"]["report_version"] == 1
    assert data["profile"]["command"] == "probe"
    assert_error(cli("probe", "lag", "--dsn", items.dsn, "--output", str(tmp_path / "no" / "lag.txt")), 2,
                 "--output", "no such directory")


def test_the_profile_table_renders_every_row_with_its_status() -> None:
    """The text renderer, pinned: bounds with ≥/≤, measured values (whole numbers from 1,000 on), the
    status and how each was measured; a target outside the database is not measured."""
    from dbtune.config import load_config
    from dbtune.probe.load import StatementLoad
    from dbtune.probe.profile import LOAD_KEYS, only
    from dbtune.report.probe import render_profile
    from dbtune.samples import samples_dir

    config, _ = load_config(samples_dir() / "development.toml")
    from dbtune.probe.load import LoadResult

    # The renderer takes any LoadResult; this one is built by hand.
    load = LoadResult(Engine.PGBENCH, "every statement fits", 4, 10, 10.01, 25_000, 30, 2500.0, 0.2, 0.9, 2500.5,
                      (StatementLoad("by-id", "SELECT 1", "read", 25_000, 30, 0.2, 0.9, 2500.5),))
    text = render_profile(only(profile_table(config, load=load), (*LOAD_KEYS, "redis_availability")))
    assert text.splitlines() == [
        "profile development: 1 met, 1 missed",
        "target                                 profile       measured    status        how",
        "-------------------------------------  ------------  ----------  ------------  "
        "----------------------------------------------------------",
        "Webhook RPS (database transactions/s)  ≥ 100 tps     2,500 tps   met           "
        "probe load: 4 clients x 10 s, pgbench, 25,000 transactions",
        "Webhook p99                            ≤ 2,000 ms    2,500 ms    missed        "
        "probe load: 4 clients x 10 s, pgbench, 25,000 transactions",
        "Webhook errors                         —             0.12 %      no target     "
        "probe load: 4 clients x 10 s, pgbench, 25,000 transactions",
        "Redis availability                     not required  —           not measured  "
        "not measured: outside the database",
    ]


def test_pgbench_scripts_keep_what_pgbench_would_change_out() -> None:
    """A value \\set would print back otherwise ('007' as 7) is left to the runner; a ``$1`` in a string
    literal stays as written, the statement's ``$n`` become ``:pn`` set from the sampled values."""
    from dbtune.probe.load import LoadStatement, pgbench_binary, pgbench_script, pgbench_unfit
    from dbtune.workload.model import WorkloadQuery
    from dbtune.workload.params import Parameters

    q = WorkloadQuery("zip", "SELECT count(*) FROM t WHERE zip = $1 AND note <> '$1'")
    binary = pgbench_binary()
    assert pgbench_unfit([LoadStatement(q, "read", Parameters((("007",),)))], binary) == (
        "zip: $1 takes values such as '007', which pgbench's \\set cannot express")
    ready = LoadStatement(q, "read", Parameters((("7",), ("-12",))))
    assert pgbench_unfit([ready], binary) is None
    assert pgbench_script(ready).splitlines() == [
        "\\set i random(0, 1)",
        "\\set p1 CASE WHEN :i = 0 THEN 7 ELSE -12 END",
        "SELECT /* dbtune */ count(*) FROM t WHERE zip = :p1 AND note <> '$1';"]
