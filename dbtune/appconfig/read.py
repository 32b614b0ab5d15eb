"""Read the application's configuration: detect each file's format by its name and content, read it
with its reader, and put the pools, poolers and replicas of every source into one
:class:`~dbtune.appconfig.model.AppConfig`.

Formats: ``dotenv`` (``.env``, ``.env.production``, ``app.env``), ``compose`` (``docker-compose.yml``,
``compose.yaml``, or YAML with ``services:``), ``pgbouncer`` (``pgbouncer.ini``, or INI with
``[pgbouncer]``), ``properties`` (HikariCP / Spring ``*.properties``), ``javascript`` (the ``SET``
statements of a ``.js``/``.ts`` module's connect hook: :mod:`dbtune.appconfig.connect_hooks`), and a live
PgBouncer given as its admin console's connection string (``dbname=pgbouncer``). A file none of these
recognises is an error that says so: dbtune never guesses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from dbtune.appconfig import compose, connect_hooks, dotenv_file, hikari, pgbouncer_ini, pgbouncer_live
from dbtune.appconfig.environment import read_environment
from dbtune.appconfig.model import AppConfig, Origin, Pool, Pooler, Replica, Source
from dbtune.appconfig.values import read_source
from dbtune.errors import UsageError

T = TypeVar("T", Pool, Pooler)
FORMATS = ("dotenv", "compose", "pgbouncer", "properties", "javascript")
PGBOUNCER_DEFAULT_PORT = 6432


def detect_format(path: Path, text: str) -> str | None:
    """The format of a file from its name, else from its content; ``None`` when neither says."""
    name = path.name.lower()
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "dotenv"
    if name.endswith((".yml", ".yaml")) and ("compose" in name):
        return "compose"
    if name.endswith(".ini") and "pgbouncer" in name:
        return "pgbouncer"
    if name.endswith(".properties"):
        return "properties"
    if name.endswith(connect_hooks.SUFFIXES):
        return "javascript"
    if pgbouncer_ini.looks_like_pgbouncer_ini(text):
        return "pgbouncer"
    if name.endswith((".yml", ".yaml")):
        try:
            root = compose.load_yaml(text, str(path))
        except UsageError:
            return None
        return "compose" if compose.looks_like_compose(root) else None
    if dotenv_file.looks_like_dotenv(text):
        return "dotenv"
    return None


def relative_to(item: str, base: Path | None) -> str:
    """A config file's ``app_config`` item as given on the command line: a relative path joined to the
    config file's folder ``base``; a PgBouncer admin DSN as it is."""
    if base is None or Path(item).is_absolute() or pgbouncer_live.is_admin_dsn(item):
        return item
    return str(base / item)


def read_app_config(items: Sequence[str | Path]) -> AppConfig:
    """Read every item: a file or a live PgBouncer's admin console DSN. Raises :class:`UsageError` naming
    the file and line at fault for a missing file, an unrecognised format or malformed content; a live
    PgBouncer that cannot be reached is recorded as a skipped source."""
    sources: list[Source] = []
    pools: list[Pool] = []
    poolers: list[Pooler] = []
    replicas: list[Replica] = []
    for item in items:
        text_item = str(item)
        path = Path(text_item)
        if not path.exists() and pgbouncer_live.is_admin_dsn(text_item):
            pooler, reason = pgbouncer_live.read_live(text_item)
            shown = pgbouncer_live.shown_dsn(text_item)
            if pooler is None:
                sources.append(Source(shown, "pgbouncer-live", "skipped", reason))
            else:
                sources.append(Source(shown, "pgbouncer-live"))
                poolers.append(pooler)
            continue
        shown = text_item
        fmt, p, b, r = read_file(path, shown)
        sources.append(Source(shown, fmt))
        pools += p
        poolers += b
        replicas += r
    poolers = merge_by_name(poolers)
    return AppConfig(sources=tuple(sources), pools=tuple(_resolve_via(merge_by_name(pools), poolers)),
                     poolers=tuple(poolers), replicas=tuple(replicas))


def merge_by_name(items: Sequence[T]) -> list[T]:
    """Pools (or poolers) of the same name from several sources as one: a later source's values replace an
    earlier one's, value by value (as a later ``.env`` file overrides an earlier one), with their origins."""
    out: dict[str, T] = {}
    for item in items:
        first = out.get(item.name)
        if first is None:
            out[item.name] = item
            continue
        old: Any = first
        new: Any = item
        fields: dict[str, Any] = {k: getattr(new, k) for k in new.origins}
        if isinstance(new, Pool):
            fields["session_features"] = (*old.session_features, *new.session_features)
        else:
            fields["databases"] = {**old.databases, **new.databases}
            fields["users"] = {**old.users, **new.users}
        fields["origins"] = {**first.origins, **item.origins}
        merged: Any = replace(first, **fields)
        out[item.name] = merged
    return list(out.values())


def read_file(path: Path, shown: str) -> tuple[str, list[Pool], list[Pooler], list[Replica]]:
    """One file's format and what it declares. Raises :class:`UsageError` (see :func:`read_app_config`)."""
    text = read_source(path, shown)
    fmt = detect_format(path, text)
    if fmt is None:
        raise UsageError(f"{shown}: format not recognised (dbtune reads .env files, docker-compose files, "
                         "pgbouncer.ini, HikariCP/Spring .properties and .js/.ts connect hooks)")
    if fmt == "dotenv":
        p, b, r = read_environment(dotenv_file.parse_dotenv(text, shown), name="app", origin=Origin(shown))
        return fmt, p, b, r
    if fmt == "compose":
        return (fmt, *compose.read_compose(path, shown, text))
    if fmt == "pgbouncer":
        return fmt, [], [pgbouncer_ini.read_pgbouncer_ini(path, shown)], []
    if fmt == "javascript":
        return fmt, connect_hooks.read_connect_hooks(text, shown), [], []
    return fmt, hikari.read_properties(path, shown, text), [], []


def _resolve_via(pools: list[Pool], poolers: list[Pooler]) -> list[Pool]:
    """Mark pools whose target is a PgBouncer read in the same run (its compose service name, its
    ``listen_port``) or PgBouncer's default port 6432 as going through PgBouncer, saying why."""
    names = {b.name for b in poolers if not b.live}
    ports = {b.listen_port for b in poolers if b.listen_port}
    out = []
    for p in pools:
        t = p.target
        if p.via == "direct" and t is not None and "via" not in p.origins:
            origin = p.origins.get("target", p.origin)
            reason = None
            if t.host in names:
                reason = f"its host {t.host!r} is the PgBouncer service"
            elif t.port is not None and t.port in ports:
                reason = f"its port {t.port} is PgBouncer's listen_port"
            elif t.port == PGBOUNCER_DEFAULT_PORT:
                reason = f"its port {t.port} is PgBouncer's default listen_port"
            if reason is not None:
                p = replace(p, via="pgbouncer", via_reason=reason,
                            origins={**p.origins, "via": origin, "via_reason": origin})
        out.append(p)
    return out
