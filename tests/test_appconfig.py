"""The application's own configuration (``dbtune/appconfig/``): each reader on real files in several
dialects, malformed lines named by file and line, format detection that never guesses, and passwords that
never reach the model, a report or an error.

Line numbers asserted are found in the files' own text (:func:`line_of`), not written down.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import SHARED
from hypothesis import given, settings
from hypothesis import strategies as st

from dbtune.appconfig import AppConfig, read_app_config
from dbtune.appconfig.model import Pool, Pooler
from dbtune.appconfig.urls import parse_url
from dbtune.errors import UsageError

SAMPLES = Path(__file__).resolve().parents[1] / "sample_configs"
GUIDE_DIR = SAMPLES / "guide"
GUIDE = SHARED / "guide" / "performance-tuning-guide.md"
SECRET = "Sup3r-s3cret-pw"


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of ``path`` holding ``needle`` (once)."""
    hits = [n for n, line in enumerate(path.read_text().splitlines(), start=1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def the_pool(app: AppConfig, name: str = "app") -> Pool:
    [pool] = [p for p in app.pools if p.name == name]
    return pool


def no_secret(app: AppConfig, *secrets: str) -> None:
    """Neither the model's repr nor its JSON form holds any of ``secrets``."""
    text = repr(app) + json.dumps(app.to_json())
    for secret in secrets:
        assert secret not in text


# --- .env -------------------------------------------------------------------------------------------


def test_the_guides_env_production() -> None:
    path = GUIDE_DIR / ".env.production"
    app = read_app_config([path])
    assert [(s.format, s.status) for s in app.sources] == [("dotenv", "read")]
    pool = the_pool(app)
    assert (pool.size, pool.max, pool.idle_timeout_ms, pool.connection_timeout_ms) == (30, 50, 30_000, 5_000)
    assert pool.target is not None
    assert (pool.target.host, pool.target.port, pool.target.database, pool.target.user) == \
        ("pgbouncer", 6432, "whatsapp", "user")
    assert pool.target.url == "postgresql://user:***@pgbouncer:6432/whatsapp"
    assert pool.via == "pgbouncer" and "6432" in (pool.via_reason or "")
    assert pool.origins["max"].line == line_of(path, "DATABASE_POOL_MAX=")
    assert pool.origins["target"].line == line_of(path, "DATABASE_URL=")
    [replica] = app.replicas
    assert replica.weight == 0.3 and replica.origin.line == line_of(path, "DATABASE_READ_REPLICA_URL=")
    no_secret(app, ":pass@")


def test_the_guides_env_production_is_the_guides() -> None:
    """Every ``.env.production`` line of the guide is in the sample, with the guide's value."""
    if not GUIDE.is_file():
        pytest.skip(f"the guide is absent ({GUIDE}); set DBTUNE_SHARED to the shared folder")
    from dotenv import dotenv_values

    text = GUIDE.read_text()
    blocks = re.findall(r"```bash\n# (?:Update )?\.env\.production\n(.*?)```", text, re.S)
    wanted = {}
    for block in blocks:
        for line in block.splitlines():
            key, _, value = line.partition("=")
            wanted[key.strip()] = value.split("  #")[0].split(" #")[0].strip()
    wanted["DATABASE_URL"] = re.search(r"^\s*DATABASE_URL=(\S+)", text, re.M).group(1)  # type: ignore[union-attr]
    assert len(wanted) >= 20
    assert dotenv_values(GUIDE_DIR / ".env.production") == wanted


def test_dotenv_dialects(tmp_path: Path) -> None:
    """``export``, quotes, a multi-line value, comments, a prefixed second pool, libpq's PG* variables."""
    path = write(tmp_path / "app.env", f"""# comment
export DATABASE_URL="postgresql://api:{SECRET}@db.internal:5432/shop?sslmode=require&options=-c%20lock_timeout%3D5s"
DATABASE_POOL_MAX='25'   # inline comment
DATABASE_POOL_SIZE=5
DATABASE_IDLE_TIMEOUT=10s
NOTES="two
lines"
ANALYTICS_DATABASE_URL=postgres://report@replica.internal/shop
ANALYTICS_DATABASE_POOL_MAX=4
""")
    app = read_app_config([path])
    main = the_pool(app)
    assert (main.size, main.max, main.idle_timeout_ms) == (5, 25, 10_000)
    assert main.target is not None and main.target.parameters["sslmode"] == "require"
    assert main.role == "api" and main.via == "direct"
    assert [f.text for f in main.session_features] == ["-c lock_timeout=5s"]
    assert main.session_features[0].origin.line == line_of(path, "export DATABASE_URL")
    analytics = the_pool(app, "analytics")
    assert analytics.max == 4 and analytics.target is not None and analytics.target.host == "replica.internal"
    no_secret(app, SECRET)

    libpq = write(tmp_path / "libpq.env", "PGHOST=10.0.0.5\nPGPORT=6432\nPGUSER=worker\nPGDATABASE=jobs\n"
                                          "PGOPTIONS=-c statement_timeout=30s\nDATABASE_POOL_MAX=3\n")
    pool = the_pool(read_app_config([libpq]))
    assert pool.target is not None and (pool.target.host, pool.target.port, pool.target.user) == \
        ("10.0.0.5", 6432, "worker")
    assert [f.text for f in pool.session_features] == ["-c statement_timeout=30s"]


def test_a_broken_env_line_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", f"DATABASE_POOL_MAX=10\nDATABASE_URL=postgresql://a:{SECRET}@h/d\n"
                                    f"this is not {SECRET} an assignment\n")
    with pytest.raises(UsageError) as err:
        read_app_config([path])
    assert str(err.value).startswith(f"{path}:3: not a KEY=value line")
    assert SECRET not in str(err.value)
    write(path, "DATABASE_POOL_MAX=lots\n")
    with pytest.raises(UsageError, match=r"\.env:1: DATABASE_POOL_MAX: expected an integer, got 'lots'"):
        read_app_config([path])


# --- driver URLs ------------------------------------------------------------------------------------


URLS = [
    # (url, driver, host, port, database, user, pool size, pool max, connection timeout ms, pgbouncer)
    (f"postgresql://app:{SECRET}@db:5432/shop", "libpq", "db", 5432, "shop", "app", None, None, None, False),
    (f"postgres://app:{SECRET}@db/shop?application_name=worker", "libpq", "db", None, "shop", "app",
     None, None, None, False),  # asyncpg, node-postgres
    (f"host=db port=6432 dbname=shop user=app password='{SECRET}' connect_timeout=5", "libpq", "db", 6432,
     "shop", "app", None, None, None, False),
    (f"postgresql+psycopg://app:{SECRET}@db:5432/shop?pool_size=8&max_overflow=4&pool_timeout=30",
     "sqlalchemy+psycopg", "db", 5432, "shop", "app", 8, 12, 30_000, False),
    (f"postgresql+asyncpg://app:{SECRET}@db/shop?max_overflow=2", "sqlalchemy+asyncpg", "db", None, "shop",
     "app", None, 7, None, False),
    (f"postgresql://app:{SECRET}@pgbouncer:6432/shop?connection_limit=9&pool_timeout=10&pgbouncer=true&schema=s",
     "prisma", "pgbouncer", 6432, "shop", "app", None, 9, 10_000, True),
    (f"jdbc:postgresql://db:5433/shop?user=app&password={SECRET}&connectTimeout=7", "jdbc", "db", 5433, "shop",
     "app", None, None, 7_000, False),
]


@pytest.mark.parametrize("case", URLS, ids=[u[1] + str(n) for n, u in enumerate(URLS)])
def test_driver_urls(case: tuple[object, ...]) -> None:
    url, driver, host, port, database, user, size, maximum, timeout, pgbouncer = case
    target, hints = parse_url(str(url), "x")
    assert (target.driver, target.host, target.port, target.database, target.user) == \
        (driver, host, port, database, user)
    assert (hints.size, hints.max, hints.connection_timeout_ms, hints.pgbouncer) == (size, maximum, timeout, pgbouncer)
    assert SECRET not in repr(target) and SECRET not in repr(hints)
    assert "***" in target.url


@pytest.mark.parametrize("url", [f"mysql://root:{SECRET}@db/shop", f"postgresql+mysqldb://a:{SECRET}@h/d",
                                 f"jdbc:mysql://h/d?password={SECRET}"])
def test_an_unknown_url_scheme_names_file_and_line(tmp_path: Path, url: str) -> None:
    path = write(tmp_path / ".env.production", f"DATABASE_POOL_MAX=3\nDATABASE_URL={url}\n")
    with pytest.raises(UsageError) as err:
        read_app_config([path])
    assert str(err.value).startswith(f"{path}:2: DATABASE_URL: unknown URL scheme")
    assert SECRET not in str(err.value)


# --- docker-compose ---------------------------------------------------------------------------------


def test_the_guides_compose_file() -> None:
    path = GUIDE_DIR / "docker-compose.yml"
    app = read_app_config([path])
    assert app.pools == ()
    [bouncer] = app.poolers
    assert bouncer.name == "pgbouncer"
    assert (bouncer.pool_mode, bouncer.max_client_conn, bouncer.default_pool_size, bouncer.min_pool_size,
            bouncer.reserve_pool_size, bouncer.reserve_pool_timeout_ms) == ("transaction", 1000, 50, 20, 5, 3000)
    assert bouncer.databases == {"whatsapp": {"host": "postgres", "port": "5432", "dbname": "whatsapp",
                                              "user": "postgres"}}
    assert bouncer.origins["pool_mode"].line == line_of(path, "POOL_MODE:")
    no_secret(app, "password@")


def test_compose_list_environment_interpolation_and_replicas(tmp_path: Path) -> None:
    write(tmp_path / ".env", f"DB_PASSWORD={SECRET}\nPOOL_MAX=12\n")
    write(tmp_path / "app.env", "DATABASE_IDLE_TIMEOUT=15000\n")
    path = write(tmp_path / "compose.yaml", """services:
  api:
    image: shop/api:1.2
    env_file: app.env
    deploy:
      replicas: 4
    environment:
      - DATABASE_URL=postgresql://api:${DB_PASSWORD}@bouncer:6432/shop
      - DATABASE_POOL_MAX=${POOL_MAX:-20}
      - DATABASE_CONNECTION_TIMEOUT=${CONNECT_TIMEOUT:-3000}
      - NOT_SET_HERE
      - PRICE=$$5
  bouncer:
    image: bitnami/pgbouncer
    environment:
      POOL_MODE: session
      DEFAULT_POOL_SIZE: ${BOUNCER_POOL:-15}
      DB_HOST: db
      DB_USER: shop
      DB_NAME: shop
      DB_PASSWORD: ${DB_PASSWORD}
      MAX_PREPARED_STATEMENTS: 0
""")
    app = read_app_config([path])
    pool = the_pool(app, "api")
    assert (pool.max, pool.connection_timeout_ms, pool.idle_timeout_ms, pool.instances) == (12, 3000, 15_000, 4)
    assert pool.origins["instances"].line == line_of(path, "replicas: 4")
    assert pool.origins["idle_timeout_ms"].file.endswith("app.env")
    assert pool.via == "pgbouncer" and "bouncer" in (pool.via_reason or "")
    [bouncer] = app.poolers
    assert (bouncer.name, bouncer.pool_mode, bouncer.default_pool_size, bouncer.max_prepared_statements) == \
        ("bouncer", "session", 15, 0)
    assert bouncer.databases == {"shop": {"host": "db", "user": "shop", "dbname": "shop"}}  # edoburu's DB_*
    no_secret(app, SECRET)


def test_compose_that_is_not_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "docker-compose.yml", "services:\n  api:\n    environment: [a, b\n  db: {}\n")
    with pytest.raises(UsageError, match=r"docker-compose\.yml:4: not valid YAML"):
        read_app_config([path])
    write(path, "services:\n  api:\n    environment:\n      DATABASE_URL: ${DB_URL:?set DB_URL}\n")
    with pytest.raises(UsageError, match=r"docker-compose\.yml:4: \$\{DB_URL\} is required"):
        read_app_config([path])
    write(path, "version: '3'\n")
    with pytest.raises(UsageError, match=r"docker-compose\.yml: not a docker-compose file"):
        read_app_config([path])


