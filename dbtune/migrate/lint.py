"""The migration linter: SQL migration files and Alembic revisions, judged by dbtune's own rules (the
catalogue's checks of area ``migrations``) and, when it is installed, by squawk.

Usage from Python::

    from dbtune.migrate.lint import lint_paths
    result = lint_paths([Path("migrations/0042_orders.sql")])
    for f in result.findings:
        print(f.location, f.rule, f.message)

How a file is read:

* a ``.py`` file is an Alembic revision (:mod:`dbtune.migrate.alembic_source`): the SQL of ``op.execute``
  and the SQL that ``op.create_index`` & co. emit, inside Alembic's migration transaction unless in
  ``autocommit_block()``; only ``upgrade()`` unless ``include_downgrade``;
* any other file is SQL (:mod:`dbtune.migrate.sqlfile`), assumed to be run by ``psql -f``: statements run
  in autocommit, one transaction each, except between an explicit ``BEGIN`` and ``COMMIT``. (Run with
  ``psql --single-transaction``, or by a tool that wraps each file in a transaction, every statement is in
  a transaction block; write the ``BEGIN``/``COMMIT`` into the file to lint it that way.)

Each rule is a function of a :class:`LintContext` that yields :class:`~dbtune.model.Finding`\\ s; a
statement that does not parse is a finding (of ``statement-syntax-error``, or of
``partial-unique-constraint`` for ``ADD CONSTRAINT … UNIQUE (…) WHERE …``) and the other statements are
still linted. squawk's findings are added with ``source = "squawk"``; one that reports, in the same
statement, what a dbtune rule reports (the rule's References link squawk's page for it) is folded into
the dbtune finding's ``also``. A statement of a SQL file under a ``-- squawk-ignore rule`` comment is
spared by the dbtune rules that report squawk's ``rule`` too, as squawk spares it.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from pglast import ast, enums

from dbtune.checks.registry import Catalogue, Check, CheckMeta, load_catalogue
from dbtune.checks.runner import FILE_AREAS, _options
from dbtune.config.model import Config
from dbtune.errors import UsageError
from dbtune.migrate.alembic_source import RUNTIME_HELPERS, read_revision
from dbtune.migrate.ddl import (
    AT,
    ATTACHING_FOREIGN_KEY_IGNORES,
    alter_table,
    attaching_foreign_keys,
    commands,
    object_names,
)
from dbtune.migrate.sqlfile import blank_meta_commands, split_statements
from dbtune.migrate.squawk import SquawkFailed, SquawkViolation, find_squawk, run_squawk, squawk_version
from dbtune.migrate.statements import (
    RawStatement,
    Statement,
    TableName,
    annotate,
    partitioned_indexes,
    same_table,
    table_name,
)
from dbtune.model import Change, Finding, Severity, report_header

__all__ = ["LintContext", "LintFinding", "LintResult", "SquawkStatus", "Statement", "lint_paths"]

LINT_VERSION = 1
_SQUAWK_DOC = re.compile(r"squawkhq\.com/docs/([a-z0-9-]+)")


@dataclass(frozen=True)
class LintContext:
    """What a lint rule receives: one file (one section of an Alembic revision), its statements in the
    order they run, the rule's metadata, options and configured severity, and a finding factory."""

    path: Path
    display: str
    statements: tuple[Statement, ...]
    meta: CheckMeta
    options: dict[str, Any] = field(default_factory=dict)
    severity: Severity | None = None
    partitioned_indexes: frozenset[TableName] = frozenset()

    def is_partitioned_index(self, name: TableName) -> bool:
        """Whether the files being linted show ``name`` to be a partitioned index (created ``ON ONLY`` a
        table, or given partitions with ``ATTACH PARTITION``), on which PostgreSQL refuses ``CONCURRENTLY``."""
        return any(same_table(name, x) for x in self.partitioned_indexes)

    @property
    def is_alembic(self) -> bool:
        return self.path.suffix == ".py"

    def parsed(self) -> Iterable[Statement]:
        """The statements that parse (``node`` is set)."""
        return (s for s in self.statements if s.node is not None)

    def before(self, stmt: Statement) -> tuple[Statement, ...]:
        """The statements that run before ``stmt``."""
        return self.statements[: stmt.index]

    def is_new_table(self, stmt: Statement, table: TableName | Any) -> bool:
        """Whether ``table`` (a name or a pglast ``RangeVar``) was created earlier in this file."""
        name = table if isinstance(table, tuple) else table_name(table)
        return any(same_table(name, t) for t in stmt.created_tables)

    def altered_existing_tables(self, *subtypes: Any) -> Iterator[tuple[Statement, TableName, list[Any]]]:
        """Each ``ALTER TABLE`` of a table not created earlier in this file, with its name and its
        subcommands of the given kinds (``AlterTableType``); statements with none of them are passed over."""
        for stmt in self.parsed():
            cmds = list(commands(stmt.node, *subtypes))
            relation = getattr(stmt.node, "relation", None)
            if cmds and relation is not None and not self.is_new_table(stmt, relation):
                yield stmt, table_name(relation), cmds

    def finding(self, stmt: Statement, message: str, *, evidence: dict[str, Any] | None = None,
                changes: Iterable[Change] = (), severity: Severity | None = None,
                line: int | None = None) -> Finding:
        """A :class:`Finding` carrying this rule's id, name and (configured) severity; its ``object`` is
        ``file:line`` (``line`` defaults to the statement's first line)."""
        at = line or stmt.line
        return Finding(check_id=self.meta.id, check_name=self.meta.name,
                       severity=severity or self.severity or self.meta.severity, object=f"{self.display}:{at}",
                       message=message, evidence={**(evidence or {}), "file": self.display, "line": at,
                                                  "statement": stmt.sql, "origin": stmt.origin or "sql"},
                       changes=tuple(changes))


