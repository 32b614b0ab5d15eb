"""TPC-H data for the benchmarks: generated offline with DuckDB's dbgen, loaded into a PostgreSQL 15 server
(Debian's binaries, with hypopg) whose data directory is kept, so a second run starts in seconds.

- :func:`duckdb_tpch`: an in-memory DuckDB with the ``tpch`` extension loaded from the file that the
  ``duckdb-extension-tpch`` wheel ships (no network: ``INSTALL tpch`` is never run).
- :func:`tpch_queries`: the 22 texts of DuckDB's ``tpch_queries()``, unchanged.
- :func:`open_tpch`: start the server on ``data_dir``, loading it first when the directory is new:
  ``CALL dbgen(sf=…)``, each table exported as ``|``-separated CSV and read with ``COPY … FROM STDIN``, the
  dbgen column types (TPC-H's ``dss.ddl``: INTEGER keys, DECIMAL(15,2), CHAR/VARCHAR, DATE), primary keys
  only (:data:`PRIMARY_KEYS`), ``VACUUM ANALYZE``, ``CREATE EXTENSION hypopg``, then ``pg_stat_reset()``.

The reference figures these reproduce: ``../shared/reference/advisor-peers-tpch.md``.
PostgreSQL pages followed: https://www.postgresql.org/docs/15/sql-copy.html,
https://www.postgresql.org/docs/15/monitoring-stats.html (``pg_stat_reset``).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from dbtune.db.local_server import LocalServer, system_bindir
from dbtune.errors import UsageError

MAJOR = 15
DBNAME = "tpch"
DUCKDB_VERSION = "1.5.5"
BENCH_INSTALL = f"pip install 'duckdb=={DUCKDB_VERSION}' 'duckdb-extension-tpch=={DUCKDB_VERSION}'"
SERVER_SETTINGS = {"max_wal_size": "'4GB'"}  # the reference's only change from the defaults
MARKER = "tpch.json"
COPY_CHUNK = 8 * 1024 * 1024  # bytes read from a CSV file per COPY write

# TPC-H dbgen's dss.ddl, in load order (small tables first).
TABLES: dict[str, str] = {
    "region": "r_regionkey integer NOT NULL, r_name char(25) NOT NULL, r_comment varchar(152)",
    "nation": "n_nationkey integer NOT NULL, n_name char(25) NOT NULL, n_regionkey integer NOT NULL, "
              "n_comment varchar(152)",
    "part": "p_partkey integer NOT NULL, p_name varchar(55) NOT NULL, p_mfgr char(25) NOT NULL, "
            "p_brand char(10) NOT NULL, p_type varchar(25) NOT NULL, p_size integer NOT NULL, "
            "p_container char(10) NOT NULL, p_retailprice decimal(15,2) NOT NULL, p_comment varchar(23) NOT NULL",
    "supplier": "s_suppkey integer NOT NULL, s_name char(25) NOT NULL, s_address varchar(40) NOT NULL, "
                "s_nationkey integer NOT NULL, s_phone char(15) NOT NULL, s_acctbal decimal(15,2) NOT NULL, "
                "s_comment varchar(101) NOT NULL",
    "partsupp": "ps_partkey integer NOT NULL, ps_suppkey integer NOT NULL, ps_availqty integer NOT NULL, "
                "ps_supplycost decimal(15,2) NOT NULL, ps_comment varchar(199) NOT NULL",
    "customer": "c_custkey integer NOT NULL, c_name varchar(25) NOT NULL, c_address varchar(40) NOT NULL, "
                "c_nationkey integer NOT NULL, c_phone char(15) NOT NULL, c_acctbal decimal(15,2) NOT NULL, "
                "c_mktsegment char(10) NOT NULL, c_comment varchar(117) NOT NULL",
    "orders": "o_orderkey integer NOT NULL, o_custkey integer NOT NULL, o_orderstatus char(1) NOT NULL, "
              "o_totalprice decimal(15,2) NOT NULL, o_orderdate date NOT NULL, o_orderpriority char(15) NOT NULL, "
              "o_clerk char(15) NOT NULL, o_shippriority integer NOT NULL, o_comment varchar(79) NOT NULL",
    "lineitem": "l_orderkey integer NOT NULL, l_partkey integer NOT NULL, l_suppkey integer NOT NULL, "
                "l_linenumber integer NOT NULL, l_quantity decimal(15,2) NOT NULL, "
                "l_extendedprice decimal(15,2) NOT NULL, l_discount decimal(15,2) NOT NULL, "
                "l_tax decimal(15,2) NOT NULL, l_returnflag char(1) NOT NULL, l_linestatus char(1) NOT NULL, "
                "l_shipdate date NOT NULL, l_commitdate date NOT NULL, l_receiptdate date NOT NULL, "
                "l_shipinstruct char(25) NOT NULL, l_shipmode char(10) NOT NULL, l_comment varchar(44) NOT NULL",
}

# Primary keys only, exactly the reference's list: no foreign keys, no secondary indexes.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "region": ("r_regionkey",), "nation": ("n_nationkey",), "part": ("p_partkey",), "supplier": ("s_suppkey",),
    "partsupp": ("ps_partkey", "ps_suppkey"), "customer": ("c_custkey",), "orders": ("o_orderkey",),
    "lineitem": ("l_orderkey", "l_linenumber"),
}

Progress = Callable[[str], None]


def _no_progress(_: str) -> None:
    return None


def duckdb_tpch() -> Any:
    """An in-memory DuckDB connection with the ``tpch`` extension loaded from the wheel's file.

    Raises :class:`UsageError` with the pip line to run when ``duckdb`` or ``duckdb-extension-tpch`` is
    not installed (they are the ``bench`` extra: ``pip install -e '.[bench]'``)."""
    try:
        import duckdb
        import duckdb_extension_tpch
    except ImportError as exc:
        raise UsageError(f"{exc.name} is not installed: run {BENCH_INSTALL} "
                         "(or pip install -e '.[bench]' in the repository)") from None
    root = Path(duckdb_extension_tpch.__file__).resolve().parent / "extensions"
    found = sorted(root.glob(f"v{duckdb.__version__}/tpch.duckdb_extension"))
    if not found:
        shipped = ", ".join(p.parent.name for p in root.glob("*/tpch.duckdb_extension")) or "none"
        raise UsageError(f"duckdb-extension-tpch has no extension for duckdb {duckdb.__version__} in {root} "
                         f"(it ships {shipped}): run {BENCH_INSTALL}")
    conn = duckdb.connect()
    conn.execute("SET enable_progress_bar = false")
    conn.execute(f"LOAD '{found[0]}'")
    return conn


def tpch_queries() -> list[tuple[int, str]]:
    """``(number, text)`` for the 22 queries of DuckDB's ``tpch_queries()``, unchanged (each ends in ``;``)."""
    conn = duckdb_tpch()
    try:
        return [(int(n), str(q)) for n, q in conn.execute("SELECT query_nr, query FROM tpch_queries() "
                                                          "ORDER BY query_nr").fetchall()]
    finally:
        conn.close()


