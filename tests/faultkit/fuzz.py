"""Fuzzed input for issue 9, item 7: valid inputs of every kind dbtune reads, broken on purpose, each run
through the real CLI against a real target database, and what a run must never do.

The input kinds (:data:`KINDS`): workload scripts (plain SQL, psql, pgbench, qgen), server logs (stderr
with a ``log_line_prefix``, csvlog, jsonlog), ``dbtune.toml`` configs, the application's own config
(``.env`` with driver URLs, ``pgbouncer.ini``, docker-compose YAML, HikariCP ``.properties``) and the JSON
reports ``migrate generate --from`` reads (an audit report, an advice file). Each example starts from a
valid input (a shipped sample, or one generated here) and applies up to three breakages: truncation,
inserted bytes (NUL, invalid UTF-8, quotes, line breaks), a deleted or duplicated span or line (duplicate
keys), a value replaced by one of the wrong type, a huge number or a deeply nested one.

:func:`judge` lists what is wrong with one run: an exit code outside {0, 1, 2}, a traceback, more than one
``error:`` line, an error (or an exit 2) that does not name the file, or any change to the target (its
relations, their data, its settings). Both ``tests/test_faults_fuzz.py`` (few examples) and
``benchmarks/faultparts/fuzz.py`` (thousands) run :func:`run_example`.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from faultkit.run import Outcome, run_cli
from hypothesis import strategies as st

from dbtune.samples import guide_file, samples_dir

# --- the target ----------------------------------------------------------------------------------------

TARGET_SCHEMA = guide_file("schema.sql").read_text() + """
CREATE TABLE parent (id bigint PRIMARY KEY);
CREATE TABLE child (id bigint PRIMARY KEY, parent_id bigint REFERENCES parent (id), note text);
INSERT INTO parent SELECT g FROM generate_series(1, 50) g;
INSERT INTO child SELECT g, g % 50 + 1, 'n' FROM generate_series(1, 200) g;
ANALYZE;
"""

# Everything a write to the target would change: its relations (a new one, a rewrite, a dropped one), its
# indexes' and constraints' state, its extensions and settings, and the rows of every user table.
_STATE_SQL = """
SELECT 'class', format('%s %s %s %s', c.oid, c.relname, c.relkind, c.relfilenode) FROM pg_catalog.pg_class c
UNION ALL SELECT 'index', format('%s %s %s', indexrelid, indisvalid, indisready) FROM pg_catalog.pg_index
UNION ALL SELECT 'constraint', format('%s %s %s', oid, conname, convalidated) FROM pg_catalog.pg_constraint
UNION ALL SELECT 'extension', format('%s %s', extname, extversion) FROM pg_catalog.pg_extension
UNION ALL SELECT 'setting', coalesce(array_to_string(setconfig, ','), '') FROM pg_catalog.pg_db_role_setting
UNION ALL SELECT 'comment', format('%s %s', objoid, description) FROM pg_catalog.pg_description
ORDER BY 1, 2
"""
_TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 1
"""


