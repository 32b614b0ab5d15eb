"""dbtune migrate: planning, rendering (golden files), applying on PostgreSQL 15 and 18, repairing
INVALID indexes, waiting for locks without stalling other sessions, and bad input."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from conftest import TestDatabase

from dbtune.audit import audit
from dbtune.config import load_config
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.errors import DbtuneError, UsageError
from dbtune.migrate import api
from dbtune.migrate.env import ADVISORY_LOCK_KEY, ApplyInProgress
from dbtune.migrate.runtime import ApplyError, ApplyOptions
from dbtune.migrate.workspace import ensure_environment
from dbtune.model import ChangeKind
from dbtune.report import Format, render
from dbtune.samples import guide_file, samples_dir

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"


def load_guide(db: TestDatabase, scale: float = 0.002) -> None:
    db.execute(guide_file("schema.sql").read_text())
    db.execute(guide_file("data.sql").read_text().replace(":scale", repr(scale)))
    db.execute("DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app') "
               "THEN CREATE ROLE app LOGIN; END IF; END $$")


def production():  # type: ignore[no-untyped-def]
    return load_config(samples_dir() / "production.toml")[0]


def quiet() -> ApplyOptions:
    lines: list[str] = []
    return ApplyOptions(report=lines.append, backoff_s=0.2)


def test_generated_migration_matches_golden_files(db18: TestDatabase, tmp_path: Path) -> None:
    """The revision and SQL files generated for the guide's schema are pinned, and the repository's
    migrations/versions holds exactly that revision."""
    load_guide(db18)
    report = audit(resolve(db18.dsn), production())
    alembic = api.generate(list(report.findings), tmp_path / "alembic")
    sql = api.generate(list(report.findings), tmp_path / "sql", fmt="sql")
    assert alembic.generated is not None and sql.generated is not None
    revision = alembic.generated.files[0]
    up, down = sql.generated.files
    if os.environ.get("DBTUNE_UPDATE_GOLDEN"):  # regenerate after a deliberate change, then review the diff
        for source, target in ((revision, GOLDEN / "guide_revision.py"), (up, GOLDEN / "guide.sql"),
                               (down, GOLDEN / "guide.down.sql"), (revision, ROOT / "migrations" / "versions"
                                                                   / revision.name)):
            target.write_text(source.read_text())
    assert revision.read_text() == (GOLDEN / "guide_revision.py").read_text()
    assert up.read_text() == (GOLDEN / "guide.sql").read_text()
    assert down.read_text() == (GOLDEN / "guide.down.sql").read_text()
    shipped = ROOT / "migrations" / "versions" / revision.name
    assert shipped.read_text() == revision.read_text()
    # The repository's environment is the template dbtune writes.
    for name in ("env.py", "script.py.mako"):
        assert (ROOT / "migrations" / name).read_text() == (tmp_path / "alembic" / name).read_text()


def test_plan_has_one_index_per_key(db18: TestDatabase) -> None:
    """The foreign key's index and the team's index on the same column are one step, under the team's
    name; the plain (message_sid) index is served by the unique one; a FK index that leads a planned
    two-column index is not built."""
    load_guide(db18)
    report = audit(resolve(db18.dsn), production())
    plan = api.plan_migration(list(report.findings))
    names = [s.change.index for s in plan.steps]
    assert len(names) == len(set(names))
    assert "public.idx_vendor_routing_responses_routing_id" in names
    assert "public.vendor_routing_responses_routing_id_idx" not in names
    assert "public.idx_webhook_idempotency_message_sid" not in names
    assert "public.webhook_idempotency_message_sid_key" in names
    assert "public.orders_retailer_id_idx" not in names  # led by idx_orders_retailer_created
    assert all(s.change.kind != ChangeKind.DROP_INDEX for s in plan.steps)
    assert set(plan.analyze) == {s.change.table for s in plan.steps}


def test_apply_then_nothing_left(db: TestDatabase, tmp_path: Path) -> None:
    """On PostgreSQL 15 and 18: apply builds every index valid, status shows it applied, a second audit
    has no index finding, and generating again writes nothing."""
    load_guide(db)
    settings = resolve(db.dsn)
    report = audit(settings, production())
    api.generate(list(report.findings), tmp_path)
    assert [s.applied for s in api.status(tmp_path, settings)] == [False]
    applied = api.apply(tmp_path, settings, quiet())
    assert len(applied) == 1
    assert [s.applied for s in api.status(tmp_path, settings)] == [True]
    assert db.query("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND NOT i.indisvalid") == [(0,)]
    after = audit(settings, production())
    index_checks = {"expected-index-missing", "expected-unique-missing", "foreign-key-without-index",
                    "redundant-index", "duplicate-index"}
    assert [f for f in after.findings if f.check_name in index_checks] == []
    again = api.generate(list(after.findings), tmp_path)
    assert again.generated is None
    # The downgrade undoes every step.
    api.downgrade(tmp_path, settings, "base", quiet())
    assert [s.applied for s in api.status(tmp_path, settings)] == [False]
    assert db.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                    "AND indexname LIKE 'idx_%'") == [(0,)]


def test_dry_run_changes_nothing(db18: TestDatabase, tmp_path: Path) -> None:
    load_guide(db18)
    settings = resolve(db18.dsn)
    api.generate(list(audit(settings, production()).findings), tmp_path)
    lines: list[str] = []
    api.apply(tmp_path, settings, ApplyOptions(dry_run=True, report=lines.append))
    assert [s.applied for s in api.status(tmp_path, settings)] == [False]
    assert db18.query("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'idx_%'") == [(0,)]
    text = "\n".join(lines)
    assert "would build public.idx_orders_status_created (SHARE UPDATE EXCLUSIVE lock, public.orders is" in text
    assert re.search(r"public\.orders is \d+ (bytes|kB|MB|GB)\)", text), text  # pg_size_pretty's form


INVALID_SETUP = """
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO accounts SELECT g, 'user' || (g % 50) || '@example.com' FROM generate_series(1, 200) g;
"""


def _plant_invalid_unique(db: TestDatabase) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email)")
    assert db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_key'::regclass") == [(False,)]


EXPECT_EMAIL_KEY = {"expect": {"unique": [{"name": "accounts_email_key", "table": "accounts", "columns": ["email"]}]}}


def _invalid_unique_without_duplicates(db: TestDatabase):  # type: ignore[no-untyped-def]
    """An INVALID unique index from a failed build, its duplicates since deleted: (settings, config)."""
    db.execute(INVALID_SETUP)
    _plant_invalid_unique(db)
    db.execute("DELETE FROM accounts WHERE id > 50")
    return resolve(db.dsn), parse_config(EXPECT_EMAIL_KEY)


def test_apply_repairs_invalid_index_from_failed_build(db: TestDatabase, tmp_path: Path) -> None:
    """A concurrent unique build that failed on duplicate keys leaves an INVALID index; once the
    duplicates are gone, apply drops it and builds it again, valid."""
    settings, config = _invalid_unique_without_duplicates(db)
    report = audit(settings, config)
    assert {f.check_name for f in report.findings} >= {"invalid-index", "expected-unique-missing"}
    api.generate(list(report.findings), tmp_path)
    options = quiet()
    api.apply(tmp_path, settings, options)
    assert db.query("SELECT indisvalid, indisunique FROM pg_index "
                    "WHERE indexrelid = 'accounts_email_key'::regclass") == [(True, True)]


def test_failed_unique_build_is_reported_and_leaves_no_invalid_index(db18: TestDatabase, tmp_path: Path) -> None:
    """Duplicate keys that arrive after the migration was generated (the audit saw none, so the build is
    planned): apply reports the failed build and leaves no INVALID index."""
    db18.execute(INVALID_SETUP)
    db18.execute("DELETE FROM accounts WHERE id > 50")
    settings, config = resolve(db18.dsn), parse_config(EXPECT_EMAIL_KEY)
    api.generate(list(audit(settings, config).findings), tmp_path)
    db18.execute("INSERT INTO accounts VALUES (51, 'user1@example.com')")
    with pytest.raises(ApplyError, match=r"cannot be built: duplicate keys \(user1@example.com\) in 2 rows"):
        api.apply(tmp_path, settings, quiet())
    assert db18.query("SELECT count(*) FROM pg_class WHERE relname = 'accounts_email_key'") == [(0,)]
    assert [s.applied for s in api.status(tmp_path, settings)] == [False]


def test_unique_rebuild_over_duplicate_keys_stops_before_dropping(db: TestDatabase, tmp_path: Path) -> None:
    """The rebuild of an INVALID unique index, generated when the duplicates were gone, applied after they
    came back: apply lists the duplicate keys and drops nothing, so the audit still reports the index."""
    settings, config = _invalid_unique_without_duplicates(db)
    api.generate(list(audit(settings, config).findings), tmp_path)
    db.execute("INSERT INTO accounts VALUES (51, 'user1@example.com'), (52, 'user2@example.com')")
    with pytest.raises(ApplyError, match="duplicate") as failure:
        api.apply(tmp_path, settings, quiet())
    assert "user1@example.com" in str(failure.value) and "user2@example.com" in str(failure.value)
    assert db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_key'::regclass") \
        == [(False,)]
    assert "invalid-index" in {f.check_name for f in audit(settings, config).findings}


def test_index_built_by_hand_is_a_clean_no_op(db18: TestDatabase, tmp_path: Path) -> None:
    load_guide(db18)
    settings = resolve(db18.dsn)
    api.generate(list(audit(settings, production()).findings), tmp_path)
    db18.execute("CREATE INDEX idx_orders_status_created ON orders (status, created_at DESC)")
    lines: list[str] = []
    options = ApplyOptions(report=lines.append)
    api.apply(tmp_path, settings, options)
    assert any("idx_orders_status_created already exists" in line for line in lines)


def test_index_name_taken_by_another_index_is_refused(db18: TestDatabase, tmp_path: Path) -> None:
    load_guide(db18)
    settings = resolve(db18.dsn)
    api.generate(list(audit(settings, production()).findings), tmp_path)
    db18.execute("CREATE INDEX idx_orders_status_created ON orders (total_cents)")
    with pytest.raises(ApplyError, match="taken by a different index"):
        api.apply(tmp_path, settings, quiet())


def test_interrupted_build_is_finished_by_the_next_run(db18: TestDatabase, tmp_path: Path) -> None:
    """An INVALID index left under the planned name (a killed concurrent build) is dropped and rebuilt."""
    load_guide(db18)
    settings = resolve(db18.dsn)
    api.generate(list(audit(settings, production()).findings), tmp_path)
    # The catalog state a killed concurrent build leaves: the index exists, indisvalid = false.
    db18.execute("CREATE INDEX idx_orders_status_created ON orders (status, created_at DESC)")
    db18.execute("UPDATE pg_index SET indisvalid = false "
                 "WHERE indexrelid = 'idx_orders_status_created'::regclass")
    lines: list[str] = []
    api.apply(tmp_path, settings, ApplyOptions(report=lines.append))
    assert any("dropping INVALID index public.idx_orders_status_created" in line for line in lines)
    assert db18.query("SELECT indisvalid FROM pg_index "
                      "WHERE indexrelid = 'idx_orders_status_created'::regclass") == [(True,)]


def test_lock_wait_retries_without_stalling_writers(db: TestDatabase, tmp_path: Path) -> None:
    """A transaction holding SHARE UPDATE EXCLUSIVE makes the concurrent build wait: apply reports the
    blocking pid, backs off and retries, while other sessions keep writing; once the holder commits,
    the retry succeeds."""
    db.execute("CREATE TABLE events (id bigint PRIMARY KEY, kind text NOT NULL)")
    db.execute("INSERT INTO events SELECT g, 'k' || (g % 10) FROM generate_series(1, 1000) g")
    settings = resolve(db.dsn)
    config = parse_config({"expect": {"index": [{"table": "events", "columns": ["kind"]}]}})
    api.generate(list(audit(settings, config).findings), tmp_path)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with psycopg.connect(db.dsn) as conn:
            conn.execute("LOCK TABLE events IN SHARE UPDATE EXCLUSIVE MODE")
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    lines: list[str] = []
    write_latency: list[float] = []

    def writer() -> None:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            for n in range(20):
                started = time.perf_counter()
                conn.execute("INSERT INTO events VALUES (%s, 'w')", (100_000 + n,))
                write_latency.append(time.perf_counter() - started)
                time.sleep(0.05)
        release.set()  # the holder commits once the writes are done

    w = threading.Thread(target=writer)
    w.start()
    try:
        api.apply(tmp_path, settings, ApplyOptions(lock_timeout_ms=300, backoff_s=0.3, retries=20,
                                                   report=lines.append))
    finally:
        release.set()
        w.join()
        holder.join()
    text = "\n".join(lines)
    assert "lock not granted within 300 ms" in text and "held by pid" in text
    assert max(write_latency) < 0.3 + 0.5  # no write waited longer than lock_timeout (plus slack)
    assert db.query("SELECT count(*) FROM pg_indexes WHERE tablename = 'events' AND indexdef LIKE '%(kind)%'") \
        == [(1,)]


def test_a_second_applier_is_refused(db18: TestDatabase, tmp_path: Path) -> None:
    load_guide(db18)
    settings = resolve(db18.dsn)
    api.generate(list(audit(settings, production()).findings), tmp_path)
    with psycopg.connect(db18.dsn, autocommit=True) as conn:
        conn.execute(f"SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})")
        with pytest.raises(ApplyInProgress, match="another migration run holds"):
            api.apply(tmp_path, settings, replace(quiet(), wait=False))


def test_not_an_alembic_environment(db18: TestDatabase, tmp_path: Path) -> None:
    load_guide(db18)
    settings = resolve(db18.dsn)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UsageError, match="not an Alembic environment"):
        api.generate(list(audit(settings, production()).findings), tmp_path)
    with pytest.raises(UsageError, match="not an Alembic environment"):
        api.apply(tmp_path, settings, quiet())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_revision_with_syntax_error(db18: TestDatabase, tmp_path: Path) -> None:
    load_guide(db18)
    settings = resolve(db18.dsn)
    generated = api.generate(list(audit(settings, production()).findings), tmp_path).generated
    assert generated is not None
    path = generated.files[0]
    path.write_text(path.read_text().replace("def upgrade() -> None:", "def upgrade( -> None:"))
    with pytest.raises(UsageError, match="syntax error"):
        api.apply(tmp_path, settings, quiet())
    assert db18.query("SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'idx_%'") == [(0,)]


def test_from_report_of_another_version(db18: TestDatabase, tmp_path: Path) -> None:
    load_guide(db18)
    report = audit(resolve(db18.dsn), production())
    data = json.loads(render(report, Format.JSON))
    good = tmp_path / "report.json"
    good.write_text(json.dumps(data))
    findings = api.findings_from_report(good)
    # Read back and printed again from their parse trees, the changes are the same; the server's
    # (CREATE EXTENSION, ALTER SYSTEM), which migrate generate never writes, are not read.
    assert [f.fix_sql for f in findings] == [[c.up for c in f.changes if c.kind != ChangeKind.SERVER]
                                             for f in report.findings]
    data["dbtune_version"] = "0.0.1"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(data))
    with pytest.raises(UsageError, match="written by dbtune 0.0.1"):
        api.findings_from_report(old)
    (tmp_path / "junk.json").write_text("[1, 2]")
    with pytest.raises(UsageError, match="not a dbtune audit report"):
        api.findings_from_report(tmp_path / "junk.json")


def test_errors_are_dbtune_errors() -> None:
    assert issubclass(ApplyError, DbtuneError) and ApplyError.exit_code == 3


PARTITIONED = """
CREATE SCHEMA "Sales";
CREATE TABLE "Sales"."Customer" (id bigint PRIMARY KEY);
INSERT INTO "Sales"."Customer" SELECT generate_series(1, 100);
CREATE TABLE "Sales"."Order" (id bigint, "customerId" bigint REFERENCES "Sales"."Customer" (id),
                              placed date NOT NULL, PRIMARY KEY (id, placed)) PARTITION BY RANGE (placed);
