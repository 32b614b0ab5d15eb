"""Unit tests of dbtune.checks.matching: expressions and index keys compared by meaning. No server needed:
the index texts below are what ``pg_get_expr`` and ``pg_get_indexdef(oid, k, true)`` return (the
server-side behaviour is covered by tests/cases/IX006.toml and CN003.toml)."""

from __future__ import annotations

from typing import Any

import pytest

from dbtune.catalog.model import Column, Index, Relation
from dbtune.checks.matching import (
    KeyColumn,
    check_columns_exist,
    covers_leading,
    index_key,
    normalize_expr,
    parse_columns,
    same_predicate,
    satisfies,
)
from dbtune.config.model import ExpectedIndex
from dbtune.errors import ConfigError

DESC, NULLS_FIRST = 1, 2


def make_index(columns: list[str], *, attnums: list[int] | None = None, options: list[int] | None = None,
               include: list[str] | tuple[str, ...] = (), **kw: Any) -> Index:
    """An :class:`Index` as the snapshot builds it; ``columns`` are the key columns' texts."""
    n = len(columns)
    attnums = attnums if attnums is not None else list(range(1, n + 1))
    include_attnums = list(range(50, 50 + len(include)))
    fields: dict[str, Any] = dict(
        oid=1, schema="public", name="ix", table_oid=10, method="btree", is_partitioned=False,
        is_unique=False, is_primary=False, is_exclusion=False, is_valid=True, is_ready=True,
        nulls_not_distinct=False, key_attnums=tuple(attnums + include_attnums), n_key_columns=n,
        columns=tuple(columns) + tuple(include), opclasses=(), opclass_oids=(), collation_oids=(),
        options=tuple(options if options is not None else [0] * n), expressions=None, predicate=None,
        definition="CREATE INDEX ix ON public.t USING btree (...)", size_bytes=8192, idx_scan=0,
        constraint_name=None, constraint_type=None, parent_index_oid=None,
    )
    fields.update(kw)
    return Index(**fields)


def expect(columns: list[str], **kw: Any) -> ExpectedIndex:
    return ExpectedIndex(table="t", columns=columns, **kw)


# normalize_expr / same_predicate ------------------------------------------------------------------------

@pytest.mark.parametrize(("written", "stored"), [
    ("response = 'ACCEPTED'", "(response = 'ACCEPTED'::text)"),
    ("response = 'ACCEPTED'", "(response = 'ACCEPTED'::vendor_response)"),  # an enum column
    ("v = 'x'", "((v)::text = 'x'::text)"),  # a varchar column
    ("n > 0", "(n > (0)::numeric)"),
    ("d > '2024-01-01'", "(d > '2024-01-01'::date)"),
    ("state IN ('queued', 'retrying')", "(state = ANY (ARRAY['queued'::text, 'retrying'::text]))"),
    ("state IN ('a', 'b')",
     "((state)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))"),
    ("state NOT IN ('a', 'b')", "(state <> ALL (ARRAY['a'::text, 'b'::text]))"),
    ("tx != 'a'", "(tx <> 'a'::text)"),
    ("deleted_at IS NULL", "(deleted_at IS NULL)"),
    ("a = 1 AND (b = 2 OR c IS NOT NULL)", "((a = 1) AND ((b = 2) OR (c IS NOT NULL)))"),
    ("NOT archived", "(NOT archived)"),
    ("Response = 'ACCEPTED'", "(response = 'ACCEPTED'::text)"),  # unquoted names fold to lower case
])
def test_same_predicate_as_stored(written: str, stored: str) -> None:
    assert same_predicate(written, stored)
    assert normalize_expr(written) == normalize_expr(stored)


@pytest.mark.parametrize(("written", "stored"), [
    ("response = 'ACCEPTED'", "(response = 'REJECTED'::text)"),
    ("response = 'ACCEPTED'", "(status = 'ACCEPTED'::text)"),
    ("response = 'accepted'", "(response = 'ACCEPTED'::text)"),  # literals keep their case
    ("n > 0", "(n >= 0)"),
    ("n > 0", "(n > '0'::text)"),  # a number is not a string
    ("state IN ('a', 'b')", "(state = ANY (ARRAY['a'::text, 'c'::text]))"),
    ("state IN ('a', 'b')", "(state <> ALL (ARRAY['a'::text, 'b'::text]))"),
    ("a = 1 AND b = 2", "((a = 1) OR (b = 2))"),
    ("b", "(b = true)"),  # PostgreSQL keeps these apart too
    ("\"Response\" = 'x'", "(response = 'x'::text)"),  # a quoted name keeps its case
])
def test_different_predicates(written: str, stored: str) -> None:
    assert not same_predicate(written, stored)


def test_same_predicate_none_and_garbage() -> None:
    assert same_predicate(None, None)
    assert not same_predicate("a = 1", None)
    assert not same_predicate(None, "(a = 1)")
    assert not same_predicate("a = = 1", "(a = 1)")  # does not parse: never equal, never raises