# --- pgbouncer.ini ----------------------------------------------------------------------------------


def test_the_guides_pgbouncer_ini_matches_its_compose_file() -> None:
    ini = read_app_config([GUIDE_DIR / "pgbouncer.ini"])
    compose = read_app_config([GUIDE_DIR / "docker-compose.yml"])
    fields = ("pool_mode", "max_client_conn", "default_pool_size", "min_pool_size", "reserve_pool_size",
              "reserve_pool_timeout_ms")
    [a], [b] = ini.poolers, compose.poolers
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    assert a.listen_port == 6432 and a.databases["whatsapp"]["host"] == "postgres"
    assert "password" not in a.databases["whatsapp"]
    no_secret(ini, "password=password")


def test_pgbouncer_ini_include_and_users(tmp_path: Path) -> None:
    write(tmp_path / "limits.ini", "max_client_conn = 300\n; comment\nreserve_pool_timeout = 2.5\n")
    path = write(tmp_path / "pgbouncer.ini", f"""[databases]
shop = host=10.0.0.2 dbname=shop password={SECRET} pool_size=30
* = host=10.0.0.2

[users]
report = pool_mode=session max_user_connections=5

[pgbouncer]
listen_port = 6543
pool_mode = transaction   ; inline comment
max_prepared_statements = 100
%include limits.ini
""")
    [bouncer] = read_app_config([path]).poolers
    assert (bouncer.max_client_conn, bouncer.reserve_pool_timeout_ms, bouncer.max_prepared_statements) == \
        (300, 2500, 100)
    assert bouncer.origins["max_client_conn"].file.endswith("limits.ini")
    assert bouncer.origins["max_client_conn"].line == 1
    assert bouncer.databases["shop"] == {"host": "10.0.0.2", "dbname": "shop", "pool_size": "30"}
    assert bouncer.users["report"]["pool_mode"] == "session"
    assert SECRET not in repr(bouncer)


