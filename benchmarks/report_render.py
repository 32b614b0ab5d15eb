#!/usr/bin/env python
"""How fast ``dbtune audit --format html`` renders a big audit, how big the page is, and how fast it opens.

Builds a synthetic :class:`~dbtune.report.model.Report` of ``--findings`` findings (10,000 by default) as a
large catalog gives them: spread over the areas and severities of the catalogue, each with evidence, and
one in two with an index to build (a ``CREATE INDEX CONCURRENTLY`` step of the fix plan). Then:

- renders the page ``--runs`` times (:func:`dbtune.report.html.render_audit_html`, a fresh report each
  time, so that the fix plan is made each time too, as one audit does), and reports the median and best;
- writes it and reports its size;
- opens it in headless Chromium (Debian's ``chromium``, driven by Playwright) ``--runs`` times and
  reports the page's load event time (Navigation Timing's ``loadEventEnd``, ms from the navigation's
  start), and how many finding rows the page holds.

The goals (issue 11): under 3 s to render, under 10 MB, under 3 s to open.

    python benchmarks/report_render.py
    python benchmarks/report_render.py --findings 2000 --runs 5

Needs ``/usr/bin/chromium`` (``apt-get install chromium``) and ``pip install playwright``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tabulate import tabulate

from dbtune.catalog.model import Server, Skip
from dbtune.checks.registry import AREAS
from dbtune.model import Change, ChangeKind, Finding, Lock, Severity
from dbtune.report.html import render_audit_html
from dbtune.report.model import Report

CHROMIUM = "/usr/bin/chromium"
SEVERITIES = (Severity.ERROR, Severity.WARNING, Severity.INFO, Severity.INFO)


def synthetic_report(n: int) -> Report:
    """``n`` findings on tables ``t00000`` …, one check of each area in turn, half with an index to build."""
    now = datetime.now(UTC)
    server = Server(version="PostgreSQL 18.1 on x86_64-pc-linux-gnu", version_num=180001, database="scale",
                    current_user="dbtune", is_superuser=False, member_of=frozenset({"pg_monitor"}), now=now,
                    postmaster_start=now, stats_reset=None, extensions={})
    prefixes = list(AREAS.values())
    findings = []
    for i in range(n):
        table = f"public.t{i:05d}"
        changes: tuple[Change, ...] = ()
        if i % 2 == 0:
            index = f"t{i:05d}_parent_id_idx"
            changes = (Change(up=f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table} (parent_id);",
                              down=f"DROP INDEX CONCURRENTLY IF EXISTS public.{index};", transactional=False,
                              lock=Lock.SHARE_UPDATE_EXCLUSIVE, relation_bytes=8192 * (i + 1),
                              kind=ChangeKind.CREATE_INDEX, table=table, index=f"public.{index}"),)
        findings.append(Finding(
            check_id=f"{prefixes[i % len(prefixes)]}{i % 7 + 1:03d}", check_name="foreign-key-without-index",
            severity=SEVERITIES[i % len(SEVERITIES)], object=table,
            message=f"foreign key t{i:05d}_parent_id_fkey (parent_id) → public.t{i // 2:05d} has no index that "
                    "starts with its columns: a delete on the parent scans the child",
            evidence={"columns": ["parent_id"], "table_bytes": 8192 * (i + 1), "seq_scan": i * 3,
                      "referenced": f"public.t{i // 2:05d}"},
            changes=changes))
    return Report(target=f"dbtune@localhost:5432/scale ({n} findings)", server=server, findings=tuple(findings),
                  skipped=(Skip("pg_stat_statements", "not created in this database", "CREATE EXTENSION"),),
                  statements_sent=42, duration_ms=1234.0, generated_at=now)


def render_times(n: int, runs: int) -> tuple[list[float], str]:
    times, page = [], ""
    for _ in range(runs):
        report = synthetic_report(n)
        started = time.perf_counter()
        page = render_audit_html(report)
        times.append(time.perf_counter() - started)
    return times, page


def open_times(path: Path, runs: int) -> tuple[list[float], int]:
    """The load event time (ms) of ``runs`` fresh page loads, and the finding rows the page shows."""
    from playwright.sync_api import sync_playwright

    loads, rows = [], 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for _ in range(runs):
                page = browser.new_page()
                page.goto(path.as_uri(), wait_until="load")
                loads.append(float(page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")))
                rows = int(page.evaluate("document.querySelectorAll('#findings-table .chunk > .f').length"))
                page.close()
        finally:
            browser.close()
    return loads, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    render, page = render_times(args.findings, args.runs)
    with tempfile.TemporaryDirectory(prefix="dbtune-render-") as tmp:
        path = Path(tmp) / "audit.html"
        path.write_text(page, encoding="utf-8")
        size = path.stat().st_size
        loads, rows = open_times(path, args.runs)
    print(f"dbtune audit --format html, {args.findings:,} findings (synthetic report), {args.runs} runs")
    print(tabulate([
        ["render (fix plan included)", f"{statistics.median(render):.2f} s", f"{min(render):.2f} s", "< 3 s"],
        ["page size", f"{size / 1e6:.2f} MB", "", "< 10 MB"],
        ["open in Chromium (load event)", f"{statistics.median(loads) / 1000:.2f} s", f"{min(loads) / 1000:.2f} s",
         "< 3 s"],
    ], headers=["measure", "median", "best", "goal"], tablefmt="simple"))
    print(f"finding rows in the page: {rows:,}")
    met = statistics.median(render) < 3 and size < 10e6 and statistics.median(loads) < 3000 and rows == args.findings
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
