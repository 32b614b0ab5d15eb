"""``dbtune audit --app-config`` and ``app_config = [...]`` against real servers and a real PgBouncer
(Debian's package, started by ``conftest.start_pgbouncer`` as the servers' unprivileged OS user).

The application's pools feed the connection-budget check as ``[[pool]]`` entries do; a value written in
dbtune.toml wins; the report (text and JSON) lists the sources read and where each value came from; a
PgBouncer whose console cannot be reached is a skipped source and the audit goes on; bad input is one
``error:`` line naming file and line, exit 2; no output holds a password from a URL.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import conftest
import psycopg
import pytest
from cli_runner import CLI, assert_error
from conftest import PgBouncer

from dbtune.appconfig.pgbouncer_live import read_live
from dbtune.db.local_server import free_port

SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"
SECRET = "Sup3r-s3cret-pw"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def line_of(path: Path, needle: str) -> int:
    [n] = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    return n


def budget_findings(report: dict[str, object]) -> list[dict[str, object]]:
    return [f for f in report["findings"] if f["check_name"] == "connection-budget"]  # type: ignore[attr-defined,index]


# --- a real PgBouncer -------------------------------------------------------------------------------


def test_live_pgbouncer_show_config_pools_databases(pgbouncer: PgBouncer, findings_db: conftest.TestDatabase) -> None:
    with psycopg.connect(pgbouncer.dsn(findings_db.name), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM child").fetchone() == (1000,)
        bouncer, reason = read_live(pgbouncer.admin_dsn())
    assert reason is None and bouncer is not None and bouncer.live
    assert (bouncer.pool_mode, bouncer.max_client_conn, bouncer.default_pool_size, bouncer.reserve_pool_size,
            bouncer.reserve_pool_timeout_ms, bouncer.server_idle_timeout_ms, bouncer.listen_port) == \
        ("transaction", 40, 7, 2, 4000, 90_000, pgbouncer.port)
    assert bouncer.origins["pool_mode"].key == "SHOW CONFIG pool_mode"
    assert (findings_db.name, "postgres") in {(p["database"], p["user"]) for p in bouncer.pools}
    assert findings_db.name in bouncer.databases  # SHOW DATABASES: the auto-created entry of the "*" fallback


def test_the_file_and_the_live_pgbouncer_agree(pgbouncer: PgBouncer) -> None:
    from dbtune.appconfig import read_app_config

    app = read_app_config([pgbouncer.ini, pgbouncer.admin_dsn()])
    assert [(s.format, s.status) for s in app.sources] == [("pgbouncer", "read"), ("pgbouncer-live", "read")]
    from_file, live = app.poolers
    for field in ("pool_mode", "max_client_conn", "default_pool_size", "reserve_pool_size", "reserve_pool_timeout_ms",
                  "server_idle_timeout_ms", "listen_port"):
        assert getattr(from_file, field) == getattr(live, field), field


def test_audit_with_a_live_pgbouncer(cli: CLI, tmp_path: Path, pgbouncer: PgBouncer,
                                     findings_db: conftest.TestDatabase) -> None:
    """The pools go through the PgBouncer (its port); its live default_pool_size and reserve_pool_size
    make the server-side demand, each value named by where it came from."""
    env = write(tmp_path / ".env", f"DATABASE_URL=postgresql://postgres:{SECRET}@127.0.0.1:{pgbouncer.port}/shop\n"
                                   "DATABASE_POOL_MAX=30\nDATABASE_POOL_SIZE=5\nDATABASE_CONNECTION_TIMEOUT=2000\n")
    compose = write(tmp_path / "docker-compose.yml",
                    "services:\n  app:\n    env_file: .env\n    deploy:\n      replicas: 3\n")
    run = cli("audit", "--dsn", findings_db.dsn, "--select", "connection-budget", "--format", "json",
              "--app-config", str(compose), "--app-config", str(pgbouncer.ini),
              "--app-config", pgbouncer.admin_dsn())
    assert run.code == 1, run
    report = json.loads(run.out)
    [clients] = budget_findings(report)
    # 30 × 3 instances = 90 client connections against max_client_conn 40, from SHOW CONFIG
    assert "open 90 client connections to PgBouncer but it accepts 40" in clients["message"]
    sources = clients["evidence"]["sources"]
    assert sources["app"]["instances"] == f"{compose}:{line_of(compose, 'replicas')} (services.app.deploy.replicas)"
    assert sources["app"]["max"] == f"{env}:2 (DATABASE_POOL_MAX)"
    assert sources["pgbouncer"]["max_client_conn"].endswith("(SHOW CONFIG max_client_conn)")
    assert [s["format"] for s in report["app_config"]["sources"]] == ["compose", "pgbouncer", "pgbouncer-live"]
    # The budget with its numbers: PgBouncer's (default_pool_size 7 + reserve_pool_size 2) per pool it
    # serves (SHOW POOLS) against max_connections 100 less 3 reserved; 90 clients against its 40.
    [pools] = [v["value"] for v in report["app_config"]["plan"] if v["setting"] == "pools"]
    assert report["connection_budget"] == {"max_connections": 100, "reserved_connections": 3, "budget": 97,
                                           "demand": 9 * pools, "by_owner": {"pgbouncer": 9 * pools},
                                           "client_connections": 90, "max_client_conn": 40}
    text = cli("audit", "--dsn", findings_db.dsn, "--select", "connection-budget",
               "--app-config", str(compose), "--app-config", str(pgbouncer.ini), "--app-config", pgbouncer.admin_dsn())
    assert (f"- connection budget: pgbouncer {9 * pools} of 97 server connections (max_connections "
            f"100 − 3 reserved), {9 * pools / 97:.0%}; 90 client connections to PgBouncer of 40 (max_client_conn × "
            "instances), 225%") in text.out
    # the live pools as SHOW POOLS has them, the test database's among them
    assert re.search(rf"- live .*: pool {findings_db.name}/postgres \(transaction\): cl_active \d+, cl_waiting \d+, "
                     r"sv_active \d+, sv_idle \d+, sv_used \d+, maxwait \d+ \(SHOW POOLS\)", text.out), text.out
    assert SECRET not in run.out + run.err + text.out + text.err


def test_an_unreachable_pgbouncer_is_a_skipped_source(cli: CLI, tmp_path: Path,
                                                      findings_db: conftest.TestDatabase) -> None:
    env = write(tmp_path / ".env", "DATABASE_POOL_MAX=60\nDATABASE_CONNECTION_TIMEOUT=2000\n")
    dead = f"host=127.0.0.1 port={free_port()} dbname=pgbouncer user=admin password={SECRET}"
    run = cli("audit", "--dsn", findings_db.dsn, "--select", "connection-budget", "--app-config", dead,
              "--app-config", str(env), "--app-config", str(SAMPLES / "guide" / "docker-compose.yml"))
    assert run.code == 0, run  # 60 of 97: below the 80 % warning, the audit went on
    assert "pgbouncer-live, skipped: PgBouncer's admin console at" in run.out
    assert "app-config: PgBouncer's admin console" in run.out  # SKIPPED section
    assert SECRET not in run.out + run.err and "password=***" in run.out


# --- pools from files into the budget ---------------------------------------------------------------


def test_app_config_pools_feed_the_budget(cli: CLI, tmp_path: Path, findings_db: conftest.TestDatabase) -> None:
    compose = write(tmp_path / "docker-compose.yml", f"""services:
  api:
    image: shop/api
    deploy:
      replicas: 4
    environment:
      DATABASE_URL: postgresql://api:{SECRET}@db:5432/shop
      DATABASE_POOL_MAX: 30
      DATABASE_CONNECTION_TIMEOUT: 5000
