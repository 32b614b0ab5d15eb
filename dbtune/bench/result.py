"""The :class:`BenchResult` of one ``dbtune bench run`` and its versioned JSON file.

The file is the contract between ``bench run`` and ``bench compare`` (and CI scripts): a JSON object with
``kind`` = ``dbtune-bench-result`` and ``result_version`` = :data:`RESULT_VERSION`; a reader refuses any
other kind or version rather than guess. Version 2 added the rounds (``run.rounds`` and each query's
``rounds``, see :mod:`dbtune.bench.runner`); a version 1 file has no round statistics to compare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from dbtune import __version__
from dbtune.bench.plan import PlanShape
from dbtune.errors import UsageError
from dbtune.escape import one_line
from dbtune.model import report_header

RESULT_KIND = "dbtune-bench-result"
RESULT_VERSION = 2

# Settings that change timings; two results are only comparable when these match (or with --force).
TIMING_SETTINGS = ("jit", "work_mem", "shared_buffers", "max_parallel_workers_per_gather", "random_page_cost",
                   "effective_cache_size")


LABEL_SQL_WIDTH = 50

# The reference statements every run measures beside the workload (dbtune.bench.runner).
ROUND_TRIP = "reference-round-trip"
CPU_BOUND = "reference-cpu"


def label(name: str, sql: str) -> str:
    """How a query is shown: its name, and for a ``pgss:<queryid>`` name (which says nothing to a reader)
    also the first line of its SQL, cut at :data:`LABEL_SQL_WIDTH` characters, control characters
    escaped: ``pgss:-4211 SELECT qty FROM items WHERE code = $1``."""
    if not name.startswith("pgss:"):
        return name
    lines = sql.strip().splitlines()
    first = " ".join(lines[0].split()) if lines else ""
    if len(first) > LABEL_SQL_WIDTH or len(lines) > 1:
        first = first[:LABEL_SQL_WIDTH - 1].rstrip() + "…"
    return one_line(f"{name} {first}")


@dataclass(frozen=True)
class BenchServer:
    """The server a run measured: ``version`` (e.g. ``18.1``), ``version_num`` (``server_version_num``),
    ``database`` and a password-free ``target`` label (``user@host:port/db``)."""

    version: str
    version_num: int
    database: str
    target: str = ""


@dataclass(frozen=True)
class RunParameters:
    """How the run was made. ``iterations`` is the measured executions per query and client over all
    ``rounds`` (``None`` with ``duration_s``: seconds per query, over all rounds); ``warmup`` executions
    per query and client before the first round are not measured; ``started_at`` is ISO 8601 UTC."""

    iterations: int | None
    duration_s: float | None
    clients: int
    warmup: int
    allow_writes: bool
    started_at: str
    workload: str = ""
    param_samples: int = 100
    seed: int = 1
    rounds: int = 1


@dataclass(frozen=True)
class RoundResult:
    """One query in one round: ``count`` measured executions (all clients), ``errors``, the round's median
    and mean latency (ms) and its wall time (s). ``p50_ms`` is the round statistic a comparison uses."""

    count: int
    errors: int
    p50_ms: float
    mean_ms: float
    elapsed_s: float


@dataclass(frozen=True)
class QueryResult:
    """One query's measurements. Latencies in ms; ``throughput_qps`` is executions per second over the
    measured phase (all clients); ``histogram`` is the HdrHistogram (µs) in its compressed base64 form;
    ``samples`` the raw latencies (ms), all of them or a uniform reservoir sample when capped; ``rows`` the
    mean rows returned or affected per execution; ``parameters`` where each ``$n`` came from; ``rounds``
    the query's statistics in each round, in round order."""

    name: str
    sql: str
    fingerprint: str
    kind: str
    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_qps: float
    histogram: str
    samples: tuple[float, ...]
    plan: PlanShape | None
    rows: float = 0.0
    parameters: tuple[str, ...] = ()
    first_error: str | None = None
    rounds: tuple[RoundResult, ...] = ()

    @property
    def label(self) -> str:
        """The name, with the SQL's first line for a pg_stat_statements query (:func:`label`)."""
        return label(self.name, self.sql)

    def round_medians(self) -> list[float]:
        """The median latency (ms) of every round in which the query had a measured execution."""
        return [r.p50_ms for r in self.rounds if r.count > 0]


@dataclass(frozen=True)
class SkippedQuery:
    """A query the run did not measure, and why (writes without --allow-writes, a ``$n`` without values, a
    statement the server cannot plan)."""

    name: str
    sql: str
    reason: str


