"""Issue 9, item 7: fuzzed input. Every kind of file dbtune reads (workload scripts, server logs, configs,
the application's config, the reports ``migrate generate --from`` reads), valid and then broken on purpose
(tests/faultkit/fuzz.py), through the real CLI against a real target: exit 0, 1 or 2, at most one
``error:`` line naming the file, never a traceback, nothing written to the target. Few examples here,
derandomised; ``benchmarks/faults.py --part fuzz`` runs thousands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import conftest
import pytest
from faultkit.fuzz import KINDS, TARGET_SCHEMA, example_strategy, make_report_seeds, run_example, target_state
from faultkit.run import run_cli
from hypothesis import HealthCheck, given, settings

from dbtune.db.local_server import LocalServer

EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzz_target(pg18: LocalServer) -> Iterator[conftest.TestDatabase]:
    database = conftest.new_database(pg18, "fuzz")
    database.execute(TARGET_SCHEMA)
    yield database
    conftest.drop_database(database)


@pytest.fixture(scope="module")
def report_seeds(fuzz_target: conftest.TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return make_report_seeds(fuzz_target.dsn, tmp_path_factory.mktemp("seeds"))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fuzzed_input_gets_one_clear_error_and_writes_nothing(
        kind: str, fuzz_target: conftest.TestDatabase, report_seeds: dict[str, bytes],
        tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    before = target_state(fuzz_target.dsn)
    seen: set[int | None] = set()

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(drawn=example_strategy(KINDS[kind], report_seeds))
    def check(drawn: object) -> None:
        example = run_example(KINDS[kind], drawn, fuzz_target.dsn, Path(folder), before)
        seen.add(example.outcome.code)
        assert not example.problems, (example.breakages, example.data[:600], example.problems,
                                      example.outcome.err[-1500:])

    check()
    assert seen <= {0, 1, 2} and seen, seen


# --- what the fuzzing found, each as its minimised example ------------------------------------------------

_DEEP_TOML = b"[database]\nstatement_timeout = " + b"{a = " * 2000 + b"1" + b"}" * 2000 + b"\n"
_COMPOSE = b"services:\n  pgbouncer:\n    image: edoburu/pgbouncer\n    environment:\n      POOL_MODE: transaction\n"


@pytest.mark.parametrize(("name", "data", "args"), [
    # tomllib recurses once per inline table: a RecursionError escaped the config loader
    ("dbtune.toml", _DEEP_TOML, ("audit", "--config", "dbtune.toml")),
    # a duration of 1e999 is float infinity, which int() refuses with OverflowError
    ("docker-compose.yml", _COMPOSE + b"      RESERVE_POOL_TIMEOUT: 1e999\n", ("audit", "--app-config",
                                                                               "docker-compose.yml")),
    (".env", b"DATABASE_URL=postgresql://app@db/shop\nDATABASE_IDLE_TIMEOUT=" + b"9" * 400 + b"\n",
     ("audit", "--app-config", ".env")),
    # PyYAML's composer recurses once per nested collection
    ("docker-compose.yml", b"services: " + b"[" * 5000 + b"\n", ("audit", "--app-config", "docker-compose.yml")),
    # TOML's inf (and 1e999, a float too large) is infinity, which int() refuses with OverflowError
    ("dbtune.toml", b"[database]\nstatement_timeout = inf\n", ("audit", "--config", "dbtune.toml")),
    # a bench result nested too deeply for json's decoder
    ("before.json", b"[" * 100_000, ("bench", "compare", "before.json", "before.json")),
])
def test_input_nested_too_deeply_or_too_large_is_one_error_naming_the_file(
        fuzz_target: conftest.TestDatabase, tmp_path: Path, name: str, data: bytes, args: tuple[str, ...]) -> None:
    (tmp_path / name).write_bytes(data)
    outcome = run_cli(*args, "--dsn", fuzz_target.dsn, cwd=tmp_path) if args[0] == "audit" else \
        run_cli(*args, cwd=tmp_path)
    assert not outcome.traceback, outcome.escaped or outcome.err
    assert outcome.code == 2 and len(outcome.error_lines) == 1 and name in outcome.error_lines[0], outcome


def test_a_deep_pyproject_on_the_way_up_is_not_a_config(fuzz_target: conftest.TestDatabase, tmp_path: Path) -> None:
    """The config search reads every ``pyproject.toml`` above the working directory: one nested too deeply
    to read holds no ``[tool.dbtune]``, as one that is not TOML holds none."""
    (tmp_path / "pyproject.toml").write_bytes(b"[tool]\nx = " + b"[" * 5000 + b"\n")
    outcome = run_cli("audit", "--dsn", fuzz_target.dsn, "--fail-on", "never", cwd=tmp_path)
    assert not outcome.traceback and outcome.code == 0 and outcome.error_lines == [], outcome


def test_a_jsonlog_line_nested_too_deeply_is_a_bad_record(fuzz_target: conftest.TestDatabase, tmp_path: Path) -> None:
    good = json.dumps({"error_severity": "LOG", "message": "duration: 1.000 ms  statement: SELECT 1"})
    (tmp_path / "postgresql.json").write_text(good + "\n" + '{"a":' * 100_000 + "\n")
    outcome = run_cli("explain", "--workload", "postgresql.json", "--dsn", fuzz_target.dsn, cwd=tmp_path)
    assert not outcome.traceback, outcome.escaped or outcome.err
    assert outcome.code == 2 and outcome.error_lines == [
        "error: 1 of 2 queries could not be explained (first: query: postgresql.json:2: not a JSON object: "
        "nested too deeply to read)"], outcome


def test_a_logged_query_explain_cannot_plan_is_named_by_its_file_and_line(
        fuzz_target: conftest.TestDatabase, tmp_path: Path) -> None:
    (tmp_path / "postgresql.log").write_text(
        "2024-05-01 10:00:00.001 UTC [1] LOG:  duration: 1.000 ms  statement: SELECT 1\n"
        "2024-05-01 10:00:00.002 UTC [1] LOG:  duration: 1.000 ms  statement: SELECT * FROM no_such_table\n")
    outcome = run_cli("explain", "--workload", "postgresql.log", "--dsn", fuzz_target.dsn, cwd=tmp_path)
    assert outcome.code == 2 and len(outcome.error_lines) == 1, outcome
    assert "(postgresql.log:2): relation \"no_such_table\" does not exist" in outcome.error_lines[0], outcome


@pytest.mark.parametrize("field", ["session_id", "detail"])
def test_a_jsonlog_field_of_another_type_is_not_read(fuzz_target: conftest.TestDatabase, tmp_path: Path,
                                                     field: str) -> None:
    """A jsonlog line whose ``session_id`` or ``detail`` is a list: the statement is still read (a list as
    a session id was a TypeError, unhashable)."""
    record = {"error_severity": "LOG", "message": "duration: 1.000 ms  execute <unnamed>: SELECT $1::int",
              field: [[1]]}
    (tmp_path / "postgresql.json").write_text(json.dumps(record) + "\n")
    outcome = run_cli("explain", "--workload", "postgresql.json", "--dsn", fuzz_target.dsn, cwd=tmp_path)
    assert not outcome.traceback, outcome.escaped or outcome.err
    assert outcome.code == 0 and outcome.error_lines == [] and "SELECT $1::int" in outcome.out, outcome
