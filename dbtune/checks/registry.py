"""Check metadata, the ``@check`` decorator, and loading the catalogue from folders of check files.

Every check file holds exactly one function decorated with :func:`check`, and a module docstring with
the fixed documentation sections of :data:`DOC_SECTIONS` (``## What it does`` …). Metadata is declared
once, next to the logic, and validated when the catalogue loads; an invalid declaration raises
:class:`~dbtune.errors.CatalogueError` showing a valid example.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dbtune.errors import CatalogueError
from dbtune.model import Finding, Severity

if TYPE_CHECKING:
    pass

AREAS: dict[str, str] = {
    "indexes": "IX",
    "constraints": "CN",
    "settings": "ST",
    "pool": "PO",
    "plans": "PL",
    "maintenance": "MT",
    "migrations": "MG",
    "concurrency": "CC",
    "workload": "QS",
    "replication": "RP",
}
DOC_SECTIONS: tuple[str, ...] = (
    "What it does",
    "Why it matters",
    "Example",
    "What to do instead",
    "How the fix is applied safely",
    "Options",
    "References",
)
_EXAMPLE = ('@check(id="IX001", name="foreign-key-without-index", area="indexes", severity="warning", '
            'fix=True)')
_ID = re.compile(r"^[A-Z]{2}\d{3}$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

CheckFunction = Callable[[Any], Iterable[Finding]]  # CheckContext, LintContext or PlanContext, by area


@dataclass(frozen=True)
class CheckMeta:
    """What a check declares about itself.

    ``options`` maps each option name to its default; users override them under ``[checks.<name>]``,
    with a value of the default's type. ``option_ranges`` maps a numeric option to its inclusive
    ``(lowest, highest)`` bounds (``None``: unbounded on that side); a value outside is a config error.
    ``min_version_num`` is the oldest ``server_version_num`` the check supports.
    """

    id: str
    name: str
    area: str
    severity: Severity
    fix: bool = False
    min_version_num: int = 130000
    options: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    option_ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        for key, bounds in self.option_ranges.items():
            default = self.options.get(key)
            if key not in self.options or isinstance(default, bool) or not isinstance(default, int | float):
                problems.append(f"option_ranges names {key!r}, which is not a numeric option")
            elif not _within(default, bounds):
                problems.append(f"option {key!r}: default {default!r} is outside its range {bounds}")
        if self.area not in AREAS:
            problems.append(f"area {self.area!r} is not one of {', '.join(AREAS)}")
        if not _ID.match(self.id):
            problems.append(f"id {self.id!r} is not an area prefix and three digits")
        elif self.area in AREAS and not self.id.startswith(AREAS[self.area]):
            problems.append(f"id {self.id!r} does not start with {AREAS[self.area]!r}, the prefix of "
                            f"area {self.area!r}")
        if not _NAME.match(self.name):
            problems.append(f"name {self.name!r} is not kebab-case")
        if problems:
            raise CatalogueError("; ".join(problems) + f"; a valid declaration: {_EXAMPLE}")


def _within(value: float, bounds: tuple[float | None, float | None]) -> bool:
    low, high = bounds
    return (low is None or value >= low) and (high is None or value <= high)


def option_problem(meta: CheckMeta, key: str, value: Any) -> str | None:
    """What is wrong with ``value`` for option ``key`` of a check, as one phrase, or ``None``: not of the
    default's type (a bool is no number; an int is accepted for a float), or outside the range the check
    declares (a numeric option without one must not be negative)."""
    default = meta.options[key]
    if default is None:
        return None
    expected = type(default).__name__
    if isinstance(value, bool) != isinstance(default, bool) or not (
            isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))):
        return f"expected {expected}, got {value!r}"
    # A number without a declared range is a count, size, age or fraction: never negative.
    bounds = meta.option_ranges.get(key, (0, None) if isinstance(default, int | float)
                                    and not isinstance(default, bool) else None)
    if bounds is not None and not _within(value, bounds):
        low, high = bounds
        if high is None:
            return f"must be at least {low}, got {value!r}"
        if low is None:
            return f"must be at most {high}, got {value!r}"
        return f"must be between {low} and {high}, got {value!r}"
    return None


def check(*, id: str, name: str, area: str, severity: str, fix: bool = False,
          min_version_num: int = 130000, options: dict[str, Any] | None = None,
          aliases: tuple[str, ...] = (),
          option_ranges: dict[str, tuple[float | None, float | None]] | None = None,
          ) -> Callable[[CheckFunction], CheckFunction]:
    """Declare a check. The decorated function receives a :class:`CheckContext` and yields findings.
    ``option_ranges`` bounds numeric options, inclusive (``{"max_share": (0.0, 1.0)}``)."""
    try:
        sev = Severity(severity)
    except ValueError:
        raise CatalogueError(f"severity {severity!r} is not error, warning or info; a valid declaration: "
                             f"{_EXAMPLE}") from None
    meta = CheckMeta(id=id, name=name, area=area, severity=sev, fix=fix, min_version_num=min_version_num,
                     options=dict(options or {}), aliases=aliases, option_ranges=dict(option_ranges or {}))

    def decorate(fn: CheckFunction) -> CheckFunction:
        fn.__dbtune_check__ = meta  # type: ignore[attr-defined]
        return fn

    return decorate


@dataclass(frozen=True)
class Check:
    """A loaded check: its metadata, its logic, its documentation sections, and its file."""

    meta: CheckMeta
    run: CheckFunction
    doc: dict[str, str]
    path: Path

    @property
    def summary(self) -> str:
        """The first sentence of "What it does"."""
        text = " ".join(self.doc.get("What it does", "").split())
        return text.split(". ")[0].rstrip(".") + "." if text else ""


@dataclass(frozen=True)
class Catalogue:
    checks: tuple[Check, ...]

    def __iter__(self) -> Iterator[Check]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def get(self, key: str) -> Check | None:
        """A check by id, name or alias (case-insensitive for ids)."""
        for c in self.checks:
            if key.upper() == c.meta.id or key == c.meta.name or key in c.meta.aliases:
                return c
        return None


def builtin_dir() -> Path:
    """Where the built-in catalogue lives (``checks/`` in a checkout, ``dbtune/catalogue`` in a wheel)."""
    try:
        return Path(str(resources.files("dbtune.catalogue")))
    except ModuleNotFoundError:  # running from a checkout that is not installed
        return Path(__file__).resolve().parents[2] / "checks"


def parse_doc(text: str) -> dict[str, str]:
    """Split a docstring into its ``## Section`` parts (title → body)."""
    sections: dict[str, str] = {}
    current: str | None = None
    lines: list[str] = []
    for line in (text or "").splitlines():
        if line.startswith("## "):
            if current is not None:
                sections[current] = "\n".join(lines).strip()
            current, lines = line[3:].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        sections[current] = "\n".join(lines).strip()
    return sections


