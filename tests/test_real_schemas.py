"""``dbtune audit`` on real, published schemas (pagila, northwind from ``../shared/data``), on every server.

The findings are pinned exactly, as (check name, object) pairs with their multiplicity. Each was read
against the schema before it was pinned:

pagila
- foreign-key-without-index: 13 foreign keys have no index leading with their columns:
  film_category (category_id; the primary key leads with film_id), inventory (film_id; the index is
  (store_id, film_id)), rental (customer_id: the unique index leads with rental_date; staff_id), staff
  (address_id, store_id), store (address_id), and payment_p2022_01 … _06 (rental_id). pagila declares the
  payment foreign keys on each partition, not on the partitioned ``payment`` (p2022_07 has none), so each
  partition's own constraint is reported on that partition. Declared on the parent, they are reported
  once, on ``public.payment`` (see :func:`test_partition_foreign_keys_are_reported_once_on_the_parent`).
- duplicate-index: pagila builds two identical btree (customer_id) indexes on each of payment_p2022_01
  … _06 (``idx_fk_payment_p2022_0N_customer_id`` and ``payment_p2022_0N_customer_id_idx``, neither
  attached to a partitioned index); the later one is reported.
- No table lacks a primary key (partitions get theirs from ``payment``); no index is redundant (the
  customer_id pairs are duplicates, reported once as such).
- The database itself: pg_stat_statements is preloaded by the test servers but not created in the
  database, no timeouts are set, and the isolation level is reported for information.
- The server: the test servers run with ``fsync``, ``full_page_writes`` and ``synchronous_commit`` off
  (``LocalServer.init``, for speed), which a DBA would turn back on anywhere data matters: two errors and
  one information. ``track_io_timing``, ``log_lock_waits`` and ``log_temp_files`` are at their defaults
  (off), and ``temp_file_limit`` at -1 (no limit): information a DBA acts on when setting up a server.
  The pgtune rules (shared_buffers, work_mem …) need the machine's RAM, CPUs, storage and workload from
  ``[server]``: with no config they are skipped, saying so, and report nothing; the workload checks are
  skipped too, pg_stat_statements not being created in the database.

northwind
- foreign-key-without-index: 10 of its 13 foreign keys. The other three lead the composite primary keys
  of order_details (order_id), employee_territories (employee_id) and customer_customer_demo
  (customer_id), which serve as their indexes.
- Every one of its 14 tables has a primary key, so table-without-primary-key reports nothing.
- The same three database-level findings as pagila.

The maintenance checks (MT001–MT014) report nothing on either, which is right: no table reaches 10 MB
(table-bloat; the estimate stays under 20 % on every table of pagila, northwind and chinook even without
the size floor), no table has autovacuum switched off, is unlogged or has a sequence near its column's
limit, and the statistics of a freshly loaded copy are either fresh or skipped as too young.

The index health checks (IX009–IX018) report nothing on either, nor on chinook (read by hand), which is
right: no index reaches index-bloat's 10 MB (with the floor removed, the estimate is off by a page or two
on indexes of 4 to 13 pages), index-on-mostly-null-column's 1 MB (pagila's film.original_language_id is
NULL in every row, on 1,000 rows), brin-candidate's 1 GB (chinook's ordered columns are integer keys, left
out), no index is led by a boolean or keyed on an array or jsonb, none overlaps a covering index, has a
redundant IS NOT NULL, and a freshly loaded copy has too few block reads and updates to judge.

Database-level findings name the database, which differs per run; they are pinned as ``<database>``.
The constraint and replication checks (CN005-CN010, RP001, RP002) report nothing on either: every
foreign key's columns have the referenced columns' types and collations and reference a primary key,
no column is kept non-NULL by a check constraint, no multi-column unique key has a nullable part, no
foreign key is declared twice and none has more than one column (so none is partially NULL), and
there are no publications or slots (chinook and MusicBrainz's 770 foreign keys, audited the same way by
hand, give none either). CC005 sees no session but the audit's own, CC006 no prepared transaction.

The other shared schemas (chinook, JOB, MusicBrainz, OpenStreetMap, TPC-H, pgbench) are pinned by golden
files in ``tests/test_schema_goldens.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conftest
import psycopg
import pytest
from conftest import SHARED, drop_database, new_database

from dbtune.db.local_server import LocalServer

DATA = SHARED / "data"
DATASETS: dict[str, tuple[str, ...]] = {
    "pagila": ("pagila/pagila-schema.sql", "pagila/pagila-data.sql"),
    "northwind": ("northwind/northwind.sql",),
}
DATABASE = "<database>"

DATABASE_LEVEL = [
    ("isolation-level", DATABASE),
    ("pg-stat-statements-missing", DATABASE),
    ("timeout-unset", DATABASE),
    # The test servers' own settings (see the module's docstring).
    ("fsync-off", "fsync"),
    ("full-page-writes-off", "full_page_writes"),
    ("observability-settings-off", DATABASE),
    ("synchronous-commit-off", "synchronous_commit"),
    ("temp-file-limit-unset", "temp_file_limit"),
]
# Checks that need what a config without [server] or pg_stat_statements in the database does not give.
SKIPPED_WITHOUT_MACHINE_FACTS = [
    "effective-cache-size-mis-sized", "effective-io-concurrency-low", "jit-on-oltp", "maintenance-work-mem-mis-sized",
    "max-wal-size-small", "memory-budget-exceeds-ram", "parallel-workers-exceed-cpus", "query-high-mean-time",
    "query-high-shared-block-reads", "query-high-temp-blocks", "random-page-cost-mismatches-storage",
    "shared-buffers-mis-sized", "work-mem-mis-sized",
]
PAYMENT_PARTITIONS = [f"public.payment_p2022_0{n}" for n in range(1, 7)]

EXPECTED: dict[str, list[tuple[str, str]]] = {
    "pagila": sorted([
        *[("duplicate-index", f"{p}_customer_id_idx") for p in PAYMENT_PARTITIONS],
        ("foreign-key-without-index", "public.film_category"),
        ("foreign-key-without-index", "public.inventory"),
        *[("foreign-key-without-index", p) for p in PAYMENT_PARTITIONS],
        ("foreign-key-without-index", "public.rental"),
        ("foreign-key-without-index", "public.rental"),
        ("foreign-key-without-index", "public.staff"),
        ("foreign-key-without-index", "public.staff"),
        ("foreign-key-without-index", "public.store"),
        *DATABASE_LEVEL,
    ]),
    "northwind": sorted([
        ("foreign-key-without-index", "public.customer_customer_demo"),
        ("foreign-key-without-index", "public.employee_territories"),
        ("foreign-key-without-index", "public.employees"),
        ("foreign-key-without-index", "public.order_details"),
        ("foreign-key-without-index", "public.orders"),
        ("foreign-key-without-index", "public.orders"),
        ("foreign-key-without-index", "public.orders"),
        ("foreign-key-without-index", "public.products"),
        ("foreign-key-without-index", "public.products"),
        ("foreign-key-without-index", "public.territories"),
        *DATABASE_LEVEL,
    ]),
}

# The unindexed foreign keys, by constraint name (the evidence of each finding).
EXPECTED_FK_CONSTRAINTS: dict[str, set[str]] = {
    "pagila": {
        "film_category_category_id_fkey", "inventory_film_id_fkey", "rental_customer_id_fkey",
        "rental_staff_id_fkey", "staff_address_id_fkey", "staff_store_id_fkey", "store_address_id_fkey",
        *(f"payment_p2022_0{n}_rental_id_fkey" for n in range(1, 7)),
    },
    "northwind": {
        "fk_customer_customer_demo_customer_demographics", "fk_employee_territories_territories",
        "fk_employees_employees", "fk_order_details_products", "fk_orders_customers", "fk_orders_employees",
        "fk_orders_shippers", "fk_products_categories", "fk_products_suppliers", "fk_territories_region",
    },
}


def cli_env() -> dict[str, str]:
    """The environment without anything that would pick a target or a config for dbtune."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PG", "DBTUNE_")) and k != "DATABASE_URL"}


