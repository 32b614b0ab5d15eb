"""The report model and its renderers (one module per format, chosen by :data:`RENDERERS`)."""

from dbtune.report.model import REPORT_VERSION, Report
from dbtune.report.render import RENDERERS, Format, render

__all__ = ["REPORT_VERSION", "RENDERERS", "Format", "Report", "render"]
