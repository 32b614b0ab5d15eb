"""Connection settings and sessions.

The target comes from ``--dsn`` (a URI or a ``key=value`` string), else ``DATABASE_URL``, else libpq's own
defaults (``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``, ``PGSERVICE``, ``.pgpass``).
Follows https://www.postgresql.org/docs/current/libpq-connect.html and libpq-envars.html.

A password never leaves this module: :func:`describe` and :func:`mask` are the only ways a DSN is shown,
and every error message is scrubbed of the password before it is raised.

Every statement sent on a connection made here carries the :data:`MARKER` comment (:func:`mark`), so
pg_stat_statements and server logs tell dbtune's statements from the application's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg.rows import Row

from dbtune.errors import ConnectionFailed, DbtuneError, ServerRefused, UsageError
from dbtune.escape import one_line

DEFAULT_CONNECT_TIMEOUT_S = 10
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
AUDIT_LOCK_TIMEOUT_MS = 1_000
APPLICATION_NAME = "dbtune"
# The comment that marks every statement dbtune sends. It goes right after the statement's first word
# (``SELECT /* dbtune */ …``): from PostgreSQL 18 on, pg_stat_statements keeps a statement's text from its
# first token, so a comment before it would not be seen there.
MARKER = "/* dbtune */"
_FIRST_WORD = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*[A-Za-z_]+", re.S)


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect.

    ``dsn`` is what the user gave (possibly empty: libpq defaults apply); ``source`` says where it came
    from (``--dsn``, ``DATABASE_URL`` or ``libpq defaults``) so errors can name the culprit.
    """

    dsn: str = ""
    source: str = "libpq defaults"
    connect_timeout_s: int = DEFAULT_CONNECT_TIMEOUT_S
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS

    def params(self) -> dict[str, str]:
        """The DSN as libpq keywords. Raises :class:`UsageError` when the DSN is malformed."""
        try:
            params = conninfo.conninfo_to_dict(self.dsn)
        except psycopg.ProgrammingError as exc:
            raise UsageError(f"{self.source} is not a valid connection string: {_scrub(str(exc), self.dsn)}") from None
        return {k: str(v) for k, v in params.items() if v is not None}

    def password(self) -> str | None:
        """The password given in the DSN or ``PGPASSWORD``, only for scrubbing messages."""
        try:
            pw = conninfo.conninfo_to_dict(self.dsn).get("password")
        except psycopg.ProgrammingError:
            pw = None
        return str(pw) if pw else os.environ.get("PGPASSWORD") or None


def resolve(dsn: str | None, *, statement_timeout_ms: int | None = None,
            connect_timeout_s: int | None = None) -> ConnectionSettings:
    """Pick the DSN by precedence: the ``--dsn`` option, then ``DATABASE_URL``, then libpq defaults."""
    if dsn:
        source, value = "--dsn", dsn
    elif os.environ.get("DATABASE_URL"):
        source, value = "DATABASE_URL", os.environ["DATABASE_URL"]
    else:
        source, value = "libpq defaults", ""
    settings = ConnectionSettings(
        dsn=value,
        source=source,
        connect_timeout_s=connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S,
        statement_timeout_ms=statement_timeout_ms or DEFAULT_STATEMENT_TIMEOUT_MS,
    )
    settings.params()  # validate early: a malformed DSN is a usage error, not a connection error
    return settings


_URI_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask(dsn: str) -> str:
    """Return ``dsn`` with any password replaced by ``***`` (URI or ``key=value`` form)."""
    return _KV_PASSWORD.sub(r"\1***", _URI_PASSWORD.sub(r"\1***\3", dsn))


_BAD_PARAMETER = re.compile(r"\binvalid [\w ]*(value|number)\b")


def _scrub(message: str, dsn: str, password: str | None = None) -> str:
    """One line, password-free: libpq's lines joined with "; "."""
    text = mask(message)
    for secret in {password, _password_of(dsn)}:
        if secret:  # whole occurrences only: a password "p" must not turn "port" into "***ort"
            text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "; ".join(line for line in lines if line)


def _password_of(dsn: str) -> str | None:
    try:
        pw = conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return None
    return str(pw) if pw else None


def describe(settings: ConnectionSettings) -> str:
    """A password-free ``user@host:port/dbname`` label for messages, from what the DSN states."""
    p = settings.params()
    user = p.get("user") or os.environ.get("PGUSER") or ""
    host = p.get("host") or os.environ.get("PGHOST") or "localhost"
    port = p.get("port") or os.environ.get("PGPORT") or "5432"
    db = p.get("dbname") or os.environ.get("PGDATABASE") or user
    who = f"{user}@" if user else ""
    if p.get("service") or os.environ.get("PGSERVICE"):
        return f"service {p.get('service') or os.environ.get('PGSERVICE')}"
    return f"{who}{host}:{port}/{db}"


