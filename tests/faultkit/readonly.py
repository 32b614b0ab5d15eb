"""The read-only promise, measured (issue 9, item 9), shared by ``tests/test_faults_readonly.py`` and
``benchmarks/faultparts/readonly.py``.

``audit``, ``explain`` and ``advise`` (no ``--trial-builds``, no ``--validate``) run through the real CLI
as two password logins: ``reader``, which may only read (``CONNECT``, ``USAGE`` on the schema, ``SELECT``
on its tables, ``pg_monitor``; no ``CREATE`` on the database or a schema, no ``TEMP``), and ``owner``,
which owns the tables and could write anything there; neither has ``default_transaction_read_only`` set,
so dbtune's own discipline is what is measured. Evidence that nothing was written, per command:

- ``pg_stat_database.tup_inserted/updated/deleted`` of the database and ``pg_stat_user_tables``'
  ``n_tup_ins/upd/del``: unchanged (``xact_commit`` counts read-only commits too, so it proves nothing);
  a ``CREATE`` of anything, a temporary table included, inserts catalog rows and would show here;
- ``pg_stat_statements`` rows of the role in the database: only reads (SELECT, SET, SHOW, EXPLAIN,
  BEGIN/COMMIT/ROLLBACK, prepared statements), and their ``wal_records`` sum 0. ``advise`` calls
  hypopg's ``hypopg_create_index()`` in SELECTs: hypothetical indexes live in the backend's memory only,
  write no catalog row and no WAL, which these same counters show.

Cumulative statistics are sent by a backend when it exits or within a second: after each command the
counters are read once every dbtune backend has gone (``pg_stat_activity``), after
``pg_stat_clear_snapshot()`` (https://www.postgresql.org/docs/current/monitoring-stats.html). A control
(``probe_writes``) writes through the same role and must be seen, so a stale counter cannot pass.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from faultkit import sqlkinds
from faultkit.hostile import Command, dbtune
from psycopg import sql

from dbtune.db.local_server import LocalServer, embedded_bindir, system_bindir

SCHEMA = "shop"
SETUP = """
CREATE SCHEMA shop AUTHORIZATION {owner};
SET ROLE {owner};
CREATE TABLE shop.customers (id bigint PRIMARY KEY, email text NOT NULL, region text);
CREATE TABLE shop.orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES shop.customers (id),
                          status text NOT NULL, total_cents bigint, created_at timestamptz NOT NULL);
INSERT INTO shop.customers SELECT g, 'c' || g || '@example.com', 'r' || (g % 7) FROM generate_series(1, {rows}) g;
INSERT INTO shop.orders SELECT g, 1 + g % {rows}, (ARRAY['new', 'paid', 'shipped'])[1 + g % 3], g * 10,
       '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, {orders}) g;
RESET ROLE;
GRANT USAGE ON SCHEMA shop TO {reader};
GRANT SELECT ON ALL TABLES IN SCHEMA shop TO {reader};
"""
WORKLOAD = """-- name: by_customer
SELECT * FROM shop.orders WHERE customer_id = $1 ORDER BY created_at DESC LIMIT 10;
-- name: by_status
SELECT count(*) FROM shop.orders WHERE status = $1 AND created_at > $2;
-- name: by_email
SELECT id FROM shop.customers WHERE email = $1;
"""
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("audit", "--workload", "workload.sql", "--format", "json", "--fail-on", "never"),  # findings are not failures here
    ("explain", "--workload", "workload.sql", "--format", "json"),
    ("advise", "--workload", "workload.sql", "--format", "json"),
)


@dataclass(frozen=True)
class Login:
    name: str
    password: str


@dataclass(frozen=True)
class Counters:
    """The write counters of one database (rows) and the role's pg_stat_statements there."""

    tuples: tuple[int, int, int]           # pg_stat_database tup_inserted, tup_updated, tup_deleted
    table_tuples: tuple[int, int, int]     # sum of pg_stat_user_tables n_tup_ins, n_tup_upd, n_tup_del
    statements: tuple[tuple[str, int, int], ...]  # (query, calls, wal_records) of the role


