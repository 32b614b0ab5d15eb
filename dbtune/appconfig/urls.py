"""Driver connection URLs as :class:`~dbtune.appconfig.model.Target`: libpq/psycopg URIs and keyword
strings, asyncpg and node-postgres URLs (the same ``postgresql://`` form), SQLAlchemy URLs
(``postgresql+psycopg://``, ``+asyncpg``, with ``pool_size``/``max_overflow``), Prisma's
(``connection_limit``, ``pool_timeout``, ``pgbouncer=true``) and JDBC's (``jdbc:postgresql://``).

The password is dropped as the URL is read: a target keeps the URL only with ``***`` in its place.
An unknown scheme is a :class:`~dbtune.errors.UsageError` that names the scheme, never the URL.

References: https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING,
https://docs.sqlalchemy.org/en/20/core/engines.html#database-urls,
https://www.prisma.io/docs/orm/overview/databases/postgresql#connection-details,
https://jdbc.postgresql.org/documentation/use/#connection-parameters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from psycopg import ProgrammingError, conninfo

from dbtune.appconfig.model import Target
from dbtune.db.connect import check_userinfo
from dbtune.errors import UsageError

SECRET_PARAMETERS = frozenset({"password", "sslpassword", "oauth_client_secret", "scram_client_key",
                               "scram_server_key"})
# Query arguments only Prisma reads (https://www.prisma.io/docs/orm/reference/connection-urls).
PRISMA_PARAMETERS = frozenset({"connection_limit", "pool_timeout", "pgbouncer", "schema", "socket_timeout",
                               "statement_cache_size", "sslaccept", "sslidentity"})
SQLALCHEMY_DIALECTS = ("psycopg", "psycopg2", "psycopg2cffi", "asyncpg", "pg8000", "psycopg_async")
KNOWN_SCHEMES = ("postgresql://", "postgres://", "postgresql+<driver>://", "jdbc:postgresql://",
                 "key=value keywords")

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_OPTION = re.compile(r"(?:-c\s*|--)([A-Za-z_][\w.]*)=((?:\\.|[^\s\\])*)")


@dataclass(frozen=True)
class PoolHints:
    """Pool sizes a URL itself declares (Prisma's ``connection_limit``, SQLAlchemy's ``pool_size`` and
    ``max_overflow``), timeouts in milliseconds, and whether it says PgBouncer is in front."""

    size: int | None = None
    max: int | None = None
    connection_timeout_ms: int | None = None
    idle_timeout_ms: int | None = None
    pgbouncer: bool = False


def is_url(text: str) -> bool:
    """Whether ``text`` looks like a connection URL or keyword string at all (for detection)."""
    t = text.strip()
    return bool(_SCHEME.match(t)) or bool(re.match(r"^\w+\s*=", t))


def session_settings(options: str) -> dict[str, str]:
    """libpq's ``options`` (``-c lock_timeout=30s -c statement_timeout=5s`` or ``--name=value``) as GUC
    name → value (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNECT-OPTIONS)."""
    return {m.group(1): re.sub(r"\\(.)", r"\1", m.group(2)) for m in _OPTION.finditer(options)}


def _int(value: str | None, what: str, where: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"{where}: {what} is not an integer") from None


def parse_url(text: str, where: str) -> tuple[Target, PoolHints]:
    """Read one connection URL or keyword string. ``where`` (``file:line: KEY``) starts any error message.

    Returns the target (password left out, ``url`` masked) and the pool sizes the URL states.
    Raises :class:`UsageError` for an unknown scheme or a URL that cannot be parsed; the message never
    repeats the URL, which may hold a password.
    """
    text = text.strip()
    m = _SCHEME.match(text)
    if m is None:
        return _keywords(text, where), PoolHints()
    scheme = m.group(1).lower()
    if scheme == "jdbc":
        return _jdbc(text, where)
    if scheme in ("postgresql", "postgres"):
        return _uri(text, where)
    if scheme.startswith(("postgresql+", "postgres+")):
        return _sqlalchemy(text, scheme, where)
    raise UsageError(f"{where}: unknown URL scheme {scheme + '://'!r} (dbtune reads {', '.join(KNOWN_SCHEMES)})")


def _split(text: str, where: str) -> tuple[str, str | None, str | None, int | None, str | None, list[tuple[str, str]]]:
    """scheme, user, host, port, database, query of a URI; the password is dropped here. A URI whose user
    information holds an unencoded ``@`` or ``/`` (which would put part of a password in the host or
    database) is refused (:func:`dbtune.db.connect.check_userinfo`)."""
    check_userinfo(text.partition("://")[2], where)
    try:
        parts = urlsplit(text)
        port = parts.port if "," not in parts.netloc else None
    except ValueError as exc:
        reason = "its port is not a number" if "port" in str(exc) else "it is not a valid URL"
        raise UsageError(f"{where}: cannot read the URL: {reason}") from None
    if "@" in parts.path + parts.query + parts.fragment:
        # An unencoded "?", "#" or "/" in a password ends the user information early: the rest of it would
        # be read as a path or query. Refused rather than shown.
        raise UsageError(f"{where}: cannot read the URL: an \"@\" after the host; percent-encode \"@\", \"/\", "
                         "\"?\" and \"#\" in a user name or password (%40, %2F, %3F, %23)")
    host = parts.hostname
    if "," in parts.netloc:  # libpq's multi-host form
        host = parts.netloc.rpartition("@")[2]
    database = unquote(parts.path.lstrip("/")) or None
    user = unquote(parts.username) if parts.username else None
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return parts.scheme, user, host, port, database, query


def _shown(scheme: str, user: str | None, has_password: bool, host: str | None, port: int | None,
           database: str | None, query: list[tuple[str, str]]) -> str:
    auth = ""
    if user or has_password:
        auth = quote(user or "", safe="") + (":***" if has_password else "") + "@"
    netloc = (host or "") + (f":{port}" if port is not None and host and "," not in host else "")
    args = "&".join(f"{k}={'***' if k.lower() in SECRET_PARAMETERS else v}" for k, v in query)
    return f"{scheme}://{auth}{netloc}/{quote(database or '', safe='')}" + (f"?{args}" if args else "")


def _has_password(text: str) -> bool:
    try:
        return urlsplit(text).password is not None
    except ValueError:
        return True


def _uri(text: str, where: str) -> tuple[Target, PoolHints]:
    scheme, user, host, port, database, query = _split(text, where)
    params = {k: v for k, v in query if k.lower() not in SECRET_PARAMETERS}
    libpq = {k: v for k, v in params.items() if k in _LIBPQ_KEYWORDS}
    others = {k: v for k, v in params.items() if k not in _LIBPQ_KEYWORDS}
    driver = "prisma" if set(others) & PRISMA_PARAMETERS else "libpq"
    user = params.get("user", user)
    host = params.get("host", host)
    database = params.get("dbname", database)
    port = _int(params.get("port"), "port", where) if "port" in params else port
    hints = PoolHints()
    if driver == "prisma":
        limit = _int(params.get("connection_limit"), "connection_limit", where)
        timeout = _int(params.get("pool_timeout"), "pool_timeout", where)
        hints = PoolHints(size=None, max=limit, connection_timeout_ms=timeout * 1000 if timeout is not None else None,
                          pgbouncer=params.get("pgbouncer", "").lower() == "true")
    target = Target(url=_shown(scheme, user, _has_password(text) or "password" in dict(query), host, port,
                               database, query),
                    driver=driver, host=host, port=port, database=database, user=user,
                    parameters={**libpq, **others}, session_settings=session_settings(libpq.get("options", "")))
    return target, hints


def _keywords(text: str, where: str) -> Target:
    try:
        params = conninfo.conninfo_to_dict(text)
    except ProgrammingError:
        raise UsageError(f"{where}: not a connection URL (postgresql://…) nor libpq key=value keywords") from None
    shown = {k: ("***" if k in SECRET_PARAMETERS else str(v)) for k, v in params.items()}
    kept = {k: str(v) for k, v in params.items() if k not in SECRET_PARAMETERS}
    return Target(url=conninfo.make_conninfo(**shown), driver="libpq", host=kept.get("host"),
                  port=_int(kept.get("port"), "port", where), database=kept.get("dbname"), user=kept.get("user"),
                  parameters=kept, session_settings=session_settings(kept.get("options", "")))


def _sqlalchemy(text: str, scheme: str, where: str) -> tuple[Target, PoolHints]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    check_userinfo(text.partition("://")[2], where)
    dialect = scheme.partition("+")[2]
    if dialect not in SQLALCHEMY_DIALECTS:
        raise UsageError(f"{where}: unknown URL scheme {scheme + '://'!r} (SQLAlchemy's PostgreSQL drivers are "
                         f"{', '.join(SQLALCHEMY_DIALECTS)})")
    try:
        url = make_url(text)
    except (ArgumentError, ValueError):
        raise UsageError(f"{where}: cannot read the SQLAlchemy URL") from None
    query = {k: (v if isinstance(v, str) else ",".join(v)) for k, v in url.query.items()
             if k.lower() not in SECRET_PARAMETERS}
    size = _int(query.get("pool_size"), "pool_size", where)
    overflow = _int(query.get("max_overflow"), "max_overflow", where)
    timeout = _int(query.get("pool_timeout"), "pool_timeout", where)
    recycle = _int(query.get("pool_recycle"), "pool_recycle", where)
    # SQLAlchemy's QueuePool: pool_size connections kept, max_overflow more on demand, pool_timeout seconds.
    maximum = (size if size is not None else 5) + (overflow if overflow is not None else 10) \
        if size is not None or overflow is not None else None
    hints = PoolHints(size=size, max=maximum, connection_timeout_ms=timeout * 1000 if timeout is not None else None,
                      idle_timeout_ms=recycle * 1000 if recycle is not None else None)
    options = query.get("options", "")
    target = Target(url=url.render_as_string(hide_password=True), driver=f"sqlalchemy+{dialect}", host=url.host,
                    port=url.port, database=url.database, user=url.username, parameters=query,
                    session_settings=session_settings(options))
    return target, hints


def _jdbc(text: str, where: str) -> tuple[Target, PoolHints]:
    rest = text[len("jdbc:"):]
    if not rest.lower().startswith("postgresql:"):
        raise UsageError(f"{where}: unknown URL scheme {'jdbc:' + rest.partition(':')[0] + ':'!r} (dbtune reads "
                         "jdbc:postgresql://)")
    if not rest.lower().startswith("postgresql://"):  # jdbc:postgresql:database
        rest = "postgresql:///" + rest[len("postgresql:"):]
    scheme, user, host, port, database, query = _split(rest, where)
    params = {k: v for k, v in query if k.lower() not in SECRET_PARAMETERS}
    timeout = _int(params.get("connectTimeout"), "connectTimeout", where)
    target = Target(url="jdbc:" + _shown("postgresql", user, _has_password(rest), host, port, database, query),
                    driver="jdbc", host=host, port=port, database=database, user=params.get("user", user),
                    parameters=params, session_settings=session_settings(params.get("options", "")))
    return target, PoolHints(connection_timeout_ms=timeout * 1000 if timeout is not None else None)


def _libpq_keywords() -> frozenset[str]:
    from psycopg import pq

    return frozenset(o.keyword.decode() for o in pq.Conninfo.get_defaults())


_LIBPQ_KEYWORDS = _libpq_keywords()