""")
    before = cli("audit", "--dsn", findings_db.dsn, "--select", "connection-budget", "--format", "json")
    assert before.code == 0 and budget_findings(json.loads(before.out)) == []
    run = cli("audit", "--dsn", findings_db.dsn, "--select", "connection-budget", "--format", "json",
              "--app-config", str(compose))
    assert run.code == 1, run
    [finding] = budget_findings(json.loads(run.out))
    assert finding["message"].startswith("the pools can open 120 connections but the server accepts 97")
    assert finding["evidence"]["sources"]["api"]["max"] == f"{compose}:{line_of(compose, 'POOL_MAX')} " \
                                                           "(DATABASE_POOL_MAX)"
    text = cli("audit", "--dsn", findings_db.dsn, "--select", "connection-budget", "--app-config", str(compose))
    assert "APPLICATION CONFIG" in text.out and f"- {compose} (compose)" in text.out
    assert "postgresql://api:***@db:5432/shop" in text.out
    assert SECRET not in run.out + run.err + text.out + text.err


def test_dbtune_toml_values_win_and_paths_are_relative_to_it(cli: CLI, tmp_path: Path,
                                                             findings_db: conftest.TestDatabase) -> None:
    app_dir = tmp_path / "deploy"
    app_dir.mkdir()
    write(app_dir / ".env.production", "DATABASE_POOL_MAX=40\nDATABASE_POOL_SIZE=10\nDATABASE_IDLE_TIMEOUT=30000\n")
    write(tmp_path / "dbtune.toml", 'app_config = ["deploy/.env.production"]\n'
                                    '[[pool]]\nname = "app"\nsize = 5\nmax = 20\ninstances = 6\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = cli("audit", "--dsn", findings_db.dsn, "--select", "connection-budget", "--format", "json",
              "--config", str(tmp_path / "dbtune.toml"), cwd=elsewhere)
    assert run.code == 1, run  # 20 × 6 = 120 (dbtune.toml's max), not 40 × 6
    report = json.loads(run.out)
    findings = budget_findings(report)
    assert any(f["message"].startswith("the pools can open 120 connections") for f in findings)
    plan = {(v["owner"], v["setting"]): v for v in report["app_config"]["plan"]}
    assert plan[("app", "max")]["source"] == "dbtune.toml" and plan[("app", "max")]["value"] == 20
    assert plan[("app", "idle_timeout")]["source"].endswith(".env.production:3 (DATABASE_IDLE_TIMEOUT)")
    assert plan[("app", "idle_timeout")]["value"] == 30000


# --- bad input: one error line, exit 2 --------------------------------------------------------------


@pytest.mark.parametrize("name, text, culprit", [
    (".env", f"DATABASE_URL=postgresql://a:{SECRET}@h/d\n{SECRET} is not a line\n", ".env:2: not a KEY=value line"),
    (".env.production", f"DATABASE_URL=mysql://root:{SECRET}@h/d\n", ".env.production:1: DATABASE_URL: unknown URL "
                                                                    "scheme 'mysql://'"),
    ("docker-compose.yml", f"services:\n  api:\n    environment:\n      - A={SECRET}\n     - B\n",
     "docker-compose.yml:5: not valid YAML"),
    ("pgbouncer.ini", "[databases]\n* = host=h\n[pgbouncer]\npool_mode = session\n[server]\nport = 1\n",
     "pgbouncer.ini:5: unknown section [server]"),
    # found by the fuzzer (benchmarks/faults.py --part fuzz): a size PgBouncer refuses was a traceback
    ("pgbouncer.ini", "[databases]\nx = host=h\n[pgbouncer]\npool_mode = transaction\ndefault_pool_size = 0\n",
     "PgBouncer default_pool_size = 0 ("),
    ("README.md", "# not a config\n", "README.md: format not recognised"),
])
def test_bad_app_config_is_one_error_line_exit_2(cli: CLI, tmp_path: Path, findings_db: conftest.TestDatabase,
                                                 name: str, text: str, culprit: str) -> None:
    path = write(tmp_path / name, text)
    run = cli("audit", "--dsn", findings_db.dsn, "--app-config", str(path))
    assert_error(run, 2, culprit, secrets=(SECRET,))
