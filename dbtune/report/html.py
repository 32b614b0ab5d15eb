"""HTML review pages (``--format html``): one self-contained file each, for a pre-release review shared
with people who never run dbtune. Built from the Jinja2 templates in ``dbtune/report/templates/`` with
autoescaping on, so a name from the catalog is text, never markup; the page's CSS and JavaScript are
inlined, and a page with charts embeds plotly's bundled JavaScript (the ``plotly`` package's
``plotly.min.js``), so nothing is fetched when the page is viewed.

The findings are rows (a grid, in chunks of 100 that the browser lays out only when scrolled to:
``content-visibility: auto``) that carry their severity and area as classes: the filters toggle a class
on their container (no work per row at load), and each finding's evidence and fix SQL (:func:`finding_details`,
JSON beside the rows) fill its ``<details>`` element when it is first opened, as text nodes. A chart is a
plotly figure built here from the report objects (one trace per query) and drawn by plotly.js in the
browser when it first comes into view; plotly.js is embedded as text and run then, so a page opens
without compiling it. With 10,000 findings a page renders in about 1.5 s and opens in Chromium in about
1 s (``benchmarks/report_render.py``).

See https://jinja.palletsprojects.com/en/stable/api/#autoescaping and
https://plotly.com/javascript/getting-started/ (``Plotly.newPlot``).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from dbtune import __version__
from dbtune.checks.registry import AREAS, area_of
from dbtune.escape import clip, display_sql, printable, terminal_safe
from dbtune.model import Finding, Severity
from dbtune.report.bench_text import floor_text, ms, ratio_text
from dbtune.report.explain_text import how_text, node_details, node_figures, node_marks, skipped_by_reason
from dbtune.report.model import OTHER_AREA, by_severity
from dbtune.report.probe_text import bound_text, value_text
from dbtune.report.race_text import win_rate_line
from dbtune.units import size_pretty

if TYPE_CHECKING:
    from dbtune.advisor.model import Advice
    from dbtune.bench.compare import Comparison
    from dbtune.loop import LoopResult
    from dbtune.plans.api import ExplainReport
    from dbtune.probe.profile import ProfileTable
    from dbtune.report.model import Report

# The latency statistics charted before and after, each its own chart with one trace per query.
LATENCY_CHARTS = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))


@cache
def environment() -> Environment:
    """The templates, autoescaped whatever their name, an undefined name an error."""
    env = Environment(loader=PackageLoader("dbtune.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(printable=lambda v: printable(str(v)), sql=_sql, clip=clip, ms=ms, size=size_pretty,
                       ratio=ratio_text, floor=floor_text, evidence=_evidence_value, area=_area, bound=bound_text,
                       measured=value_text)
    env.globals.update(severities=[s.value for s in Severity], areas=[*AREAS, OTHER_AREA], version=__version__,
                       win_rate_line=win_rate_line, by_severity=by_severity,
                       finding_details=finding_details, node_figures=node_figures, node_details=node_details,
                       node_marks=node_marks, how_text=how_text, skipped_by_reason=skipped_by_reason)
    return env


@cache
def plotly_js() -> Markup:
    """plotly's bundled JavaScript, safe inside a ``<script>`` element: no ``</script``, and its two raw
    control characters (inside string literals) written as the ``\\xNN`` escapes JavaScript reads the same
    way (:func:`~dbtune.escape.terminal_safe`, which :func:`~dbtune.cli.common.write_output` applies anyway)."""
    from plotly.offline import get_plotlyjs

    return Markup(terminal_safe(get_plotlyjs()).replace("</script", "<\\/script"))


def finding_details(report: Report, shown: list[tuple[int, tuple[int, Finding]]]) -> list[dict[str, Any]]:
    """What each finding's ``<details>`` shows when opened, in the order ``shown`` (:func:`by_severity`,
    the table's rows): its ``evidence`` as ``[key, value]`` text pairs and its ``fix`` SQL
    (:meth:`~dbtune.report.model.Report.fix_sql_of`), escaped for reading. Kept out of the table (the page
    fills a finding's details from it when opened), so that a page of 10,000 findings lays out 10,000
    short rows."""
    return [{"evidence": [[printable(k), _evidence_value(v)] for k, v in f.evidence.items()],
             "fix": [_sql(sql) for sql in report.fix_sql_of(n)]} for _, (n, f) in shown]


def _area(check_id: str) -> str:
    return area_of(check_id) or OTHER_AREA


def _evidence_value(value: Any) -> str:
    """An evidence value as one line: text as it is (escaped where unsafe), anything else as JSON."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return printable(value if isinstance(value, str) else json.dumps(value, default=str))


@cache
def _sql(sql: str) -> str:
    # a fix's SQL is shown twice on a page (its finding's details, the plan's step): escaped once a page
    return display_sql(sql)


def _page(template: str, title: str, generated_at: datetime | None, charts: list[dict[str, Any]] | None = None,
          **context: Any) -> str:
    try:
        return environment().get_template(template).render(
            title=title, generated_at=(generated_at or datetime.now().astimezone()).isoformat(timespec="seconds"),
            charts=charts or [], plotly=plotly_js() if charts else "", **context)
    finally:
        _sql.cache_clear()  # one page's memo: a page renders the same whatever was rendered before it


def render_audit_html(report: Report) -> str:
    """``audit`` as one HTML page: the summary, the findings filterable by severity and area with each
    one's evidence and fix SQL, the fix plan with the lock of each step, the application's pools, what
    was skipped."""
    return _page("audit.html.j2", f"dbtune audit of {printable(report.target)}", report.generated_at,
                 report=report)


def render_advice_html(advice: Advice) -> str:
    """``advise`` as one HTML page: how it ranked, each recommendation with the queries it serves (their
    planner cost before and after, and what validation measured), the rejected candidates with why."""
    return _page("advice.html.j2", f"dbtune advise on {printable(advice.target)}", None, advice=advice)


def render_explain_html(report: ExplainReport) -> str:
    """``explain`` as one HTML page: per query its SQL, how it was explained, its plan tree (each node with
    its estimated and actual rows and its share of the cost or time, its conditions, ``◀ PL001`` where a
    check found something), its findings with their fix; then the checks that could not judge."""
    return _page("explain.html.j2", f"dbtune explain of {printable(report.target)}", None, report=report)


def render_comparison_html(c: Comparison) -> str:
    """``bench compare`` as one HTML page: the latency charts (p50, p95, p99 before and after, one trace per
    query) and the throughput chart, the comparison table with each verdict and its reason, and the plan
    of each query whose plan changed, before and after."""
    return _page("comparison.html.j2", "dbtune bench compare", None, charts=comparison_charts(c), comparison=c)


def render_loop_html(result: LoopResult, profile: ProfileTable | None = None) -> str:
    """The whole loop (``demo``, ``tune``) as one review page: the audit, the advisor's choice, the
    migration with its locks and the lint verdict, the benchmark charts and table, the race before and
    after, the audit after the migration and what it left, and the ``profile`` targets measured (demo)."""
    charts = comparison_charts(result.comparison) if result.comparison is not None else []
    return _page("loop.html.j2", f"dbtune review of {printable(result.report.target)}", result.report.generated_at,
                 charts=charts, result=result, report=result.report, profile=profile)


def comparison_charts(c: Comparison) -> list[dict[str, Any]]:
    """The plotly figures of a comparison, as ``{"id", "title", "figure"}``: one chart per latency
    statistic (:data:`LATENCY_CHARTS`, ms on a log axis, before → after) and one of throughput (executions
    per second), each with one trace per query."""
    import plotly.graph_objects as go

    labels = [_chart_label(q.label) for q in c.queries]
    charts = []
    for attr, name in LATENCY_CHARTS:
        fig = go.Figure([go.Scatter(x=["before", "after"], y=[getattr(q.before, attr), getattr(q.after, attr)],
                                    mode="lines+markers", name=label, legendgroup=label)
                         for q, label in zip(c.queries, labels, strict=True)])
        fig.update_layout(yaxis={"type": "log", "title": {"text": "ms"}})
        charts.append({"id": f"latency-{name}", "title": f"{name} latency before and after (ms, log scale)",
                       "figure": fig})
    fig = go.Figure([go.Bar(x=["before", "after"], y=[q.before.throughput_qps, q.after.throughput_qps], name=label)
                     for q, label in zip(c.queries, labels, strict=True)])
    fig.update_layout(barmode="group", yaxis={"title": {"text": "executions/s"}})
    charts.append({"id": "throughput", "title": "throughput before and after (executions per second, all clients)",
                   "figure": fig})
    for chart in charts:
        chart["figure"].update_layout(template="plotly_white", height=340, margin={"t": 10, "r": 10, "b": 40, "l": 60},
                                      legend={"font": {"size": 11}})
        chart["figure"] = chart["figure"].to_plotly_json()
    return charts


def _chart_label(label: str) -> str:
    """A query's label for plotly, which reads ``<b>``, ``<a href>`` and entities in text: its ``&``, ``<``
    and ``>`` as entities, so they show as themselves."""
    return printable(label).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
