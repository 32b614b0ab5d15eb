"""The check engine: the ``@check`` decorator, the catalogue loader, and the runner.

A check file in the top-level ``checks/`` folder (shipped in the wheel as ``dbtune.catalogue``) imports
:func:`check` and :class:`CheckContext` from here.
"""

from dbtune.checks.registry import AREAS, DOC_SECTIONS, Catalogue, Check, CheckMeta, check, load_catalogue
from dbtune.checks.runner import AuditResult, CheckContext, run_checks

__all__ = [
    "AREAS", "DOC_SECTIONS", "AuditResult", "Catalogue", "Check", "CheckContext", "CheckMeta", "check",
    "load_catalogue", "run_checks",
]
