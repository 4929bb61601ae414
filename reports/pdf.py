"""The monthly report as a PDF: the page's own template, laid out by WeasyPrint.

The same fonts and the same restricted fetcher as the receipt (``intake.pdf``: the product's
static files, the prepared CJK fonts and ``data:`` URIs, nothing else, no network); the
stylesheet is ``static/css/report.css``.
"""

from __future__ import annotations

from django.template.loader import render_to_string

from intake.pdf import Renderer
from reports.content import MonthlyReport, report_context

RENDERER = Renderer("css/report.css")


def html_to_pdf(html: str) -> bytes:
    return RENDERER.render(html)


def render_monthly_pdf(report: MonthlyReport) -> bytes:
    """The report as the page shows it (one template body, one context)."""
    context = {**report_context(report), "for_pdf": True}
    return html_to_pdf(render_to_string("reports/monthly_pdf.html", context))
