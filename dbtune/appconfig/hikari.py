"""HikariCP's pool settings, as a ``hikari.properties`` file, Spring Boot's ``application.properties``
(``spring.datasource.url``, ``spring.datasource.hikari.*``) or its environment form
(``SPRING_DATASOURCE_HIKARI_MAXIMUMPOOLSIZE``): Spring's relaxed binding, where case, ``-``, ``_`` and
``.`` do not matter within a name.

Keys read (https://github.com/brettwooldridge/HikariCP#gear-configuration-knobs-baby):
``jdbcUrl``/``url``, ``username``, ``maximumPoolSize``, ``minimumIdle``, ``idleTimeout`` and
``connectionTimeout`` (milliseconds), ``connectionInitSql`` (SQL run on every new connection: a session
feature), ``poolName``. HikariCP's ``minimumIdle`` defaults to ``maximumPoolSize``.
"""

from __future__ import annotations

import re
from pathlib import Path

from dbtune.appconfig.model import Origin, Pool, SessionFeature
from dbtune.appconfig.urls import parse_url
from dbtune.appconfig.values import PoolBuilder, duration_ms, integer, where
from dbtune.errors import UsageError

_PREFIXES = ("springdatasourcehikari", "springdatasource", "hikari", "datasource")
_KEYS = {"jdbcurl": "url", "url": "url", "username": "user", "maximumpoolsize": "max", "minimumidle": "size",
         "idletimeout": "idle", "connectiontimeout": "connect", "connectioninitsql": "init", "poolname": "name"}


def _normal(key: str, bare: bool = False) -> str | None:
    """The HikariCP key a (relaxed) name stands for, or ``None``; ``bare`` (a ``hikari.properties`` file)
    takes HikariCP's own names without a prefix too."""
    flat = re.sub(r"[-_.]", "", key.lower())
    for prefix in (*_PREFIXES, "") if bare else _PREFIXES:
        if flat.startswith(prefix) and flat[len(prefix):] in _KEYS:
            return _KEYS[flat[len(prefix):]]
    return None


def is_hikari_key(key: str, bare: bool = False) -> bool:
    """Whether ``key`` is one of the HikariCP/Spring datasource keys read here (with its prefix, or
    ``bare``)."""
    return _normal(key, bare) is not None


def apply(b: PoolBuilder, key: str, value: str, origin: Origin, bare: bool = False) -> None:
    """Store one HikariCP setting in the pool being built. Raises :class:`UsageError` naming ``origin``."""
    what = _normal(key, bare)
    value = value.strip()
    if what is None or not value:
        return
    if what == "url":
        target, _ = parse_url(value, where(origin))
        b.target(target, origin)
    elif what == "user":
        b.set("role", value, origin)
    elif what == "max":
        b.set("max", integer(value, origin, minimum=1), origin)
    elif what == "size":
        b.set("size", integer(value, origin), origin)
    elif what == "idle":
        b.set("idle_timeout_ms", duration_ms(value, origin), origin)
    elif what == "connect":
        b.set("connection_timeout_ms", duration_ms(value, origin), origin)
    elif what == "init":
        b.features.append(SessionFeature("set" if value.lstrip().upper().startswith("SET ") else "init-sql",
                                         value, origin))
    elif what == "name":
        b.name = value


_LINE = re.compile(r"^\s*(?P<key>(?:\\.|[^\s:=\\])+)\s*[:=\s]\s*(?P<value>.*)$")


def read_properties(path: Path, shown: str, text: str) -> list[Pool]:
    """A Java ``.properties`` file (``key=value``, ``key: value``, ``#``/``!`` comments, ``\\`` line
    continuations: https://docs.oracle.com/javase/8/docs/api/java/util/Properties.html#load-java.io.Reader-)
    as the one HikariCP pool it configures. Raises :class:`UsageError` naming ``shown:line`` for a line
    that is not ``key=value`` or a value that is not what HikariCP takes."""
    b = PoolBuilder("hikari", Origin(shown))
    lines = text.splitlines()
    n = 0
    while n < len(lines):
        start = n
        line = lines[n].lstrip()
        while line.endswith("\\") and not line.endswith("\\\\") and n + 1 < len(lines):
            n += 1
            line = line[:-1] + lines[n].lstrip()
        n += 1
        if not line or line[0] in "#!":
            continue
        m = _LINE.match(line)
        if m is None:
            raise UsageError(f"{shown}:{start + 1}: not a key=value line")
        key = m.group("key").replace("\\", "")
        if is_hikari_key(key, bare=True):
            apply(b, key, m.group("value"), Origin(shown, start + 1, key), bare=True)
    if b.values.get("size") is None and "max" in b.values:
        b.set("size", b.values["max"], b.origins["max"])  # HikariCP: minimumIdle defaults to maximumPoolSize
    return [b.build()] if b.declared else []