def test_normalize_keeps_casts_of_columns_to_other_types() -> None:
    assert normalize_expr("(created_at)::date = '2024-01-01'::date") == "CAST(created_at AS date) = '2024-01-01'"


# parse_columns / index_key ------------------------------------------------------------------------------

def test_parse_columns_directions_and_nulls() -> None:
    cols = parse_columns(["account_sid", "created_at DESC", "a NULLS FIRST", "b DESC NULLS LAST", "c ASC"], "k")
    assert [(c.text, c.desc, c.nulls_first) for c in cols] == [
        ("account_sid", False, False),
        ("created_at", True, True),  # DESC defaults to NULLS FIRST
        ("a", False, True),
        ("b", True, False),
        ("c", False, False),
    ]


def test_parse_columns_names_and_expressions() -> None:
    cols = parse_columns(['"retailerId"', "Status", "lower(email)", "(data->>'kind')"], "k")
    assert [c.text for c in cols] == ['"retailerId"', "status", "lower(email)", "data ->> 'kind'"]
    assert [c.expression for c in cols] == [False, False, True, True]


def test_parse_columns_error_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"expect\.index\[3\]: cannot parse index columns"):
        parse_columns(["a DESC DESC"], "expect.index[3]")


@pytest.mark.parametrize(("col", "sql"), [
    (KeyColumn("a", False, False), "a"),
    (KeyColumn("a", True, True), "a DESC"),
    (KeyColumn("a", True, False), "a DESC NULLS LAST"),
    (KeyColumn("a", False, True), "a NULLS FIRST"),
    (KeyColumn("lower(email)", False, False, expression=True), "(lower(email))"),
])
def test_key_column_sql(col: KeyColumn, sql: str) -> None:
    assert col.sql == sql


def test_key_column_sql_round_trips() -> None:
    specs = ["a", "b DESC", "c DESC NULLS LAST", "d NULLS FIRST", "(lower(e))"]
    assert [c.sql for c in parse_columns(specs, "k")] == specs


def test_index_key_reads_indoption_and_expressions() -> None:
    ix = make_index(["account_sid", "created_at", "lower(email)"], attnums=[1, 2, 0],
                    options=[0, DESC | NULLS_FIRST, DESC])
    assert [(k.text, k.desc, k.nulls_first) for k in index_key(ix)] == [
        ("account_sid", False, False), ("created_at", True, True), ("lower(email)", True, False)]


# satisfies: non-unique ----------------------------------------------------------------------------------

def test_exact_and_longer_index_satisfy() -> None:
    want = expect(["retailer_id", "created_at DESC"])
    assert satisfies(want, make_index(["retailer_id", "created_at"], options=[0, 3]), unique=False, key="k")
    assert satisfies(want, make_index(["retailer_id", "created_at", "id"], options=[0, 3, 0]),
                     unique=False, key="k")


def test_mirror_of_every_column_satisfies() -> None:
    want = expect(["account_sid", "created_at DESC"])
    mirror = make_index(["account_sid", "created_at"], options=[DESC | NULLS_FIRST, 0])
    assert satisfies(want, mirror, unique=False, key="k")


@pytest.mark.parametrize("options", [
    [0, 0],  # only one column's direction differs
    [DESC | NULLS_FIRST, DESC | NULLS_FIRST],  # the other one differs
    [DESC, 0],  # directions mirrored, NULLS order not
    [DESC | NULLS_FIRST, DESC],
])
def test_partial_mirror_does_not_satisfy(options: list[int]) -> None:
    want = expect(["account_sid", "created_at DESC"])
    assert not satisfies(want, make_index(["account_sid", "created_at"], options=options), unique=False, key="k")


def test_mirror_with_a_longer_index_compares_the_expected_columns_only() -> None:
    want = expect(["a", "b DESC"])
    ix = make_index(["a", "b", "c"], options=[DESC | NULLS_FIRST, 0, 0])
    assert satisfies(want, ix, unique=False, key="k")


def test_order_and_position_matter() -> None:
    assert not satisfies(expect(["a", "b"]), make_index(["b", "a"]), unique=False, key="k")
    assert not satisfies(expect(["a"]), make_index(["b", "a"]), unique=False, key="k")
    assert not satisfies(expect(["a", "b"]), make_index(["a"]), unique=False, key="k")


def test_invalid_method_and_predicate() -> None:
    assert not satisfies(expect(["a"]), make_index(["a"], is_valid=False), unique=False, key="k")
    assert not satisfies(expect(["a"], method="hash"), make_index(["a"]), unique=False, key="k")
    assert satisfies(expect(["a"], method="hash"), make_index(["a"], method="hash"), unique=False, key="k")
    partial = make_index(["a"], predicate="(status = 'open'::text)")
    assert satisfies(expect(["a"], where="status = 'open'"), partial, unique=False, key="k")
    assert not satisfies(expect(["a"], where="status = 'closed'"), partial, unique=False, key="k")
    assert not satisfies(expect(["a"]), partial, unique=False, key="k")
    assert not satisfies(expect(["a"], where="status = 'open'"), make_index(["a"]), unique=False, key="k")


