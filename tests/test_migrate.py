"""dbtune migrate: planning, rendering (golden files), applying on PostgreSQL 15 and 18, repairing
INVALID indexes, waiting for locks without stalling other sessions, and bad input."""

from __future__ import annotations

import json
import os
import threading
import time
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
    assert "bytes (relpages)" in text  # read from pg_class, so a locked table does not stall the dry run


INVALID_SETUP = """
CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO accounts SELECT g, 'user' || (g % 50) || '@example.com' FROM generate_series(1, 200) g;
"""


def _plant_invalid_unique(db: TestDatabase) -> None:
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY accounts_email_key ON accounts (email)")
    assert db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email_key'::regclass") == [(False,)]


def test_apply_repairs_invalid_index_from_failed_build(db: TestDatabase, tmp_path: Path) -> None:
    """A concurrent unique build that failed on duplicate keys leaves an INVALID index; once the
    duplicates are gone, apply drops it and builds it again, valid."""
    db.execute(INVALID_SETUP)
    _plant_invalid_unique(db)
    db.execute("DELETE FROM accounts WHERE id > 50")
    settings = resolve(db.dsn)
    config = parse_config({"expect": {"unique": [{"name": "accounts_email_key", "table": "accounts",
                                                  "columns": ["email"]}]}})
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
    settings = resolve(db18.dsn)
    config = parse_config({"expect": {"unique": [{"name": "accounts_email_key", "table": "accounts",
                                                  "columns": ["email"]}]}})
    api.generate(list(audit(settings, config).findings), tmp_path)
    db18.execute("INSERT INTO accounts VALUES (51, 'user1@example.com')")
    with pytest.raises(ApplyError, match="could not create unique index"):
        api.apply(tmp_path, settings, quiet())
    assert db18.query("SELECT count(*) FROM pg_class WHERE relname = 'accounts_email_key'") == [(0,)]
    assert [s.applied for s in api.status(tmp_path, settings)] == [False]


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
            api.apply(tmp_path, settings, quiet())


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
        {"name": "orders_retailer_fk", "table": "orders",
         "definition": "FOREIGN KEY (retailer_id) REFERENCES retailers"},
        {"name": "orders_total_check", "table": "orders", "definition": "CHECK (total_cents >= 0)"}]}})
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
