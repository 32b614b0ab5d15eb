"""Find and load the configuration.

Search order: ``--config FILE``, else ``DBTUNE_CONFIG``, else the nearest ``dbtune.toml`` or
``pyproject.toml`` with a ``[tool.dbtune]`` table, walking up from the working directory. No file means
the defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
            except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
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
    try:
        raw = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc}") from None
    try:
        data: dict[str, Any] = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get("dbtune", {})
    data = _extend(data, path, seen=(path.resolve(),))
    return parse_config(data, str(path)), path


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
    try:
        base = tomllib.loads(base_path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: 'extends': {base_path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{base_path}: not valid TOML: {exc}") from None
    return _merge(_extend(base, base_path, (*seen, base_path)), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_config(data: dict[str, Any], origin: str = "config") -> Config:
    """Validate a config mapping; the error names ``origin`` and the first key at fault."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _key_path(err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{origin}: unknown key '{key}'") from None
        msg = err["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{origin}: '{key}': {msg}" if key else f"{origin}: {msg}") from None


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
