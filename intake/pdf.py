"""Documents as PDF: WeasyPrint with the prepared CJK fonts, offline, one stylesheet each.

Every document the product prints (the receipt, the monthly report, later mediation papers)
is HTML laid out here: the fonts (``intake.fonts``) and the document's stylesheet are parsed
once per process, because that is most of a cold render, and the URL fetcher reads only the
product's own static files, the prepared fonts and ``data:`` URIs: no network, no other file.
"""

from __future__ import annotations

import atexit
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings

from intake import fonts

# The elements whose font is set to the prepared CJK families.
TEXT_SELECTORS = "html, body, h1, h2, h3, p, td, th, div, span, caption"


class DocumentFetchError(ValueError):
    """A document asked for a resource outside the product's own static files."""


def _static_roots() -> list[Path]:
    roots = [Path(p if isinstance(p, str | Path) else p[1]) for p in settings.STATICFILES_DIRS]
    roots.append(Path(settings.STATIC_ROOT))
    return roots


def make_url_fetcher(roots: list[Path] | None = None):
    """A WeasyPrint fetcher that reads only files under ``roots`` (static files and the
    prepared fonts) and ``data:`` URIs. No network, no other ``file://`` path."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    allowed = [Path(root).resolve() for root in (roots or [*_static_roots(), fonts.font_dir()])]

    class RestrictedURLFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme == "file" and parts.netloc in ("", "localhost"):
                path = Path(unquote(parts.path)).resolve()
                if path.is_file() and any(path.is_relative_to(root) for root in allowed):
                    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(
                        path.as_uri(),
                        body=path.read_bytes(),
                        headers={"Content-Type": content_type},
                    )
            raise DocumentFetchError(f"a document may not fetch {url[:200]!r}")

    return RestrictedURLFetcher(allowed_protocols=("data", "file"))


@dataclass
class _Environment:
    font_config: object
    stylesheet: object
    fetcher: object
    base_url: str
    prepared: bool


# WeasyPrint's font configuration is shared by every render in the process; renders take turns.
_lock = threading.Lock()
_renderers: list[Renderer] = []


class Renderer:
    """Renders HTML with one static stylesheet (e.g. ``css/receipt.css``)."""

    def __init__(self, stylesheet: str) -> None:
        self.stylesheet = stylesheet
        self._env: _Environment | None = None
        _renderers.append(self)

    def forget(self) -> None:
        """Drop the loaded fonts and stylesheet (tests; before the C libraries unload)."""
        self._env = None

    def _environment(self) -> _Environment:
        """Fonts and stylesheet, loaded once per process (rebuilt once the fonts appear)."""
        if self._env is not None and (self._env.prepared or fonts.prepared_fonts() is None):
            return self._env
        from django.contrib.staticfiles import finders
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        css_path = finders.find(self.stylesheet)
        if not css_path or not isinstance(css_path, str):
            raise fonts.ReceiptFontError(f"static/{self.stylesheet} is missing")
        prepared = fonts.prepared_fonts()
        faces, families = fonts.font_face_css(prepared)
        font_config = FontConfiguration()
        fetcher = make_url_fetcher()
        base_url = Path(css_path).resolve().parent.as_uri() + "/"
        source = "\n".join(
            (
                faces,
                Path(css_path).read_text(encoding="utf-8"),
                f"{TEXT_SELECTORS} {{ font-family: {families}; }}",
            )
        )
        stylesheet = CSS(
            string=source, base_url=base_url, url_fetcher=fetcher, font_config=font_config
        )
        self._env = _Environment(
            font_config, stylesheet, fetcher, base_url, prepared=prepared is not None
        )
        return self._env

    def render(self, html: str) -> bytes:
        from weasyprint import HTML

        with _lock:
            env = self._environment()
            document = HTML(string=html, base_url=env.base_url, url_fetcher=env.fetcher)
            return document.write_pdf(stylesheets=[env.stylesheet], font_config=env.font_config)


@atexit.register
def _drop_environments() -> None:
    # Free the font configurations while their C libraries are still loaded.
    for renderer in _renderers:
        renderer.forget()
