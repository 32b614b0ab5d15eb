"""``--format html`` (issue 11, item 2): the audit's page and the whole loop's review page, opened in a real
browser: headless Chromium from Debian's ``chromium`` package (``/usr/bin/chromium``, which ``.ci/run``
installs), driven by Playwright with that executable.

Each page loads with no console error and no network request (every request but the file's own is
aborted and counted); the severity and area filters hide and show findings (the rows still shown are
counted); the charts are drawn (plotly's SVG, one trace per query); a screenshot has more than a few
colours. What a page shows is compared with the same objects' JSON, never with hard-coded results; a
table named ``<script>…`` is shown as text and runs nothing.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import conftest
import pytest
from cli_runner import CLI, _clean_env, assert_error
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route, sync_playwright
from test_migrate import load_guide

from dbtune.appconfig import read_app_config
from dbtune.bench import BenchOptions, compare, load_workload
from dbtune.cli.demo import GUIDE_APP_CONFIG, GUIDE_STATEMENTS
from dbtune.config import load_config
from dbtune.db.connect import resolve
from dbtune.escape import display_sql, printable
from dbtune.loop import AdvisorStage, LoopResult, RaceStage, run_loop
from dbtune.migrate.runtime import ApplyOptions
from dbtune.report.html import LATENCY_CHARTS, render_advice_html, render_comparison_html, render_loop_html
from dbtune.samples import guide_file, samples_dir
from dbtune.workload import load_queries

pytestmark = pytest.mark.measures  # timed verdicts: alone under xdist (tests/conftest.py)

CHROMIUM = "/usr/bin/chromium"
# A table name that is markup: shown as text, it runs nothing (window.__pwned stays undefined).
HOSTILE = "<script>window.__pwned=1</script><img src=x onerror=__pwned=2>"  # 62 bytes: within NAMEDATALEN
ROWS = "#findings-table .chunk > .f"
VISIBLE = "els => els.filter(e => e.checkVisibility()).length"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@dataclass
class Opened:
    """A page as loaded: the requests aborted (any but the file's own) and the console's errors."""

    page: Page
    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def open_page(browser: Browser, path: Path) -> Opened:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    opened = Opened(page)
    uri = path.resolve().as_uri()

    def route(r: Route, request: Request) -> None:
        if request.url == uri:
            r.continue_()
        else:
            opened.blocked.append(request.url)
            r.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            opened.errors.append(message.text)

    page.route("**/*", route)
    page.on("console", console)
    page.on("pageerror", lambda exc: opened.errors.append(str(exc)))
    page.goto(uri, wait_until="load")
    return opened


def assert_clean(opened: Opened) -> None:
    assert opened.blocked == [], "the page asked the network"
    assert opened.errors == []
    assert opened.page.evaluate("typeof window.__pwned") == "undefined", "markup from a name ran"


def colours(opened: Opened, full_page: bool = False) -> int:
    image = Image.open(io.BytesIO(opened.page.screenshot(full_page=full_page))).convert("RGB")
    return len(image.getcolors(maxcolors=image.width * image.height) or ())


def drawn_traces(page: Page, selector: str) -> list[int]:
    """The traces plotly drew in each chart of ``selector``, each scrolled into view first (a chart is drawn
    when it first comes into view)."""
    charts = page.locator(selector)
    for n in range(charts.count()):
        charts.nth(n).scroll_into_view_if_needed()
        charts.nth(n).locator("svg.main-svg g.trace").first.wait_for(timeout=15_000)
    return [int(n) for n in page.eval_on_selector_all(
        selector, "els => els.map(e => e.querySelectorAll('svg.main-svg g.trace').length)")]


def visible_rows(page: Page) -> int:
    return int(page.eval_on_selector_all(ROWS, VISIBLE))


def set_filter(page: Page, name: str, checked: bool) -> None:
    page.set_checked(f'#findings .filters input[data-hide="{name}"]', checked)


# --- the audit's page ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit_db(pg18):  # type: ignore[no-untyped-def]
    """The CLI's findings database, a table named like markup with a foreign key without an index, and an
    unlogged table (a finding of another area)."""
    db = conftest.new_database(pg18, "html")
    db.execute(conftest.FINDINGS_SCHEMA)
    quoted = '"' + HOSTILE.replace('"', '""') + '"'
    db.execute(f"CREATE TABLE {quoted} (id int PRIMARY KEY, parent_id int REFERENCES parent (id))")
    db.execute("CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)")
    yield db
    conftest.drop_database(db)


def dbtune(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m dbtune ARGS`` as a user runs it, without PG*/DBTUNE_*/DATABASE_URL variables."""
    return subprocess.run([sys.executable, "-m", "dbtune", *args], capture_output=True, text=True, env=_clean_env(),
                          timeout=120)


@pytest.fixture(scope="module")
def audit_page(audit_db: conftest.TestDatabase,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The audit as JSON and as a page written with --output, from the same database."""
    run = dbtune("audit", "--dsn", audit_db.dsn, "--format", "json", "--fail-on", "never")
    assert run.returncode == 0, run.stderr
    page = tmp_path_factory.mktemp("audit-html") / "audit.html"
    written = dbtune("audit", "--dsn", audit_db.dsn, "--format", "html", "--output", str(page), "--fail-on", "never")
    assert written.returncode == 0 and written.stdout == written.stderr == "", written
    return page, json.loads(run.stdout)


def test_the_audit_page_holds_every_finding_of_the_json_report(audit_page: tuple[Path, dict[str, Any]],
                                                               browser: Browser) -> None:
    """One row per finding, errors first as the text report numbers them, each with its check and object;
    the summary's counts are the JSON's; opened, a finding shows its evidence and the fix SQL the JSON
    gives; the hostile table name is text on the page and ran nothing; no network, no console error."""
    path, report = audit_page
    opened = open_page(browser, path)
    page = opened.page
    assert_clean(opened)
    order = {"error": 0, "warning": 1, "info": 2}
    expected = sorted(report["findings"], key=lambda f: order[f["severity"]])
    rows = page.eval_on_selector_all(ROWS, "els => els.map(e => [...e.children].map(c => c.textContent))")
    assert [(r[1], r[2], r[3]) for r in rows] == [
        (f["severity"], f"{f['check_id']} {f['check_name']}", printable(f["object"])) for f in expected]
    assert [r[0] for r in rows] == [str(n) for n in range(1, len(expected) + 1)]
    assert any(HOSTILE in r[3] for r in rows), "the name is shown as it is"
    cards = page.eval_on_selector_all("#summary .card", "els => els.map(e => e.innerText.split(/\\s+/).join(' '))")
    summary = report["summary"]
    assert [c.strip() for c in cards] == [f"{summary['total']} findings",
                                          *(f"{summary[s]} {s}" for s in ("error", "warning", "info"))]
    labels = page.eval_on_selector_all("#findings .filters label", "els => els.map(e => e.textContent.trim())")
    assert labels == [*(f"{s} ({n})" for s in ("error", "warning", "info") if (n := summary[s])),
                      *(f"{a} ({n})" for a, n in report["areas"].items())]
    # a finding's details, filled when opened: its evidence and its fix SQL
    n = next(i for i, f in enumerate(expected) if f["fix"]["sql"] and HOSTILE in f["object"])
    details = page.locator(ROWS).nth(n).locator("details")
    details.locator("summary").click()
    body = details.locator(".body")
    assert body.locator("pre.sql").text_content() == "\n".join(display_sql(s) for s in expected[n]["fix"]["sql"])
    assert body.locator("th").all_text_contents() == list(expected[n]["evidence"])
    assert_clean(opened)
    assert colours(opened) > 20, "the screenshot is not blank"


def test_the_severity_and_area_filters_hide_and_show_findings(audit_page: tuple[Path, dict[str, Any]],
                                                              browser: Browser) -> None:
    path, report = audit_page
    opened = open_page(browser, path)
    page = opened.page
    total = len(report["findings"])
    summary, areas = report["summary"], report["areas"]
    assert summary["warning"] and summary["info"] and len(areas) >= 2, report["summary"]
    assert visible_rows(page) == total
    set_filter(page, "sev-warning", False)
    assert visible_rows(page) == total - summary["warning"]
    assert page.text_content("#findings .shown") == f"{total - summary['warning']} of {total} shown"
    set_filter(page, "sev-info", False)
    assert visible_rows(page) == summary["error"]
    set_filter(page, "sev-warning", True)
    set_filter(page, "sev-info", True)
    assert visible_rows(page) == total
    area, n = next(iter(areas.items()))
    set_filter(page, f"area-{area}", False)
    assert visible_rows(page) == total - n
    hidden = page.eval_on_selector_all(ROWS, "els => els.filter(e => !e.checkVisibility()).map(e => e.className)")
    assert len(hidden) == n and all(f"area-{area}" in c.split() for c in hidden)
    set_filter(page, f"area-{area}", True)
    assert visible_rows(page) == total
    assert_clean(opened)


def _plan_labels(node: dict[str, Any]) -> int:
    return 1 + sum(_plan_labels(child) for child in node.get("Plans", []))


def test_the_explain_page_draws_each_plan_as_a_tree(audit_db: conftest.TestDatabase, browser: Browser,
                                                     tmp_path: Path) -> None:
    """``explain --format html``: a section per query with its SQL, a list item per plan node (as many as
    the JSON plan has), a row per finding; the hostile table's name in a node label is text."""
    hostile = '"' + HOSTILE.replace('"', '""') + '"'
    workload = tmp_path / "queries.sql"
    workload.write_text("SELECT c.note FROM child c JOIN parent p ON p.id = c.parent_id WHERE c.note = $1;\n"
                        f"SELECT * FROM {hostile} WHERE parent_id = 1;\n", encoding="utf-8")
    queries = ["--workload", str(workload)]
    run = dbtune("explain", "--dsn", audit_db.dsn, "--format", "json", "--fail-on", "never", *queries)
    assert run.returncode == 0, run.stderr
    entries = json.loads(run.stdout)["queries"]
    page = tmp_path / "explain.html"
    written = dbtune("explain", "--dsn", audit_db.dsn, "--format", "html", "--output", str(page), "--fail-on",
                     "never", *queries)
    assert written.returncode == 0 and written.stdout == "", written.stderr
    opened = open_page(browser, page)
    assert_clean(opened)
    sections = opened.page.locator("section.query")
    assert sections.count() == len(entries) == 2
    for n, entry in enumerate(entries):
        section = sections.nth(n)
        assert section.locator("pre.sql").first.text_content() == display_sql(entry["text"].strip())
        assert section.locator("ul.tree li").count() == _plan_labels(entry["plan"][0]["Plan"])
        assert section.locator("tbody tr").count() == len(entry["findings"])
    assert HOSTILE in (sections.nth(1).locator("ul.tree .node").first.text_content() or "")


def test_output_into_a_missing_directory_is_refused_before_the_demo_starts(cli: CLI, tmp_path: Path) -> None:
    """No server started, nothing written: one error line naming the file."""
    target = tmp_path / "missing" / "review.html"
    assert_error(cli("demo", "--format", "html", "--output", str(target)), 2, str(target), "no such directory")
    assert_error(cli("demo", "--output", str(tmp_path / "review.html")), 2, "--output", "--format html")
    assert_error(cli("tune", "--format", "html", "--output", str(target), "--yes"), 2, str(target))
    assert not target.parent.exists() and not (tmp_path / "review.html").exists()


def test_tune_writes_the_review_page_at_the_end(db18: conftest.TestDatabase, browser: Browser,
                                                tmp_path: Path) -> None:
    """``tune --format html --output FILE``: nothing on stdout (the stages' progress on stderr), the page
    written whole at the end with the loop's sections, its findings those its summary counts."""
    load_guide(db18, scale=0.01)
    page = tmp_path / "review.html"
    run = dbtune("tune", "--dsn", db18.dsn, "--config", str(samples_dir() / "production.toml"), "--workload",
                 str(guide_file("workload.sql")), "--iterations", "3", "--dir", str(tmp_path / "migrations"),
                 "--yes", "--no-advisor", "--format", "html", "--output", str(page))
    assert run.returncode == 0 and run.stdout == "", run.stderr[-2000:]
    assert "== benchmark after" in run.stderr and not (tmp_path / "review.html.tmp").exists()
    opened = open_page(browser, page)
    assert_clean(opened)
    sections = opened.page.eval_on_selector_all("main > section", "els => els.map(e => e.id)")
    assert sections == ["summary", "audit", "migration", "benchmark", "after"]
    total = opened.page.text_content("#audit .card .n")
    assert total and opened.page.locator("#findings-before .chunk > .f").count() == int(total) > 0
    assert len(drawn_traces(opened.page, "#benchmark .plot")) == len(LATENCY_CHARTS) + 1


# --- the loop's review page ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loop_result(pg18, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopResult]:  # type: ignore[no-untyped-def]
    """The demo's loop (its advisor with trial builds and validation, its race, the guide's application
    config and write paths) on a small guide database, run once for the module through the Python API."""
    from dbtune.advisor.api import AdviseOptions
    from dbtune.probe.race import RaceOptions

    db = conftest.new_database(pg18, "review")
    load_guide(db, scale=0.01)
    config, _ = load_config(samples_dir() / "production.toml")
    workload = guide_file("workload.sql")
    advisor = AdvisorStage(AdviseOptions(trial_builds=True, validate=True, yes=True),
                           queries=tuple(q for q in load_queries(workload).queries if q.skipped is None))
    race = RaceStage(replace(RaceOptions.from_config(config.probe.race), sessions=4, rounds=20), yes=True)
    result = run_loop(resolve(db.dsn), config, load_workload(workload), tmp_path_factory.mktemp("review") / "m",
                      bench=BenchOptions(iterations=3, warmup=1, param_samples=5, allow_writes=True, rounds=3),
                      apply_options=ApplyOptions(report=lambda _: None, backoff_s=0.2), advisor=advisor, race=race,
                      app_config=read_app_config([guide_file(n) for n in GUIDE_APP_CONFIG]),
                      statements=guide_file(GUIDE_STATEMENTS))
    yield result
    conftest.drop_database(db)


def test_the_review_page_holds_the_whole_loop(loop_result: LoopResult, browser: Browser, tmp_path: Path) -> None:
    """The audit (every finding of its JSON), the advisor's kept and rejected indexes, the migration's
    steps with their locks, the benchmark's charts (each with one trace per query) and table, the race
    before and after, and what the audit after the migration left, with why; no network, no console
    error, not blank."""
    result = loop_result
    assert result.comparison is not None and result.after_audit is not None and result.advice is not None
    assert result.race_before is not None and result.race_after is not None
    path = tmp_path / "review.html"
    path.write_text(render_loop_html(result), encoding="utf-8")
    opened = open_page(browser, path)
    page = opened.page
    assert_clean(opened)
    report = result.report.to_json()
    assert page.locator(ROWS.replace("#findings-table", "#findings-before")).count() == len(report["findings"])
    advisor = page.text_content("#advisor") or ""
    advice = result.advice.to_json()
    for kept in advice["recommendations"]:
        assert printable(kept["index"]["schema"]) in advisor and kept["queries"][0]["name"] in advisor
    assert f"kept ({len(advice['recommendations'])})" in advisor
    for rejected in advice["rejected"]:
        assert rejected["reason"] in advisor
    steps = page.eval_on_selector_all("#migration table:first-of-type tbody tr",
                                      "els => els.map(e => [...e.children].map(c => c.textContent))")
    assert [(s[2], s[4]) for s in steps] == [(st.change.lock.value, display_sql(st.change.up))
                                             for st in result.plan.steps]
    # the charts: p50, p95, p99 and throughput, each drawn by plotly with one trace per query
    queries = len(result.comparison.queries)
    assert queries >= 3
    traces = drawn_traces(page, "#benchmark .plot")
    assert traces == [queries] * (len(LATENCY_CHARTS) + 1)
    assert_clean(opened)  # plotly ran, offline, without an error
    table = page.eval_on_selector_all("#benchmark > table tbody tr", "els => els.map(e => e.children[0].textContent)")
    assert table == [printable(q.label) for q in result.comparison.queries]
    race = page.text_content("#race") or ""
    for r in (result.race_before, result.race_after):
        assert f"{r.sessions} sessions × {r.rounds} rounds" in race and f"0: {r.zero}" in race
    left = page.eval_on_selector_all("#left-table tbody tr", "els => els.map(e => e.children[5].textContent)")
    assert left == [("new since the migration; " if item.new else "") + item.reason
                    for item in result.after_audit.left]
    fixed = page.text_content("#after p") or ""
    assert f"fixed by the migration: {sum(result.after_audit.fixed.values())} finding(s)" in fixed
    assert colours(opened) > 50


def test_chart_labels_from_query_names_are_text(loop_result: LoopResult, browser: Browser, tmp_path: Path) -> None:
    """A query named like markup: the legend shows the name, nothing runs, the table cell is text."""
    assert loop_result.before is not None and loop_result.after is not None

    def hostile(result):  # type: ignore[no-untyped-def]
        first, *rest = result.queries
        return replace(result, queries=(replace(first, name=HOSTILE), *rest))

    comparison = compare(hostile(loop_result.before), hostile(loop_result.after))
    path = tmp_path / "compare.html"
    path.write_text(render_comparison_html(comparison), encoding="utf-8")
    opened = open_page(browser, path)
    assert_clean(opened)
    assert drawn_traces(opened.page, ".plot") == [len(comparison.queries)] * (len(LATENCY_CHARTS) + 1)
    legends = opened.page.eval_on_selector_all("#chart-latency-p50 .legendtext", "els => els.map(e => e.textContent)")
    assert HOSTILE in legends and len(legends) == len(comparison.queries)
    assert_clean(opened)
    assert HOSTILE in (opened.page.text_content("table tbody tr:first-child td:first-child") or "")


def test_the_advice_page_shows_what_was_kept_and_what_was_rejected(loop_result: LoopResult, browser: Browser,
                                                                   tmp_path: Path) -> None:
    """``advise --format html``'s page: one card per kept index, with a row per query it serves and per
    measurement; one row per rejected candidate with its stage and reason."""
    advice = loop_result.advice
    assert advice is not None and advice.recommendations and advice.rejected
    path = tmp_path / "advice.html"
    path.write_text(render_advice_html(advice), encoding="utf-8")
    opened = open_page(browser, path)
    assert_clean(opened)
    page = opened.page
    kept = page.eval_on_selector_all("main > .card", "els => els.map(e => e.querySelector('p code').textContent)")
    assert kept == [printable(r.candidate.describe()) for r in advice.recommendations]
    served = page.eval_on_selector_all("main > .card", "els => els.map(e => e.querySelectorAll('tbody tr').length)")
    assert served == [len(r.queries) + len(r.measured) for r in advice.recommendations]
    rejected = page.eval_on_selector_all("main > table:first-of-type > tbody > tr",
                                         "els => els.map(e => [...e.children].slice(1, 2).map(c => c.textContent))")
    assert [r[0] for r in rejected] == [r.stage for r in advice.rejected]
