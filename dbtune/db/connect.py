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
        """The DSN as libpq keywords. Raises :class:`UsageError` when the DSN is malformed; the message
        never repeats the DSN (:func:`parse_dsn`)."""
        return parse_dsn(self.dsn, self.source)

    def password(self) -> str | None:
        """The password given in the DSN or ``PGPASSWORD``, only for scrubbing messages."""
        try:
            pw = parse_dsn(self.dsn, self.source).get("password")
        except UsageError:
            pw = None
        return pw or os.environ.get("PGPASSWORD") or None


def resolve(dsn: str | None, *, statement_timeout_ms: int | None = None,
            connect_timeout_s: int | None = None) -> ConnectionSettings:
    """Pick the DSN by precedence: the ``--dsn`` option, then ``DATABASE_URL``, then libpq defaults.

    The DSN is normalised (:func:`normalise_dsn`: SQLAlchemy's ``postgresql+driver://`` and an upper-case
    scheme name the libpq URI they mean) and parsed once here. Raises :class:`UsageError` (exit 2) when it
    is malformed, with a message that never repeats it."""
    if dsn:
        source, value = "--dsn", dsn
    elif os.environ.get("DATABASE_URL"):
        source, value = "DATABASE_URL", os.environ["DATABASE_URL"]
    else:
        source, value = "libpq defaults", ""
    settings = ConnectionSettings(
        dsn=normalise_dsn(value, source),
        source=source,
        connect_timeout_s=connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S,
        # 0 is PostgreSQL's "no limit", not "unset"
        statement_timeout_ms=DEFAULT_STATEMENT_TIMEOUT_MS if statement_timeout_ms is None else statement_timeout_ms,
    )
    settings.params()  # validate early: a malformed DSN is a usage error, not a connection error
    return settings


# libpq's keywords whose values are secrets (https://www.postgresql.org/docs/current/libpq-connect.html).
SECRET_KEYWORDS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key",
                             "scram_server_key"})
_KEYWORDS = frozenset(str(k.keyword.decode()) for k in psycopg.pq.Conninfo.get_defaults())
_SCHEME = re.compile(r"^\s*(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://", re.ASCII)
_LIBPQ_MARKS = frozenset({"=", "]", ":", "/"})  # quoted by libpq's parse errors themselves
_JDBC = re.compile(r"^\s*jdbc:", re.IGNORECASE)
_PERCENT_ENCODE = ('percent-encode "@", ":" and "/" in a user name or password (%40, %3A, %2F), '
                   "or give the password in PGPASSWORD or ~/.pgpass")


def normalise_dsn(dsn: str, source: str = "--dsn") -> str:
    """The libpq connection string that ``dsn`` names.

    ``key=value`` strings and ``postgresql://``/``postgres://`` URIs pass unchanged; SQLAlchemy's
    ``postgresql+psycopg://`` (any ``+driver``) and an upper- or mixed-case scheme (``POSTGRESQL://``) become
    ``postgresql://`` with the rest untouched
    (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS).

    Raises :class:`UsageError` naming ``source`` (never repeating the DSN) for a JDBC URL, a URI of another
    database, and a URI with an unencoded ``@`` (or ``/``) in its user name or password, which libpq would
    split at the wrong place and so send part of the password as a host, port or database name.
    """
    if _JDBC.match(dsn):
        raise UsageError(f"{source} is a JDBC URL: give the libpq form, without the jdbc: prefix "
                         "(postgresql://user@host:port/dbname)")
    m = _SCHEME.match(dsn)
    if m is None:
        return dsn
    scheme = m.group("scheme").lower()
    if scheme not in ("postgresql", "postgres") and not scheme.startswith(("postgresql+", "postgres+")):
        raise UsageError(f"{source} is a {scheme}:// URL: dbtune connects to PostgreSQL "
                         "(postgresql://user@host:port/dbname or key=value)")
    rest = dsn[m.end():]
    check_userinfo(rest, source)
    return "postgresql://" + rest


def check_userinfo(rest: str, source: str) -> None:
    """Refuse a URI (after ``scheme://``) whose user name or password holds an unencoded ``@`` or ``/``, or
    that holds a space anywhere (which libpq would take, but no reader of the URI could tell apart).

    libpq takes the user information up to the first ``@`` found before any ``/``; an ``@`` left in the
    host and port part, or in the path before the query, means that split was wrong."""
    if re.search(r"\s", rest):
        raise UsageError(f"{source} is not a valid connection string: the URI holds a space; percent-encode it "
                         "as %20 (in a password too)")
    designator = re.search(r"[@/]", rest)
    after_user = rest[designator.end():] if designator and designator.group() == "@" else rest
    if "@" in after_user.split("?", 1)[0]:  # in the host, port or database name: the split was wrong
        raise UsageError(f"{source} is not a valid connection string: the URI has an unencoded \"@\" "
                         f"where the host should be; {_PERCENT_ENCODE}")


