"""Typed configuration. Unknown keys are errors that name the key (pydantic ``extra="forbid"``).

Durations are written as integers of milliseconds or strings with a unit (``"30s"``, ``"500ms"``,
``"7d"``, ``"2min"``, ``"1h"``), as in postgresql.conf
(https://www.postgresql.org/docs/current/config-setting.html#CONFIG-SETTING-NAMES-VALUES).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from dbtune.pgsql import constraint_text, parse_constraint_definition, parse_expression, parse_index_column, render
from dbtune.sqlnames import identifier_problem
from dbtune.units import parse_size

_UNITS_MS = {"ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?\s*$")


def parse_duration_ms(value: Any) -> int:
    """``"30s"`` → 30000. An integer is already milliseconds. Raises ValueError on anything else, an
    infinite or NaN number (``inf``, ``1e999``, ``"1e400s"``) included."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 500ms or 7d")
    if isinstance(value, int):
        return value
    ms: float | None = None
    if isinstance(value, float):
        ms = value
    elif isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            ms = float(m.group(1)) * _UNITS_MS[m.group(2) or "ms"]
    if ms is not None and math.isfinite(ms):
        return int(ms)
    raise ValueError(f"expected a duration such as 30s, 500ms or 7d, got {value!r}")


# statement_timeout and lock_timeout are int GUCs in ms: 0 (no limit) to INT_MAX
# (https://www.postgresql.org/docs/current/runtime-config-client.html#GUC-STATEMENT-TIMEOUT).
MAX_TIMEOUT_MS = 2_147_483_647


def parse_timeout_ms(value: Any) -> int:
    """A duration (:func:`parse_duration_ms`) that PostgreSQL accepts as ``statement_timeout`` or
    ``lock_timeout``: 0 to 2147483647 ms (about 24.8 days). Raises ValueError otherwise."""
    ms = parse_duration_ms(value)
    if not 0 <= ms <= MAX_TIMEOUT_MS:
        raise ValueError(f"{value!r} is out of range: PostgreSQL takes 0 (no limit) to {MAX_TIMEOUT_MS} ms "
                         "(24.8 days)")
    return ms