@dataclass(frozen=True)
class BenchResult:
    """Per query: latency histogram, percentiles, throughput, plan shape, round statistics; plus the server,
    the settings that change timings (:data:`TIMING_SETTINGS`, as ``current_setting`` shows them), the run
    parameters and the reference statements measured in the same rounds (:data:`ROUND_TRIP`,
    :data:`CPU_BOUND`; empty when no query ran)."""

    command: ClassVar[str] = "bench run"
    server: BenchServer
    settings: dict[str, str]
    run: RunParameters
    queries: tuple[QueryResult, ...]
    skipped: tuple[SkippedQuery, ...] = ()
    dbtune_version: str = field(default=__version__)
    references: tuple[QueryResult, ...] = ()

    def reference(self, name: str) -> QueryResult | None:
        """The reference statement :data:`ROUND_TRIP` or :data:`CPU_BOUND`, when the run measured it."""
        return next((q for q in self.references if q.name == name), None)

    def query(self, name: str) -> QueryResult | None:
        return next((q for q in self.queries if q.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``report_version``, ``command`` ``"bench run"``, ``result_version`` 2)."""
        return {
            **report_header(self),
            "kind": RESULT_KIND,
            "result_version": RESULT_VERSION,
            "dbtune_version": self.dbtune_version,
            "server": vars(self.server).copy(),
            "settings": dict(self.settings),
            "run": vars(self.run).copy(),
            "queries": [_query_json(q) for q in self.queries],
            "skipped": [vars(s).copy() for s in self.skipped],
            "references": [_query_json(q) for q in self.references],
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "result") -> BenchResult:
        """Read the JSON form; raises :class:`UsageError` naming ``source`` when it is not a dbtune bench
        result of this version, or a field is missing or of the wrong type."""
        if not isinstance(data, dict) or data.get("kind") != RESULT_KIND:
            raise UsageError(f"{source}: not a dbtune bench result (no \"kind\": \"{RESULT_KIND}\")")
        if data.get("result_version") != RESULT_VERSION:
            raise UsageError(f"{source}: bench result version {data.get('result_version')!r} is not supported "
                             f"(this dbtune reads version {RESULT_VERSION}); run `dbtune bench run` again")
        try:
            return cls(
                server=BenchServer(**data["server"]),
                settings={str(k): str(v) for k, v in data["settings"].items()},
                run=RunParameters(**data["run"]),
                queries=tuple(_query_from_json(q) for q in data["queries"]),
                skipped=tuple(SkippedQuery(**s) for s in data.get("skipped", [])),
                dbtune_version=str(data.get("dbtune_version", "")),
                references=tuple(_query_from_json(q) for q in data.get("references", [])),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing key {exc}" if isinstance(exc, KeyError) else " ".join(str(exc).split())
            raise UsageError(f"{source}: malformed dbtune bench result ({what})") from None


def _query_json(q: QueryResult) -> dict[str, Any]:
    data = vars(q).copy()
    data["samples"] = list(q.samples)
    data["parameters"] = list(q.parameters)
    data["plan"] = q.plan.to_json() if q.plan else None
    data["rounds"] = [vars(r).copy() for r in q.rounds]
    return data


def _query_from_json(data: dict[str, Any]) -> QueryResult:
    data = dict(data)
    data["samples"] = tuple(float(s) for s in data["samples"])
    data["parameters"] = tuple(str(p) for p in data.get("parameters", ()))
    data["plan"] = PlanShape.from_json(data["plan"]) if data.get("plan") else None
    data["rounds"] = tuple(RoundResult(**r) for r in data["rounds"])
    return QueryResult(**data)


def save_result(result: BenchResult, path: Path) -> None:
    """Write ``result`` as JSON to ``path`` (whole, then renamed). Raises :class:`UsageError` when the file
    cannot be written."""
    text = json.dumps(result.to_json(), indent=1) + "\n"
    try:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write: {exc.strerror or exc}") from None


def load_result(path: Path) -> BenchResult:
    """Read a result file. Raises :class:`UsageError` naming the file when it is missing, not UTF-8 JSON,
    or not a dbtune bench result of this version."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a dbtune bench result (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not a dbtune bench result (invalid JSON at line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise UsageError(f"{path}: not a dbtune bench result (JSON nested too deeply to read)") from None
    return BenchResult.from_json(parsed, str(path))