def generate_csv(sf: float, out_dir: Path, progress: Progress = _no_progress) -> dict[str, Path]:
    """Run ``CALL dbgen(sf=sf)`` and write each table to ``out_dir/<table>.csv`` (``|``-separated, no
    header, DuckDB's CSV quoting). Returns table → file."""
    conn = duckdb_tpch()
    try:
        started = time.perf_counter()
        conn.execute(f"CALL dbgen(sf={float(sf)!r})")
        progress(f"dbgen sf={sf:g}: {time.perf_counter() - started:.1f} s")
        files = {}
        for table in TABLES:
            path = out_dir / f"{table}.csv"
            conn.execute(f"COPY {table} TO '{path}' (DELIMITER '|', HEADER false)")
            files[table] = path
        return files
    finally:
        conn.close()


@dataclass(frozen=True)
class TpchDatabase:
    """A running server holding TPC-H: ``server`` (stop it when done: :meth:`LocalServer.stop`), the
    database name, the scale factor, and what its marker file records (``load_s``, ``heap_bytes``, …)."""

    server: LocalServer
    sf: float
    info: dict[str, Any]
    dbname: str = DBNAME

    @property
    def dsn(self) -> str:
        """The Unix-socket DSN of the database (superuser, no password)."""
        return self.server.dsn(self.dbname)


def _read_marker(data_dir: Path) -> dict[str, Any] | None:
    path = data_dir / MARKER
    if not path.exists():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a marker this script wrote ({exc}); delete {data_dir} or give another "
                         "--data-dir") from None


def _write_marker(data_dir: Path, info: dict[str, Any]) -> None:
    (data_dir / MARKER).write_text(json.dumps(info, indent=2) + "\n")


def _set_port(server: LocalServer) -> None:
    """Point the kept cluster's ``postgresql.conf`` at ``server.port`` (the port it had may be taken now)."""
    conf = server.datadir / "postgresql.conf"
    lines = conf.read_text().splitlines()
    lines = [line for line in lines if not line.startswith("port = ")]
    conf.write_text("\n".join(lines + [f"port = {server.port}"]) + "\n")