def audit_json(dsn: str, cwd: Path, *extra: str) -> dict[str, Any]:
    """``dbtune audit --dsn DSN --format json`` with no config; exit 0 or 1, a quiet stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "dbtune", "audit", "--dsn", dsn, "--format", "json", *extra],
        capture_output=True, text=True, cwd=cwd, env=cli_env(), timeout=120)
    assert result.returncode in (0, 1), result.stderr
    assert result.stderr == ""
    return json.loads(result.stdout)


def pairs(report: dict[str, Any]) -> list[tuple[str, str]]:
    database = report["server"]["database"]
    return sorted((f["check_name"], DATABASE if f["object"] == database else f["object"])
                  for f in report["findings"])


@pytest.fixture(scope="module")
def datasets(pg: LocalServer) -> Iterator[dict[str, conftest.TestDatabase]]:
    """pagila and northwind, each loaded once per server with that server's psql."""
    if not DATA.is_dir():
        pytest.skip(f"the shared sample data is absent ({DATA}); set DBTUNE_SHARED to the shared folder")
    loaded: dict[str, conftest.TestDatabase] = {}
    try:
        for name, files in DATASETS.items():
            loaded[name] = new_database(pg, name)
            for file in files:
                pg.psql_file(loaded[name].name, DATA / file)
        yield loaded
    finally:
        for database in loaded.values():
            drop_database(database)


