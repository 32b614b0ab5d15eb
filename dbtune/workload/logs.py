"""PostgreSQL server logs: the statements they record, with durations and bind parameters.

Three formats (https://www.postgresql.org/docs/current/runtime-config-logging.html):

- ``stderr``: one message per line after an arbitrary ``log_line_prefix``; the message starts at its
  severity (``LOG:  ``, ``DETAIL:  `` …, two spaces after the colon) and continues on lines that start
  with a tab.
- ``csvlog``: CSV records (read with the csv module), message in column 14 and detail in column 15.
- ``jsonlog`` (PostgreSQL 15+): one JSON object per line, keys ``error_severity``, ``message`` and
  ``detail``.

The statements are the messages ``duration: N ms  statement: …`` (simple protocol) and ``duration: N ms
execute <name>: …`` (extended protocol), written by ``log_min_duration_statement``; and, without a
duration, ``statement: …`` / ``execute <name>: …`` written by ``log_statement``. Each is one call.
A ``duration: N ms  bind <name>: …`` record (binding plans an unnamed statement) adds its time to the next
``execute`` of the same text in the same session (csvlog and jsonlog record sessions; stderr is matched
by text alone); a bind with no execute after it (only the bind was slower than
``log_min_duration_statement``) is a call of its own, listed after the others. ``parse`` records are
skipped. The ``DETAIL:  Parameters: $1 = '…', $2 = NULL`` record after an ``execute`` (``parameters:``
before PostgreSQL 16) gives the bind values (quoted literals with ``''`` escapes, or NULL): the text keeps
its ``$n`` and the values become :attr:`Query.params`. A message holding several statements (simple
protocol) gives one query per statement, without a duration (it cannot be split between them).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from pglast import parser
from pglast.parser import ParseError

from dbtune.pgsql import check_nesting
from dbtune.workload.model import Query, Source, SourceError
from dbtune.workload.statements import SessionPaths

_SEVERITIES = ("DEBUG1|DEBUG2|DEBUG3|DEBUG4|DEBUG5|DEBUG|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|"
               "QUERY|CONTEXT|LOCATION|STATEMENT")
_STDERR_MESSAGE = re.compile(rf"(?<![A-Za-z0-9_])({_SEVERITIES}):  ")
_CSV_SEVERITY = re.compile(rf"^(?:{_SEVERITIES})$")
_STATEMENT = re.compile(
    r"(?:duration: (?P<ms>\d+(?:\.\d+)?) ms  )?"
    r"(?P<kind>statement|execute|bind|parse|fastpath function call)(?P<name> [^:\n]*)?: (?P<text>.*)", re.S)
_PARAMETERS = re.compile(r"[Pp]arameters: ")
_PARAMETER = re.compile(r"\$(\d+) = (?:NULL|'((?:[^']|'')*)')")
_SNIFF_LINES = 200
_SNIFF_STDERR = 50
_CSV_MIN_FIELDS = 22  # PostgreSQL 13 writes 24, 14+ 26
_CSV_SESSION_FIELD, _CSV_SEVERITY_FIELD, _CSV_MESSAGE_FIELD, _CSV_DETAIL_FIELD = 5, 11, 13, 14


@dataclass(frozen=True)
class _Record:
    line: int
    severity: str
    message: str
    detail: str | None = None
    session: str | None = None  # csvlog/jsonlog session_id; stderr has none it can rely on


def sniff(text: str) -> Source | None:
    """The log format of ``text`` (judged by its first lines), or None when it is not a server log."""
    lines = [line for line in text.splitlines()[:_SNIFF_LINES] if line.strip()]
    if not lines:
        return None
    first = lines[0].lstrip()
    if first.startswith("{"):
        try:
            record = json.loads(first)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict) and "message" in record and "error_severity" in record:
            return Source.JSONLOG
    try:
        row = next(csv.reader(io.StringIO(text)))
    except (csv.Error, StopIteration):
        row = []
    if len(row) >= _CSV_MIN_FIELDS and _CSV_SEVERITY.match(row[_CSV_SEVERITY_FIELD]):
        return Source.CSVLOG
    # A stderr log starts with a message, or (after another program's lines) is mostly messages; a SQL
    # script that mentions "ERROR:  " in a comment is neither.
    heads = [line for line in lines if not line.startswith("\t")][:_SNIFF_STDERR]
    matching = [line for line in heads if _STDERR_MESSAGE.search(line) and not line.lstrip().startswith("--")]
    if matching and (matching[0] is heads[0] or 2 * len(matching) > len(heads)):
        return Source.STDERR_LOG
    return None


def _stderr_records(text: str) -> Iterator[_Record]:
    current: _Record | None = None
    parts: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("\t") and current is not None:
            parts.append(line[1:])
            continue
        m = _STDERR_MESSAGE.search(line)
        if m is None:
            continue  # not a server message (pg_ctl's output, a library's warning …)
        if current is not None:
            yield _Record(current.line, current.severity, "\n".join(parts))
        current, parts = _Record(number, m.group(1), ""), [line[m.end():]]
    if current is not None:
        yield _Record(current.line, current.severity, "\n".join(parts))


def _with_details(records: Iterator[_Record]) -> Iterator[_Record]:
    """stderr writes a message's DETAIL as the next record: fold it into the message's record."""
    pending: _Record | None = None
    for record in records:
        if record.severity == "DETAIL" and pending is not None and pending.detail is None:
            pending = _Record(pending.line, pending.severity, pending.message, record.message, pending.session)
            continue
        if pending is not None:
            yield pending
        pending = record
    if pending is not None:
        yield pending


def _csv_records(text: str, label: str, errors: list[SourceError]) -> Iterator[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    try:
        for row in reader:
            if len(row) >= _CSV_MIN_FIELDS:
                yield _Record(line, row[_CSV_SEVERITY_FIELD], row[_CSV_MESSAGE_FIELD], row[_CSV_DETAIL_FIELD] or None,
                              row[_CSV_SESSION_FIELD])
            elif row:
                errors.append(SourceError(f"{label}:{line}", f"a CSV record of {len(row)} fields, not a csvlog "
                                          "record"))
            line = reader.line_num + 1
    except csv.Error as exc:
        errors.append(SourceError(f"{label}:{reader.line_num}", f"bad CSV: {exc}"))


def _json_records(text: str, label: str, errors: list[SourceError]) -> Iterator[_Record]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            errors.append(SourceError(f"{label}:{number}", f"not a JSON object: {exc}"))
            continue
        except RecursionError:
            errors.append(SourceError(f"{label}:{number}", "not a JSON object: nested too deeply to read"))
            continue
        if isinstance(record, dict) and isinstance(record.get("message"), str):
            # A hand-edited or damaged line may hold any JSON value in a field: only strings are read.
            detail, session = record.get("detail"), record.get("session_id")
            yield _Record(number, str(record.get("error_severity", "")), record["message"],
                          detail if isinstance(detail, str) else None, session if isinstance(session, str) else None)


def parameters(detail: str | None) -> tuple[str | None, ...] | None:
    """The bind values of a ``Parameters: $1 = '…', $2 = NULL`` detail, in ``$n`` order (None: NULL)."""
    if not detail:
        return None
    m = _PARAMETERS.match(detail)
    if m is None:
        return None
    values: dict[int, str | None] = {}
    for p in _PARAMETER.finditer(detail, m.end()):
        values[int(p.group(1))] = None if p.group(2) is None else p.group(2).replace("''", "'")
    if not values:
        return None
    return tuple(values.get(k) for k in range(1, max(values) + 1))


def parse_log(text: str, fmt: Source, label: str) -> tuple[list[Query], list[SourceError]]:
    """The statements a server log of format ``fmt`` records (see the module docstring), located
    ``label:line``, and the records whose statements do not parse."""
    errors: list[SourceError] = []
    if fmt is Source.STDERR_LOG:
        records: Iterator[_Record] = _with_details(_stderr_records(text))
    elif fmt is Source.CSVLOG:
        records = _csv_records(text, label, errors)
    else:
        records = _json_records(text, label, errors)
    queries: list[Query] = []
    paths = SessionPaths()  # each session's search_path, as its SET search_path statements leave it
    # Bind durations (planning, for an unnamed statement) waiting for the execute record of the same
    # statement in the same session: (session, text) -> [(query index placeholder, record, ms)].
    binds: dict[tuple[str | None, str], list[tuple[_Record, float]]] = {}
    for record in records:
        if record.severity != "LOG":
            continue
        m = _STATEMENT.match(record.message)
        if m is None or m.group("kind") not in ("statement", "execute", "bind"):
            continue
        body = m.group("text").strip()
        location = f"{label}:{record.line}"
        ms = float(m.group("ms")) if m.group("ms") else None
        if m.group("kind") == "bind":
            if ms is not None:
                binds.setdefault((record.session, body), []).append((record, ms))
            continue
        try:
            check_nesting(body)
            spans = parser.split(body, with_parser=True, only_slices=True)
        except ParseError as exc:
            errors.append(SourceError(location, str(exc.args[0])))
            continue
        params = parameters(record.detail) if m.group("kind") == "execute" else None
        if m.group("kind") == "execute" and binds.get((record.session, body)):
            bound_ms = binds[(record.session, body)].pop(0)[1]
            ms = bound_ms if ms is None else round(ms + bound_ms, 6)
        for span in spans:
            statement = body[span].strip()
            relations, search_path = paths.resolve(statement, record.session)
            queries.append(Query(text=statement, source=fmt, location=location,
                                 fingerprint=parser.fingerprint(statement), params=params, calls=1,
                                 total_ms=ms if len(spans) == 1 else None, relations=relations,
                                 search_path=search_path))
    # A bind logged without its execute (only the bind took longer than log_min_duration_statement).
    for (session, body), left in binds.items():
        for record, ms in left:
            try:
                check_nesting(body)
                fingerprint = parser.fingerprint(body)
            except ParseError as exc:
                errors.append(SourceError(f"{label}:{record.line}", str(exc.args[0])))
                continue
            relations, search_path = paths.resolve(body, session)
            queries.append(Query(text=body, source=fmt, location=f"{label}:{record.line}", fingerprint=fingerprint,
                                 params=parameters(record.detail), calls=1, total_ms=ms, relations=relations,
                                 search_path=search_path))
    return queries, errors