@contextmanager
def open_tpch(data_dir: Path, sf: float, progress: Progress = _no_progress) -> Iterator[TpchDatabase]:
    """Start PostgreSQL 15 on ``data_dir`` holding TPC-H at scale factor ``sf``, loading it first when the
    directory is new or holds a load that did not finish; stop the server (keeping its data) on exit.

    Raises :class:`UsageError` when PostgreSQL 15 or hypopg is not installed (naming the apt packages),
    when ``data_dir`` holds another scale factor or something this script did not write, or when a server
    is already running on it; :class:`~dbtune.db.local_server.ServerStartError` when it does not start."""
    bindir = system_bindir(MAJOR)
    if bindir is None:
        raise UsageError(f"PostgreSQL {MAJOR} is not installed in /usr/lib/postgresql/{MAJOR}/bin: run "
                         f"apt-get install postgresql-{MAJOR} postgresql-{MAJOR}-hypopg")
    if not Path(f"/usr/share/postgresql/{MAJOR}/extension/hypopg.control").exists():
        raise UsageError(f"hypopg is not installed for PostgreSQL {MAJOR}: run apt-get install "
                         f"postgresql-{MAJOR}-hypopg")
    data_dir = data_dir.resolve()
    info = _read_marker(data_dir)
    if info is None and data_dir.exists() and any(data_dir.iterdir()):
        raise UsageError(f"--data-dir {data_dir} is not empty and holds no {MARKER}: give another --data-dir")
    if info is not None and float(info.get("sf", -1)) != sf:
        raise UsageError(f"--data-dir {data_dir} holds TPC-H at sf {info.get('sf')}, not {sf:g}: give another "
                         "--data-dir (or delete that one)")
    if info is not None and (data_dir / "data" / "postmaster.pid").exists() and info.get("state") == "ready":
        pid = (data_dir / "data" / "postmaster.pid").read_text().split("\n", 1)[0]
        if Path(f"/proc/{pid}").exists():
            raise UsageError(f"a server (pid {pid}) is already running on --data-dir {data_dir}: another run "
                             "is using it")
    if info is not None and info.get("state") != "ready":
        progress(f"{data_dir}: an earlier load did not finish; loading again")
        LocalServer(bindir=bindir, root=data_dir).stop("immediate")
        shutil.rmtree(data_dir)
        info = None
    if info is None:
        server = LocalServer.create(bindir, data_dir)
        info = {"sf": sf, "state": "loading", "postgres_major": MAJOR}
        _write_marker(data_dir, info)
        server.init(SERVER_SETTINGS)
        server.start()
        try:
            info = _load(server, sf, data_dir, progress)
        except BaseException:
            server.stop()
            raise
        _write_marker(data_dir, info)
    else:
        server = LocalServer(bindir=bindir, root=data_dir)
        _set_port(server)
        started = time.perf_counter()
        server.start()
        progress(f"PostgreSQL {MAJOR} on the kept data in {data_dir}: started in "
                 f"{time.perf_counter() - started:.1f} s")
    try:
        with psycopg.connect(server.dsn(DBNAME), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
        yield TpchDatabase(server, sf, info)
    finally:
        server.stop()


def _load(server: LocalServer, sf: float, data_dir: Path, progress: Progress) -> dict[str, Any]:
    """Generate, export and load TPC-H into a new database ``tpch``; returns the marker's contents."""
    started = time.perf_counter()
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DBNAME}")  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="csv-", dir=data_dir) as tmp:
        files = generate_csv(sf, Path(tmp), progress)
        generated_s = time.perf_counter() - started
        with psycopg.connect(server.dsn(DBNAME), autocommit=True) as conn:
            for table, columns in TABLES.items():
                conn.execute(f"CREATE TABLE {table} ({columns})")  # type: ignore[arg-type]
                t0 = time.perf_counter()
                with conn.cursor() as cur, cur.copy(  # type: ignore[arg-type]
                        f"COPY {table} FROM STDIN (FORMAT csv, DELIMITER '|')") as copy, files[table].open("rb") as fh:
                    while chunk := fh.read(COPY_CHUNK):
                        copy.write(chunk)
                files[table].unlink()
                progress(f"COPY {table}: {time.perf_counter() - t0:.1f} s")
            for table, key in PRIMARY_KEYS.items():
                conn.execute(f"ALTER TABLE {table} ADD PRIMARY KEY ({', '.join(key)})")  # type: ignore[arg-type]
            conn.execute("VACUUM ANALYZE")
            conn.execute("CREATE EXTENSION IF NOT EXISTS hypopg")
            # The load's inserts are not the workload's writes: without this reset the advisor would read
            # pg_stat_user_tables' n_tup_ins as write traffic on every table and charge indexes for it.
            conn.execute("SELECT pg_stat_reset()")
            heap = heap_bytes(conn)
            version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    load_s = time.perf_counter() - started
    progress(f"loaded TPC-H sf={sf:g} in {load_s:.1f} s (generate and export {generated_s:.1f} s); heap "
             f"{sum(heap.values()):,} bytes; statistics reset (the load is not the workload's writes)")
    return {"sf": sf, "state": "ready", "postgres_major": MAJOR, "server_version": version,
            "load_s": round(load_s, 1), "generate_s": round(generated_s, 1), "heap_bytes": heap}


def heap_bytes(conn: psycopg.Connection) -> dict[str, int]:
    """Each TPC-H table's heap (main fork, ``pg_relation_size``) in bytes, in :data:`TABLES` order."""
    rows = conn.execute("SELECT c.relname, pg_catalog.pg_relation_size(c.oid) FROM pg_catalog.pg_class c "
                        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' "
                        "AND c.relname = ANY(%s)", [list(TABLES)]).fetchall()
    sizes = {str(name): int(size) for name, size in rows}
    return {t: sizes[t] for t in TABLES if t in sizes}