def mark(query: str) -> str:
    """``query`` with :data:`MARKER` after its first word (leading comments skipped), or before it when it
    does not start with a word; unchanged when it is marked already. The comment changes nothing the
    server does: it is white space to the parser and ignored by pg_stat_statements' query id."""
    m = _FIRST_WORD.match(query)
    if m is None:
        return query if query.lstrip().startswith(MARKER) else f"{MARKER} {query}"
    if query[m.end():].lstrip().startswith(MARKER):
        return query
    return f"{query[:m.end()]} {MARKER}{query[m.end():]}"


def _marked(query: Any, context: Any) -> Any:
    if isinstance(query, str):
        return mark(query)
    if isinstance(query, sql.Composable):
        return mark(query.as_string(context))
    return query  # bytes: sent as given


class _Marking:
    """What the marked cursors add to psycopg's: every statement sent goes through :func:`mark` first."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().execute(_marked(query, self), params, **kwargs)  # type: ignore[misc]

    def executemany(self, query: Any, params_seq: Iterable[Any], **kwargs: Any) -> None:
        super().executemany(_marked(query, self), params_seq, **kwargs)  # type: ignore[misc]

    def stream(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return super().stream(_marked(query, self), params, **kwargs)  # type: ignore[misc]


class MarkedCursor(_Marking, psycopg.Cursor[Row]):  # type: ignore[misc]
    """psycopg's client cursor, sending every statement marked (:func:`mark`)."""


class MarkedRawCursor(_Marking, psycopg.RawCursor[Row]):  # type: ignore[misc]
    """psycopg's raw cursor (the statement's own ``$n`` placeholders), sending every statement marked."""


def connect(settings: ConnectionSettings, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection with ``connect_timeout`` and ``application_name=dbtune`` whose cursors mark every
    statement (:class:`MarkedCursor`; use :class:`MarkedRawCursor` for ``$n`` placeholders).

    Raises :class:`ConnectionFailed` (exit 3) when the host is unreachable, the login is refused or the
    database does not exist; the message names the target and never contains the password.
    """
    params = settings.params()
    params.setdefault("connect_timeout", str(settings.connect_timeout_s))
    params.setdefault("application_name", APPLICATION_NAME)
    try:
        return psycopg.connect(conninfo.make_conninfo(**params), autocommit=autocommit,
                               cursor_factory=MarkedCursor)
    except psycopg.Error as exc:
        reason = _scrub(str(exc), settings.dsn, settings.password())
        if _BAD_PARAMETER.search(reason) and "connection to server" not in reason:
            # libpq refused a parameter's value before trying to connect: the input is wrong, not the server.
            raise UsageError(f"{settings.source} has an invalid parameter: {reason}") from None
        raise ConnectionFailed(f"cannot connect to {describe(settings)} ({settings.source}): {reason}") from None


@contextmanager
def read_only_snapshot(settings: ConnectionSettings) -> Iterator[psycopg.Connection]:
    """A connection inside one ``REPEATABLE READ, READ ONLY`` transaction, rolled back at the end.

    Every statement runs under ``statement_timeout`` (``settings.statement_timeout_ms``, ms) and
    ``lock_timeout`` 1000 ms, so every check sees one consistent catalog and nothing can be written.
    See https://www.postgresql.org/docs/current/transaction-iso.html#XACT-REPEATABLE-READ.
    """
    conn = connect(settings, autocommit=True)
    try:
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute(f"SET LOCAL statement_timeout = {int(settings.statement_timeout_ms)}")
            conn.execute(f"SET LOCAL lock_timeout = {AUDIT_LOCK_TIMEOUT_MS}")
        except psycopg.Error as exc:
            raise ServerRefused(f"{describe(settings)} refused the read-only session: {exc}") from None
        try:
            yield conn
        except psycopg.Error as exc:
            # A catalog query the server cancelled (statement_timeout, lock_timeout) or refused.
            reason = _scrub(str(exc), settings.dsn, settings.password())
            held = _locked_relations(settings) if exc.sqlstate == "55P03" else ""
            raise ServerRefused(f"{describe(settings)} refused a catalog query: {reason}{held}") from None
    finally:
        try:
            if not conn.closed:
                conn.execute("ROLLBACK")
        except psycopg.Error:
            pass
        finally:
            conn.close()


def _locked_relations(settings: ConnectionSettings) -> str:
    """``: public.t is held in ACCESS EXCLUSIVE by pid 123 (…)`` for every relation of the database that
    another session holds in ACCESS EXCLUSIVE (the only level that blocks a catalog read), read on a
    second connection; empty when there is none or it cannot be read."""
    from dbtune.db.locks import conflicting_holders

    try:
        with connect(settings, autocommit=True) as conn:
            holders = conflicting_holders(lambda sql, params: conn.execute(sql, params).fetchall(),  # type: ignore[arg-type]
                                          "ACCESS SHARE", None)
    except (psycopg.Error, DbtuneError):
        return ""
    return "".join(f"; {one_line(h.relation or '?')} is held in {h.level} by {h.describe()}" for h in holders)