@dataclass
class CommandWrites:
    """What one command as one role wrote: rows (every counter's increase), statements other than reads
    (texts), WAL records of its statements."""

    role: str
    command: Command
    rows_written: int
    writes: list[str] = field(default_factory=list)
    wal_records: int = 0
    wal_statements: list[str] = field(default_factory=list)
    statements: int = 0


@contextmanager
def quiet_server(major: int | None = None) -> Iterator[LocalServer]:
    """A throwaway server (Debian's ``major`` where given, else the embedded 18) with pg_stat_statements
    and no autovacuum, whose own writes would blur the counters."""
    bindir = embedded_bindir() if major is None else system_bindir(major)
    assert bindir is not None, f"PostgreSQL {major} is not installed"
    server = LocalServer.create(bindir)
    server.init({"shared_preload_libraries": "'pg_stat_statements'", "autovacuum": "off"})
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@contextmanager
def logins(server: LocalServer, tag: str, database: str) -> Iterator[dict[str, Login]]:
    """``reader`` (pg_monitor, SELECT only, no CREATE or TEMP anywhere) and ``owner`` (owns the schema), two
    password logins unique to this run; what they own or were granted in ``database``, and they, are
    dropped afterwards."""
    made = {kind: Login(f"dbtune_{kind}_{tag}", f"{kind}-{os.urandom(6).hex()}") for kind in ("reader", "owner")}
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for kind, login in made.items():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER PASSWORD {}{}").format(
                sql.Identifier(login.name), sql.Literal(login.password),
                sql.SQL(" IN ROLE pg_monitor" if kind == "reader" else "")))
    try:
        yield made
    finally:
        names = sql.SQL(", ").join(sql.Identifier(login.name) for login in made.values())
        with psycopg.connect(server.dsn(database), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(names))
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(names))
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(names))


def prepare(server: LocalServer, database: str, roles: dict[str, Login], rows: int = 500,
            hypopg: bool = False) -> None:
    """The database: ``CONNECT`` for both roles, ``TEMP`` and ``CREATE`` for neither through ``PUBLIC`` (the
    owner gets ``CREATE`` itself), the schema owned by ``owner``, pg_stat_statements (and hypopg)
    created, every table vacuumed and analysed, so a read sets no hint bit."""
    reader, owner = roles["reader"].name, roles["owner"].name
    with psycopg.connect(server.dsn(database), autocommit=True) as conn:
        db = sql.Identifier(database)
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}, {}").format(db, sql.Identifier(reader),
                                                                              sql.Identifier(owner)))
        conn.execute(sql.SQL("GRANT CREATE, TEMP ON DATABASE {} TO {}").format(db, sql.Identifier(owner)))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        if hypopg:
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        conn.execute(SETUP.format(owner=sql.Identifier(owner).as_string(conn),  # type: ignore[arg-type]
                                  reader=sql.Identifier(reader).as_string(conn), rows=rows, orders=rows * 10))
        # ANALYZE first: its pg_statistic updates leave dead tuples, which the first read of the catalog
        # would prune (and WAL-log, a write by the server, not by dbtune); the VACUUM after removes them.
        conn.execute("ANALYZE")
        conn.execute("VACUUM (FREEZE)")


def privileges(server: LocalServer, database: str, role: str) -> dict[str, bool]:
    """What ``role`` may do in ``database``: CREATE and TEMP on it, CREATE on ``public`` and the schema,
    INSERT on the tables, superuser, and whether its sessions start read-only."""
    with psycopg.connect(server.dsn(database), autocommit=True) as conn:
        row = conn.execute(
            "SELECT has_database_privilege(%(r)s, current_database(), 'CREATE'), "
            "has_database_privilege(%(r)s, current_database(), 'TEMP'), "
            "has_schema_privilege(%(r)s, 'public', 'CREATE'), has_schema_privilege(%(r)s, %(s)s, 'CREATE'), "
            "has_table_privilege(%(r)s, 'shop.orders', 'INSERT'), "
            "(SELECT rolsuper FROM pg_roles WHERE rolname = %(r)s), "
            "coalesce((SELECT bool_or(c = 'default_transaction_read_only=on') FROM pg_db_role_setting s, "
            "unnest(s.setconfig) c WHERE s.setrole IN (0, (SELECT oid FROM pg_roles WHERE rolname = %(r)s))), false)",
            {"r": role, "s": SCHEMA}).fetchone()
    assert row is not None
    keys = ("create_database", "temp", "create_public", "create_schema", "insert", "superuser", "read_only_default")
    return dict(zip(keys, (bool(v) for v in row), strict=True))