def target_state(dsn: str) -> tuple[tuple[str, str], ...]:
    """A fingerprint of the target database: its catalog rows (relations with their ``relfilenode``,
    index validity, constraints, extensions, settings, comments) and an md5 of every user table's rows."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = [(str(kind), str(value)) for kind, value in conn.execute(_STATE_SQL).fetchall()]
        for (table,) in conn.execute(_TABLES_SQL).fetchall():
            digest = conn.execute(f"SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) "  # type: ignore[arg-type]
                                  f"FROM {table} t").fetchone()
            rows.append(("rows", f"{table} {digest[0] if digest else ''}"))
    return tuple(rows)


# --- valid inputs --------------------------------------------------------------------------------------

_GUIDE_WORKLOAD = guide_file("workload.sql").read_text()
_STATEMENTS = [
    "SELECT id, status FROM webhook_idempotency WHERE message_sid = $1 LIMIT 1",
    "SELECT * FROM orders WHERE retailer_id = $1 AND status = 'pending' ORDER BY created_at DESC LIMIT 20",
    "SELECT c.id, p.id FROM child c JOIN parent p ON p.id = c.parent_id WHERE c.note = 'n'",
    "UPDATE child SET note = 'x' WHERE parent_id = 7",
    "DELETE FROM child WHERE id = $1",
    "INSERT INTO parent (id) VALUES ($1)",
    "SELECT count(*) FROM jobs WHERE status = 'queued' GROUP BY queue",
]
_SCRIPTS = [
    _GUIDE_WORKLOAD,
    "-- name: by-parent\nSELECT * FROM child WHERE parent_id = $1;\n-- params: SELECT 3\n",
    "\\set pid random(1, 50)\nBEGIN;\nSELECT * FROM child WHERE parent_id = :pid;\nEND;\n",
    "\\timing on\n\\set note 'n'\nSELECT * FROM child WHERE note = :'note';\n",
    ":x\n:o\nSELECT * FROM orders WHERE status = ':1' AND retailer_id = :2;\n",
]


@st.composite
def workload_scripts(draw: st.DrawFn) -> tuple[str, bytes]:
    """A workload script: the guide's, one of each tool's shape, or statements drawn from the target's."""
    if draw(st.booleans()):
        text = draw(st.sampled_from(_SCRIPTS))
    else:
        chosen = draw(st.lists(st.sampled_from(_STATEMENTS), min_size=1, max_size=4))
        text = "".join(f"-- name: q{i}\n{s};\n" for i, s in enumerate(chosen))
    return draw(st.sampled_from(["workload.sql", "workload.psql", "workload.txt"])), text.encode()


def _logged(draw: st.DrawFn) -> list[tuple[str, str | None, int, str]]:
    """Records a server would log: (message, detail, pid, session id)."""
    records = []
    for statement in draw(st.lists(st.sampled_from(_STATEMENTS), min_size=1, max_size=4)):
        ms = draw(st.floats(0, 5000, allow_nan=False).map(lambda v: f"{v:.3f}"))
        pid = draw(st.integers(1, 99999))
        session = f"6650{pid:x}.{pid:x}"
        params = statement.count("$")
        if params and draw(st.booleans()):
            records.append((f"duration: {ms} ms  execute <unnamed>: {statement}",
                            "Parameters: " + ", ".join(f"$${i} = '{i}'" for i in range(1, params + 1)), pid, session))
        else:
            records.append((f"duration: {ms} ms  statement: {statement}", None, pid, session))
    return records


@st.composite
def stderr_logs(draw: st.DrawFn) -> tuple[str, bytes]:
    """A stderr log with one of several ``log_line_prefix`` values."""
    prefix = draw(st.sampled_from(["%m [%p] ", "%t [%p]: [%l-1] user=%u,db=%d ", "%m [%p] app=%a "]))
    lines = []
    for n, (message, detail, pid, _session) in enumerate(_logged(draw), start=1):
        head = (prefix.replace("%m", "2024-05-01 10:00:00.001 UTC").replace("%t", "2024-05-01 10:00:00 UTC")
                .replace("%p", str(pid)).replace("%l", str(n)).replace("%u", "app").replace("%d", "shop")
                .replace("%a", "psql"))
        lines.append(f"{head}LOG:  {message}")
        if detail:
            lines.append(f"{head}DETAIL:  {detail}")
    return "postgresql.log", ("\n".join(lines) + "\n").encode()