@pytest.mark.parametrize("text, line, message", [
    ("[pgbouncer]\npool_mode = transaction\n\n[pgbouncr]\nx = 1\n", 4, "unknown section [pgbouncr]"),
    ("[pgbouncer]\npool_mode = transaction\n  just words\n", 3, "not a 'key = value' line"),
    ("[pgbouncer]\npool_mode = sessions\n", 2, "pgbouncer.pool_mode: expected one of session"),
    ("[pgbouncer]\ndefault_pool_size = 20\ndefault_pool_size = 30\n", 3, "default_pool_size is set twice"),
])
def test_a_bad_pgbouncer_ini_names_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path / "pgbouncer.ini", text)
    with pytest.raises(UsageError) as err:
        read_app_config([path])
    assert str(err.value).startswith(f"{path}:{line}: {message}")


# --- HikariCP / Spring ------------------------------------------------------------------------------


def test_hikari_and_spring_properties(tmp_path: Path) -> None:
    path = write(tmp_path / "hikari.properties", f"""# HikariCP
jdbcUrl=jdbc:postgresql://db:5432/shop?password={SECRET}
username = shop
maximumPoolSize: 20
idleTimeout=600000
connectionTimeout=30000
connectionInitSql=SET lock_timeout TO '30s'
""")
    pool = the_pool(read_app_config([path]), "hikari")
    assert (pool.max, pool.size, pool.idle_timeout_ms, pool.connection_timeout_ms, pool.role) == \
        (20, 20, 600_000, 30_000, "shop")  # minimumIdle defaults to maximumPoolSize
    [feature] = pool.session_features
    assert (feature.kind, feature.text) == ("set", "SET lock_timeout TO '30s'")
    assert feature.origin.line == line_of(path, "connectionInitSql")
    assert SECRET not in repr(pool)

    spring = write(tmp_path / "application.properties", "spring.datasource.url=jdbc:postgresql://db/shop\n"
                   "spring.datasource.hikari.maximum-pool-size=15\nspring.datasource.hikari.minimum-idle=3\n"
                   "spring.datasource.hikari.pool-name=orders\nserver.port=8080\n")
    pool = the_pool(read_app_config([spring]), "orders")
    assert (pool.max, pool.size, pool.driver) == (15, 3, "jdbc")
    env = write(tmp_path / "spring.env", "SPRING_DATASOURCE_URL=jdbc:postgresql://db/shop\n"
                                         "SPRING_DATASOURCE_HIKARI_MAXIMUMPOOLSIZE=6\n")
    assert the_pool(read_app_config([env])).max == 6
    write(spring, "spring.datasource.hikari.maximum-pool-size=15\njust-a-key-without-value\n")
    with pytest.raises(UsageError, match=r"application\.properties:2: not a key=value line"):
        read_app_config([spring])