def parse_dsn(dsn: str, source: str = "--dsn") -> dict[str, str]:
    """``dsn`` (already :func:`normalise_dsn`'d) as libpq keywords, parsed by libpq itself.

    Raises :class:`UsageError` naming ``source`` when libpq cannot parse it. The message keeps libpq's
    wording up to the first quoted part that is not a libpq keyword or a lone punctuation mark, and drops the
    rest: a DSN that could not be parsed is never repeated, since any part of it may be a password.
    """
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        reason = _without_input(str(exc))
        hint = ""
        if "percent-encoded" in reason:
            hint = '; a "%" in a user name or password is written %25'
        elif "position" in reason:
            hint = f"; {_PERCENT_ENCODE}"
        elif "invalid connection option" in reason or "invalid URI query parameter" in reason:
            hint = "; libpq's keywords are lower case: host, port, dbname, user, password, sslmode …"
        raise UsageError(f"{source} is not a valid connection string: {reason}{hint}") from None
    return {k: str(v) for k, v in params.items() if v is not None}


def _without_input(message: str) -> str:
    """libpq's parse error on one line, cut at the first quoted part that could come from the input."""
    text = " ".join(message.split())
    out, pos = [], 0
    for m in re.finditer(r'"([^"]*)"', text):
        inner = m.group(1)
        # libpq's own quoting stands between spaces: '"@"Qz7' is input that holds a quote.
        alone = (m.start() == 0 or text[m.start() - 1] in " (") and text[m.end():m.end() + 1] in ("", " ", ",", ")")
        if not (alone and (inner in _KEYWORDS or inner in _LIBPQ_MARKS)):
            out.append(text[pos:m.start()] + "…")
            return "".join(out).rstrip(": ")
        out.append(text[pos:m.end()])
        pos = m.end()
    rest = text[pos:]
    if '"' in rest:  # an unpaired quote: what follows it may be input
        rest = rest[:rest.index('"')] + "…"
    return ("".join(out) + rest).rstrip(": ")


# A URI in a text, with a scheme (``postgresql://…``) or without one (``user:password@host…``).
_URI = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<rest>\S*)"
                  r"""|(?<![^\s"'])(?P<bare>[^\s:/@="']+:(?!//)\S*@\S*)""", re.ASCII)
_KV_SECRET = re.compile(r"(?P<key>\b\w*(?:password|secret|_key)\s*=\s*)"
                        r"(?P<value>'(?:[^'\\]|\\.)*'?|(?:\\.|[^\s\\])*\\?)", re.IGNORECASE)


def _mask_uri(rest: str) -> str:
    """A URI after its ``scheme://``, masked: from its first ``:`` to its last ``@`` when the ``:`` comes
    first (the password, with any unencoded ``@``, ``/`` or ``?`` in it, and more rather than less), and
    everything after its first ``?`` but the parameter names."""
    hidden = [False] * len(rest)
    colon, at = rest.find(":"), rest.rfind("@")
    if 0 <= colon < at:
        hidden[colon + 1:at] = [True] * (at - colon - 1)
    question = rest.find("?")
    if question >= 0:
        pos = question + 1
        for part in rest[question + 1:].split("&"):
            name_end = part.find("=") + 1  # a part without "=" is hidden whole
            hidden[pos + name_end:pos + len(part)] = [True] * (len(part) - name_end)
            pos += len(part) + 1
    out, i = [], 0
    while i < len(rest):
        if hidden[i]:
            while i < len(rest) and hidden[i]:
                i += 1
            out.append("***")
        else:
            out.append(rest[i])
            i += 1
    return "".join(out)


def mask(dsn: str) -> str:
    """``dsn`` (or any text holding one) with everything that could be a password replaced by ``***``:
    in a URI, the user information after the first ``:`` (to the URI's last ``@``) and every query
    parameter's value; in ``key=value`` form the value of ``password`` and the other secret keywords, in any
    case (``PASSWORD=``, ``sslpassword=``, ``oauth_client_secret=``)."""
    text = _KV_SECRET.sub(lambda m: m.group("key") + "***", dsn)
    return _URI.sub(lambda m: m.group("scheme") + _mask_uri(m.group("rest")) if m.group("scheme")
                    else _mask_uri(m.group("bare")), text)


_BAD_PARAMETER = re.compile(r"\binvalid [\w ]*(value|number)\b")


def _scrub(message: str, dsn: str, password: str | None = None) -> str:
    """One line, password-free: libpq's lines joined with "; "."""
    text = mask(message)
    secrets = {password, *_secrets_of(dsn)}
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        # A short password only where it stands alone: "p" must not turn "port" into "***ort".
        pattern = re.escape(secret) if len(secret) >= 4 else rf"(?<!\w){re.escape(secret)}(?!\w)"
        text = re.sub(pattern, "***", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return "; ".join(line for line in lines if line)


def _secrets_of(dsn: str) -> list[str]:
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return []
    return [str(v) for k, v in params.items() if k in SECRET_KEYWORDS and v]


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