def _csv_field(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if value else ""


@st.composite
def csvlogs(draw: st.DrawFn) -> tuple[str, bytes]:
    """A csvlog (26 columns, PostgreSQL 14+)."""
    rows = []
    for n, (message, detail, pid, session) in enumerate(_logged(draw), start=1):
        fields = ["2024-05-01 10:00:00.001 UTC", "app", "shop", str(pid), "[local]", session, str(n), "SELECT",
                  "2024-05-01 09:59:59 UTC", "3/4", "0", "LOG", "00000", message, detail or "", "", "", "", "",
                  "", "", "", "psql", "client backend", "", "0"]
        rows.append(",".join(_csv_field(f) if i in (13, 14) else f for i, f in enumerate(fields)))
    return "postgresql.csv", ("\n".join(rows) + "\n").encode()


@st.composite
def jsonlogs(draw: st.DrawFn) -> tuple[str, bytes]:
    """A jsonlog (PostgreSQL 15+): one object a line."""
    lines = []
    for n, (message, detail, pid, session) in enumerate(_logged(draw), start=1):
        record: dict[str, Any] = {"timestamp": "2024-05-01 10:00:00.001 UTC", "user": "app", "dbname": "shop",
                                  "pid": pid, "session_id": session, "line_num": n, "error_severity": "LOG",
                                  "message": message}
        if detail:
            record["detail"] = detail
        lines.append(json.dumps(record))
    return "postgresql.json", ("\n".join(lines) + "\n").encode()


def _sample(name: str) -> bytes:
    return (samples_dir() / name).read_bytes()


_CONFIGS = sorted(p.name for p in samples_dir().glob("*.toml"))


@st.composite
def configs(draw: st.DrawFn) -> tuple[str, bytes]:
    """A ``dbtune.toml``: a shipped sample (its ``extends`` sits beside it), or settings drawn here."""
    if draw(st.booleans()):
        return "dbtune.toml", _sample(draw(st.sampled_from(_CONFIGS)))
    lines = ["[database]", f"statement_timeout = {draw(st.integers(5000, 60000))}",
             f"connect_timeout = {draw(st.integers(1000, 10000))}", "[audit]",
             f"fail_on = \"{draw(st.sampled_from(['error', 'warning', 'info', 'never']))}\""]
    return "dbtune.toml", ("\n".join(lines) + "\n").encode()


_URLS = ["postgresql://app@db:5432/shop?sslmode=require", "postgres://app@pgbouncer:6432/shop",
         "postgresql+asyncpg://app@db/shop", "jdbc:postgresql://db:5432/shop?user=app",
         "host=db port=5432 dbname=shop user=app", "postgresql://app@[::1]:5433/shop?connect_timeout=5"]


@st.composite
def app_configs(draw: st.DrawFn) -> tuple[str, bytes]:
    """An application config: the shipped ``.env``, ``pgbouncer.ini`` and compose file, a ``.env`` with a
    driver URL drawn here, or HikariCP ``.properties``."""
    url = draw(st.sampled_from(_URLS))
    size = draw(st.integers(1, 500))
    choice = draw(st.sampled_from(["env", "ini", "guide-ini", "compose", "url", "hikari"]))
    if choice == "env":
        return ".env.production", _sample("env.production")
    if choice == "ini":
        return "pgbouncer.ini", _sample("pgbouncer.ini")
    if choice == "guide-ini":
        return "pgbouncer.ini", guide_file("pgbouncer.ini").read_bytes()
    if choice == "compose":
        return "docker-compose.yml", guide_file("docker-compose.yml").read_bytes()
    if choice == "url":
        return ".env", f"DATABASE_URL={url}\nDATABASE_POOL_SIZE={size}\nDATABASE_POOL_MAX={size * 2}\n".encode()
    jdbc = url if url.startswith("jdbc:") else "jdbc:postgresql://db:5432/shop"
    return "application.properties", (f"spring.datasource.url={jdbc}\nspring.datasource.hikari.maximum-pool-size="
                                      f"{size}\nspring.datasource.hikari.idle-timeout=600000\n").encode()


def report_files(seeds: dict[str, bytes]) -> st.SearchStrategy[tuple[str, bytes]]:
    """The JSON files ``migrate generate --from`` reads, from ``seeds`` (name → a real ``audit --format
    json`` report or ``advise --format json`` advice, made by :func:`make_report_seeds`)."""
    return st.sampled_from(sorted(seeds.items()))


# --- breaking them -------------------------------------------------------------------------------------

_BYTES = [b"\x00", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\r", b"\n", b"\t", b'"', b"'", b"\\",
          b"$", b":", b";", b"=", b"[", b"{", b"}", b"]", b"#", b"--", b"/*", b"\x1b[31m", b"\xe2\x80\xae"]
_HUGE = ["9" * 400, "1e999", "-1", "0", "2147483648", "18446744073709551616", "-9223372036854775809", "1e-400",
         "NaN", "inf"]
_WRONG = ['"text"', "true", "[]", "{}", "null", "[1, \"a\"]", '""', "3.5"]
_NUMBER = re.compile(rb"\d+(?:\.\d+)?")


def _nested(open_: str, close: str, depth: int, core: str = "1") -> str:
    return open_ * depth + core + close * depth


@dataclass(frozen=True)
class Breakage:
    """One way to break an input: its ``name`` and a function of (draw, bytes) to bytes."""

    name: str
    apply: Callable[[st.DrawFn, bytes], bytes]


def _position(draw: st.DrawFn, data: bytes) -> int:
    return draw(st.integers(0, len(data)))


def _truncate(draw: st.DrawFn, data: bytes) -> bytes:
    return data[:_position(draw, data)]


def _insert(draw: st.DrawFn, data: bytes) -> bytes:
    at = _position(draw, data)
    piece = draw(st.one_of(st.sampled_from(_BYTES), st.binary(min_size=1, max_size=8)))
    return data[:at] + piece + data[at:]


def _delete_span(draw: st.DrawFn, data: bytes) -> bytes:
    at = _position(draw, data)
    return data[:at] + data[at + draw(st.integers(1, 64)):]


def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def _duplicate_line(draw: st.DrawFn, data: bytes) -> bytes:
    lines = _lines(data)
    k = draw(st.integers(0, len(lines) - 1))
    times = draw(st.sampled_from([1, 2, 200]))
    return b"".join([*lines[:k + 1], *([lines[k]] * times), *lines[k + 1:]])


def _delete_line(draw: st.DrawFn, data: bytes) -> bytes:
    lines = _lines(data)
    k = draw(st.integers(0, len(lines) - 1))
    return b"".join(lines[:k] + lines[k + 1:])


def _huge_number(draw: st.DrawFn, data: bytes) -> bytes:
    found = list(_NUMBER.finditer(data))
    if not found:
        return data + draw(st.sampled_from(_HUGE)).encode()
    m = draw(st.sampled_from(found))
    return data[:m.start()] + draw(st.sampled_from(_HUGE)).encode() + data[m.end():]


_VALUE = re.compile(rb"(?m)(=|: ?)[ \t]*(\S[^\r\n]*)$")


def _wrong_value(draw: st.DrawFn, data: bytes) -> bytes:
    """A ``key = value`` / ``key: value`` line's value replaced by one of another type."""
    found = list(_VALUE.finditer(data))
    new = draw(st.one_of(st.sampled_from(_WRONG), st.sampled_from(_HUGE))).encode()
    if not found:
        return data + b"\nkey = " + new + b"\n"
    m = draw(st.sampled_from(found))
    return data[:m.start(2)] + new + data[m.end(2):]


def _deep(draw: st.DrawFn, data: bytes) -> bytes:
    """A deeply nested value (parentheses, arrays, objects, YAML flow lists) put in at a value or anywhere."""
    depth = draw(st.sampled_from([64, 1000, 5000, 50_000]))
    open_, close = draw(st.sampled_from([("(", ")"), ("[", "]"), ('{"a":', "}"), ("{a = ", "}"), ("- ", "")]))
    piece = _nested(open_, close, depth).encode()
    found = list(_VALUE.finditer(data))
    if found and draw(st.booleans()):
        m = draw(st.sampled_from(found))
        return data[:m.start(2)] + piece + data[m.end(2):]
    at = _position(draw, data)
    return data[:at] + piece + data[at:]


BYTE_BREAKAGES = [Breakage("truncate", _truncate), Breakage("insert bytes", _insert),
                  Breakage("delete span", _delete_span), Breakage("duplicate line", _duplicate_line),
                  Breakage("delete line", _delete_line), Breakage("huge number", _huge_number),
                  Breakage("wrong value", _wrong_value), Breakage("deep nesting", _deep)]

_JSON_VALUES: list[Any] = [None, True, 0, -1, 3.5, 10**40, 1e308, "", "x", "A" * 5000, [], {}, [1, "a"],
                           {"unknown": 1}, "DROP TABLE parent; --", "public.\"a\"\"b\"", "\u202e\x1b[2J"]


def _json_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if len(path) > 40:  # inside a nest an earlier breakage made: deep enough
        return out
    if isinstance(node, dict):
        for key, value in node.items():
            out += _json_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _json_paths(value, (*path, i))
    return out


def _json_structural(draw: st.DrawFn, data: bytes) -> bytes:
    """The report's JSON with one node replaced (a wrong type, a huge number, a deep nest, SQL), a key
    deleted, an unknown key added, or a key written twice."""
    try:
        root = json.loads(data)
    except (ValueError, RecursionError):
        return data
    paths = _json_paths(root)
    path = draw(st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "delete", "add", "duplicate", "deep"]))
    if not path:
        return json.dumps(draw(st.sampled_from(_JSON_VALUES))).encode() if action == "replace" else data
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = draw(st.sampled_from(_JSON_VALUES))
    elif action == "deep":
        parent[last] = "@DEEP@"
        text = json.dumps(root)
        depth = draw(st.sampled_from([100, 1000, 100_000]))
        return text.replace('"@DEEP@"', _nested("[", "]", depth)).encode()
    elif action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = parent[last]
    elif action == "duplicate" and isinstance(parent, dict):
        text = json.dumps(parent, separators=(",", ":"))
        twice = text[:1] + json.dumps(last) + ":" + json.dumps(draw(st.sampled_from(_JSON_VALUES))) + "," + text[1:]
        return json.dumps(root, separators=(",", ":")).replace(text, twice, 1).encode()
    elif isinstance(parent, list):
        parent.insert(last, parent[last])
    return json.dumps(root).encode()