@dataclass(frozen=True)
class LintFinding:
    """One problem in one migration file, from dbtune's rules (``rule_id`` set) or from squawk.

    ``statement`` is the SQL at fault (for an Alembic operation, the SQL it emits); ``also`` lists the
    squawk rules that reported the same problem in the same statement; ``changes`` are the suggested fix.
    """

    file: str
    line: int
    rule_id: str | None
    rule: str
    severity: Severity
    message: str
    source: str = "dbtune"
    statement: str = ""
    help: str | None = None
    also: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    def full_message(self, squawk: bool = True) -> str:
        """The message as every lint renderer shows it: ``message (help)``, the help's final full stop
        dropped, then with ``squawk`` the squawk rules that reported the same problem,
        ``[squawk: rule, rule]`` (the text report and SARIF show them; Markdown and GitHub's annotations,
        which name the rule beside the message, do not)."""
        text = self.message + (f" ({self.help.rstrip('.')})" if self.help else "")
        if squawk and self.also:
            text += f" [squawk: {', '.join(self.also)}]"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "rule_id": self.rule_id, "rule": self.rule,
                "severity": self.severity.value, "source": self.source, "message": self.message,
                "help": self.help, "statement": self.statement, "also_squawk": list(self.also),
                "fix": [c.to_json() for c in self.changes]}


@dataclass(frozen=True)
class SquawkStatus:
    """Whether squawk ran; ``detail`` says why not (``--no-squawk``, not installed, ``failed: …``), or how
    many findings it gave."""

    ran: bool
    version: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ran": self.ran, "version": self.version, "detail": self.detail}


@dataclass
class LintResult:
    """Findings ordered by file (as given), line, then source; notes on what could not be linted."""

    command: ClassVar[str] = "migrate lint"
    files: list[str] = field(default_factory=list)
    findings: list[LintFinding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    squawk: SquawkStatus = field(default_factory=lambda: SquawkStatus(False, detail="not requested"))
    rules_run: list[str] = field(default_factory=list)

    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def counts(self) -> dict[str, int]:
        return {s.value: sum(1 for f in self.findings if f.severity is s) for s in Severity}

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``report_version``, ``command`` ``"migrate lint"``, ``lint_version`` 1)."""
        return {**report_header(self), "lint_version": LINT_VERSION, "files": self.files,
                "summary": {"findings": len(self.findings), **self.counts()},
                "squawk": self.squawk.to_json(), "rules": self.rules_run,
                "findings": [f.to_json() for f in self.findings], "notes": self.notes}


# --- reading files ------------------------------------------------------------------------------------


@dataclass
class _File:
    path: Path
    display: str
    text: str
    sections: dict[str, list[Statement]]
    raws: dict[str, list[RawStatement]]

    @property
    def is_alembic(self) -> bool:
        return self.path.suffix == ".py"


def read_text(path: Path) -> str:
    """The file's text. Raises :class:`UsageError` naming the file when it is missing, a directory,
    unreadable, binary or not UTF-8."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a directory; pass the migration files (e.g. {path}/*.sql)") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if b"\0" in data:
        raise UsageError(f"{path}: binary file, not SQL or an Alembic revision")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def _read(path: Path, include_downgrade: bool, notes: list[str]) -> _File:
    text = read_text(path)
    display = str(path)
    if path.suffix == ".py":
        source = read_revision(text, ("upgrade", "downgrade") if include_downgrade else ("upgrade",))
        notes.extend(f"{display}: {n}" for n in source.notes)
        raws = source.sections
    else:
        raws = {"": split_statements(text)}
    return _File(path, display, text, {k: annotate(v) for k, v in raws.items()}, raws)


