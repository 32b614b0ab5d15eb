"""The renderers of ``dbtune advise`` (text and JSON), on advice built from the advisor's types (pure data:
rendering needs no server). Both outputs are pinned by golden files (``DBTUNE_UPDATE_GOLDEN=1`` rewrites
them after a deliberate change; review the diff), and hostile names from tests/test_hostile_names.py's
corpus reach neither the layout nor the terminal raw."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from advice_data import sample_advice
from test_hostile_names import PAYLOADS

from dbtune.advisor.model import ADVICE_VERSION
from dbtune.escape import printable, terminal_safe
from dbtune.report import Format
from dbtune.report.advice import ADVICE_RENDERERS, render_advice

GOLDEN = Path(__file__).parent / "golden"
SECTIONS = ("RECOMMENDED", "REJECTED", "NOT NEEDED", "PROBLEMS")


def _golden(name: str, text: str) -> str:
    if os.environ.get("DBTUNE_UPDATE_GOLDEN"):  # regenerate after a deliberate change, then review the diff
        (GOLDEN / name).write_text(text)
    return (GOLDEN / name).read_text()


def test_text_and_json_have_renderers() -> None:
    assert {Format.TEXT, Format.JSON} <= set(ADVICE_RENDERERS) <= set(Format)


def test_text_report_is_pinned() -> None:
    text = render_advice(sample_advice(), Format.TEXT)
    assert text == _golden("advice.txt", text)


def test_text_report_says_what_each_recommendation_is() -> None:
    text = render_advice(sample_advice(), Format.TEXT)
    # the DDL as the migration writes it, the queries with cost before → after, size, engine, measured
    flat = " ".join(text.split())
    assert ("CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_created_at_idx ON public.orders (customer_id "
            ", created_at DESC);") in flat
    assert "1,834.50 → 12.75" in text and "estimated 2208 kB, real 2264 kB" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "costed by hypopg" in text and "not costed: hypopg cannot cost a GIN index" in text
    assert "slows writes to: public.orders" in text and "14.2 → 0.085 ms faster" in text
    assert "served by public.orders (customer_id, created_at DESC)" in text
    assert "broken: relation \"nope\" does not exist" in text
    assert [line for line in text.splitlines() if line.split(" (")[0] in SECTIONS] == [
        "RECOMMENDED (2, estimated 3232 kB)", "REJECTED (2)",
        "NOT NEEDED (1: the checklist's and the catalogue's proposals that the workload does not need)",
        "PROBLEMS (1 workload statement not used; the rest went on)"]


def test_json_is_to_json_and_pinned() -> None:
    advice = sample_advice()
    text = render_advice(advice, Format.JSON)
    data = json.loads(text)
    assert data == advice.to_json()
    assert data["advice_version"] == ADVICE_VERSION == 1
    assert list(data) == ["report_version", "command", "advice_version", "dbtune_version", "target",
                          "server_version", "engine", "engine_note", "budget_bytes", "max_indexes", "database_bytes",
                          "queries", "candidates",
                          "whatif_calls", "validated", "duration_ms", "recommendations", "rejected",
                          "not_needed", "problems"]
    assert text == _golden("advice.json", text)


@pytest.mark.parametrize("payload", PAYLOADS, ids=range(len(PAYLOADS)))
def test_hostile_names_do_not_break_the_layout(payload: str) -> None:
    plain = render_advice(sample_advice(), Format.TEXT)
    advice = sample_advice(schema=payload[:30], table=payload, column=payload[::-1], query_name=payload,
                           message=f"syntax error at or near {payload}")
    text = render_advice(advice, Format.TEXT)
    assert terminal_safe(text) == text  # no control, separator or bidi character left to escape
    assert printable(payload) in text
    # every section and every numbered recommendation starts its own line, as with plain names
    heads = [line.split(" ")[0] for line in text.splitlines() if line[:1].isupper() or line.startswith("#")]
    plain_heads = [line.split(" ")[0] for line in plain.splitlines() if line[:1].isupper() or line.startswith("#")]
    assert heads == plain_heads
    # JSON keeps the names exactly (its consumer, migrate generate --from, checks them)
    data = json.loads(render_advice(advice, Format.JSON))
    assert data["recommendations"][0]["index"]["table"] == payload