@pytest.fixture(scope="module")
def reports(datasets: dict[str, conftest.TestDatabase],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cwd = tmp_path_factory.mktemp("audit")
    return {name: audit_json(database.dsn, cwd) for name, database in datasets.items()}


@pytest.mark.parametrize("dataset", DATASETS)
def test_findings_are_pinned(reports: dict[str, Any], dataset: str) -> None:
    assert pairs(reports[dataset]) == EXPECTED[dataset]


@pytest.mark.parametrize("dataset", DATASETS)
def test_unindexed_foreign_keys_are_named(reports: dict[str, Any], dataset: str) -> None:
    named = [f["evidence"]["constraint"] for f in reports[dataset]["findings"]
             if f["check_name"] == "foreign-key-without-index"]
    assert sorted(named) == sorted(EXPECTED_FK_CONSTRAINTS[dataset])
    # Each comes with the index that fixes it, built without blocking writes.
    for f in reports[dataset]["findings"]:
        if f["check_name"] == "foreign-key-without-index":
            assert len(f["fix"]["sql"]) >= 1
            assert all("CONCURRENTLY" in sql for sql in f["fix"]["sql"] if sql.startswith("CREATE INDEX"))


def test_pagila_duplicates_keep_the_first_index(reports: dict[str, Any]) -> None:
    duplicates = {f["object"]: f for f in reports["pagila"]["findings"]
                  if f["check_name"] == "duplicate-index"}
    for partition in PAYMENT_PARTITIONS:
        finding = duplicates[f"{partition}_customer_id_idx"]
        kept = partition.replace("public.", "public.idx_fk_") + "_customer_id"
        assert finding["evidence"]["duplicate_of"] == kept
        assert finding["fix"]["sql"] == [f"DROP INDEX CONCURRENTLY IF EXISTS {partition}_customer_id_idx;"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_summary_and_skips(reports: dict[str, Any], dataset: str, pg: LocalServer) -> None:
    report = reports[dataset]
    counts = Counter(f["severity"] for f in report["findings"])
    assert report["summary"] == {"error": counts["error"], "warning": counts["warning"],
                                 "info": counts["info"], "total": len(report["findings"])}
    # fsync and full_page_writes, off on the test servers, are the only errors.
    assert report["summary"]["error"] == 2
    # Freshly started servers: unused-index, checkpoints-requested-often, table-never-vacuumed-or-analyzed
    # and temp-files-heavy wait for older statistics; no [[pool]] without a config; no machine facts and no
    # pg_stat_statements in the database.
    assert sorted(s["what"] for s in report["skipped"]) == sorted(
        ["checkpoints-requested-often", "connection-budget", "table-never-vacuumed-or-analyzed",
         "temp-files-heavy", "unused-index", *SKIPPED_WITHOUT_MACHINE_FACTS])
    with psycopg.connect(pg.dsn()) as conn:
        version_num = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
    assert report["server"]["version_num"] == version_num


def test_no_finding_names_a_partition_whose_parent_owns_the_rule(
        datasets: dict[str, conftest.TestDatabase], reports: dict[str, Any]) -> None:
    """A partition appears in a finding only through a constraint declared on the partition itself."""
    rows = datasets["pagila"].query(
        "SELECT c.conname, c.conparentid <> 0 FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid "
        "WHERE r.relispartition AND c.contype = 'f'")
    inherited = {name for name, from_parent in rows if from_parent}
    own = {name for name, from_parent in rows if not from_parent}
    for f in reports["pagila"]["findings"]:
        if f["check_name"] == "foreign-key-without-index" and f["object"] in PAYMENT_PARTITIONS:
            assert f["evidence"]["constraint"] in own
            assert f["evidence"]["constraint"] not in inherited


def test_partition_foreign_keys_are_reported_once_on_the_parent(
        pg: LocalServer, datasets: dict[str, conftest.TestDatabase], tmp_path: Path) -> None:
    """Declaring pagila's payment → rental foreign key on the partitioned table attaches the partitions'
    equivalent constraints to it: the six per-partition findings become one, on ``public.payment``. A
    workload of whole-table reads of ``payment`` is likewise reported once, on the partitioned table."""
    clone = conftest.TestDatabase(pg, f"{datasets['pagila'].name}_parent")
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {clone.name} TEMPLATE {datasets['pagila'].name}")  # type: ignore[arg-type]
    try:
        # A cloned database starts with empty statistics: ANALYZE gives the planner's row counts back.
        clone.execute("ALTER TABLE payment ADD CONSTRAINT payment_rental_id_fkey "
                      "FOREIGN KEY (rental_id) REFERENCES rental (rental_id); ANALYZE payment")
        assert clone.query("SELECT count(*) FROM pg_constraint WHERE conparentid <> 0 "
                           "AND conname LIKE 'payment_p2022_%_rental_id_fkey'") == [(6,)]
        with psycopg.connect(clone.dsn, autocommit=True) as conn:
            conn.execute("SET max_parallel_workers_per_gather = 0")
            for _ in range(60):
                conn.execute("SELECT sum(amount) FROM payment")
            conn.execute("SELECT pg_stat_force_next_flush()")  # flushed before this statement returns
        report = audit_json(clone.dsn, tmp_path)
        fk = [(f["object"], f["evidence"]["constraint"]) for f in report["findings"]
              if f["check_name"] == "foreign-key-without-index"]
        assert ("public.payment", "payment_rental_id_fkey") in fk
        assert not [obj for obj, _ in fk if obj.startswith("public.payment_p")]
        heavy = [f for f in report["findings"] if f["check_name"] == "seq-scan-heavy-table"]
        assert [f["object"] for f in heavy] == ["public.payment"], report["findings"]
        assert heavy[0]["evidence"]["n_live_tup"] == 16049
    finally:
        drop_database(clone)
