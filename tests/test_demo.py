"""``dbtune demo`` on its own embedded server, run as a user runs it: each stage's output appears when the
stage runs, the demo ends with an audit after the migration that says what is left and why, the
``--keep`` hint is a command that works as printed, and generated file names keep whole words."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_runner import CLI, _clean_env
from conftest import TestDatabase
from test_migrate import load_guide

from dbtune.samples import samples_dir

pytestmark = pytest.mark.measures  # timed verdicts: alone under xdist (tests/conftest.py)


def dbtune(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m dbtune ARGS`` with stderr merged into stdout, as a terminal shows them (so the order
    of progress lines and results is what a user sees), and no PG*/DBTUNE_*/DATABASE_URL variables."""
    return subprocess.run([sys.executable, "-m", "dbtune", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=cwd, env={**_clean_env(), **(env or {})},
                          timeout=300)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One whole demo on a small data set (the loop is the same at every scale)."""
    cwd = tmp_path_factory.mktemp("demo")
    run = dbtune("demo", "--scale", "0.02", "--iterations", "5", "--bench-iterations", "3", cwd=cwd,
                 env={"XDG_STATE_HOME": str(cwd / "state")})
    assert run.returncode == 0, run.stdout[-3000:]
    return run.stdout


def _position(out: str, marker: str) -> int:
    """Where ``marker`` starts a line of ``out``; fails the test when no line does."""
    found = re.search(rf"^{re.escape(marker)}", out, re.MULTILINE)
    assert found is not None, f"no line starts with {marker!r}:\n{out[-3000:]}"
    return found.start()


def test_each_stage_prints_its_result_when_it_runs(demo_run: str) -> None:
    """The audit report comes after "[4/15] audit" and before "[5/15] advise", not after the benchmarks;
    likewise the advisor's choice, the migration, the lint verdict, the race before the migration, the
    revisions applied, the race after it, the comparison, the last audit and the profile table."""
    out = demo_run
    stages = ["audit", "advise", "generate", "lint", "benchmark before", "race before", "apply", "benchmark after",
              "race after", "compare", "audit after the migration", "profile table"]
    results = {"audit": "dbtune audit of ", "advise": "ADVISOR: ranked by trial build", "generate": "MIGRATION (",
               "lint": "LINT: ", "race before": "RACE BEFORE THE MIGRATION", "apply": "APPLIED: ",
               "race after": "RACE AFTER THE MIGRATION", "compare": "BEFORE / AFTER",
               "audit after the migration": "AUDIT AFTER THE MIGRATION of ", "profile table": "profile production: "}
    starts = [_position(out, f"[{n}/15] {name}") for n, name in enumerate(stages, start=4)]
    ends = [*starts[1:], _position(out, "demo finished in ")]
    for name, start, end in zip(stages, starts, ends, strict=True):
        if name in results:
            assert start < _position(out, results[name]) < end, (name, out[start:end][:2000])


def test_the_demo_races_vendor_accepts_before_and_after_the_migration(demo_run: str) -> None:
    """``probe race`` on the guide's vendor_routing_responses before the migration finds rounds with several
    winning vendors and names the partial unique index; after the migration, which builds it, every round
    has exactly one winner and the unique violations name the index."""
    before = demo_run[_position(demo_run, "RACE BEFORE THE MIGRATION"):_position(demo_run, "APPLIED: ")]
    after = demo_run[_position(demo_run, "RACE AFTER THE MIGRATION"):_position(demo_run, "BEFORE / AFTER")]
    rate = re.search(r"^vendor win rate ([0-9.]+) % \((\d+) of 200 rounds with exactly one winner\)$", before,
                     re.MULTILINE)
    assert rate is not None and float(rate.group(1)) < 100, before
    assert "16 sessions × 200 rounds" in before
    assert "CREATE UNIQUE INDEX CONCURRENTLY unique_routing_acceptance" in before
    assert re.search(r"^vendor win rate 100 % \(200 of 200 rounds with exactly one winner\)$", after,
                     re.MULTILINE), after
    assert "one winner per round enforced by unique_routing_acceptance:" in after
    assert re.search(r"^ +\d+  23505 UniqueViolation on unique_routing_acceptance \(the constraint working\)$",
                     after, re.MULTILINE), after


def test_the_demo_audits_the_guides_application_config_alongside_the_database(demo_run: str) -> None:
    """The first audit reads the guide's .env.production, its PgBouncer as docker-compose and as
    pgbouncer.ini, and database.js, and the write paths of accept.sql: the pools go through PgBouncer, so
    the server-side demand is PgBouncer's 50 + 5 per pool (55 of the server's 97), not the 5 × 50 the
    application opens to PgBouncer (250 of its 1,000); database.js's SET lock_timeout behind the transaction
    pooler is an error with its ALTER ROLE fix; the vendor accept and the webhook record check, then insert,
    with no unique index."""
    audit = demo_run[_position(demo_run, "dbtune audit of "):_position(demo_run, "[5/15] advise")]
    section = audit[audit.index("\nAPPLICATION CONFIG\n"):]
    guide = samples_dir() / "guide"
    for name, fmt in ((".env.production", "dotenv"), ("docker-compose.yml", "compose"),
                      ("pgbouncer.ini", "pgbouncer"), ("database.js", "javascript")):
        assert f"- {guide / name} ({fmt})\n" in section, section
    assert ("- connection budget: pgbouncer 55 of 97 server connections (max_connections 100 − 3 reserved), 57%; "
            "250 client connections to PgBouncer of 1000 (max_client_conn × instances), 25%\n") in section
    # The report's table wraps its columns anywhere, long paths too: compared without whitespace.
    squeezed = "".join(audit.split())
    assert "".join(f"session-timeout-behind-transaction-pooler app lock_timeout = 30s is set per session "
                   f"({guide / 'database.js'}:5 (lock_timeout)), but PgBouncer runs in transaction mode"
                   .split()) in squeezed
    assert "ALTER ROLE app IN DATABASE guide SET lock_timeout TO '30s';" in audit
    accept = guide / "accept.sql"
    for table, check, insert in (("vendor_routing_responses", 12, 15), ("webhook_idempotency", 24, 27)):
        assert "".join(f"check-then-insert-without-unique public.{table} {accept}:{check} checks public.{table}"
                       .split()) in squeezed, table
        assert f"{accept}:{insert}theninserts" in squeezed, table


def test_the_demo_ends_with_what_the_migration_left_and_why(demo_run: str) -> None:
    """The audit after the migration counts what it fixed (the check-then-insert races among it: the
    migration built the unique indexes) and lists what is left: the application role's settings (a role
    setting, not a schema change, with its ALTER ROLE fix: the lock_timeout that database.js sets per
    session behind the transaction pooler, and the timeouts left unset), each with the reason."""
    after = demo_run[_position(demo_run, "AUDIT AFTER THE MIGRATION of "):_position(demo_run, "[15/15] profile table")]
    fixed = re.search(r"^fixed by the migration: (\d+) finding\(s\) \((.*)\)$", after, re.MULTILINE)
    assert fixed is not None, after
    assert "expected-index-missing 7" in fixed.group(2) and "expected-unique-missing 2" in fixed.group(2)
    assert "check-then-insert-without-unique 2" in fixed.group(2)
    assert re.search(r"^left: \d+ warning\(s\) and error\(s\), and why the migration did not fix them", after,
                     re.MULTILINE), after
    flat = " ".join(after.split())
    assert "connection-budget" not in flat  # through PgBouncer, 55 of 97
    assert "error session-timeout-behind-transaction-pooler app: lock_timeout = 30s is set per session" in flat
    assert "fix: ALTER ROLE app IN DATABASE guide SET lock_timeout TO '30s';" in flat
    assert ("warning timeout-unset app: statement_timeout, idle_in_transaction_session_timeout "
            "are 0 (no limit) for role app in database guide" in flat)
    assert "why: a setting for new sessions (ALTER ROLE … SET), not a schema change" in flat
    assert "fix: ALTER ROLE app IN DATABASE guide SET statement_timeout TO '30s';" in flat
    # What the migration fixed is not listed as left, and no database-wide timeout is proposed.
    assert "expected-index-missing" not in after.split("left:", 1)[1]
    assert "ALTER DATABASE" not in demo_run


def test_the_demo_shows_the_advisors_choice_beside_the_checklist(demo_run: str) -> None:
    """The advisor's stage says what it kept (measured on the server) and what it reverted, and judges the
    guide's seven expected indexes against the workload: the accepted-response index and the message-SID
    index, which the guide's own unique indexes serve, are not needed (the others depend on what the
    advisor keeps: an index it keeps may serve one); each of the seven is listed once, a "not needed" one
    with its reason."""
    stage = demo_run[_position(demo_run, "ADVISOR: ranked by "):_position(demo_run, "MIGRATION (")]
    assert re.search(r"^  kept(?: \d+ \(measured faster on the server; the migration builds them\)|: nothing)",
                     stage, re.MULTILINE), stage
    judged = stage[stage.index("the checklist's 7 expected index(es), judged against the workload:"):]
    lines = [line.strip() for line in judged.splitlines()[1:]
             if line.strip().startswith(("needed ", "not needed "))][:7]
    assert len(lines) == 7 and all(line.startswith("needed ") or ": served by " in line for line in lines), judged
    assert any(line.startswith("not needed  vendor_routing_responses (routing_id, response) WHERE response = "
                               "'ACCEPTED'") for line in lines), judged
    assert any(line.startswith("not needed  webhook_idempotency (message_sid)") for line in lines), judged
    assert re.search(r"^  the advisor would add: ", judged, re.MULTILINE), judged


def test_the_demo_names_its_revision_in_whole_words(demo_run: str) -> None:
    migration = demo_run[_position(demo_run, "MIGRATION ("):_position(demo_run, "LINT: ")]
    assert re.search(r"^  [0-9a-f]{12}_dbtune_recommended_indexes_and_constraints\.py$", migration,
                     re.MULTILINE), migration


def test_keep_hint_is_a_command_that_audits_with_the_demos_config(tmp_path: Path) -> None:
    """``--keep`` prints ``dbtune audit --dsn … --config …`` naming the profile the demo audited against;
    run as printed, it audits the kept server with that profile."""
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    run = dbtune("demo", "--keep", "--audit-only", "--profile", "staging", "--scale", "0.01", "--iterations", "2",
                 cwd=tmp_path, env=env)
    try:
        assert run.returncode == 0, run.stdout[-3000:]
        hint = re.search(r"^the demo server is running: (dbtune audit .*)$", run.stdout, re.MULTILINE)
        assert hint is not None, run.stdout[-2000:]
        args = shlex.split(hint.group(1))
        assert args[args.index("--config") + 1] == str(samples_dir() / "staging.toml")
        audited = dbtune(*args[1:], "--fail-on", "never", cwd=tmp_path, env=env)
        assert audited.returncode == 0, audited.stdout[-2000:]
        assert audited.stdout.splitlines()[0].endswith("— profile staging"), audited.stdout[:500]
    finally:
        stopped = dbtune("demo", "--stop", cwd=tmp_path, env=env)
    assert stopped.returncode == 0 and "stopped the demo server in" in stopped.stdout
    assert re.search(r"^stop it with: dbtune demo --stop$", run.stdout, re.MULTILINE), run.stdout[-500:]


def test_generated_file_names_end_on_a_whole_word(db18: TestDatabase, cli: CLI, tmp_path: Path) -> None:
    """A long ``--message`` is cut after its last whole word that fits, the same way in the SQL files and
    in the Alembic revision (Alembic alone cuts at 40 characters)."""
    load_guide(db18)
    message = "Indexes for the retailer dashboard and the webhook deduplication service, reviewed by the DBA team"
    config = str(samples_dir() / "production.toml")
    for fmt, folder in (("sql", tmp_path / "sql"), ("alembic", tmp_path / "alembic")):
        run = cli("migrate", "generate", "--dsn", db18.dsn, "--config", config, "--format", fmt, "--dir",
                  str(folder), "--message", message)
        assert run.code == 0, run
    names = [p.name for p in (tmp_path / "sql").glob("*.sql")] + [p.name for p in
                                                                  (tmp_path / "alembic" / "versions").glob("*.py")]
    stems = {re.sub(r"(\.down)?\.(sql|py)$", "", name).split("_", 1)[1] for name in names}
    assert len(names) == 3 and stems == {"indexes_for_the_retailer_dashboard_and_the_webhook"}, names


def test_the_demo_ends_with_the_profiles_targets_measured(demo_run: str) -> None:
    """The last stage sets the production profile's targets beside what was measured on the demo's server:
    the load's throughput, p99 and errors, replication lag on a real standby, the crash recovery, and the
    connection budget of the profile's pools through the guide's PgBouncer (55 server connections of the
    server's 97)."""
    table = demo_run[_position(demo_run, "profile production: "):_position(demo_run, "demo finished in ")]
    rows = {line.split("  ")[0]: line for line in table.splitlines()[3:] if line.strip()}
    for label in ("Webhook RPS (database transactions/s)", "Webhook p99", "Webhook errors", "DB recovery time",
                  "Replication lag"):
        assert re.search(r"  (met|missed)  ", rows[label]), rows[label]
    assert re.search(r"≤ 97 connections\s+55 connections\s+met\s+pgbouncer 55 of 97 server connections",
                     rows["Connection budget (pools x instances)"]), rows["Connection budget (pools x instances)"]
    assert "probe recovery: crash under writes from 4 sessions" in rows["DB recovery time"]
    assert "Vendor win rate" in rows