# --- running the rules --------------------------------------------------------------------------------


def lint_rules(catalogue: Catalogue | None = None) -> list[Check]:
    """The catalogue's checks that read migration files (areas in ``FILE_AREAS``), in id order."""
    return [c for c in (catalogue or load_catalogue()) if c.meta.area in FILE_AREAS]


def squawk_overlaps(check: Check) -> frozenset[str]:
    """The squawk rules whose pages a rule's References link: they report the same problem."""
    return frozenset(_SQUAWK_DOC.findall(check.doc.get("References", "")))


def _select(rules: list[Check], catalogue: Catalogue, ignore: Iterable[str]) -> list[Check]:
    drop = set()
    for key in ignore:
        check = catalogue.get(key)
        if check is None or check.meta.area not in FILE_AREAS:
            raise UsageError(f"--ignore {key}: no migration lint rule of that id or name "
                             f"(see `dbtune checks list`, area migrations)")
        drop.add(check.meta.id)
    return [r for r in rules if r.meta.id not in drop]


@dataclass
class _Located:
    finding: LintFinding
    overlaps: frozenset[str]
    span: tuple[int, int]


_SQUAWK_IGNORE = re.compile(r"^\s*--\s*squawk-ignore(?:-next-statement)?\s+(.+)$")


def squawk_ignored(text: str, line: int) -> frozenset[str]:
    """The squawk rules that ``-- squawk-ignore rule, …`` comment lines directly above ``line`` (1-based) of a
    SQL file silence for the statement starting there."""
    lines = text.splitlines()
    rules: set[str] = set()
    n = line - 2
    while 0 <= n < len(lines) and lines[n].lstrip().startswith("--"):
        match = _SQUAWK_IGNORE.match(lines[n])
        if match:
            rules.update(r.strip() for r in match.group(1).split(","))
        n -= 1
    return frozenset(rules)


def _run_rules(file: _File, rules: list[tuple[Check, dict[str, Any], Severity]],
               partitioned: frozenset[TableName] = frozenset()) -> list[_Located]:
    out: list[_Located] = []
    for section, statements in file.sections.items():
        for check, options, severity in rules:
            ctx = LintContext(file.path, file.display, tuple(statements), check.meta, options, severity,
                              partitioned)
            overlaps = squawk_overlaps(check)
            for f in check.run(ctx):  # type: ignore[arg-type]
                line = int(f.evidence.get("line", 0)) or 1
                stmt = next((s for s in statements if s.line <= line <= max(s.end_line, s.line)), None)
                if stmt is not None and not file.is_alembic and overlaps & squawk_ignored(file.text, stmt.line):
                    continue  # silenced for squawk's rule of the same problem: silenced for this one too
                span = (stmt.line, stmt.end_line) if stmt else (line, line)
                message = f.message if not section or section == "upgrade" else f"{section}(): {f.message}"
                out.append(_Located(
                    LintFinding(file=file.display, line=line, rule_id=f.check_id, rule=f.check_name,
                                severity=f.severity, message=message, statement=str(f.evidence.get("statement", "")),
                                changes=f.changes),
                    overlaps, span))
    return out


# --- squawk -------------------------------------------------------------------------------------------


@dataclass
class _SquawkInput:
    """A file handed to squawk, and how its lines map back to the migration file."""

    file: _File
    path: Path
    # (first line, last line in the squawk input, statement) for rebuilt inputs; empty when lines match.
    mapping: list[tuple[int, int, Statement]] = field(default_factory=list)

    def original_line(self, line: int) -> int:
        if not self.mapping:
            return line
        for first, last, stmt in self.mapping:
            if first <= line <= last:
                return stmt.line + (line - first) if stmt.exact_lines else stmt.line
        following = [stmt.line for first, _, stmt in self.mapping if first > line]
        return following[0] if following else self.mapping[-1][2].line


