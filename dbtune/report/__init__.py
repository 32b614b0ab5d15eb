"""The report model and its renderers (one module per format, chosen by type and format from
:data:`~dbtune.report.render.REGISTRY`)."""

from dbtune.report.model import REPORT_VERSION, CommandReport, Report
from dbtune.report.render import REGISTRY, RENDERERS, Format, render

__all__ = ["REGISTRY", "REPORT_VERSION", "RENDERERS", "CommandReport", "Format", "Report", "render"]