# --- format detection -------------------------------------------------------------------------------


def test_formats_by_content_and_never_guessed(tmp_path: Path) -> None:
    ini = write(tmp_path / "bouncer.conf", "[pgbouncer]\npool_mode = session\n")
    stack = write(tmp_path / "stack.yml", "services:\n  api:\n    environment:\n      DATABASE_POOL_MAX: 3\n")
    plain = write(tmp_path / "settings", "DATABASE_URL=postgresql://h/d\nDATABASE_POOL_MAX=2\n")
    app = read_app_config([ini, stack, plain])
    assert [s.format for s in app.sources] == ["pgbouncer", "compose", "dotenv"]
    for name, text in [("notes.txt", "hello world\n"), ("values.yml", "a: 1\n"), ("my.cnf", "[mysqld]\nport=3306\n")]:
        with pytest.raises(UsageError, match=rf"{re.escape(name)}: format not recognised"):
            read_app_config([write(tmp_path / name, text)])
    with pytest.raises(UsageError, match=r"missing\.env: not found"):
        read_app_config([tmp_path / "missing.env"])


def test_pooler_model_is_frozen() -> None:
    [bouncer] = read_app_config([GUIDE_DIR / "pgbouncer.ini"]).poolers
    assert isinstance(bouncer, Pooler)
    with pytest.raises(AttributeError):
        bouncer.pool_mode = "session"  # type: ignore[misc]


