"""Secrets for issue 9, item 8: a distinctive password given to dbtune four ways (in a DSN, ``PGPASSWORD``,
a ``.pgpass`` file, a service file), every command run with it against a server that requires password
authentication over TCP (``scram-sha-256``, as :class:`~dbtune.db.local_server.LocalServer` sets up),
failing runs included (a wrong password, a server that is down, a database that does not exist, a bad
config); then every stdout, stderr and file the runs wrote is scanned for the password in the forms it
may leak in: as is, URL-encoded (``quote``/``quote_plus``), and base64 (standard and URL-safe).

Both ``tests/test_faults_secrets.py`` and ``benchmarks/faultparts/secrets.py`` call :func:`create_role`,
:func:`ways`, :func:`commands` and :func:`run_and_scan`.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
from faultkit.run import Outcome, run_cli
from psycopg import sql

from dbtune.db.local_server import LocalServer, free_port

ROLE = "secret_app"
# Distinctive, and with the characters a URL, a .pgpass line and a service file each treat specially.
PASSWORD = "Sekr3t-p@ss/w:rd\\9f3a!%Q"
WRONG_PASSWORD = PASSWORD + "-wrong"  # holds PASSWORD, so a wrong one echoed is found too


def forms(password: str = PASSWORD) -> dict[str, str]:
    """The password as it may appear: as is, URL-encoded, base64."""
    raw = password.encode()
    return {"as is": password, "url-encoded": quote(password, safe=""), "url-encoded (+)": quote_plus(password),
            "base64": base64.b64encode(raw).decode(), "base64 (url-safe)": base64.urlsafe_b64encode(raw).decode()}


def create_role(server: LocalServer, dbname: str) -> None:
    """``ROLE`` (a superuser, so every command may run) with ``PASSWORD``, owning ``dbname``. The password is
    set with pg_stat_statements' tracking of utility statements off, so the server's own statistics do
    not hold it (that would be the test's leak, not dbtune's)."""
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute("SET pg_stat_statements.track_utility = off")
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN SUPERUSER PASSWORD {}").format(  # type: ignore[operator]
            sql.Identifier(ROLE), sql.Literal(PASSWORD)))
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(ROLE)))


def _pgpass_field(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


@dataclass(frozen=True)
class Way:
    """One way of giving the password: the ``--dsn`` value and the environment a run gets."""

    name: str
    dsn: str
    env: dict[str, str] = field(default_factory=dict)


def ways(server: LocalServer, dbname: str, folder: Path) -> list[Way]:
    """The four ways, over TCP to ``127.0.0.1`` (``.pgpass`` and the service file are written to ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    host = f"host=127.0.0.1 port={server.port} dbname={dbname} user={ROLE}"
    pgpass = folder / "pgpass"
    pgpass.write_text(f"127.0.0.1:{server.port}:*:{ROLE}:{_pgpass_field(PASSWORD)}\n")
    pgpass.chmod(0o600)
    services = folder / "pg_service.conf"
    services.write_text(f"[fuzzsvc]\nhost=127.0.0.1\nport={server.port}\ndbname={dbname}\nuser={ROLE}\n"
                        f"password={PASSWORD}\n")
    return [
        Way("DSN", f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}@127.0.0.1:{server.port}/{dbname}"),
        Way("PGPASSWORD", host, {"PGPASSWORD": PASSWORD}),
        Way(".pgpass", host, {"PGPASSFILE": str(pgpass)}),
        Way("service file", "service=fuzzsvc", {"PGSERVICEFILE": str(services)}),
    ]


def failing_ways(server: LocalServer, dbname: str) -> list[Way]:
    """Runs that fail where a DSN may be echoed: a wrong password (in a URL, in ``PGPASSWORD``), a server
    that is down (a port nothing listens on), a database that does not exist, an unknown DSN keyword."""
    port = server.port
    return [
        Way("wrong password in a URL",
            f"postgresql://{ROLE}:{quote(WRONG_PASSWORD, safe='')}@127.0.0.1:{port}/{dbname}"),
        Way("wrong PGPASSWORD", f"host=127.0.0.1 port={port} dbname={dbname} user={ROLE}",
            {"PGPASSWORD": WRONG_PASSWORD}),
        Way("server down", f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}/{dbname}"),
        Way("no such database", f"host=127.0.0.1 port={port} dbname=no_such_db user={ROLE} password='{PASSWORD}'"),
        Way("bad DSN keyword", f"host=127.0.0.1 port={port} dbname={dbname} passwort={PASSWORD} "
                               f"password={PASSWORD}"),
        Way("DATABASE_URL and a bad config", "", {"DATABASE_URL": f"postgresql://{ROLE}:{quote(PASSWORD, safe='')}"
                                                                 f"@127.0.0.1:{port}/{dbname}"}),
    ]


WORKLOAD = """-- name: by-retailer
SELECT * FROM orders WHERE retailer_id = $1 ORDER BY created_at DESC LIMIT 20;
-- params: SELECT 1
-- name: children
SELECT c.id FROM child c JOIN parent p ON p.id = c.parent_id WHERE c.note = 'n';
"""


def commands(way: Way, *, full: bool) -> Iterator[list[str]]:
    """Every command with ``way``'s DSN, in an order where each may read what the ones before wrote (the
    working directory holds ``workload.sql``; see :func:`prepare`). ``full`` adds the slow ones (tune, the
    probes, a second bench run)."""
    dsn = ["--dsn", way.dsn] if way.dsn else []
    yield ["audit", *dsn]
    yield ["audit", *dsn, "--format", "json", "--output", "report.json", "--fail-on", "never"]
    yield ["audit", *dsn, "--format", "markdown", "--verbose", "--workload", "workload.sql"]
    yield ["explain", "SELECT * FROM child WHERE parent_id = $1", *dsn]
    yield ["explain", "--workload", "workload.sql", *dsn, "--format", "json", "--output", "plans.json"]
    yield ["advise", "--workload", "workload.sql", *dsn, "--format", "json", "--output", "advice.json"]
    yield ["advise", "--workload", "workload.sql", *dsn]
    yield ["migrate", "generate", *dsn, "--dir", "migrations", "--verbose"]
    yield ["migrate", "generate", "--from", "advice.json", "--dir", "sql-migrations", "--format", "sql"]
    yield ["migrate", "status", *dsn, "--dir", "migrations"]
    yield ["migrate", "apply", *dsn, "--dir", "migrations", "--dry-run"]
    yield ["migrate", "apply", *dsn, "--dir", "migrations", "--verbose"]
    yield ["migrate", "status", *dsn, "--dir", "migrations"]
    yield ["migrate", "apply", *dsn, "--dir", "migrations", "--downgrade-to", "base"]
    yield ["bench", "run", *dsn, "--workload", "workload.sql", "--iterations", "5", "--rounds", "2", "--warmup",
           "1", "--out", "before.json"]
    if full:
        yield ["bench", "run", *dsn, "--workload", "workload.sql", "--iterations", "5", "--rounds", "2",
               "--warmup", "1", "--clients", "2", "--out", "after.json", "--format", "json"]
        yield ["bench", "compare", "before.json", "after.json", "--force"]
        yield ["probe", "race", *dsn, "--yes", "--sessions", "2", "--rounds", "2"]
        yield ["probe", "load", *dsn, "--yes", "--workload", "workload.sql", "--clients", "2", "--duration", "1",
               "--engine", "pgbench"]
        yield ["probe", "lag", *dsn]
        yield ["tune", *dsn, "--workload", "workload.sql", "--iterations", "3", "--no-advisor", "--yes",
               "--dir", "tune-migrations"]


def failing_commands(way: Way) -> Iterator[list[str]]:
    """The commands that connect first, for a way that cannot connect or is misconfigured."""
    dsn = ["--dsn", way.dsn] if way.dsn else []
    config = ["--config", "bad.toml"] if "config" in way.name else []
    yield ["audit", *dsn, *config]
    yield ["audit", *dsn, *config, "--format", "json", "--output", "report.json", "--verbose"]
    yield ["explain", "SELECT 1", *dsn, *config]
    yield ["advise", "--workload", "workload.sql", *dsn, *config]
    yield ["migrate", "status", *dsn, "--dir", "migrations", *config]
    yield ["migrate", "apply", *dsn, "--dir", "migrations", *config]
    yield ["bench", "run", *dsn, "--workload", "workload.sql", "--iterations", "2", *config]
    yield ["probe", "load", *dsn, "--yes", "--workload", "workload.sql", "--duration", "1", *config]


def prepare(folder: Path) -> None:
    """An empty working directory with ``workload.sql`` and ``bad.toml`` (an unknown key)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "workload.sql").write_text(WORKLOAD)
    (folder / "bad.toml").write_text("[database]\nstatment_timeout = 5\n")


@dataclass
class Scan:
    """What was run and scanned, and every leak found: (where, which form of the password)."""

    commands: int = 0
    files: int = 0
    bytes: int = 0
    leaks: list[tuple[str, str]] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)

    def text(self, where: str, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        self.bytes += len(data)
        for name, secret in forms().items():
            if secret.encode() in data:
                self.leaks.append((where, name))

    def tree(self, folder: Path, skip: tuple[Path, ...] = ()) -> None:
        """Every file under ``folder`` but ``skip`` (the files the test itself wrote with the password)."""
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path not in skip:
                self.files += 1
                self.text(str(path.relative_to(folder)), path.read_bytes())


def run_and_scan(way: Way, argvs: Iterator[list[str]], folder: Path, scan: Scan) -> None:
    """Run every command of ``argvs`` in ``folder`` (prepared first) with ``way``'s environment, scanning
    each one's stdout and stderr; then every file the runs left in ``folder``."""
    prepare(folder)
    for argv in argvs:
        outcome = run_cli(*argv, cwd=folder, env=way.env)
        scan.commands += 1
        scan.outcomes.append(outcome)
        label = f"{way.name}: dbtune {' '.join(a for a in argv if a != way.dsn)}"
        scan.text(f"{label}: stdout", outcome.out)
        scan.text(f"{label}: stderr", outcome.err + outcome.escaped)
    scan.tree(folder)
