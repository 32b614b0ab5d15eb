"""The catalogue as a whole: its size, its pages, and a positive and a negative case for every database check.

Issue 10 asks for at least 80 checks (database, plan, migration-lint and application-config checks
together), at least 50 of them database checks, each with a complete page. The loader already refuses a
page with an empty section (:func:`dbtune.checks.registry.load_check`); this module asserts the totals,
that each page cites its documentation, and that no database check lacks a case that makes it report and a
case that makes it stay quiet (``tests/cases/<ID>.toml``, run on every server by tests/test_checks.py).
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from dbtune.checks import DOC_SECTIONS, load_catalogue

CATALOGUE = list(load_catalogue())
CASES = Path(__file__).parent / "cases"
# Areas whose checks read the database (the catalog, pg_stat_*, settings): the "database checks".
NOT_DATABASE = {"migrations", "plans", "pool"}
# Checks whose positive case needs a second session held open during the audit, which a case file
# cannot express: the test that holds it, which must name the check.
POSITIVE_ELSEWHERE = {"CC005": "test_concurrency_checks.py"}
# Checks that report on every database by design (a statement of fact at severity info, acted on once).
ALWAYS_REPORTS = {"ST003"}  # isolation-level: the level the database's transactions start at


def test_the_catalogue_has_at_least_80_checks_50_of_them_database_checks() -> None:
    areas = Counter(c.meta.area for c in CATALOGUE)
    database = sum(n for area, n in areas.items() if area not in NOT_DATABASE)
    assert len(CATALOGUE) >= 80, areas
    assert database >= 50, areas


@pytest.mark.parametrize("check", CATALOGUE, ids=lambda c: c.meta.id)
def test_every_page_is_complete_and_cites_its_documentation(check) -> None:  # type: ignore[no-untyped-def]
    assert list(check.doc)[:len(DOC_SECTIONS)] == list(DOC_SECTIONS)
    # "Options" may be one word ("None.") and "References" one link; every other section says something.
    stubs = [s for s in DOC_SECTIONS if s not in ("Options", "References") and len(check.doc[s].split()) < 3]
    assert stubs == []
    assert re.search(r"https://\S+", check.doc["References"]), "References names no page"
    assert len(check.summary) > 20, "the listing's one-line summary is a stub"


@pytest.mark.parametrize("check", [c for c in CATALOGUE if c.meta.area not in NOT_DATABASE | {"pool"}],
                         ids=lambda c: c.meta.id)
def test_every_database_check_has_a_positive_and_a_negative_case(check) -> None:  # type: ignore[no-untyped-def]
    path = CASES / f"{check.meta.id}.toml"
    assert path.is_file(), f"{path.name} is missing"
    cases = tomllib.loads(path.read_text(encoding="utf-8"))["case"]
    negative = [c for c in cases if c.get("expect") == []]
    positive = [c for c in cases if c.get("expect")]
    assert negative or check.meta.id in ALWAYS_REPORTS, "no case where the check stays quiet"
    if check.meta.id in POSITIVE_ELSEWHERE:
        elsewhere = (Path(__file__).parent / POSITIVE_ELSEWHERE[check.meta.id]).read_text(encoding="utf-8")
        assert check.meta.name in elsewhere
    else:
        assert positive, "no case where the check reports"