# --- connect hooks ----------------------------------------------------------------------------------


def test_the_guides_database_js_sets_lock_timeout() -> None:
    path = GUIDE_DIR / "database.js"
    if GUIDE.is_file():
        assert "await prisma.$executeRaw`SET lock_timeout TO '30s';`" in GUIDE.read_text()
    [pool] = read_app_config([path]).pools
    [feature] = pool.session_features
    assert (feature.kind, feature.text, feature.origin.key) == ("set", "SET lock_timeout TO '30s'", "lock_timeout")
    assert feature.origin.line == line_of(path, "SET lock_timeout")


def test_connect_hooks_take_only_sql(tmp_path: Path) -> None:
    """Only string literals PostgreSQL's grammar reads as SET count; with the .env they are one pool."""
    js = write(tmp_path / "db.ts", """pool.on('connect', (client) => {
  client.query("SET statement_timeout = ${timeoutMs}");
  client.query('SET LOCAL search_path TO app, public');
  log('Set up the connection');
  log("settings ready");
});
""")
    env = write(tmp_path / ".env", "DATABASE_POOL_MAX=10\n")
    pool = the_pool(read_app_config([env, js]))
    assert pool.max == 10
    assert [(f.origin.key, f.origin.line) for f in pool.session_features] == [("statement_timeout", 2),
                                                                               ("search_path", 3)]
    assert pool.session_features[0].text == "SET statement_timeout = ${timeoutMs}"


def test_every_guide_sample_is_read() -> None:
    """Every application-config sample of ``sample_configs/guide/`` (all but its SQL) reads, so none rots."""
    files = sorted(p for p in GUIDE_DIR.iterdir() if p.suffix != ".sql")
    assert {p.name for p in files} == {".env.production", "docker-compose.yml", "pgbouncer.ini", "database.js"}
    app = read_app_config(files)
    assert [s.status for s in app.sources] == ["read"] * 4
    assert the_pool(app).session_features and app.poolers and app.replicas


# --- masking ----------------------------------------------------------------------------------------


@st.composite
def url_with_password(draw: st.DrawFn) -> tuple[str, str]:
    """A driver URL in one of the dialects with a password (a distinctive prefix, then any printable
    characters), percent-encoded as it should be or left raw as people write it."""
    pw = "Zq9" + draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=3, max_size=12))
    encoded = quote(pw, safe="") if draw(st.booleans()) else pw
    quoted = pw.replace("\\", "\\\\").replace("'", "\\'")
    url = draw(st.sampled_from([
        f"postgresql://app:{encoded}@db:5432/shop",
        f"postgres://app:{encoded}@db/shop?sslmode=require",
        f"postgresql+psycopg://app:{encoded}@db/shop?pool_size=3",
        f"postgresql+asyncpg://app:{encoded}@db:5432/shop",
        f"postgresql://app:{encoded}@pgbouncer:6432/shop?connection_limit=3&pgbouncer=true",
        f"jdbc:postgresql://db/shop?user=app&password={quote(pw, safe='')}",
        f"host=db dbname=shop user=app password='{quoted}'",
    ]))
    return url, pw


@settings(max_examples=300, deadline=None)
@given(case=url_with_password())
def test_no_password_in_the_model_or_an_error(case: tuple[str, str]) -> None:
    url, pw = case
    try:
        target, hints = parse_url(url, "f:1: DATABASE_URL")
        outputs = [repr(target), repr(hints), target.url]
    except UsageError as exc:
        outputs = [str(exc)]
    for out in outputs:
        assert pw not in out and quote(pw, safe="") not in out, (url, out)