JSON_BREAKAGES = [*BYTE_BREAKAGES, *[Breakage("json node", _json_structural)] * 4]


@st.composite
def broken(draw: st.DrawFn, valid: st.SearchStrategy[tuple[str, bytes]],
           breakages: list[Breakage]) -> tuple[str, bytes, tuple[str, ...]]:
    """A valid input, then none to three breakages: (file name, bytes, the breakages' names)."""
    name, data = draw(valid)
    done = []
    for breakage in draw(st.lists(st.sampled_from(breakages), max_size=3)):
        data = breakage.apply(draw, data)
        done.append(breakage.name)
    return name, data, tuple(done)


# --- the input kinds and their commands ----------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """One kind of input: how a valid one is drawn, how it is broken, and the command that reads it
    (``args(path, dsn, draw)``; the run's working directory is the file's)."""

    name: str
    valid: Callable[[dict[str, bytes]], st.SearchStrategy[tuple[str, bytes]]]
    breakages: list[Breakage]
    args: Callable[[str, str, st.DrawFn], list[str]]


def _explain(path: str, dsn: str, draw: st.DrawFn) -> list[str]:
    fmt = draw(st.sampled_from([None, "psql", "pgbench", "qgen", "plain"]))
    return ["explain", "--workload", path, "--dsn", dsn, "--format", draw(st.sampled_from(["text", "json"])),
            *(["--workload-format", fmt] if fmt else [])]


def _explain_log(path: str, dsn: str, draw: st.DrawFn) -> list[str]:
    return ["explain", "--workload", path, "--dsn", dsn]


def _audit_config(path: str, dsn: str, draw: st.DrawFn) -> list[str]:
    return ["audit", "--config", path, "--dsn", dsn, "--format", draw(st.sampled_from(["text", "json"]))]


def _audit_app_config(path: str, dsn: str, draw: st.DrawFn) -> list[str]:
    return ["audit", "--app-config", path, "--dsn", dsn, "--fail-on", "never"]


def _generate(path: str, dsn: str, draw: st.DrawFn) -> list[str]:
    drops = ["--include-drops"] if draw(st.booleans()) else []
    return ["migrate", "generate", "--from", path, "--dir", "migrations",
            "--format", draw(st.sampled_from(["sql", "alembic"])), *drops]


KINDS = {
    "workload": Kind("workload", lambda _: workload_scripts(), BYTE_BREAKAGES, _explain),
    "stderr log": Kind("stderr log", lambda _: stderr_logs(), BYTE_BREAKAGES, _explain_log),
    "csvlog": Kind("csvlog", lambda _: csvlogs(), BYTE_BREAKAGES, _explain_log),
    "jsonlog": Kind("jsonlog", lambda _: jsonlogs(), JSON_BREAKAGES, _explain_log),
    "config": Kind("config", lambda _: configs(), BYTE_BREAKAGES, _audit_config),
    "app config": Kind("app config", lambda _: app_configs(), BYTE_BREAKAGES, _audit_app_config),
    "report json": Kind("report json", report_files, JSON_BREAKAGES, _generate),
}


def make_report_seeds(dsn: str, folder: Path) -> dict[str, bytes]:
    """A real audit report and a real advice file of the target (``audit``/``advise --format json``), for
    the ``report json`` kind. Raises ``AssertionError`` when either command fails."""
    folder.mkdir(parents=True, exist_ok=True)
    workload = folder / "seed-workload.sql"
    workload.write_text("".join(f"{s};\n" for s in _STATEMENTS[:3]))
    seeds = {}
    for name, args in (("report.json", ["audit", "--format", "json", "--dsn", dsn, "--fail-on", "never"]),
                       ("advice.json", ["advise", "--workload", str(workload), "--format", "json", "--dsn", dsn])):
        run = run_cli(*args, cwd=folder)
        assert run.code in (0, 1) and run.out.startswith("{"), run
        seeds[name] = run.out.encode()
    return seeds


def prepare_folder(folder: Path) -> None:
    """An empty working folder holding the shipped configs an ``extends`` may name."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in _CONFIGS:
        if name != "dbtune.toml":
            shutil.copy(samples_dir() / name, folder / name)