CREATE TABLE "Sales"."Order_2025" PARTITION OF "Sales"."Order" FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE "Sales"."Order_2026" PARTITION OF "Sales"."Order" FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO "Sales"."Order" SELECT g, 1 + g % 100, date '2025-01-01' + (g % 700) FROM generate_series(1, 2000) g;
"""


def test_partitioned_table_gets_on_only_index_built_per_partition(db: TestDatabase, tmp_path: Path) -> None:
    """A foreign key on a partitioned table with mixed-case names in another schema: the revision creates
    the index ON ONLY the parent, builds each partition's concurrently and attaches it; applied on both
    servers the parent index is valid, and nothing is left to generate."""
    db.execute(PARTITIONED)
    settings = resolve(db.dsn)
    report = audit(settings, parse_config({}))
    fk = [f for f in report.findings if f.check_name == "foreign-key-without-index"]
    assert [f.object for f in fk] == ['"Sales"."Order"']
    plan = api.plan_migration(fk)
    kinds = [s.change.kind for s in plan.steps]
    assert kinds == [ChangeKind.CREATE_INDEX, ChangeKind.CREATE_INDEX, ChangeKind.ATTACH_INDEX,
                     ChangeKind.CREATE_INDEX, ChangeKind.ATTACH_INDEX]
    assert plan.steps[0].change.up.startswith(
        'CREATE INDEX IF NOT EXISTS "Order_customerId_idx"\n  ON ONLY "Sales"."Order"')
    assert plan.steps[0].change.transactional and not plan.steps[1].change.transactional
    api.generate(fk, tmp_path)
    api.apply(tmp_path, settings, quiet())
    assert db.query('SELECT indisvalid FROM pg_index WHERE indexrelid = \'"Sales"."Order_customerId_idx"\'::regclass') \
        == [(True,)]
    assert db.query("SELECT count(*) FROM pg_inherits WHERE inhparent = "
                    "'\"Sales\".\"Order_customerId_idx\"'::regclass") == [(2,)]
    after = audit(settings, parse_config({}))
    assert [f for f in after.findings if f.check_name == "foreign-key-without-index"] == []
    assert api.generate(list(after.findings), tmp_path).generated is None


def test_generated_migrations_pass_lint(db18: TestDatabase, tmp_path: Path) -> None:
    """What dbtune generates passes dbtune's own lint rules and squawk's, with no finding at all."""
    from dbtune.migrate.lint import lint_paths

    load_guide(db18)
    findings = list(audit(resolve(db18.dsn), production()).findings)
    revision = api.generate(findings, tmp_path / "alembic").generated
    sql = api.generate(findings, tmp_path / "sql", fmt="sql").generated
    assert revision is not None and sql is not None
    result = lint_paths([*revision.files, *sql.files])
    assert result.squawk.ran
    assert result.findings == []


RETAILER_FK = {"name": "orders_retailer_fk", "table": "orders",
               "definition": "FOREIGN KEY (retailer_id) REFERENCES retailers"}


def test_constraints_are_added_not_valid_then_validated(db: TestDatabase, tmp_path: Path) -> None:
    """An expected foreign key and check constraint become two steps each (ADD … NOT VALID, then VALIDATE
    CONSTRAINT); applied on both servers they end up validated; a second run after the ADD alone (an
    interrupted run) finishes the job; the generated revision lints clean."""
    from dbtune.migrate.lint import lint_paths

    db.execute("CREATE TABLE retailers (id bigint PRIMARY KEY);"
               "INSERT INTO retailers SELECT generate_series(1, 10);"
               "CREATE TABLE orders (id bigint PRIMARY KEY, retailer_id bigint, total_cents bigint);"
               "INSERT INTO orders SELECT g, 1 + g % 10, g FROM generate_series(1, 1000) g;")
    settings = resolve(db.dsn)
    config = parse_config({"expect": {"constraint": [
        RETAILER_FK, {"name": "orders_total_check", "table": "orders", "definition": "CHECK (total_cents >= 0)"}]}})
    report = audit(settings, config)
    plan = api.plan_migration(list(report.findings))
    assert [s.change.kind for s in plan.steps] == [ChangeKind.ADD_CONSTRAINT, ChangeKind.VALIDATE_CONSTRAINT] * 2
    assert plan.steps[0].change.up.endswith("NOT VALID;")
    generated = api.generate(list(report.findings), tmp_path).generated
    assert generated is not None
    assert [f for f in lint_paths(list(generated.files)).findings if f.source == "dbtune"] == []
    # An interrupted earlier run added the foreign key but did not validate it.
    db.execute("ALTER TABLE orders ADD CONSTRAINT orders_retailer_fk FOREIGN KEY (retailer_id) "
               "REFERENCES retailers NOT VALID")
    lines: list[str] = []
    api.apply(tmp_path, settings, ApplyOptions(report=lines.append))
    assert any("already has constraint orders_retailer_fk" in line for line in lines)
    assert sorted(db.query("SELECT conname, convalidated FROM pg_constraint "
                           "WHERE conrelid = 'orders'::regclass AND contype IN ('f', 'c')")) == [
        ("orders_retailer_fk", True), ("orders_total_check", True)]
    assert [f for f in audit(settings, config).findings if f.check_name == "expected-constraint-missing"] == []


def test_failed_generate_leaves_no_revision(db18: TestDatabase, tmp_path: Path) -> None:
    """When the revision Alembic renders does not compile (here an environment's own script.py.mako that
    pastes the title into a one-quoted string, which a title holding a quote ends: `unterminated string
    literal`), generate fails naming the cause and leaves nothing in versions/; status, generate and apply
    on the folder then work."""
    load_guide(db18)
    settings = resolve(db18.dsn)
    findings = list(audit(settings, production()).findings)
    env = tmp_path / "env"
    ensure_environment(env)
    template = env / "script.py.mako"
    template.write_text(template.read_text().replace("# revision identifiers", "TITLE = '${message}'\n\n"
                                                                              "# revision identifiers"))
    with pytest.raises(DbtuneError, match="unterminated string literal.*nothing was written"):
        api.generate(findings, env, message="the team's indexes")
    assert sorted(p.name for p in (env / "versions").iterdir()) == []
    assert api.status(env, settings) == []
    generated = api.generate(findings, env, message="recommended indexes").generated
    assert generated is not None and generated.new
    assert [s.applied for s in api.status(env, settings)] == [False]
    assert len(api.apply(env, settings, quiet())) == 1


def _statements(sql: str) -> list[str]:
    """The DDL statements of a psql file (CREATE INDEX, ALTER, DROP, ANALYZE) as pglast prints them, in
    order, without psql's repair queries and validity checks around them."""
    import re

    from pglast import split
    from pglast.stream import RawStream

    sql = re.sub(r"SELECT pg_catalog\.format\(.*?\\gexec", "", sql, flags=re.S)
    sql = re.sub(r"DO (\$\w*\$).*?\1;", "", sql, flags=re.S)
    sql = "\n".join(line for line in sql.splitlines() if not line.startswith(("--", "\\")))
    return [str(RawStream()(s)) for s in split(sql) if s.lstrip().upper().startswith(
        ("CREATE INDEX", "CREATE UNIQUE INDEX", "ALTER", "DROP", "ANALYZE"))]