def parse_ram_bytes(value: Any) -> int:
    """``"16GB"`` → 17179869184 (units as in postgresql.conf, 1024-based); at least 64 MB. Raises
    ValueError for anything else (a bare number is refused: its unit would be a guess)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a size such as \"16GB\", got {value!r}")
    size = parse_size(value)
    if size < 64 << 20:
        raise ValueError(f"{value!r} is less than 64MB, too little for a PostgreSQL server")
    return size


DurationMs = Annotated[int, BeforeValidator(parse_duration_ms)]
RamBytes = Annotated[int, BeforeValidator(parse_ram_bytes)]
TimeoutMs = Annotated[int, BeforeValidator(parse_timeout_ms)]
IsolationLevel = Literal["read uncommitted", "read committed", "repeatable read", "serializable"]
FailOn = Literal["error", "warning", "info", "never"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Profile(_Strict):
    """Which deployment profile this config encodes (the guide's "Performance Targets by Deployment Size")."""

    name: str
    servers: int = Field(ge=1, description="application servers (instances) in this deployment")
    description: str | None = None


class DatabaseConfig(_Strict):
    statement_timeout: TimeoutMs = 30_000
    connect_timeout: TimeoutMs = 10_000
    search_path: list[str] = ["public"]
    application_roles: list[str] = []
    exclude_schemas: list[str] = []


class AuditConfig(_Strict):
    """``[audit]``. ``plan_queries``: how many of the top pg_stat_statements statements (by total execution
    time, on user tables) the audit plans, without running them, for the plan checks; 0 turns plans off.
    A ``--workload FILE`` given to the audit is planned instead, whole. ``recommendations``: how many of
    the index advisor's top recommendations, costed on that same workload (read-only: no trial builds, no
    validation), the audit shows as ``index-recommended`` findings; 0 turns the advisor off."""

    fail_on: FailOn = "error"
    select: list[str] = []
    ignore: list[str] = []
    checks_paths: list[str] = []
    plan_queries: int = Field(default=20, ge=0)
    recommendations: int = Field(default=5, ge=0)


class MigrateConfig(_Strict):
    """``[migrate]``. ``version_table``: the table in which ``dbtune migrate`` (and a plain ``alembic
    upgrade`` through dbtune's ``env.py``) records the applied revisions, created by Alembic in the first
    schema of the ``search_path``. It is dbtune's own, so an application that migrates the same database
    with Alembic keeps its ``alembic_version`` to itself. A table name (unquoted, at most 63 bytes:
    https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS)."""

    version_table: str = "dbtune_version"

    @field_validator("version_table")
    @classmethod
    def _a_table_name(cls, value: str) -> str:
        problem = identifier_problem(value)
        if problem is not None:
            raise ValueError(f"{value!r} is not a table name: it {problem} (such as \"dbtune_version\")")
        return value


class PoolConfig(_Strict):
    """An application connection pool (node-postgres, Prisma, HikariCP …), per application instance."""

    name: str
    role: str | None = None
    size: int = Field(ge=0, description="connections kept open (minimum/idle)")
    max: int = Field(ge=1, description="most connections one instance opens")
    idle_timeout: DurationMs | None = None
    connection_timeout: DurationMs | None = None
    instances: int = Field(default=1, ge=1)
    via: Literal["direct", "pgbouncer"] = "direct"

    @model_validator(mode="after")
    def _size_within_max(self) -> PoolConfig:
        if self.size > self.max:
            raise ValueError(f"pool {self.name!r}: size {self.size} is larger than max {self.max}")
        return self


class PgBouncerConfig(_Strict):
    """PgBouncer in front of the server (https://www.pgbouncer.org/config.html)."""

    pool_mode: Literal["session", "transaction", "statement"] = "session"
    max_client_conn: int = Field(default=100, ge=1)
    default_pool_size: int = Field(default=20, ge=1)
    min_pool_size: int = Field(default=0, ge=0)
    reserve_pool_size: int = Field(default=0, ge=0)
    reserve_pool_timeout: DurationMs | None = None
    pools: int = Field(default=1, ge=1, description="distinct (database, user) pairs served")
    instances: int = Field(default=1, ge=1)


def _identifier(name: str) -> str:
    """``name`` when PostgreSQL keeps it exactly as written (1 to 63 bytes, no NUL); else ValueError saying why."""
    problem = identifier_problem(name)
    if problem is not None:
        raise ValueError(f"{name!r} {problem}")
    return name


class ExpectedIndex(_Strict):
    """An index the team expects: matched by meaning (columns in order, direction, predicate), not name.

    ``columns`` are written as in ``CREATE INDEX``: ``"account_sid"``, ``"created_at DESC"``,
    ``"lower(email)"``.
    """

    name: str | None = None
    table: str
    columns: list[str] = Field(min_length=1)
    include: list[str] = []
    where: str | None = None
    method: str = "btree"
    unique: bool = False
    reason: str | None = None

    # These values end up in generated DDL: each is parsed as exactly what it should be (one key column,
    # one expression, one access-method name) and kept as PostgreSQL's grammar prints it back, so nothing
    # else ("; DROP TABLE …") can ride along. The server's own list of methods is checked at audit time.

    @field_validator("name")
    @classmethod
    def _an_index_name(cls, name: str | None) -> str | None:
        return None if name is None else _identifier(name)

    @field_validator("columns")
    @classmethod
    def _one_key_column_each(cls, columns: list[str]) -> list[str]:
        out = []
        for n, text in enumerate(columns):
            try:
                out.append(render(parse_index_column(text)))
            except ValueError as exc:
                raise ValueError(f"columns[{n}] {text!r} is not one index column: {exc}") from None
        return out

    @field_validator("include")
    @classmethod
    def _column_names(cls, include: list[str]) -> list[str]:
        """INCLUDE columns as column names: the bare name (``Order Id``, exactly as in the catalog) or the
        quoted identifier (``"Order Id"``, with ``""`` for a quote inside) both stand for the name."""
        out = []
        for n, text in enumerate(include):
            if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
                inner = text[1:-1]
                if '"' in inner.replace('""', ""):
                    raise ValueError(f"include[{n}] {text!r} is not one quoted column name")
                text = inner.replace('""', '"')
            if not text:
                raise ValueError(f"include[{n}] is empty")
            out.append(text)
        return out

    @field_validator("where")
    @classmethod
    def _one_expression(cls, where: str | None) -> str | None:
        if where is None:
            return None
        try:
            return render(parse_expression(where))
        except ValueError as exc:
            raise ValueError(f"{where!r} is not one SQL expression: {exc}") from None

    @field_validator("method")
    @classmethod
    def _method_name(cls, method: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", method):
            raise ValueError(f"{method!r} is not an index access method name (btree, hash, gin, gist, brin …)")
        return method.lower()


class ExpectedConstraint(_Strict):
    """A foreign key or check constraint the team expects, written as in ``ALTER TABLE … ADD CONSTRAINT``:
    ``definition = "FOREIGN KEY (retailer_id) REFERENCES retailers (id)"`` or ``"CHECK (total_cents >= 0)"``.
    Matched by meaning (kind, columns, referenced table, expression), not by name."""

    name: str
    table: str
    definition: str
    reason: str | None = None

    @field_validator("name")
    @classmethod
    def _a_constraint_name(cls, name: str) -> str:
        return _identifier(name)

    @field_validator("definition")
    @classmethod
    def _one_constraint(cls, definition: str) -> str:
        try:
            return constraint_text(parse_constraint_definition(definition))
        except ValueError as exc:
            raise ValueError(f"{definition!r} is not one constraint definition: {exc}") from None


class ExpectedVersionColumn(_Strict):
    """An optimistic-locking version column the application relies on: every UPDATE of ``table`` should
    bump it (``SET version = version + 1``) and compare it with the version read (``WHERE … AND version =
    $n``), so a concurrent writer's change is detected instead of overwritten."""

    table: str
    column: str = "version"
    reason: str | None = None


class ExpectConfig(_Strict):
    index: list[ExpectedIndex] = []
    unique: list[ExpectedIndex] = []
    constraint: list[ExpectedConstraint] = []
    version_column: list[ExpectedVersionColumn] = []


class ServerConfig(_Strict):
    """``[server]``: facts about the machine the server runs on, which SQL cannot see, for the settings
    checks' pgtune rules (le0pard/pgtune). ``ram`` is its memory (``"16GB"``), ``cpus`` its CPU count,
    ``storage`` the data directory's disks, ``workload`` what the database serves (pgtune's "DB type":
    ``web``, ``oltp``, ``dw`` for a data warehouse, ``desktop``, ``mixed``). A fact left out is not
    assumed: the rules that need it are skipped, saying so."""

    ram: RamBytes | None = None
    cpus: int | None = Field(default=None, ge=1, le=4096)
    storage: Literal["ssd", "nvme", "san", "hdd"] | None = None
    workload: Literal["web", "oltp", "dw", "desktop", "mixed"] | None = None


class IsolationConfig(_Strict):
    required: IsolationLevel | None = None


class Targets(_Strict):
    """The profile's performance targets, carried into reports and benchmarks, and measured by ``dbtune
    probe`` (:mod:`dbtune.probe.profile`): ``webhook_rps_min`` (transactions/s), ``webhook_p99_ms_max``
    (ms) and ``webhook_error_rate_pct_max`` (%) by ``probe load``; ``vendor_win_rate_pct_min`` (%) by
    ``probe race``; ``db_recovery_s_max`` (s) by ``probe recovery``; ``replication_lag_s_max`` (s) by
    ``probe lag``."""

    webhook_rps_min: float | None = None
    webhook_p99_ms_max: float | None = None
    webhook_error_rate_pct_max: float | None = None
    vendor_win_rate_pct_min: float | None = None
    redis_failure_error_rate_pct_max: float | None = None
    redis_availability: str | None = None
    db_recovery_s_max: float | None = None
    replication_lag_s_max: float | None = None


class RaceProbeConfig(_Strict):
    """``[probe.race]``: the shape of the accept that ``dbtune probe race`` races (the guide's vendor
    acceptance by default). ``table`` is the response table (``schema.table``, or a name found through the
    server's ``search_path``); each accept reads whether a row with ``response_column = accepted`` exists
    for its routing (``routing_column``), and inserts one with its ``vendor_column`` when none does.
    ``index_name`` names the partial unique index the probe proposes when nothing enforces one accepted
    response per routing. ``sessions`` and ``rounds`` are the defaults of ``--sessions`` and ``--rounds``."""

    table: str = "vendor_routing_responses"
    routing_column: str = "routing_id"
    vendor_column: str = "vendor_id"
    response_column: str = "response"
    accepted: str = "ACCEPTED"
    index_name: str = Field(default="unique_routing_acceptance", min_length=1, max_length=63)
    sessions: int = Field(default=16, ge=2, le=1000)
    rounds: int = Field(default=200, ge=1, le=1_000_000)


class ProbeConfig(_Strict):
    """``[probe]``: the probes' settings, one table per probe."""

    race: RaceProbeConfig = RaceProbeConfig()


class Config(_Strict):
    """The whole configuration. Every section is optional."""

    profile: Profile | None = None
    app_config: list[str] = Field(default=[], description="the application's own config files (.env, "
                                  "docker-compose, pgbouncer.ini, .properties), relative to this file")
    database: DatabaseConfig = DatabaseConfig()
    audit: AuditConfig = AuditConfig()
    migrate: MigrateConfig = MigrateConfig()
    pool: list[PoolConfig] = []
    pgbouncer: PgBouncerConfig | None = None
    isolation: IsolationConfig = IsolationConfig()
    server: ServerConfig = ServerConfig()
    expect: ExpectConfig = ExpectConfig()
    targets: Targets = Targets()
    probe: ProbeConfig = ProbeConfig()
    checks: dict[str, dict[str, Any]] = {}
