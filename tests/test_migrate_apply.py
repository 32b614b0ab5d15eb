"""dbtune migrate apply keeps its promise where the database moved after generating: a partition added
since (its index is built and attached, or apply fails naming it), indexes re-planned under a suffix or
built by hand under another name (the identical index is the one kept), the downgrade of a partitioned
index and its lint."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TestDatabase

from dbtune.audit import audit
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.migrate import api
from dbtune.migrate.runtime import ApplyError, ApplyOptions

EVENTS = """
CREATE TABLE events (id bigint NOT NULL, account_id bigint NOT NULL, created_at date NOT NULL)
  PARTITION BY RANGE (created_at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events SELECT g, g % 50, date '2025-01-01' + (g % 700) FROM generate_series(1, 1000) g;
"""
EXPECT = parse_config({"expect": {"index": [{"name": "events_account_idx", "table": "events",
                                             "columns": ["account_id"]}]}})
ADD_2027 = "CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');" \
           "INSERT INTO events VALUES (5000, 7, '2027-03-01');"
# Every index on a partition of events, with the parent index it is attached to (NULL when none).
PARTITION_INDEXES = """
SELECT c.relname, i.relname, p.relname FROM pg_inherits t JOIN pg_class c ON c.oid = t.inhrelid
  JOIN pg_index x ON x.indrelid = c.oid JOIN pg_class i ON i.oid = x.indexrelid
  LEFT JOIN pg_inherits a ON a.inhrelid = i.oid LEFT JOIN pg_class p ON p.oid = a.inhparent
 WHERE t.inhparent = 'events'::regclass ORDER BY 1, 2
"""


def _options(lines: list[str]) -> ApplyOptions:
    return ApplyOptions(report=lines.append, backoff_s=0.1)


def _parent_valid(db: TestDatabase) -> list[tuple[object, ...]]:
    return db.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_account_idx'::regclass")


def test_partition_added_after_generating_gets_its_index(db: TestDatabase, tmp_path: Path) -> None:
    """A partition created between generate and apply has no planned step: apply builds its index
    concurrently and attaches it after the last planned attach, so the parent index ends valid."""
    db.execute(EVENTS)
    settings = resolve(db.dsn)
    api.generate(list(audit(settings, EXPECT).findings), tmp_path)
    db.execute(ADD_2027)
    dry: list[str] = []
    api.apply(tmp_path, settings, ApplyOptions(report=dry.append, dry_run=True))
    assert [line for line in dry if "would check" in line] == [
        "  would check that public.events_account_idx is valid; partitions with no index attached would get one "
        "built concurrently and attached: events_2027"]
    lines: list[str] = []
    assert len(api.apply(tmp_path, settings, _options(lines))) == 1
    assert _parent_valid(db) == [(True,)]
    assert db.query(PARTITION_INDEXES) == [
        ("events_2025", "events_2025_events_account_idx_part", "events_account_idx"),
        ("events_2026", "events_2026_events_account_idx_part", "events_account_idx"),
        ("events_2027", "events_2027_events_account_idx_part", "events_account_idx")]
    assert any("events_2027" in line and "no index attached" in line for line in lines)


def test_partition_that_cannot_get_an_index_fails_apply_naming_it(db18: TestDatabase, tmp_path: Path) -> None:
    """A partition added since generating whose index cannot be built (a unique index over its duplicate
    keys) makes apply fail naming the partition; the revision is not recorded as applied."""
    db18.execute(EVENTS.replace("g % 50, date", "g, date"))
    settings = resolve(db18.dsn)
    config = parse_config({"expect": {"unique": [{"name": "events_account_idx", "table": "events",
                                                  "columns": ["account_id", "created_at"]}]}})
    api.generate(list(audit(settings, config).findings), tmp_path)
    db18.execute(ADD_2027 + "INSERT INTO events VALUES (5001, 7, '2027-03-01');")
    with pytest.raises(ApplyError, match="events_2027") as failure:
        api.apply(tmp_path, settings, _options([]))
    assert "(7, 2027-03-01)" in str(failure.value)
    assert _parent_valid(db18) == [(False,)]
    assert [s.applied for s in api.status(tmp_path, settings)] == [False]


def test_regenerating_attaches_the_identical_index_instead_of_a_copy(db: TestDatabase, tmp_path: Path) -> None:
    """The parent index is INVALID (a partition got no attached index) and the partitions' `_part` names
    are taken by identical attached indexes: generate + apply builds nothing again, never a `_part_1`
    copy: the plan attaches the identical index the new partition has."""
    db.execute(EVENTS + ADD_2027)
    db.execute("CREATE INDEX events_account_idx ON ONLY events (account_id);"
               "CREATE INDEX events_2025_events_account_idx_part ON events_2025 (account_id);"
               "CREATE INDEX events_2026_events_account_idx_part ON events_2026 (account_id);"
               "ALTER INDEX events_account_idx ATTACH PARTITION events_2025_events_account_idx_part;"
               "ALTER INDEX events_account_idx ATTACH PARTITION events_2026_events_account_idx_part;"
               "CREATE INDEX events_2027_by_hand ON events_2027 (account_id);")
    assert _parent_valid(db) == [(False,)]
    settings = resolve(db.dsn)
    report = audit(settings, EXPECT)
    result = api.generate(list(report.findings), tmp_path, existing_index_names=set(report.index_names))
    assert [(s.change.kind.value, s.change.index) for s in result.plan.steps] == [
        ("create_index", "public.events_account_idx"), ("attach_index", "public.events_2027_by_hand")]
    lines: list[str] = []
    api.apply(tmp_path, settings, _options(lines))
    assert _parent_valid(db) == [(True,)]
    assert db.query(PARTITION_INDEXES) == [
        ("events_2025", "events_2025_events_account_idx_part", "events_account_idx"),
        ("events_2026", "events_2026_events_account_idx_part", "events_account_idx"),
        ("events_2027", "events_2027_by_hand", "events_account_idx")]


def test_index_built_by_hand_under_another_name_is_not_built_again(db: TestDatabase, tmp_path: Path) -> None:
    """An index identical in substance to a planned one (same key, order, predicate, INCLUDE, method),
    built by hand under another name after generating: apply builds no second copy and says so; one
    that differs only in its predicate does not count."""
    db.execute("CREATE TABLE orders (id bigint PRIMARY KEY, status text, created_at timestamptz, total bigint);"
               "INSERT INTO orders SELECT g, 'new', now(), g FROM generate_series(1, 500) g;")
    settings = resolve(db.dsn)
    config = parse_config({"expect": {"index": [
        {"name": "orders_status_created_idx", "table": "orders", "columns": ["status", "created_at DESC"],
         "include": ["total"], "where": "status <> 'done'"},
        {"name": "orders_total_idx", "table": "orders", "columns": ["total"]}]}})
    api.generate(list(audit(settings, config).findings), tmp_path)
    db.execute("CREATE INDEX by_hand ON public.orders USING btree (status, created_at DESC) INCLUDE (total) "
               "WHERE (status <> 'done'::text);"
               "CREATE INDEX total_partial ON orders (total) WHERE total > 10;")
    lines: list[str] = []
    api.apply(tmp_path, settings, _options(lines))
    assert sorted(r[0] for r in db.query("SELECT indexrelid::regclass::text FROM pg_index "
                                         "WHERE indrelid = 'orders'::regclass")) == [
        "by_hand", "orders_pkey", "orders_total_idx", "total_partial"]
    assert any("orders_status_created_idx" in line and "by_hand" in line for line in lines)


def test_partitioned_downgrade_drops_the_parent_index(db: TestDatabase, tmp_path: Path) -> None:
    """`apply --downgrade-to base` of a partitioned index's revision drops the parent index, which takes
    the attached partition indexes with it, and the revision is no longer recorded."""
    db.execute(EVENTS)
    settings = resolve(db.dsn)
    api.generate(list(audit(settings, EXPECT).findings), tmp_path)
    api.apply(tmp_path, settings, _options([]))
    api.downgrade(tmp_path, settings, "base", _options([]))
    assert db.query(PARTITION_INDEXES) == []
    assert db.query("SELECT to_regclass('events_account_idx')") == [(None,)]
    assert [s.applied for s in api.status(tmp_path, settings)] == [False]


def test_partitioned_migrations_lint_clean(db: TestDatabase, tmp_path: Path) -> None:
    """The revision and the SQL files generated for a partitioned table (a plain and a unique index, up and
    down) give no finding under dbtune's rules nor squawk's, on 15 and 18."""
    from dbtune.migrate.lint import lint_paths

    db.execute(EVENTS)
    config = parse_config({"expect": {
        "index": [{"name": "events_account_idx", "table": "events", "columns": ["account_id"]}],
        "unique": [{"name": "events_id_key", "table": "events", "columns": ["id", "created_at"]}]}})
    findings = list(audit(resolve(db.dsn), config).findings)
    revision = api.generate(findings, tmp_path / "alembic").generated
    sql = api.generate(findings, tmp_path / "sql", fmt="sql").generated
    assert revision is not None and sql is not None
    assert "complete_partitioned_index(op" in revision.files[0].read_text()
    result = lint_paths([*revision.files, *sql.files])
    assert result.squawk.ran
    assert result.findings == []


def test_squawk_exceptions_for_partitioned_steps_are_each_needed_and_explained(db18: TestDatabase,
                                                                              tmp_path: Path) -> None:
    """squawk cannot know that `CREATE INDEX … ON ONLY` builds nothing and that a partitioned index refuses
    `DROP INDEX CONCURRENTLY`: each generated exception names one rule, sits under a comment saying why,
    and is needed (without it squawk reports that rule on that statement, and nothing else)."""
    from dbtune.migrate.squawk import find_squawk, run_squawk

    db18.execute(EVENTS)
    generated = api.generate(list(audit(resolve(db18.dsn), EXPECT).findings), tmp_path, fmt="sql").generated
    assert generated is not None
    squawk = find_squawk()
    assert squawk is not None
    for path, rule, why in ((generated.files[0], "require-concurrent-index-creation", "-- ON ONLY builds nothing"),
                            (generated.files[1], "require-concurrent-index-deletion",
                             "-- public.events_account_idx is a partitioned index: PostgreSQL refuses DROP INDEX "
                             "CONCURRENTLY on it")):
        lines = path.read_text().splitlines()
        ignores = [n for n, line in enumerate(lines) if line.startswith("-- squawk-ignore")]
        assert [lines[n] for n in ignores] == [f"-- squawk-ignore {rule}"]
        assert lines[ignores[0] - 1].startswith(why)
        assert run_squawk(squawk, [path]) == []
        bare = tmp_path / f"bare_{path.name}"
        bare.write_text("\n".join(line for n, line in enumerate(lines) if n not in ignores) + "\n")
        assert [(v.rule, v.line) for v in run_squawk(squawk, [bare])] == [(rule, ignores[0] + 1)]


def test_duplicate_keys_are_listed_for_a_predicate_with_a_percent_sign(db18: TestDatabase, tmp_path: Path) -> None:
    """A partial unique index whose predicate holds `%` (`LIKE '%x'`): apply sends the statements as written
    (no `%` taken for a driver placeholder) and, over duplicate keys arrived since generating, lists them."""
    db18.execute("CREATE TABLE codes (id int PRIMARY KEY, code text);"
                 "INSERT INTO codes SELECT g, 'c' || g || '%x' FROM generate_series(1, 20) g;")
    settings = resolve(db18.dsn)
    config = parse_config({"expect": {"unique": [{"name": "codes_code_key", "table": "codes", "columns": ["code"],
                                                  "where": "code LIKE '%x'"}]}})
    api.generate(list(audit(settings, config).findings), tmp_path)
    db18.execute("INSERT INTO codes VALUES (99, 'c1%x')")
    with pytest.raises(ApplyError, match=r"duplicate keys \(c1%x\) in 2 rows"):
        api.apply(tmp_path, settings, _options([]))
    db18.execute("DELETE FROM codes WHERE id = 99")
    api.apply(tmp_path, settings, _options([]))
    assert db18.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'codes_code_key'::regclass") == [(True,)]