def counters(server: LocalServer, database: str, role: str) -> Counters:
    """The counters, once no other client backend is left in ``database`` (dbtune's, or the setup's: their
    statistics are sent on exit)."""
    with psycopg.connect(server.dsn(database), autocommit=True) as conn:
        deadline = time.monotonic() + 10
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND backend_type = 'client backend' AND pid <> pg_backend_pid()").fetchone() != (0,):
            if time.monotonic() > deadline:
                raise AssertionError("another client backend is still connected")
            time.sleep(0.05)
        time.sleep(0.2)  # a backend's exit (and its statistics' flush) ends after it leaves pg_stat_activity
        conn.execute("SELECT pg_stat_clear_snapshot()")
        db = conn.execute("SELECT tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
                          "WHERE datname = current_database()").fetchone()
        tables = conn.execute("SELECT coalesce(sum(n_tup_ins), 0), coalesce(sum(n_tup_upd), 0), "
                              "coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables").fetchone()
        rows = conn.execute("SELECT query, calls, wal_records FROM pg_stat_statements s JOIN pg_roles r "
                            "ON r.oid = s.userid WHERE r.rolname = %s AND s.dbid = (SELECT oid FROM pg_database "
                            "WHERE datname = current_database()) ORDER BY 1", (role,)).fetchall()
    assert db is not None and tables is not None
    return Counters(tuple(int(v) for v in db), tuple(int(v) for v in tables),  # type: ignore[arg-type]
                    tuple((str(q), int(c), int(w)) for q, c, w in rows))


def difference(before: Counters, after: Counters, role: str, command: Command) -> CommandWrites:
    """What changed between two readings, as one command's writes. ``rows_written`` counts both the
    database's and the tables' counters (a row of a user table is counted twice; a catalog row once)."""
    rows = sum(b - a for a, b in zip(before.tuples + before.table_tuples, after.tuples + after.table_tuples,
                                     strict=True))
    old = {q: (c, w) for q, c, w in before.statements}
    out = CommandWrites(role, command, rows)
    for query, calls, wal in after.statements:
        was_calls, was_wal = old.get(query, (0, 0))
        if calls == was_calls:
            continue
        out.statements += 1
        out.wal_records += wal - was_wal
        if wal != was_wal:
            out.wal_statements.append(query)
        nodes = sqlkinds.statements(query)
        if nodes is None or any(sqlkinds.writes(n) for n in nodes):
            out.writes.append(query)
    return out


def run_commands(server: LocalServer, database: str, roles: dict[str, Login], work: Path,
                 commands: tuple[tuple[str, ...], ...] = COMMANDS) -> list[CommandWrites]:
    """Each command as each role, over TCP with its password, with the workload in ``work``."""
    (work / "workload.sql").write_text(WORKLOAD)
    out = []
    for kind in ("reader", "owner"):
        login = roles[kind]
        dsn = server.dsn(database, user=login.name, tcp=True, password=login.password)
        for args in commands:
            before = counters(server, database, login.name)
            command = dbtune(*args, cwd=work, dsn=dsn)
            out.append(difference(before, counters(server, database, login.name), kind, command))
    return out


def probe_writes(server: LocalServer, database: str, login: Login) -> CommandWrites:
    """The control: as ``login`` (with application_name ``dbtune-control``), a temporary table, an
    INSERT and a DELETE, which the same counters must see."""
    before = counters(server, database, login.name)
    dsn = server.dsn(database, user=login.name, tcp=True, password=login.password)
    with psycopg.connect(dsn, autocommit=True, application_name="dbtune-control") as conn:
        conn.execute("CREATE TEMP TABLE scratch (id int)")
        conn.execute("INSERT INTO scratch SELECT generate_series(1, 3)")
        conn.execute("DELETE FROM scratch WHERE id = 1")
    return difference(before, counters(server, database, login.name), "owner", Command(("control",), 0, "", ""))