def _blank(text: str, raws: Sequence[RawStatement]) -> str:
    """``text`` with the statements that do not parse replaced by spaces (newlines kept)."""
    chars = list(text)
    for raw in raws:
        if raw.error is not None:
            for i in range(raw.start, min(raw.end, len(chars))):
                if chars[i] != "\n":
                    chars[i] = " "
    return "".join(chars)


def _partitioned_recipe_ignores(stmt: Statement, partitioned: frozenset[TableName]) -> list[str]:
    """squawk-ignore lines for the two statements of the partitioned-index recipe that PostgreSQL refuses
    with CONCURRENTLY (``CREATE INDEX … ON ONLY``, ``DROP INDEX`` of a partitioned index), when an Alembic
    revision is rebuilt as SQL for squawk (a SQL file carries its own comments)."""
    node = stmt.node
    if isinstance(node, ast.IndexStmt) and node.relation is not None and not node.relation.inh:
        return ["-- squawk-ignore require-concurrent-index-creation"]
    if isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_INDEX and not node.concurrent \
            and all(any(same_table(n, p) for p in partitioned) for n in object_names(node)):
        return ["-- squawk-ignore require-concurrent-index-deletion"]
    return []


def _squawk_inputs(files: list[_File], tmp: Path,
                   partitioned: frozenset[TableName] = frozenset()) -> list[_SquawkInput]:
    inputs = []
    for n, file in enumerate(files):
        if not file.is_alembic:
            text = _blank(blank_meta_commands(file.text), file.raws[""])
            if text == file.text:
                inputs.append(_SquawkInput(file, file.path.resolve()))
            else:  # same lines, without what squawk's parser would stop at
                path = tmp / f"{n}_{file.path.name}"
                path.write_text(text)
                inputs.append(_SquawkInput(file, path))
            continue
        for section, statements in file.sections.items():
            lines: list[str] = []
            mapping = []
            parsed = [s for s in statements if s.node is not None]
            attaching = {parsed[n].index for n in attaching_foreign_keys(s.node for s in parsed)}
            in_tx = helper_timeout = False
            for stmt in statements:
                if stmt.node is None or not stmt.sql.strip():
                    continue
                if stmt.in_transaction != in_tx:
                    lines.append("BEGIN;" if stmt.in_transaction else "COMMIT;")
                    in_tx = stmt.in_transaction
                if stmt.origin in RUNTIME_HELPERS and not helper_timeout:
                    # What dbtune's step helpers do in their session (dbtune.migrate.runtime._execute).
                    lines += ["SET lock_timeout = '2s';", "SET statement_timeout = 0;"]
                    helper_timeout = True
                # A step helper sends each statement on its own in autocommit: a constraint step (ALTER TABLE)
                # is then one atomic transaction, which is how squawk is shown it.
                alone = stmt.origin in RUNTIME_HELPERS and not in_tx and alter_table(stmt.node) is not None
                if alone:
                    lines.append("BEGIN;")
                lines += _partitioned_recipe_ignores(stmt, partitioned)
                if stmt.index in attaching:
                    lines.append(f"-- squawk-ignore {ATTACHING_FOREIGN_KEY_IGNORES}")
                if section == "downgrade" and any(True for _ in commands(stmt.node, AT.AT_DropConstraint)):
                    lines.append("-- squawk-ignore ban-drop-constraint")  # what the downgrade is for
                first = len(lines) + 1
                lines.extend((stmt.sql.rstrip().rstrip(";") + ";").splitlines())
                mapping.append((first, len(lines), stmt))
                if alone:
                    lines.append("COMMIT;")
            if not mapping:
                continue
            if in_tx:
                lines.append("COMMIT;")
            path = tmp / f"{n}_{file.path.stem}_{section}.sql"
            path.write_text("\n".join(lines) + "\n")
            inputs.append(_SquawkInput(file, path, mapping))
    return inputs


