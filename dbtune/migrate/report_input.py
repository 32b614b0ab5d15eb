"""The findings of a JSON report (``dbtune audit --format json``) for ``migrate generate --from``, read as
untrusted input: a report is a file that anyone along a CI pipeline may have edited.

1. The report is validated against its schema (:class:`ReportIn`: strict types, unknown keys refused)
   before anything is written: ``"up": 123``, ``"table": ["a"]`` or ``"transactional": "false"`` is an
   error naming the finding and the key, and so is JSON nested too deeply to read.
2. No SQL is copied from it. Each change's ``up`` and ``down`` is parsed with pglast (PostgreSQL's grammar)
   as exactly one statement of the shape dbtune generates for the change's ``kind`` (``CREATE INDEX
   CONCURRENTLY`` for ``create_index``, ``DROP INDEX CONCURRENTLY`` for its down step, ``ALTER TABLE … ADD
   CONSTRAINT`` for ``add_constraint`` …), whose relation, index and constraint names agree with the
   change's ``table``, ``index`` and ``constraint`` fields (each validated as a schema-qualified identifier
   quoted as PostgreSQL's ``quote_ident`` does), and is printed again from its parse tree. The lock and
   whether the change may run in a transaction are derived from the statement, not read.
3. Changes of kinds that ``migrate generate`` never writes (``server``: ``ALTER SYSTEM``, ``CREATE
   EXTENSION``; ``other``) are not read at all.

The ``object``, ``check_name`` and ``message`` of a finding are free text; whatever they hold, the
renderers escape them where they reach a comment (:mod:`dbtune.escape`).
See https://www.postgresql.org/docs/current/sql-createindex.html and
https://www.postgresql.org/docs/current/sql-altertable.html.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pglast import ast, enums
from pglast.parser import ParseError
from pglast.stream import IndentedStream, RawStream
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from dbtune import __version__
from dbtune.config.messages import key_path, plain_message
from dbtune.errors import UsageError
from dbtune.escape import printable
from dbtune.migrate.ddl import object_names
from dbtune.model import Change, ChangeKind, Finding, Lock, Severity
from dbtune.pgsql import StatementTooDeep, parse_sql
from dbtune.report.model import REPORT_VERSION
from dbtune.sqlnames import qualified

# A statement longer than this is refused before it is parsed: dbtune's own are a few hundred bytes, and a
# chain of operators tens of thousands deep crashes the parser (a segmentation fault, not an exception).
MAX_STATEMENT_BYTES = 16_384
MAX_IDENTIFIER_BYTES = 63
M = TypeVar("M", bound=BaseModel)

# --- the schema ---------------------------------------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangeIn(_In):
    """One entry of ``fix.changes`` (:meth:`dbtune.model.Change.to_json`)."""

    kind: ChangeKind
    up: StrictStr
    down: StrictStr | None = None
    transactional: StrictBool = True
    lock: Lock = Lock.NONE
    table: StrictStr | None = None
    index: StrictStr | None = None
    constraint: StrictStr | None = None
    relation_bytes: Annotated[StrictInt, Field(ge=0)] | None = None


class FixIn(_In):
    """``fix``: only ``changes`` is read; ``sql``, ``same_as`` and ``left_out`` describe the report's own plan,
    which is made again from the changes (and the findings' evidence) when the report is read."""

    sql: list[StrictStr] = []
    changes: list[ChangeIn] = []
    same_as: list[dict[StrictStr, Any]] = []
    left_out: list[dict[StrictStr, Any]] = []


class FindingIn(_In):
    """One entry of ``findings``."""

    check_id: StrictStr
    check_name: StrictStr
    area: StrictStr | None = None  # shown by the reports; a migration does not need it
    severity: Severity
    object: StrictStr
    message: StrictStr
    evidence: dict[StrictStr, Any] = {}
    fix: FixIn = FixIn()


class ReportIn(BaseModel):
    """What ``migrate generate --from`` reads of a report; its other keys (server, summary …) are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    report_version: StrictInt
    dbtune_version: StrictStr
    findings: list[FindingIn]


# --- reading ------------------------------------------------------------------------------------------


def findings_from_report(path: Path) -> list[Finding]:
    """The findings of a JSON report written by ``dbtune audit --format json`` by this dbtune version, with
    every change rebuilt from its parse tree (see the module's docstring).

    Raises :class:`UsageError` (one line naming the file, the finding and the key) when the file is missing,
    not JSON, nested too deeply, not a dbtune report, written by another dbtune version (its fix SQL may
    differ from what this version generates), not valid against the report schema, or when a change's SQL
    is not the one statement its kind says or names other objects than its fields do.
    """
    data = read_json(path)
    if not isinstance(data, dict) or "report_version" not in data or "findings" not in data:
        raise UsageError(f"--from {path}: not a dbtune audit report")
    return _report_findings(path, data)


def findings_from_file(path: Path) -> list[Finding]:
    """The findings of a JSON audit report (``report_version``, :func:`findings_from_report`) or of a JSON
    advice file (``advice_version``, written by ``dbtune advise --format json``: one ``index-recommended``
    finding per recommendation, :func:`dbtune.migrate.advice_input.advice_findings`), told apart by
    their ``command`` (``audit``, ``advise``: every report's JSON has ``report_version``).
    Raises :class:`UsageError` as those do, and for a file that is neither."""
    data = read_json(path)
    command = data.get("command") if isinstance(data, dict) else None
    if command == "advise" and "advice_version" in data:
        from dbtune.migrate.advice_input import advice_findings

        return advice_findings(path, data)
    if command == "audit" and "report_version" in data and "advice_version" not in data:
        if "findings" not in data:
            raise UsageError(f"--from {path}: not a dbtune audit report: it has no findings")
        return _report_findings(path, data)
    raise UsageError(f"--from {path}: not a dbtune audit report or advice file (its \"command\" must be \"audit\" "
                     "with report_version, or \"advise\" with advice_version: dbtune audit --format json, "
                     "dbtune advise --format json)")


def read_json(path: Path) -> Any:
    """The JSON value of ``path``. Raises :class:`UsageError` naming ``--from`` and the file when it is
    missing, unreadable, not UTF-8, not JSON, or nested too deeply to read."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise UsageError(f"--from {path}: file not found") from None
    except RecursionError:
        raise UsageError(f"--from {path}: not a JSON report: nested too deeply") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"--from {path}: not a JSON report: {exc}") from None


def validated(path: Path, data: dict[str, Any], model: type[M], *, version_key: str, version: int, again: str,
              items: str, label: Callable[[int, dict[str, Any]], str]) -> M:
    """``data`` validated against ``model``, once ``data[version_key]`` is ``version`` and
    ``data["dbtune_version"]`` is this dbtune's (another version's SQL may differ from what this one
    generates; ``again`` is the command that writes the file anew). Raises :class:`UsageError` naming the
    file, the entry of ``data[items]`` (``label``) and the key at fault."""
    if data[version_key] != version or data.get("dbtune_version") != __version__:
        raise UsageError(f"--from {path}: written by dbtune {data.get('dbtune_version')!s:.40} ({version_key} "
                         f"{data[version_key]!s:.40}); this is dbtune {__version__} ({version_key} {version}): "
                         f"{again} with this version")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UsageError(f"--from {path}: {schema_error(exc, data, items, label)}") from None


def _report_findings(path: Path, data: dict[str, Any]) -> list[Finding]:
    report = validated(path, data, ReportIn, version_key="report_version", version=REPORT_VERSION,
                       again="audit again", items="findings", label=_finding_label)
    findings = []
    for n, finding in enumerate(report.findings):
        changes = []
        for m, change in enumerate(finding.fix.changes):
            if change.kind in (ChangeKind.SERVER, ChangeKind.OTHER):
                continue
            try:
                changes.append(rebuild_change(change))
            except ChangeRefused as exc:
                raise UsageError(f"--from {path}: {_label(n, finding.check_name, finding.object)}: "
                                 f"fix.changes[{m}].{exc.key}: {exc}") from None
        findings.append(Finding(check_id=finding.check_id, check_name=finding.check_name,
                                severity=finding.severity, object=finding.object, message=finding.message,
                                evidence=dict(finding.evidence), changes=tuple(changes)))
    return findings


def _label(n: int, check_name: object, obj: object) -> str:
    name = check_name if isinstance(check_name, str) else "?"
    return f"finding {n + 1} ({printable(name)[:80]} {printable(obj)[:120] if isinstance(obj, str) else '?'})"


def _finding_label(n: int, raw: dict[str, Any]) -> str:
    return _label(n, raw.get("check_name"), raw.get("object"))


def schema_error(exc: ValidationError, data: dict[str, Any], items: str,
                 label: Callable[[int, dict[str, Any]], str]) -> str:
    """The first schema violation: the entry of ``data[items]`` it is in (``label(n, entry)``), the key's
    path and what was expected."""
    err = exc.errors()[0]
    loc = list(err["loc"])
    parts = []
    if len(loc) >= 2 and loc[0] == items and isinstance(loc[1], int):
        raw = data[items][loc[1]]
        parts.append(label(loc[1], raw if isinstance(raw, dict) else {}))
        loc = loc[2:]
    key = key_path(loc)
    more = len(exc.errors()) - 1
    parts += [printable(key)] if key else []
    says = re.sub(r" or instance of \w+", "", plain_message(err))
    parts.append(says + (f" (and {more} more schema error(s))" if more else ""))
    return ": ".join(parts)


# --- rebuilding each change ---------------------------------------------------------------------------


class ChangeRefused(Exception):
    """A change's SQL or names are not what dbtune generates; ``key`` is the field at fault (raised by
    :func:`rebuild_change`)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _name_parts(key: str, value: str | None) -> tuple[str, str]:
    """``schema.name`` as written by :func:`dbtune.sqlnames.qualified` (each part quoted only where
    PostgreSQL's ``quote_ident`` would) → its two identifiers."""
    if value is None:
        raise ChangeRefused(key, "missing: a schema-qualified name is required for this kind of change")
    ident = r'(?:"((?:[^"\x00]|"")+)"|([a-z_][a-z0-9_$]*))'
    m = re.fullmatch(ident + r"\." + ident, value)
    if m is None:
        raise ChangeRefused(key, f"{printable(value)[:200]!r} is not a schema-qualified identifier")
    schema = m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
    name = m.group(3).replace('""', '"') if m.group(3) is not None else m.group(4)
    if qualified(schema, name) != value:
        raise ChangeRefused(key, f"{printable(value)[:200]!r} is not quoted as PostgreSQL's quote_ident() quotes it")
    for part in (schema, name):
        if len(part.encode()) > MAX_IDENTIFIER_BYTES:
            raise ChangeRefused(key, f"identifier {printable(part)[:80]!r}… is longer than "
                                     f"{MAX_IDENTIFIER_BYTES} bytes")
    return schema, name


def _statement(key: str, sql: str) -> ast.Node:
    """The one statement of ``sql``."""
    if len(sql.encode()) > MAX_STATEMENT_BYTES:
        raise ChangeRefused(key, f"statement longer than {MAX_STATEMENT_BYTES} bytes")
    try:
        statements = parse_sql(sql)
    except StatementTooDeep:
        raise ChangeRefused(key, "statement nested too deeply") from None
    except ParseError as exc:
        raise ChangeRefused(key, f"not valid SQL: {exc}") from None
    except RecursionError:
        raise ChangeRefused(key, "statement nested too deeply") from None
    if len(statements) != 1:
        raise ChangeRefused(key, f"{len(statements)} statements where one is expected")
    node = statements[0].stmt
    if node is None:
        raise ChangeRefused(key, "an empty statement")
    return node


def _printed(key: str, node: ast.Node) -> str:
    """``node`` printed by pglast, as :func:`dbtune.migrate.changes.pretty` prints dbtune's own DDL."""
    try:
        return str(IndentedStream(semicolon_after_last_statement=True)(node))
    except RecursionError:
        raise ChangeRefused(key, "statement nested too deeply") from None


def _what(node: ast.Node) -> str:
    """The start of ``node``'s SQL, for an error message (escaped, at most 80 characters)."""
    try:
        text = " ".join(str(RawStream()(node)).split())
    except RecursionError:
        text = type(node).__name__
    return printable(text[:80]) + ("…" if len(text) > 80 else "")


def _relation(rv: ast.RangeVar | None) -> str | None:
    if rv is None or rv.schemaname is None or rv.catalogname is not None:
        return None
    return qualified(rv.schemaname, str(rv.relname))


def _index_stmt(key: str, node: ast.Node, change: ChangeIn, *, concurrent: bool | None) -> ast.IndexStmt:
    """``CREATE [UNIQUE] INDEX [CONCURRENTLY] name ON schema.table …`` naming ``change.index`` on
    ``change.table`` (when the change names its table)."""
    if not isinstance(node, ast.IndexStmt):
        raise ChangeRefused(key, f"expected one CREATE INDEX statement for kind {change.kind.value}, got {_what(node)}")
    if concurrent is not None and bool(node.concurrent) != concurrent:
        raise ChangeRefused(key, "expected CREATE INDEX CONCURRENTLY" if concurrent else
                       "expected CREATE INDEX ON ONLY a partitioned table, without CONCURRENTLY")
    _, name = _name_parts("index", change.index)
    table = _relation(node.relation)
    if table is None:
        raise ChangeRefused(key, "the table of CREATE INDEX must be schema-qualified")
    if change.table is not None and table != _checked_table(change.table):
        raise ChangeRefused(key, f"CREATE INDEX is on {printable(table)}, but the change's table is "
                            f"{printable(change.table)}")
    if node.idxname != name or qualified(_name_parts("table", table)[0], name) != change.index:
        raise ChangeRefused(key, f"CREATE INDEX names {printable(str(node.idxname))}, but the change's index is "
                            f"{printable(str(change.index))}")
    return node


def _checked_table(value: str | None) -> str:
    """``value`` (the change's ``table``), checked to be a schema-qualified identifier."""
    _name_parts("table", value)
    assert value is not None
    return value


def _drop_index(key: str, node: ast.Node, change: ChangeIn, *, concurrent: bool) -> ast.DropStmt:
    """``DROP INDEX [CONCURRENTLY] [IF EXISTS] schema.index`` of ``change.index``, without CASCADE."""
    if not (isinstance(node, ast.DropStmt) and node.removeType == enums.ObjectType.OBJECT_INDEX):
        raise ChangeRefused(key, f"expected one DROP INDEX statement for kind {change.kind.value}, got {_what(node)}")
    if bool(node.concurrent) != concurrent:
        raise ChangeRefused(key, "expected DROP INDEX CONCURRENTLY" if concurrent else "expected DROP INDEX without "
                            "CONCURRENTLY (the index of a partitioned table)")
    if node.behavior != enums.DropBehavior.DROP_RESTRICT:
        raise ChangeRefused(key, "DROP INDEX … CASCADE would drop what depends on the index")
    _name_parts("index", change.index)
    names = object_names(node)
    if len(names) != 1 or names[0][0] is None or qualified(names[0][0], names[0][1]) != change.index:
        raise ChangeRefused(key, f"DROP INDEX must drop exactly the change's index {printable(str(change.index))}")
    return node


_SUBCOMMANDS = {enums.AlterTableType.AT_AddConstraint: "ADD CONSTRAINT",
                enums.AlterTableType.AT_DropConstraint: "DROP CONSTRAINT",
                enums.AlterTableType.AT_ValidateConstraint: "VALIDATE CONSTRAINT",
                enums.AlterTableType.AT_AttachPartition: "ATTACH PARTITION"}


def _alter_table(key: str, node: ast.Node, change: ChangeIn, subtype: enums.AlterTableType,
                 objtype: enums.ObjectType = enums.ObjectType.OBJECT_TABLE) -> ast.AlterTableCmd:
    """``ALTER TABLE|INDEX schema.name`` with exactly one subcommand of ``subtype``; the table must be
    ``change.table`` (for ``ALTER TABLE``)."""
    word = "ALTER INDEX" if objtype == enums.ObjectType.OBJECT_INDEX else "ALTER TABLE"
    if not (isinstance(node, ast.AlterTableStmt) and node.objtype == objtype and node.cmds
            and len(node.cmds) == 1 and node.cmds[0].subtype == subtype):
        raise ChangeRefused(key, f"expected one {word} … {_SUBCOMMANDS[subtype]} statement for kind "
                            f"{change.kind.value}, got {_what(node)}")
    relation = _relation(node.relation)
    if relation is None:
        raise ChangeRefused(key, f"the relation of {word} must be schema-qualified")
    if objtype == enums.ObjectType.OBJECT_TABLE and relation != _checked_table(change.table):
        raise ChangeRefused(key, f"{word} is on {printable(relation)}, but the change's table is "
                            f"{printable(str(change.table))}")
    cmd: ast.AlterTableCmd = node.cmds[0]
    return cmd


def _no_down(change: ChangeIn) -> None:
    if change.down is not None:
        raise ChangeRefused("down", f"a change of kind {change.kind.value} has no down step")


def _down(change: ChangeIn, check: Callable[[str, ast.Node], object]) -> str | None:
    if change.down is None:
        return None
    node = _statement("down", change.down)
    check("down", node)
    return _printed("down", node)


def rebuild_change(change: ChangeIn) -> Change:
    """The change that ``change`` describes, its SQL printed again from the parse tree of the statement it
    was checked to be (see the module's docstring). Raises :class:`ChangeRefused` naming the key at fault;
    ``server`` and ``other`` changes are the caller's to leave out."""
    kind = change.kind
    up = _statement("up", change.up)
    if change.table is not None:
        _checked_table(change.table)
    down: str | None = None
    if kind == ChangeKind.CREATE_INDEX:
        stmt = _index_stmt("up", up, change, concurrent=None)
        concurrent = bool(stmt.concurrent)
        if not concurrent and stmt.relation is not None and stmt.relation.inh:
            raise ChangeRefused("up", "CREATE INDEX without CONCURRENTLY blocks writes: dbtune builds an index "
                                 "concurrently, or ON ONLY a partitioned table")
        down = _down(change, lambda key, node: _drop_index(key, node, change, concurrent=concurrent))
        lock, transactional = (Lock.SHARE_UPDATE_EXCLUSIVE, False) if concurrent else (Lock.SHARE, True)
    elif kind == ChangeKind.DROP_INDEX:
        _drop_index("up", up, change, concurrent=True)
        down = _down(change, lambda key, node: _index_stmt(key, node, change, concurrent=True))
        lock, transactional = Lock.SHARE_UPDATE_EXCLUSIVE, False
    elif kind == ChangeKind.REBUILD_INDEX:
        if isinstance(up, ast.DropStmt):
            _drop_index("up", up, change, concurrent=True)
        else:
            _index_stmt("up", up, change, concurrent=True)
        _no_down(change)
        lock, transactional = Lock.SHARE_UPDATE_EXCLUSIVE, False
    elif kind == ChangeKind.ATTACH_INDEX:
        cmd = _alter_table("up", up, change, enums.AlterTableType.AT_AttachPartition, enums.ObjectType.OBJECT_INDEX)
        _name_parts("index", change.index)
        if not isinstance(cmd.def_, ast.PartitionCmd) or _relation(cmd.def_.name) != change.index:
            raise ChangeRefused("up", f"ATTACH PARTITION must attach the change's index {printable(str(change.index))}")
        _no_down(change)
        lock, transactional = Lock.SHARE_UPDATE_EXCLUSIVE, True
    elif kind == ChangeKind.ADD_CONSTRAINT:
        cmd = _alter_table("up", up, change, enums.AlterTableType.AT_AddConstraint)
        constraint = cmd.def_
        if not isinstance(constraint, ast.Constraint) or constraint.contype not in (
                enums.ConstrType.CONSTR_FOREIGN, enums.ConstrType.CONSTR_CHECK):
            raise ChangeRefused("up", "ADD CONSTRAINT must add a foreign key or a check constraint")
        if change.constraint is None or constraint.conname != change.constraint:
            raise ChangeRefused("up", f"ADD CONSTRAINT names {printable(str(constraint.conname))}, but the change's "
                                 f"constraint is {printable(str(change.constraint))}")

        def drop_constraint(key: str, node: ast.Node) -> None:
            drop = _alter_table(key, node, change, enums.AlterTableType.AT_DropConstraint)
            if drop.name != change.constraint or drop.behavior != enums.DropBehavior.DROP_RESTRICT:
                raise ChangeRefused(key, f"DROP CONSTRAINT must drop exactly {printable(str(change.constraint))}, "
                                    "without CASCADE")

        down = _down(change, drop_constraint)
        foreign = constraint.contype == enums.ConstrType.CONSTR_FOREIGN
        lock, transactional = (Lock.SHARE_ROW_EXCLUSIVE if foreign else Lock.ACCESS_EXCLUSIVE), True
    elif kind == ChangeKind.VALIDATE_CONSTRAINT:
        cmd = _alter_table("up", up, change, enums.AlterTableType.AT_ValidateConstraint)
        if change.constraint is not None and cmd.name != change.constraint:
            raise ChangeRefused("up", f"VALIDATE CONSTRAINT names {printable(str(cmd.name))}, but the change's "
                                 f"constraint is {printable(change.constraint)}")
        _no_down(change)
        lock, transactional = Lock.SHARE_UPDATE_EXCLUSIVE, True
    elif kind == ChangeKind.SET_PARAMETER:
        _set_parameter("up", up, reset=False)
        down = _down(change, lambda key, node: _same_target(key, node, up))
        lock, transactional = Lock.NONE, True
    else:  # pragma: no cover - the caller leaves server and other changes out
        raise ChangeRefused("kind", f"changes of kind {kind.value} are not read from a report")
    return Change(up=_printed("up", up), down=down, transactional=transactional, lock=lock,
                  relation_bytes=change.relation_bytes, kind=kind, table=change.table, index=change.index,
                  constraint=change.constraint)


def _set_parameter(key: str, node: ast.Node, *, reset: bool) -> ast.VariableSetStmt:
    """``ALTER DATABASE|ROLE … SET name = value`` (``reset``: ``RESET name``)."""
    if not isinstance(node, ast.AlterDatabaseSetStmt | ast.AlterRoleSetStmt):
        raise ChangeRefused(key, f"expected one ALTER DATABASE|ROLE … SET statement, got {_what(node)}")
    wanted = enums.VariableSetKind.VAR_RESET if reset else enums.VariableSetKind.VAR_SET_VALUE
    setstmt = node.setstmt
    if setstmt is None or setstmt.kind != wanted:
        raise ChangeRefused(key, f"expected {'RESET' if reset else 'SET … = value'}")
    return setstmt


def _same_target(key: str, node: Any, up: Any) -> None:
    reset = _set_parameter(key, node, reset=True)
    same = type(node) is type(up) and reset.name == up.setstmt.name and (
        node.dbname == up.dbname if isinstance(node, ast.AlterDatabaseSetStmt)
        else (node.role.roletype, node.role.rolename) == (up.role.roletype, up.role.rolename)
        and node.database == up.database)
    if not same:
        raise ChangeRefused(key, "the down step must RESET the same setting for the same database or role")