def test_offline_alembic_writes_the_sql_file_statements(db: TestDatabase, tmp_path: Path) -> None:
    """`alembic upgrade head --sql` on a dbtune revision looks nothing up: it writes the statements of
    `--format sql` (with psql's repair and validity checks), and psql runs the result on PostgreSQL 15 and
    18, leaving every index valid and the revision recorded in dbtune_version."""
    import io
    import subprocess

    from alembic import command

    from dbtune.migrate.workspace import alembic_config

    load_guide(db)
    # A partitioned table too: its foreign key's index is built ON ONLY, per partition and attached.
    db.execute("CREATE TABLE order_events (id bigint, order_id bigint REFERENCES orders (id), at date NOT NULL) "
               "PARTITION BY RANGE (at);"
               "CREATE TABLE order_events_2025 PARTITION OF order_events FOR VALUES FROM ('2025-01-01') "
               "TO ('2026-01-01');")
    settings = resolve(db.dsn)
    findings = list(audit(settings, production()).findings)
    api.generate(findings, tmp_path / "alembic")
    sql = api.generate(findings, tmp_path / "sql", fmt="sql").generated
    assert sql is not None
    buffer = io.StringIO()
    cfg = alembic_config(tmp_path / "alembic", dbtune_version_table="dbtune_version")
    cfg.output_buffer = buffer
    command.upgrade(cfg, "head", sql=True)
    offline = buffer.getvalue()
    assert "to_regclass(NULL)" not in offline
    assert _statements(offline) == _statements(sql.files[0].read_text())
    assert "\\gexec" in offline and "RAISE EXCEPTION" in offline
    assert "ON ONLY public.order_events" in offline and "ATTACH PARTITION" in offline
    script = tmp_path / "offline.sql"
    script.write_text(offline)
    result = subprocess.run(["psql", "-X", "-q", "-d", db.dsn, "-f", str(script)], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert db.query("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'public' AND NOT i.indisvalid") == [(0,)]
    assert [s.applied for s in api.status(tmp_path / "alembic", settings)] == [True]
    assert [f for f in audit(settings, production()).findings
            if f.check_name in ("expected-index-missing", "foreign-key-without-index")] == []


def test_foreign_key_on_partitioned_table_locks_partitions_one_at_a_time(db: TestDatabase, tmp_path: Path) -> None:
    """An expected foreign key on a partitioned table: before PostgreSQL 18 it is added NOT VALID and
    validated on each partition (a sub-partitioned partition through its own partitions), then added to
    the parent, which attaches them; on 18 the parent's NOT VALID and VALIDATE. Applied on 15 and 18, one
    validated key per partition, attached to the parent's; both the revision and the SQL files lint
    clean (dbtune's rules and squawk)."""
    from dbtune.migrate.lint import lint_paths

    db.execute("CREATE TABLE retailers (id bigint PRIMARY KEY);"
               "INSERT INTO retailers SELECT generate_series(1, 10);"
               "CREATE TABLE orders (id bigint, retailer_id bigint, created date) PARTITION BY RANGE (created);"
               "CREATE TABLE orders_2025 PARTITION OF orders FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');"
               "CREATE TABLE orders_2026 PARTITION OF orders FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') "
               "PARTITION BY HASH (id);"
               "CREATE TABLE orders_2026_a PARTITION OF orders_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 0);"
               "CREATE TABLE orders_2026_b PARTITION OF orders_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 1);"
               "INSERT INTO orders SELECT g, 1 + g % 10, DATE '2025-06-01' + g % 400 FROM generate_series(1, 500) g;")
    settings = resolve(db.dsn)
    config = parse_config({"expect": {"constraint": [RETAILER_FK]}})
    report = audit(settings, config)
    plan = api.plan_migration(list(report.findings))
    steps = [" ".join(s.change.up.split()) for s in plan.steps]
    add = "ADD CONSTRAINT orders_retailer_fk FOREIGN KEY (retailer_id) REFERENCES public.retailers"
    if db.query("SELECT current_setting('server_version_num')::int")[0][0] < 180000:
        assert steps == [
            f"ALTER TABLE public.orders_2025 {add} NOT VALID;",
            "ALTER TABLE public.orders_2025 VALIDATE CONSTRAINT orders_retailer_fk;",
            f"ALTER TABLE public.orders_2026_a {add} NOT VALID;",
            "ALTER TABLE public.orders_2026_a VALIDATE CONSTRAINT orders_retailer_fk;",
            f"ALTER TABLE public.orders_2026_b {add} NOT VALID;",
            "ALTER TABLE public.orders_2026_b VALIDATE CONSTRAINT orders_retailer_fk;",
            f"ALTER TABLE public.orders_2026 {add};",
            f"ALTER TABLE public.orders {add};"]
    else:
        assert steps == [f"ALTER TABLE public.orders {add} NOT VALID;",
                         "ALTER TABLE public.orders VALIDATE CONSTRAINT orders_retailer_fk;"]
    alembic = api.generate(list(report.findings), tmp_path / "alembic").generated
    sql = api.generate(list(report.findings), tmp_path / "sql", fmt="sql").generated
    assert alembic is not None and sql is not None
    linted = lint_paths([*alembic.files, sql.files[0]])
    assert [(f.file, f.rule, f.message) for f in linted.findings if f.source == "dbtune"] == []
    assert linted.squawk.ran and linted.findings == []  # squawk's rules too
    api.apply(tmp_path / "alembic", settings, quiet())
    rows = db.query("SELECT c.conrelid::regclass::text, c.convalidated, p.conrelid::regclass::text "
                    "FROM pg_constraint c LEFT JOIN pg_constraint p ON p.oid = c.conparentid "
                    "WHERE c.contype = 'f' ORDER BY 1")
    assert rows == [("orders", True, None), ("orders_2025", True, "orders"), ("orders_2026", True, "orders"),
                    ("orders_2026_a", True, "orders_2026"), ("orders_2026_b", True, "orders_2026")]
    assert [f for f in audit(settings, config).findings if f.check_name == "expected-constraint-missing"] == []


def test_constraint_migrations_lint_clean_and_the_sql_file_runs_again(db: TestDatabase, tmp_path: Path) -> None:
    """Constraint steps lint with no finding at all (dbtune's rules and squawk's, revision and SQL files,
    downgrades included); the psql file, stopped after an ADD and run again, finishes the job, runs a third
    time as a no-op, and its down file removes what it added."""
    import subprocess

    from dbtune.migrate.lint import lint_paths

    db.execute("CREATE TABLE retailers (id bigint PRIMARY KEY);"
               "INSERT INTO retailers SELECT generate_series(1, 10);"
               "CREATE TABLE orders (id bigint PRIMARY KEY, retailer_id bigint, total_cents bigint);"
               "INSERT INTO orders SELECT g, 1 + g % 10, g FROM generate_series(1, 1000) g;")
    config = parse_config({"expect": {"constraint": [
        RETAILER_FK, {"name": "orders_total_check", "table": "orders", "definition": "CHECK (total_cents >= 0)"}]}})
    findings = list(audit(resolve(db.dsn), config).findings)
    revision = api.generate(findings, tmp_path / "alembic").generated
    sql = api.generate(findings, tmp_path / "sql", fmt="sql").generated
    assert revision is not None and sql is not None
    linted = lint_paths([*revision.files, *sql.files], include_downgrade=True)
    assert linted.squawk.ran and linted.findings == []
    up, down = sql.files

    def psql(path: Path) -> None:
        done = subprocess.run(["psql", "-X", "-q", "-d", db.dsn, "-f", str(path)], capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr

    def constraints() -> list[tuple[object, ...]]:
        return db.query("SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'orders'::regclass "
                        "AND contype IN ('f', 'c') ORDER BY 1")

    db.execute("ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total_cents >= 0) NOT VALID")
    psql(up)
    assert constraints() == [("orders_retailer_fk", True), ("orders_total_check", True)]
    psql(up)
    assert constraints() == [("orders_retailer_fk", True), ("orders_total_check", True)]
    psql(down)
    assert constraints() == []
