"""Names of a package imported from their module only when first used (PEP 562's module ``__getattr__``),
so that importing the package (or one of its light modules: ``dbtune.workload.formats``, the model of
``dbtune.appconfig``) does not import a heavy dependency (sqlglot, psycopg) that only some commands need.
See https://peps.python.org/pep-0562/."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_attributes(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: each name of ``modules`` (name → the module defining it)
    imported from its module when first asked for. Raises :class:`AttributeError` for any other name, as a
    module does (so that ``from package import submodule`` still imports the submodule)."""

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(import_module(modules[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
