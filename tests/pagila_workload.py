"""A workload on pagila (``../shared/data/pagila``) as a new user's application sends it: many distinct
statements on the same five tables (rental, payment, customer, inventory, film), each filtering on one
column with ``=`` and another with ``>``, and the same sorted with a LIMIT, as an ORM generates them. Used by the
advisor's tests (``test_advise_newuser``) and by ``benchmarks/advisor_scale.py``."""

from __future__ import annotations

import itertools

# Each table's key and the columns a statement filters on (pagila-schema.sql).
TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "rental": ("rental_id", ("customer_id", "inventory_id", "staff_id", "rental_date", "return_date")),
    "payment": ("payment_id", ("customer_id", "staff_id", "rental_id", "amount", "payment_date")),
    "customer": ("customer_id", ("store_id", "address_id", "last_name", "email", "active", "create_date")),
    "inventory": ("inventory_id", ("film_id", "store_id", "last_update")),
    "film": ("film_id", ("language_id", "rating", "rental_duration", "length", "rental_rate", "title")),
}


def _statements(table: str) -> list[str]:
    key, columns = TABLES[table]
    out = []
    for x, y in itertools.permutations(columns, 2):
        out.append(f"SELECT {key}, {y} FROM public.{table} WHERE {x} = $1 AND {y} > $2")
        out.append(f"SELECT {key}, {y} FROM public.{table} WHERE {x} = $1 AND {y} > $2 ORDER BY {y} DESC LIMIT 10")
    return out


def pagila_statements(count: int) -> str:
    """The first ``count`` statements (at most 212), taken from the five tables in turn, as a workload
    file (``-- name:`` before each); every one has a fingerprint of its own."""
    per_table = [_statements(t) for t in TABLES]
    texts = [s for group in itertools.zip_longest(*per_table) for s in group if s is not None]
    if count > len(texts):
        raise ValueError(f"at most {len(texts)} statements, not {count}")
    return "".join(f"-- name: pagila-{n}\n{text};\n" for n, text in enumerate(texts[:count], 1))
