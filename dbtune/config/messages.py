"""Validation problems in plain words: pydantic's errors as a DBA reads them, and "did you mean" for a
misspelt key.

Used by the config loader (every problem of a file in one message) and by the CLI's error boundary (an
option's value that Typer's pydantic coercion refused), so no message shows pydantic's own wording
(``Value error, …``, ``Input should be a valid integer, unable to parse string as an integer``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# pydantic error types (https://docs.pydantic.dev/latest/errors/validation_errors/) and what to say.
_EXPECTED = {
    "int_parsing": "an integer", "int_type": "an integer", "int_from_float": "an integer",
    "float_parsing": "a number", "float_type": "a number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
    "dict_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
}
_BOUNDS = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
           "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}


def close_match(word: str, candidates: Iterable[str]) -> str | None:
    """The one of ``candidates`` closest to ``word`` when it is close (difflib's ratio at least 0.6)."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'table'?)`` when one of ``candidates`` is close to ``word``, else ``""``."""
    close = close_match(word, candidates)
    return f" (did you mean '{close}'?)" if close else ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def plain_message(error: Mapping[str, Any]) -> str:
    """One pydantic error (an item of ``ValidationError.errors()``) as a plain sentence, without its
    location: ``expected an integer, got 'thirty'``, ``must be at least 1, got 0``."""
    kind = str(error.get("type", ""))
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    got = f", got {_shown(value)}" if isinstance(value, str | int | float | bool) else ""
    if kind == "missing":
        return "required"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}{got}"
    if kind in _BOUNDS:
        words, bound = _BOUNDS[kind]
        return f"must be {words} {ctx.get(bound)}{got}"
    if kind == "too_short":
        return f"must hold at least {ctx.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must hold at most {ctx.get('max_length')} item(s)"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}{got}"
    if kind == "enum":
        return f"expected {ctx.get('expected')}{got}"
    message = str(error.get("msg", ""))
    message = re.sub(r"^(Value|Assertion) error, ", "", message)
    return re.sub(r"^Input should be ", "expected ", message)


def key_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as the config key a user writes: ``('pool', 0, 'size')`` → ``pool[0].size``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def one_message(origin: str, problems: Sequence[str]) -> str:
    """Every problem of ``origin`` (a file, an option) in one line: ``origin: a`` or
    ``origin: 3 problems: a; b; c``."""
    if len(problems) == 1:
        return f"{origin}: {problems[0]}"
    return f"{origin}: {len(problems)} problems: " + "; ".join(problems)