def test_include_columns_superset() -> None:
    ix = make_index(["a"], include=["total", '"Status"'])
    assert satisfies(expect(["a"], include=["total"]), ix, unique=False, key="k")
    assert satisfies(expect(["a"], include=["Status", "total"]), ix, unique=False, key="k")
    assert not satisfies(expect(["a"], include=["other"]), ix, unique=False, key="k")
    assert not satisfies(expect(["a"], include=["total"]), make_index(["a", "total"]), unique=False, key="k")


def test_expression_key() -> None:
    ix = make_index(["lower(email)"], attnums=[0])
    assert satisfies(expect(["lower(email)"]), ix, unique=False, key="k")
    assert satisfies(expect(["LOWER(email)"]), ix, unique=False, key="k")
    assert not satisfies(expect(["upper(email)"]), ix, unique=False, key="k")
    assert not satisfies(expect(["email"]), ix, unique=False, key="k")
    assert satisfies(expect(["(created_at AT TIME ZONE 'UTC')"]),
                     make_index(["(created_at AT TIME ZONE 'UTC'::text)"], attnums=[0]), unique=False, key="k")


def test_quoted_names() -> None:
    ix = make_index(['"retailerId"'])
    assert satisfies(expect(['"retailerId"']), ix, unique=False, key="k")
    assert not satisfies(expect(["retailerId"]), ix, unique=False, key="k")  # folds to retailerid


# satisfies: unique --------------------------------------------------------------------------------------

def test_unique_needs_a_unique_index_with_exactly_the_columns() -> None:
    want = expect(["team_id", "user_id"])
    assert satisfies(want, make_index(["user_id", "team_id"], is_unique=True), unique=True, key="k")
    assert not satisfies(want, make_index(["user_id", "team_id"]), unique=True, key="k")
    assert not satisfies(want, make_index(["user_id", "team_id", "x"], is_unique=True), unique=True, key="k")
    assert not satisfies(want, make_index(["user_id"], is_unique=True), unique=True, key="k")
    assert not satisfies(want, make_index(["user_id", "team_id"], is_unique=True, is_valid=False),
                         unique=True, key="k")


def test_unique_with_include_columns_counts_its_key_only() -> None:
    ix = make_index(["sid"], include=["payload"], is_unique=True)
    assert satisfies(expect(["sid"]), ix, unique=True, key="k")


def test_partial_unique() -> None:
    want = expect(["routing_id"], where="response = 'ACCEPTED'")
    stored = "(response = 'ACCEPTED'::text)"
    assert satisfies(want, make_index(["routing_id"], is_unique=True, predicate=stored), unique=True, key="k")
    assert not satisfies(want, make_index(["routing_id"], is_unique=True), unique=True, key="k")
    assert not satisfies(expect(["routing_id"]), make_index(["routing_id"], is_unique=True, predicate=stored),
                         unique=True, key="k")


# check_columns_exist ------------------------------------------------------------------------------------

def _table(*names: str) -> Relation:
    cols = tuple(Column(i + 1, n, "text", False, None) for i, n in enumerate(names))
    return Relation(oid=10, schema="public", name="t", kind="r", reltuples=0, relpages=0, size_bytes=0,
                    is_partition=False, parent_oid=None, columns=cols, stats=None)


def test_check_columns_exist() -> None:
    table = _table("a", "retailerId", "email")
    check_columns_exist(expect(["a DESC", '"retailerId"', "lower(email)"], include=["email"]), table, "k")
    with pytest.raises(ConfigError, match=r"k: column 'b' does not exist in table public\.t"):
        check_columns_exist(expect(["a", "b DESC"]), table, "k")
    with pytest.raises(ConfigError, match="column 'retailerid' does not exist"):
        check_columns_exist(expect(["retailerId"]), table, "k")
    with pytest.raises(ConfigError, match="column 'nope' does not exist"):
        check_columns_exist(expect(["a"], include=["nope"]), table, "k")


# covers_leading (foreign-key support) -------------------------------------------------------------------

def test_covers_leading() -> None:
    assert covers_leading(make_index(["a"], attnums=[2]), (2,))
    assert covers_leading(make_index(["a", "b"], attnums=[2, 3]), (3, 2))  # any order
    assert covers_leading(make_index(["a", "b", "c"], attnums=[2, 3, 4]), (2, 3))
    assert covers_leading(make_index(["a"], attnums=[2], method="hash"), (2,))
    assert not covers_leading(make_index(["x", "a"], attnums=[5, 2]), (2,))  # second column
    assert not covers_leading(make_index(["a"], attnums=[2], predicate="(a > 0)"), (2,))  # partial
    assert not covers_leading(make_index(["a"], attnums=[2], is_valid=False), (2,))
    assert not covers_leading(make_index(["a"], attnums=[2], include=["b"]), (2, 50))  # INCLUDEd
    assert not covers_leading(make_index(["a", "b"], attnums=[2, 3], method="hash"), (2, 3))
    assert not covers_leading(make_index(["a"], attnums=[2], method="gin"), (2,))
    assert not covers_leading(make_index(["a"], attnums=[2]), ())
