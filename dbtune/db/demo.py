"""The embedded demo: a throwaway PostgreSQL 18 with pg_stat_statements preloaded, the guide's
application schema (without the guide's indexes), generated data, and the application's query mix.

The schema, data generator and workload are readable SQL under ``sample_configs/guide/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pglast
import psycopg

from dbtune.db.local_server import LocalServer, embedded_bindir
from dbtune.errors import DbtuneError, UsageError
from dbtune.progress import Count, no_count
from dbtune.samples import guide_file
from dbtune.workload.load import parse_workload
from dbtune.workload.model import WorkloadQuery

DEMO_DATABASE = "guide"
APP_ROLE = "app"
STATE_FILE = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "dbtune" / "demo.json"


def _sample_params(conn: psycopg.Connection, q: WorkloadQuery, n: int) -> list[tuple[object, ...]]:
    if not q.params_sql:
        return [()] * n
    # Draw up to n distinct parameter rows: the params query with its OFFSET moved around the data.
    rows: list[tuple[object, ...]] = []
    for i in range(n):
        sql = re.sub(r"OFFSET\s+\d+", f"OFFSET {(i * 7919) % 5000}", q.params_sql, flags=re.IGNORECASE)
        row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
        if row is not None:
            rows.append(tuple(row))
    return rows or [()]


ROWS_LOADED = "rows loaded"


def load_guide_data(conn: psycopg.Connection, scale: float, count: Count = no_count) -> int:
    """Run ``sample_configs/guide/data.sql`` at ``scale`` on ``conn`` (an autocommit session on a database
    holding ``schema.sql``), one statement after another in one transaction, as psql's ``-1 -f`` would;
    ``count`` is told ``("rows loaded", rows inserted so far, None)`` after each statement (the total is
    not known beforehand: the routings' responses vary). Returns the rows inserted. Raises psycopg.Error
    when the server refuses a statement (the transaction is rolled back)."""
    data = guide_file("data.sql").read_text().replace(":scale", repr(float(scale)))
    rows = 0
    count(ROWS_LOADED, rows, None)
    with conn.transaction():
        for statement in pglast.split(data):
            cur = conn.execute(statement)  # type: ignore[arg-type]
            if cur.statusmessage and cur.statusmessage.startswith("INSERT"):
                rows += max(cur.rowcount, 0)
                count(ROWS_LOADED, rows, None)
    return rows


# Off while the data loads (LocalServer.init), on again (their defaults) before the loop: all three are
# reloadable (https://www.postgresql.org/docs/current/runtime-config-wal.html).
DURABILITY = ("fsync", "full_page_writes", "synchronous_commit")


@dataclass
class Demo:
    """A running demo server."""

    server: LocalServer

    @property
    def dsn(self) -> str:
        """A password-free DSN over the server's Unix socket."""
        return self.server.dsn(DEMO_DATABASE)

    @classmethod
    def start(cls, root: Path | None = None) -> Demo:
        server = LocalServer.create(embedded_bindir(), root)
        server.init({"shared_preload_libraries": "'pg_stat_statements'",
                     "pg_stat_statements.track": "top", "max_parallel_workers_per_gather": "2",
                     "shared_buffers": "'256MB'", "maintenance_work_mem": "'256MB'"})
        server.start()
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DEMO_DATABASE}")  # type: ignore[arg-type]
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN")  # type: ignore[arg-type]
        return cls(server)

    def load(self, scale: float, progress: Callable[[str], None] = lambda _: None,
             count: Count = no_count) -> dict[str, int]:
        """Create the schema and generate the data (``count``: the rows loaded, :func:`load_guide_data`);
        returns row counts per table. Raises UsageError for a scale not above 0, DbtuneError when the server
        refuses the load."""
        if scale <= 0:
            raise UsageError(f"--scale must be greater than 0, got {scale}")
        try:
            return self._load(scale, progress, count)
        except psycopg.Error as exc:
            raise DbtuneError(f"loading the guide's sample data failed: {' '.join(str(exc).split())}") from None

    def _load(self, scale: float, progress: Callable[[str], None], count: Count) -> dict[str, int]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute(guide_file("schema.sql").read_text())  # type: ignore[arg-type]
            conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}")  # type: ignore[arg-type]
            started = time.perf_counter()
            load_guide_data(conn, scale, count)
            # data.sql's own ANALYZE runs in the load's transaction, whose inserts reach the cumulative
            # statistics only when it commits, after it: n_mod_since_analyze would count the whole load as the
            # application's writes (the advisor's write cost). Analyzed again, the load is behind us.
            # VACUUM too: on 13+ the load's inserts would start autovacuum on the big tables just as the
            # advisor's trial builds want their SHARE lock (lock_timeout 1 s); vacuumed now, it has nothing to do.
            conn.execute("VACUUM ANALYZE")
            progress(f"generated data in {time.perf_counter() - started:.1f} s")
            counts = conn.execute(
                "SELECT c.relname, c.reltuples::bigint FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1").fetchall()
            conn.execute("SELECT pg_stat_statements_reset()")
            # The load ran without fsync (LocalServer's throwaway settings); what the demo audits, benchmarks
            # and crashes is a server as durable as production: PostgreSQL's defaults back, by a reload.
            for name in DURABILITY:
                conn.execute(f"ALTER SYSTEM SET {name} = on")  # type: ignore[arg-type]
            conn.execute("SELECT pg_reload_conf()")
        return {name: int(n) for name, n in counts}

    def run_workload(self, iterations: int, progress: Callable[[str], None] = lambda _: None) -> dict[str, float]:
        """Run each workload query ``iterations`` times with sampled parameters, as the application's role
        would; returns the mean latency (ms) per query name."""
        queries = parse_workload(guide_file("workload.sql").read_text())
        means: dict[str, float] = {}
        # RawCursor sends the statements' own $n placeholders, as an application's driver does.
        with psycopg.connect(self.dsn, autocommit=True, cursor_factory=psycopg.RawCursor) as conn:
            for q in queries:
                try:
                    params = _sample_params(conn, q, iterations)
                    started = time.perf_counter()
                    for i in range(iterations):
                        with conn.transaction():
                            conn.execute(q.sql, params[i % len(params)] or None).fetchall()  # type: ignore[arg-type]
                except psycopg.Error as exc:
                    raise DbtuneError(f"sample_configs/guide/workload.sql: query {q.name!r} failed: "
                                      f"{' '.join(str(exc).split())}") from None
                means[q.name] = (time.perf_counter() - started) * 1000 / iterations
                progress(f"  {q.name}: {iterations} runs, mean {means[q.name]:.1f} ms")
        return means

    def save_state(self) -> None:
        STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
        STATE_FILE.write_text(json.dumps({"bindir": str(self.server.bindir), "root": str(self.server.root),
                                          "port": self.server.port, "os_user": self.server.os_user}))

    def destroy(self) -> None:
        self.server.destroy()


def stop_saved_demo() -> str | None:
    """Stop the demo left running by ``dbtune demo --keep`` and delete its files; returns its directory,
    or None when no demo is running."""
    if not STATE_FILE.exists():
        return None
    state = json.loads(STATE_FILE.read_text())
    server = LocalServer(bindir=Path(state["bindir"]), root=Path(state["root"]), port=state["port"],
                         os_user=state["os_user"])
    server.stop("fast")
    shutil.rmtree(server.root, ignore_errors=True)
    STATE_FILE.unlink()
    return str(server.root)