def _load_file(path: Path, builtin: bool) -> Check:
    module_name = "dbtune_catalogue_" + re.sub(r"\W", "_", str(path.with_suffix("")))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise CatalogueError(f"{path}: cannot be imported as a check file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except CatalogueError as exc:
        raise CatalogueError(f"{path}: {exc}") from None
    except Exception as exc:
        raise CatalogueError(f"{path}: cannot be loaded: {type(exc).__name__}: {exc}") from None
    found = [obj for obj in vars(module).values() if hasattr(obj, "__dbtune_check__")]
    if len(found) != 1:
        raise CatalogueError(f"{path}: a check file holds exactly one @check function, found {len(found)}; "
                             f"a valid declaration: {_EXAMPLE}")
    meta: CheckMeta = found[0].__dbtune_check__
    doc = parse_doc(module.__doc__ or "")
    missing = [s for s in DOC_SECTIONS if not doc.get(s)]
    if missing:
        raise CatalogueError(f"{path}: check {meta.id} lacks documentation sections: {', '.join(missing)}")
    if builtin and path.parent.name != meta.area:
        raise CatalogueError(f"{path}: check {meta.id} declares area {meta.area!r} but lives in "
                             f"{path.parent.name}/")
    return Check(meta=meta, run=found[0], doc=doc, path=path)


def load_catalogue(extra_dirs: Iterable[Path | str] = ()) -> Catalogue:
    """Load the built-in catalogue and any user folders of checks.

    Raises :class:`CatalogueError` when a file is malformed or two checks share an id, name or alias.
    """
    checks: list[Check] = []
    sources = [(builtin_dir(), True)] + [(Path(d), False) for d in extra_dirs]
    for folder, builtin in sources:
        if not folder.is_dir():
            raise CatalogueError(f"{folder}: checks folder not found")
        for path in sorted(folder.rglob("*.py")):
            if path.name.startswith("_") or "__pycache__" in path.parts:
                continue
            checks.append(_load_file(path, builtin))
    seen: dict[str, Path] = {}
    for c in checks:
        for key in (c.meta.id, c.meta.name, *c.meta.aliases):
            if key in seen:
                raise CatalogueError(f"{c.path}: {key!r} is already used by {seen[key]}")
            seen[key] = c.path
    return Catalogue(tuple(sorted(checks, key=lambda c: c.meta.id)))
