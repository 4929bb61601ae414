"""The monthly report as a PDF: the page's own template, laid out by WeasyPrint.

The same fonts and the same restricted fetcher as the receipt (``intake.fonts``,
``intake.receipt.make_url_fetcher``: the product's static files, the prepared CJK fonts and
``data:`` URIs, nothing else, no network); the stylesheet is ``static/css/report.css``, parsed
once per process with the fonts, and rebuilt once the prepared fonts appear.
"""

from __future__ import annotations

import atexit
import threading
from dataclasses import dataclass
from pathlib import Path

from django.template.loader import render_to_string

from intake import fonts
from intake.receipt import make_url_fetcher
from reports.content import MonthlyReport, report_context

STYLESHEET = "css/report.css"


@dataclass
class _PdfEnvironment:
    font_config: object
    stylesheet: object
    fetcher: object
    base_url: str
    prepared: bool


_env: _PdfEnvironment | None = None
# A font configuration is shared by the renders of a process; they take turns.
_lock = threading.Lock()


@atexit.register
def _drop_environment() -> None:
    # Free the font configuration while its C libraries are still loaded.
    global _env
    _env = None


def _environment() -> _PdfEnvironment:
    global _env
    if _env is not None and (_env.prepared or fonts.prepared_fonts() is None):
        return _env
    from django.contrib.staticfiles import finders
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    css_path = finders.find(STYLESHEET)
    if not css_path or not isinstance(css_path, str):
        raise fonts.ReceiptFontError(f"static/{STYLESHEET} is missing")
    prepared = fonts.prepared_fonts()
    faces, families = fonts.font_face_css(prepared)
    font_config = FontConfiguration()
    fetcher = make_url_fetcher()
    base_url = Path(css_path).resolve().parent.as_uri() + "/"
    source = "\n".join(
        (
            faces,
            Path(css_path).read_text(encoding="utf-8"),
            f"html, body, h1, h2, h3, p, td, th, div, span, caption {{ font-family: {families}; }}",
        )
    )
    stylesheet = CSS(string=source, base_url=base_url, url_fetcher=fetcher, font_config=font_config)
    _env = _PdfEnvironment(
        font_config, stylesheet, fetcher, base_url, prepared=prepared is not None
    )
    return _env


def html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML

    with _lock:
        env = _environment()
        document = HTML(string=html, base_url=env.base_url, url_fetcher=env.fetcher)
        return document.write_pdf(stylesheets=[env.stylesheet], font_config=env.font_config)


def render_monthly_pdf(report: MonthlyReport) -> bytes:
    """The report as the page shows it (one template body, one context)."""
    context = {**report_context(report), "for_pdf": True}
    return html_to_pdf(render_to_string("reports/monthly_pdf.html", context))
