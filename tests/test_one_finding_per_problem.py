"""Issue 10 item 2, one finding per problem, against a real server: an index is the object of at most one
drop-type finding (the strongest: duplicate, then redundant, then INCLUDE overlap, then unused; the others
named in its evidence), and the audit's fix plan proposes each SQL statement once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from conftest import drop_database, new_database

from dbtune.audit import audit
from dbtune.checks import load_catalogue
from dbtune.checks.runner import DROP_CHECKS
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.report.model import Report

SCHEMA = """
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, status text, total numeric);
CREATE TABLE customers (id int PRIMARY KEY);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
-- Twins that are also a prefix of a longer index, all never scanned.
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_status_idx1 ON orders (status);
CREATE INDEX orders_status_total_idx ON orders (status, total);
-- A plain index overlapped by the same key with INCLUDE columns, never scanned.
CREATE INDEX orders_total_idx ON orders (total);
CREATE INDEX orders_total_cov_idx ON orders (total) INCLUDE (status);
"""


@pytest.fixture(scope="module")
def report(pg18: LocalServer) -> Iterator[Report]:
    database = new_database(pg18, "ofp")
    database.execute(SCHEMA)
    config = parse_config({"checks": {"unused-index": {"min_stats_age_days": 0}},
                           "expect": {"index": [{"table": "orders", "columns": ["customer_id"]}]}}, "test")
    yield audit(resolve(database.dsn), config, catalogue=load_catalogue())
    drop_database(database)


def test_an_index_is_the_object_of_one_drop_finding(report: Report) -> None:
    drops = Counter(f.object for f in report.findings if f.check_name in DROP_CHECKS)
    assert drops and all(n == 1 for n in drops.values()), drops
    by_object = {f.object: f for f in report.findings if f.check_name in DROP_CHECKS}
    # The later twin is a duplicate, a prefix of (status, total) and unused: reported once, as the duplicate.
    twin = by_object["public.orders_status_idx1"]
    assert twin.check_name == "duplicate-index"
    assert twin.evidence["also_reported_as"] == ["redundant-index", "unused-index"]
    # The kept twin is a prefix of (status, total) and unused: reported as redundant, its evidence says unused.
    kept = by_object["public.orders_status_idx"]
    assert (kept.check_name, kept.evidence["also_reported_as"]) == ("redundant-index", ["unused-index"])
    overlapped = by_object["public.orders_total_idx"]
    assert (overlapped.check_name, overlapped.evidence["also_reported_as"]) == (
        "index-overlaps-include-index", ["unused-index"])
    # The longer indexes are only unused.
    assert by_object["public.orders_status_total_idx"].check_name == "unused-index"
    assert "also_reported_as" not in by_object["public.orders_status_total_idx"].evidence


def test_each_fix_statement_is_proposed_once(report: Report) -> None:
    # The unindexed foreign key and the checklist's expected index ask for the same CREATE INDEX.
    asked = Counter(c.up for f in report.findings for c in f.changes)
    assert any(n > 1 for n in asked.values()), asked
    planned = [s.change.up for s in report.fix_plan.steps]
    assert len(planned) == len(set(planned)), planned
    creates = [sql for sql in planned if "CREATE INDEX" in sql and "customer_id" in sql]
    assert len(creates) == 1, planned
