"""Find and load the configuration.

Search order: ``--config FILE``, else ``DBTUNE_CONFIG``, else the nearest ``dbtune.toml`` or
``pyproject.toml`` with a ``[tool.dbtune]`` table, walking up from the working directory. No file means
the defaults.
"""

from __future__ import annotations

import os
import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from dbtune.config.messages import close_match, key_path, one_message, plain_message
from dbtune.config.model import Config
from dbtune.errors import ConfigError


def find_config(start: Path | None = None) -> Path | None:
    """The nearest ``dbtune.toml``, or ``pyproject.toml`` holding ``[tool.dbtune]``, at or above ``start``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "dbtune.toml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            try:
                if "dbtune" in tomllib.loads(pyproject.read_text()).get("tool", {}):
                    return pyproject
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError, RecursionError):
                continue
    return None


def load_config(path: Path | str | None = None, *, search: bool = True) -> tuple[Config, Path | None]:
    """Load and validate a config; returns it with the file it came from (None for the defaults).

    Raises :class:`ConfigError` naming the file and the key at fault.
    """
    if path is None:
        env = os.environ.get("DBTUNE_CONFIG")
        path = Path(env) if env else (find_config() if search else None)
    if path is None:
        return Config(), None
    path = Path(path)
    data = read_toml(path, "config file ")
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("dbtune", {})
    data = _extend(data, path, seen=(path.resolve(),))
    return parse_config(data, str(path), catalogue_problems(data)), path


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The TOML table in ``path``. Raises :class:`ConfigError` naming ``path`` after ``what`` (what refers
    to it: ``"config file "``, ``"dbtune.toml: 'extends': "``) when it is missing, a directory, unreadable,
    not UTF-8 or not valid TOML, nested too deeply included (https://toml.io/en/v1.0.0: a TOML file is UTF-8)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what}{path} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{what}{path} is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{what}{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what}{path} is not UTF-8 text (byte {exc.start}), as TOML requires") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:  # tomllib's parser recurses once per nested array or inline table
        raise ConfigError(f"{path}: not valid TOML: arrays or inline tables nested too deeply to read") from None


def _extend(data: dict[str, Any], path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """Resolve ``extends = "base.toml"`` (relative to ``path``): the base's tables are merged under this
    file's, and this file's arrays of tables (``[[pool]]``, ``[[expect.index]]`` …) replace the base's."""
    base_name = data.pop("extends", None)
    if base_name is None:
        return data
    if not isinstance(base_name, str):
        raise ConfigError(f"{path}: 'extends': expected a file name")
    base_path = (path.parent / base_name).resolve()
    if base_path in seen:
        raise ConfigError(f"{path}: 'extends' loops back to {base_path}")
    base = read_toml(base_path, f"{path}: 'extends': ")
    return _merge(_extend(base, base_path, (*seen, base_path)), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_config(data: dict[str, Any], origin: str = "config", more_problems: list[str] | None = None) -> Config:
    """Validate a config mapping. Raises :class:`ConfigError` naming ``origin`` and every key at fault, in
    one message: an unknown key with the known key it is close to (``unknown key 'expect.index[0].tabel'
    (did you mean 'table'?)``, and not also "'table' required"), a wrong value with what was expected, and
    ``more_problems`` found by other means (:func:`catalogue_problems`)."""
    problems = list(more_problems or ())
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = config_problems(exc.errors()) + problems
    if problems:
        raise ConfigError(one_message(origin, problems))
    return config


def catalogue_problems(data: dict[str, Any]) -> list[str]:
    """The problems of a config mapping's ``[checks.<name>]`` tables and ``audit.select``/``audit.ignore``
    against the check catalogue (with the folders of ``audit.checks_paths``), so that they are reported
    with the file's other problems (:func:`dbtune.checks.runner.check_config_problems`). A catalogue that
    does not load is left for the command that loads it to report."""
    audit: dict[str, Any] = data["audit"] if isinstance(data.get("audit"), dict) else {}
    checks: dict[str, Any] = data["checks"] if isinstance(data.get("checks"), dict) else {}

    def names(key: str) -> list[str]:
        value = audit.get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    if not checks and not names("select") and not names("ignore"):
        return []
    # The catalogue sits above the config (checks read it), so it is imported only here, when needed.
    from dbtune.checks import load_catalogue
    from dbtune.checks.runner import check_config_problems
    from dbtune.errors import DbtuneError

    try:
        catalogue = load_catalogue(names("checks_paths"))
    except DbtuneError:
        return []
    return check_config_problems(catalogue, checks, names("select"), names("ignore"))


def config_problems(errors: list[Any]) -> list[str]:
    """pydantic's errors for :class:`Config` as one plain sentence each, in the order they were found."""
    suggested: set[tuple[int | str, ...]] = set()
    hints: dict[tuple[int | str, ...], str] = {}
    for err in errors:
        if err["type"] == "extra_forbidden":
            loc = tuple(err["loc"])
            close = close_match(str(loc[-1]), _known_keys(loc[:-1]))
            if close is not None:
                suggested.add((*loc[:-1], close))
                hints[loc] = f" (did you mean '{close}'?)"
    problems = []
    for err in errors:
        loc = tuple(err["loc"])
        key = key_path(loc)
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown key '{key}'{hints.get(loc, '')}")
        elif err["type"] == "missing":
            if loc not in suggested:
                problems.append(f"missing key '{key}'")
        else:
            message = plain_message(err)
            problems.append(f"'{key}': {message}" if key else message)
    return problems


def _known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys a table at ``loc`` (a pydantic location in :class:`Config`) may hold."""
    annotation: Any = Config
    for part in loc:
        annotation = _model_in(annotation, list_item=isinstance(part, int))
        if annotation is None or isinstance(part, int):
            continue
        field = annotation.model_fields.get(str(part))
        if field is None:
            return []
        annotation = field.annotation
    model = _model_in(annotation)
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: Any, list_item: bool = False) -> Any:
    """The pydantic model an annotation holds (``X``, ``X | None``, ``list[X]`` when ``list_item``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    args = typing.get_args(annotation)
    if list_item and typing.get_origin(annotation) is list:
        return _model_in(args[0]) if args else None
    for arg in args:
        found = _model_in(arg)
        if found is not None:
            return found
    return None