def _merge_squawk(located: list[_Located], files: list[_File], use_squawk: bool, executable: str | None,
                  partitioned: frozenset[TableName] = frozenset()) -> tuple[list[LintFinding], SquawkStatus]:
    if not use_squawk:
        return [], SquawkStatus(False, detail="--no-squawk")
    if executable is None:
        return [], SquawkStatus(False, detail="squawk is not installed; pip install squawk-cli")
    version = squawk_version(executable)
    with tempfile.TemporaryDirectory(prefix="dbtune-squawk-") as tmp:
        inputs = _squawk_inputs(files, Path(tmp), partitioned)
        by_path = {i.path: i for i in inputs}
        try:
            violations = run_squawk(executable, [i.path for i in inputs])
        except SquawkFailed as exc:
            return [], SquawkStatus(False, version, f"failed: {exc}")
    extra: list[LintFinding] = []
    for v in violations:
        source = by_path.get(v.path)
        if source is None:
            continue
        line = source.original_line(v.line)
        if _fold(located, source.file.display, line, v):
            continue
        extra.append(LintFinding(file=source.file.display, line=line, rule_id=None, rule=v.rule,
                                 severity=v.severity, message=v.message, source="squawk", help=v.help))
    return extra, SquawkStatus(True, version, f"{len(violations)} finding(s)")


def _fold(located: list[_Located], display: str, line: int, v: SquawkViolation) -> bool:
    """Fold squawk's ``v`` into a dbtune finding of the same statement whose rule names ``v``'s rule."""
    for item in located:
        f = item.finding
        if f.file == display and v.rule in item.overlaps and item.span[0] <= line <= item.span[1]:
            if v.rule not in f.also:
                item.finding = replace(f, also=(*f.also, v.rule))
            return True
    return False


MIGRATION_SUFFIXES = (".sql", ".py")
_NOT_REVISIONS = frozenset({"env.py", "__init__.py"})  # an Alembic environment's own modules


def migration_files(paths: Sequence[Path]) -> list[Path]:
    """``paths`` with each directory replaced by the migration files under it, sorted: ``.sql`` files and
    Alembic revisions (``.py``, but an environment's ``env.py`` and ``__init__.py``), outside hidden and
    ``__pycache__`` folders. Raises :class:`~dbtune.errors.UsageError` for a directory that holds none."""
    out: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(p for p in path.rglob("*") if p.suffix in MIGRATION_SUFFIXES and p.is_file()
                       and p.name not in _NOT_REVISIONS
                       and not any(part.startswith(".") or part == "__pycache__"
                                   for part in p.relative_to(path).parts))
        if not found:
            raise UsageError(f"{path}: a directory with no migration file (.sql, or .py Alembic revisions)")
        out.extend(found)
    return out


def lint_paths(paths: Sequence[Path], *, use_squawk: bool = True, config: Config | None = None,
               catalogue: Catalogue | None = None, include_downgrade: bool = False,
               ignore: Iterable[str] = ()) -> LintResult:
    """Lint migration files (SQL files, Alembic revision ``.py`` files) with the catalogue's migration
    rules, and with squawk when ``use_squawk`` and ``squawk`` is installed. A directory stands for the
    migration files under it (:func:`migration_files`).

    ``config`` supplies per-rule options and severities (``[checks.<name>]``); ``ignore`` names rules not
    to run. Raises :class:`~dbtune.errors.UsageError` for a file that is missing, unreadable, binary or not
    UTF-8, a directory without migration files (before anything is linted), and for an unknown rule in
    ``ignore``.
    """
    catalogue = catalogue or load_catalogue()
    config = config or Config()
    paths = migration_files(paths)
    result = LintResult(files=[str(p) for p in paths])
    files = [_read(Path(p), include_downgrade, result.notes) for p in paths]
    rules = [(c, *_options(c, config)) for c in _select(lint_rules(catalogue), catalogue, ignore)]
    result.rules_run = [c.meta.id for c, _, _ in rules]
    partitioned = partitioned_indexes(s for file in files for section in file.sections.values() for s in section)
    located = [item for file in files for item in _run_rules(file, rules, partitioned)]
    extra, result.squawk = _merge_squawk(located, files, use_squawk, find_squawk() if use_squawk else None,
                                         partitioned)
    order = {f.display: n for n, f in enumerate(files)}
    findings = [item.finding for item in located] + extra
    result.findings = sorted(findings, key=lambda f: (order.get(f.file, 0), f.line, f.source != "dbtune",
                                                      f.rule_id or "", f.rule))
    return result