# --- one example and its verdict -----------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One fuzzed run: the kind, the file's name and bytes, the breakages, the outcome, what went wrong."""

    kind: str
    name: str
    data: bytes
    breakages: tuple[str, ...]
    outcome: Outcome
    problems: tuple[str, ...]


def judge(outcome: Outcome, name: str, target_changed: bool) -> list[str]:
    """What is wrong with one run on the file ``name``: an exit code outside {0, 1, 2}, a traceback, more
    than one ``error:`` line, an ``error:`` line (or an exit 2) that does not name the file, a change to
    the target."""
    problems = []
    if outcome.traceback:
        problems.append("traceback: " + (outcome.escaped or outcome.err)[-2000:])
    if outcome.code not in (0, 1, 2):
        problems.append(f"exit code {outcome.code}")
    errors = outcome.error_lines
    if len(errors) > 1:
        problems.append(f"{len(errors)} error lines: {errors}")
    if outcome.code == 2 and not errors:
        problems.append("exit 2 without an error: line")
    if errors and name not in errors[0]:
        problems.append(f"the error does not name {name}: {errors[0]}")
    if target_changed:
        problems.append("the target changed")
    return problems


def example_strategy(kind: Kind, seeds: dict[str, bytes]) -> st.SearchStrategy[Any]:
    """What one example draws: the broken input, then the command's choices (``st.data()``)."""
    return st.tuples(broken(kind.valid(seeds), kind.breakages), st.data())


def run_example(kind: Kind, drawn: Any, dsn: str, folder: Path, before: tuple[tuple[str, str], ...]) -> Example:
    """Write the drawn input to ``folder`` (emptied first), run ``kind``'s command on it against ``dsn``,
    and judge the run; ``before`` is :func:`target_state` of the target before any run."""
    (name, data, breakages), data_strategy = drawn
    prepare_folder(folder)
    path = folder / name
    path.write_bytes(data)
    args = kind.args(name, dsn, data_strategy.draw)
    outcome = run_cli(*args, cwd=folder)
    changed = target_state(dsn) != before
    return Example(kind.name, name, data, breakages, outcome, tuple(judge(outcome, name, changed)))
