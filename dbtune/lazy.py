"""Names of a package imported from their module only when first used (PEP 562's module ``__getattr__``),
so that importing the package (or one of its light modules: ``dbtune.workload.formats``, the model of
``dbtune.appconfig``) does not import a heavy dependency (sqlglot, psycopg) that only some commands need.
See https://peps.python.org/pep-0562/."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def imported(module: str, name: str) -> Any:
    """``module.name``, importing ``module`` if it is not yet (the renderers of the report registry, the names of
    :func:`lazy_attributes`; ``dbtune --help`` imports no dbtune module beyond the CLI's, so
    ``dbtune.cli.app`` keeps its own one-line twin).
    Raises :class:`ImportError` or :class:`AttributeError` as ``from module import name`` would."""
    return getattr(import_module(module), name)


def lazy_attributes(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``modules`` (name → the module defining it)
    imported from its module when first asked for. Raises :class:`AttributeError` for any other name, as a
    module does (so that ``from package import submodule`` still imports the submodule)."""

    def __getattr__(name: str) -> Any:
        if name in modules:
            return imported(modules[name], name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
