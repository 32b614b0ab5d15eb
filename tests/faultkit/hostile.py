"""Hostile identifiers end to end through the real CLI (issue 9, item 6), shared by
``tests/test_faults_hostile.py`` (one server, small tables) and ``benchmarks/faultparts/hostile.py``.

A schema, tables, columns and indexes named with mixed case, spaces, double and single quotes, ``;``,
``--`` and ``/*``, reserved words (``select``, ``user``, ``order``), non-ASCII (``é``, ``名前``, an emoji),
63-byte names, and two 63-byte table names that differ only in their last character (so every generated
name built from them must be shortened to 63 bytes, deterministically and uniquely; PostgreSQL truncates a
longer identifier to NAMEDATALEN-1 = 63 bytes and never splits a multibyte character:
https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-IDENTIFIERS).

:func:`run_hostile` runs ``dbtune audit`` (a ``dbtune.toml`` whose ``[[expect.index]]`` names those
objects), ``dbtune advise`` (a workload on those tables), ``dbtune migrate generate`` (SQL and Alembic)
and ``dbtune migrate apply`` as subprocesses on a throwaway server that logs every statement in CSV
(``log_statement = 'all'``, ``csvlog``), then reads the catalog (``pg_index``, ``pg_get_indexdef``,
``pg_constraint``) and the log, and returns what it found.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from dbtune.db.local_server import LocalServer, embedded_bindir, system_bindir
from dbtune.sqlnames import quote_ident

SCHEMA = 'Tenant "A"; DROP SCHEMA public CASCADE; --'
ORDER = "order"                                   # a reserved word
NAMAE = "名前 /* it's */ table"                     # non-ASCII, a comment opener, a single quote
EMOJI = "Events 🎉 -- log"                          # an emoji, a space, mixed case, a line comment
# Two 63-byte names, alike but for their last (two-byte) character: every name built from them is longer
# than 63 bytes, so it is shortened, and the two must not be shortened to the same name.
LONG_A = "l" * 61 + "é"
LONG_B = "l" * 61 + "è"
# Two tables whose names differ by a space ("audit log", "audit_log": the table's name is kept whole in an
# index name), and two columns that lose all their characters in one ("🙂", "🎉"): the generated index
# names must still differ.
SPACED = "audit log"
UNDERSCORED = "audit_log"
COLUMNS = {
    ORDER: ["select", "user", "Mixed Case", "it's \"q\"; --"],
    NAMAE: ["é", "名前", "🙂"],
    EMOJI: ["order", "at /* now */"],
    LONG_A: ["c" * 62 + "x"],
    LONG_B: ["c" * 62 + "x"],
    SPACED: ["by"],
    UNDERSCORED: ["by", "🙂", "🎉"],
}
FOREIGN_KEY_COLUMNS = {"c" * 62 + "x", "by", "🙂"}
# Tables whose columns reference the first table's ``id``: foreign keys without an index, whose generated
# index names are over 63 bytes or lose characters.
REFERENCING = (LONG_A, LONG_B, SPACED, UNDERSCORED)
EXPECTED_CONSTRAINT = ("chk 'sel'; --", ORDER, 'CHECK ("select" <> \'\')')
# The team's expectations: (index name, table, key columns); names as hostile as the tables'.
EXPECTED = [
    ("Idx \"sel\"; DROP TABLE x; --", ORDER, ["select", "Mixed Case"]),
    ("user", ORDER, ["user"]),                     # an index called by a reserved word
    ("名前_é_🙂 /* idx */", NAMAE, ["é", "🙂"]),
    ("i" * 63, EMOJI, ["at /* now */"]),           # a 63-byte index name
]
WORKLOAD = [
    (ORDER, 'SELECT * FROM {t} WHERE {c} = $1', "it's \"q\"; --"),
    (NAMAE, 'SELECT * FROM {t} WHERE {c} = $1', "名前"),
    (EMOJI, 'SELECT * FROM {t} WHERE {c} = $1', "order"),
    (UNDERSCORED, 'SELECT * FROM {t} WHERE {c} = $1', "🎉"),   # its index must not take "🙂"'s name
]
ROWS = 2000


def names_tried() -> list[str]:
    """Every hostile name the run uses: the schema, tables, columns and expected indexes."""
    out = [SCHEMA, *COLUMNS]
    for cols in COLUMNS.values():
        out += [c for c in cols if c not in out]
    return out + [name for name, _, _ in EXPECTED] + [EXPECTED_CONSTRAINT[0]]


def qualified(table: str) -> str:
    return f"{quote_ident(SCHEMA)}.{quote_ident(table)}"


def toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def config_text() -> str:
    """A ``dbtune.toml`` whose ``[[expect.index]]`` entries name the hostile objects. The throwaway server
    runs without fsync and full-page writes (LocalServer's test settings): the two checks that say so are
    left out, so that the audit after the migrations is clean when the schema is."""
    lines = ["[audit]", 'ignore = ["fsync-off", "full-page-writes-off"]', ""]
    for name, table, cols in EXPECTED:
        lines += ["[[expect.index]]", f"name = {toml_string(name)}", f"table = {toml_string(qualified(table))}",
                  "columns = [" + ", ".join(toml_string(quote_ident(c)) for c in cols) + "]", ""]
    name, table, definition = EXPECTED_CONSTRAINT
    lines += ["[[expect.constraint]]", f"name = {toml_string(name)}", f"table = {toml_string(qualified(table))}",
              f"definition = {toml_string(definition)}", ""]
    return "\n".join(lines)


def workload_text() -> str:
    return "\n".join(f"-- name: q{n}\n" + q.format(t=qualified(t), c=quote_ident(c)) + ";\n"
                     for n, (t, q, c) in enumerate(WORKLOAD))


def create_schema(dsn: str, rows: int = ROWS) -> None:
    """The hostile schema: each table with an ``id`` primary key, its columns as ``text`` (the long tables'
    column ``bigint`` referencing the first table's ``id``: a foreign key without an index, whose generated
    index name is over 63 bytes), ``rows`` rows, analysed."""
    ident = sql.Identifier
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(ident(SCHEMA)))
        for table, cols in COLUMNS.items():
            fks = [table in REFERENCING and c in FOREIGN_KEY_COLUMNS for c in cols]
            kinds = [sql.SQL("{} bigint REFERENCES {}.{} (id)").format(ident(c), ident(SCHEMA), ident(ORDER))
                     if fk else sql.SQL("{} text").format(ident(c)) for c, fk in zip(cols, fks, strict=True)]
            conn.execute(sql.SQL("CREATE TABLE {}.{} (id bigint PRIMARY KEY, {})").format(
                ident(SCHEMA), ident(table), sql.SQL(", ").join(kinds)))
            values = [sql.SQL("1 + g % 97") if fk else sql.SQL("'v' || (g % 500)") for fk in fks]
            conn.execute(sql.SQL("INSERT INTO {}.{} SELECT g, {} FROM generate_series(1, {}) g").format(
                ident(SCHEMA), ident(table), sql.SQL(", ").join(values), sql.Literal(rows)))
        conn.execute("ANALYZE")


@dataclass(frozen=True)
class CatalogObjects:
    """What the catalog holds in the hostile schema: (table, index name, pg_get_indexdef, valid) and
    (table, constraint name, type, pg_get_constraintdef), as sorted tuples."""

    indexes: tuple[tuple[str, str, str, bool], ...]
    constraints: tuple[tuple[str, str, str, str], ...]
    relations: tuple[tuple[str, str], ...]


def read_catalog(dsn: str) -> CatalogObjects:
    with psycopg.connect(dsn, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT t.relname, c.relname, pg_catalog.pg_get_indexdef(i.indexrelid), i.indisvalid "
            "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_catalog.pg_class t ON t.oid = i.indrelid JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %s ORDER BY 1, 2", (SCHEMA,)).fetchall()
        constraints = conn.execute(
            "SELECT t.relname, k.conname, k.contype::text, pg_catalog.pg_get_constraintdef(k.oid) "
            "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.conrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace WHERE n.nspname = %s ORDER BY 1, 2",
            (SCHEMA,)).fetchall()
        relations = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
            "ORDER BY 1, 2").fetchall()
    return CatalogObjects(tuple((str(a), str(b), str(c), bool(d)) for a, b, c, d in indexes),
                          tuple((str(a), str(b), str(c), str(d)) for a, b, c, d in constraints),
                          tuple((str(a), str(b)) for a, b in relations))


@dataclass(frozen=True)
class Command:
    args: tuple[str, ...]
    code: int
    out: str
    err: str


def dbtune(*args: str, cwd: Path, dsn: str) -> Command:
    """``python -m dbtune ARGS`` in ``cwd`` with ``DATABASE_URL`` (and no other PG*/DBTUNE_* variable)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DBTUNE_")) and k != "DATABASE_URL"}
    env["DATABASE_URL"] = dsn
    done = subprocess.run([sys.executable, "-m", "dbtune", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)
    return Command(tuple(args), done.returncode, done.stdout, done.stderr)


@contextmanager
def logging_server(major: int | None = None) -> Iterator[LocalServer]:
    """A throwaway server (the embedded 18, or Debian's ``major``) logging every statement to a CSV log."""
    bindir = embedded_bindir() if major is None else system_bindir(major)
    assert bindir is not None, f"PostgreSQL {major} is not installed"
    server = LocalServer.create(bindir)
    server.init({"log_statement": "'all'", "logging_collector": "on", "log_destination": "'csvlog'",
                 "log_directory": "'csvlog'", "log_filename": "'pg.log'", "log_min_messages": "warning",
                 "shared_preload_libraries": "'pg_stat_statements'"})
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@dataclass(frozen=True)
class Logged:
    """One statement from the CSV log: its database, application_name and text."""

    database: str
    application: str
    statement: str


def logged_statements(server: LocalServer) -> list[Logged]:
    """Every ``statement:`` (and ``execute``) line of the server's CSV log, in order."""
    out = []
    for path in sorted((server.datadir / "csvlog").glob("*.csv")):
        with path.open(newline="", encoding="utf-8", errors="replace") as fh:
            for row in csv.reader(fh):
                if len(row) < 14:
                    continue
                message = row[13]
                for prefix in ("statement: ",):
                    if message.startswith(prefix):
                        out.append(Logged(row[2], row[22] if len(row) > 22 else "", message[len(prefix):]))
                if message.startswith("execute ") and ": " in message:
                    out.append(Logged(row[2], row[22] if len(row) > 22 else "", message.split(": ", 1)[1]))
    return out


def mark(dsn: str, server: LocalServer, label: str, timeout_s: float = 10.0) -> None:
    """Send ``SELECT 'label'`` and wait until the CSV log holds it: every statement of a command that ended
    before is in the log by then."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("SELECT {}").format(sql.Literal(f"hostile-mark {label}")))
    deadline = time.monotonic() + timeout_s
    while not any(f"hostile-mark {label}" in e.statement for e in logged_statements(server)):
        if time.monotonic() > deadline:
            raise AssertionError(f"the mark {label!r} never reached the server log")
        time.sleep(0.05)


@dataclass
class HostileRun:
    """What :func:`run_hostile` saw: every command, the statements each sent (from the server log, by
    application_name ``dbtune…``), and the catalog before, after the audit's migration and after the
    advisor's."""

    commands: list[Command] = field(default_factory=list)
    sent: dict[str, list[str]] = field(default_factory=dict)
    before: CatalogObjects | None = None
    after_audit: CatalogObjects | None = None
    after_advice: CatalogObjects | None = None
    planned: list[str] = field(default_factory=list)
    advice: dict = field(default_factory=dict)  # type: ignore[type-arg]

    @property
    def tracebacks(self) -> int:
        return sum("Traceback" in c.out + c.err for c in self.commands)


def _new_statements(server: LocalServer, seen: int, database: str) -> tuple[list[str], int]:
    entries = logged_statements(server)
    return [e.statement for e in entries[seen:] if e.database == database
            and e.application.startswith("dbtune")], len(entries)


def run_hostile(server: LocalServer, database: str, work: Path, rows: int = ROWS) -> HostileRun:
    """Create the hostile schema in ``database`` (new, on a :func:`logging_server`; hypopg installed where
    the server has it) and run the real CLI over it in ``work``: audit (text, then JSON), migrate generate
    (SQL files and an Alembic revision), migrate apply, advise (JSON), migrate generate --from the advice,
    migrate apply, audit again. Raises nothing on a failed command: the caller judges ``commands``."""
    dsn = server.dsn(database)
    create_schema(dsn, rows)
    (work / "dbtune.toml").write_text(config_text())
    (work / "workload.sql").write_text(workload_text())
    out = HostileRun(before=read_catalog(dsn))
    seen = 0
    steps: list[tuple[str, tuple[str, ...]]] = [
        ("audit", ("audit", "--workload", "workload.sql")),
        ("audit-json", ("audit", "--workload", "workload.sql", "--format", "json", "--output", "report.json")),
        ("generate-sql", ("migrate", "generate", "--format", "sql", "--dir", "sql")),
        ("generate", ("migrate", "generate", "--dir", "migrations")),
        ("apply", ("migrate", "apply", "--dir", "migrations")),
        ("advise", ("advise", "--workload", "workload.sql", "--format", "json", "--output", "advice.json")),
        ("generate-advice", ("migrate", "generate", "--from", "advice.json", "--dir", "migrations")),
        ("apply-advice", ("migrate", "apply", "--dir", "migrations")),
        ("audit-after", ("audit", "--workload", "workload.sql", "--format", "json")),
    ]
    for label, args in steps:
        out.commands.append(dbtune(*args, cwd=work, dsn=dsn))
        mark(dsn, server, label)
        out.sent[label], seen = _new_statements(server, seen, database)
        if label == "generate-sql":
            up = [p for p in (work / "sql").glob("*.sql") if not p.name.endswith(".down.sql")]
            out.planned = [p.read_text() for p in up]
        elif label == "apply":
            out.after_audit = read_catalog(dsn)
        elif label == "advise" and (work / "advice.json").exists():
            out.advice = json.loads((work / "advice.json").read_text())
    out.after_advice = read_catalog(dsn)
    return out


def index_columns(definition: str) -> tuple[str, ...]:
    """The key columns of a ``pg_get_indexdef`` text, as PostgreSQL's grammar reads them (names unquoted)."""
    from pglast import parse_sql

    stmt = parse_sql(definition)[0].stmt
    return tuple(str(p.name) for p in stmt.indexParams)  # type: ignore[attr-defined]


def intended_writes(run: HostileRun) -> set[str]:
    """Every write the migrations were meant to make, normalised: the statements of the generated SQL
    file, and the advice's changes and the ANALYZE of their tables."""
    from faultkit import sqlkinds

    from dbtune.migrate.sqlfile import split_statements

    texts = list(run.planned)  # psql files: their meta-commands (\gexec, \if) are blanked, as psql sends none
    for rec in run.advice.get("recommendations", []):
        texts += [ch["up"] for ch in rec["changes"]] + [f"ANALYZE {ch['table']};" for ch in rec["changes"]]
    nodes = [raw.node for text in texts for raw in split_statements(text) if raw.node is not None]
    return {sqlkinds.normalised(n) for n in nodes if sqlkinds.writes(n)}  # type: ignore[arg-type]


def unintended(run: HostileRun) -> list[tuple[str, str]]:
    """(command, statement) for every statement a command sent that was not intended: any write by
    audit, advise or generate; any write by apply that is neither a planned statement nor dbtune's own
    version-table bookkeeping (``dbtune_version``); any logged text holding more than one statement or
    that PostgreSQL's grammar cannot read."""
    from faultkit import sqlkinds

    intended = intended_writes(run)
    out = []
    for label, texts in run.sent.items():
        for text in texts:
            nodes = sqlkinds.statements(text)
            if nodes is None or len(nodes) != 1:
                out.append((label, text))
                continue
            node = nodes[0]
            if not sqlkinds.writes(node):
                continue
            printed = sqlkinds.normalised(node)
            bookkeeping = type(node).__name__ in ("CreateStmt", "InsertStmt", "UpdateStmt", "DeleteStmt") and \
                printed.split(" (")[0].split(" WHERE")[0].split(" SET")[0].endswith("dbtune_version")
            if not label.startswith("apply") or not (printed in intended or bookkeeping):
                out.append((label, text))
    return out


Index = tuple[str, str, tuple[str, ...], bool]  # (table, index name, key columns, indisvalid)


def new_indexes(before: CatalogObjects, after: CatalogObjects) -> set[Index]:
    """The indexes ``after`` holds that ``before`` did not, as (table, name, key columns, valid)."""
    return {(t, n, index_columns(d), v) for t, n, d, v in set(after.indexes) - set(before.indexes)}


def audit_indexes() -> set[Index]:
    """What the audit's migration must build: the team's expected indexes under their own names, and an
    index on each unindexed foreign key under dbtune's generated name."""
    from dbtune.migrate.changes import index_name

    expected = {(t, name, tuple(cols), True) for name, t, cols in EXPECTED}
    return expected | {(t, index_name(t, [quote_ident(c)]), (c,), True) for t, cols in COLUMNS.items()
                       for c in cols if t in REFERENCING and c in FOREIGN_KEY_COLUMNS}


def advice_indexes(run: HostileRun) -> set[Index]:
    """What the advice's migration must build: each recommendation under the name its change gives."""
    from pglast import parse_sql

    out = set()
    for rec in run.advice.get("recommendations", []):
        name = parse_sql(f"DROP INDEX {rec['changes'][0]['index']}")[0].stmt.objects[0][-1].sval  # type: ignore[attr-defined]
        out.add((rec["index"]["table"], str(name), tuple(k["text"] for k in rec["index"]["keys"]), True))
    return out


def audit_constraint() -> tuple[str, str, str, str]:
    name, table, _ = EXPECTED_CONSTRAINT
    return (table, name, "c", 'CHECK (("select" <> \'\'::text))')


def objects_exact(run: HostileRun) -> tuple[int, int]:
    """(objects intended, objects found exactly so after both applies): every intended index and the
    constraint with its name, columns and validity, counted only when nothing else was created or dropped
    (a stray or missing object makes the second figure smaller than the first)."""
    assert run.before is not None and run.after_audit is not None and run.after_advice is not None
    intended = audit_indexes() | advice_indexes(run)
    made = new_indexes(run.before, run.after_advice)
    constraints = set(run.after_advice.constraints) - set(run.before.constraints)
    dropped = len(set(run.before.indexes) - set(run.after_advice.indexes)) + len(
        set(run.before.constraints) - set(run.after_advice.constraints))
    exact = len(intended & made) + (audit_constraint() in constraints)
    stray = len(made - intended) + len(constraints - {audit_constraint()}) + dropped
    return len(intended) + 1, max(exact - stray, 0)
