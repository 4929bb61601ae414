"""The receipt's QR code: the public tracking URL, as a low-density code a cheap phone reads.

The URL comes from ``settings.PUBLIC_BASE_URL`` and the case's tracking token, never from the
request's Host header (a forged Host would otherwise print a phishing link on a real receipt).
"""

from __future__ import annotations

import base64
import io
from functools import lru_cache

import qrcode
from django.conf import settings
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from PIL import Image
from qrcode.constants import ERROR_CORRECT_L, ERROR_CORRECT_M

QUIET_ZONE = 4  # modules of white border the QR standard asks for


def tracking_url(case) -> str:
    """The absolute public tracking URL that the receipt's QR carries."""
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/t/{case.tracking_token}"


@lru_cache(maxsize=512)
def qr_matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    """The module matrix for ``data`` at the lowest version, without the quiet zone.

    Error correction M (15% of the code can be smudged) unless L fits a smaller version: on an
    80 mm thermal print, larger modules help a cheap camera more than the extra redundancy.
    """
    best: qrcode.QRCode | None = None
    for level in (ERROR_CORRECT_M, ERROR_CORRECT_L):
        code = qrcode.QRCode(version=None, error_correction=level, border=0)
        code.add_data(data, optimize=0)
        code.make(fit=True)
        if best is None or code.version < best.version:
            best = code
    assert best is not None
    return tuple(tuple(bool(cell) for cell in row) for row in best.get_matrix())


@lru_cache(maxsize=512)
def qr_png_data_uri(data: str) -> str:
    """A PNG with one pixel per module (quiet zone included) as a ``data:`` URI, for the PDF.

    WeasyPrint parses an SVG path of a few hundred segments in tens of milliseconds; a 41 x 41
    pixel PNG scaled up with ``image-rendering: pixelated`` prints as sharp and costs nothing.
    """
    matrix = qr_matrix(data)
    n = len(matrix) + 2 * QUIET_ZONE
    image = Image.new("1", (n, n), 1)
    pixels = image.load()
    assert pixels is not None
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                pixels[x + QUIET_ZONE, y + QUIET_ZONE] = 0
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def qr_version(data: str) -> int:
    return (len(qr_matrix(data)) - 17) // 4


@lru_cache(maxsize=512)
def qr_svg(data: str, *, size: str = "100%", title: str = "") -> SafeString:
    """An inline SVG: one path of unit squares, crisp edges, scaled by CSS to any print size.

    Only the module positions come from ``data``; the optional ``title`` is escaped.
    """
    matrix = qr_matrix(data)
    n = len(matrix) + 2 * QUIET_ZONE
    parts = []
    for y, row in enumerate(matrix):
        x = 0
        width = len(row)
        while x < width:
            if row[x]:
                start = x
                while x < width and row[x]:
                    x += 1
                parts.append(f"M{start + QUIET_ZONE} {y + QUIET_ZONE}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    path = "".join(parts)
    head = format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" width="{size}" '
        'height="{size}" shape-rendering="crispEdges" role="img" class="qr">',
        n=n,
        size=size,
    )
    title_html = format_html("<title>{}</title>", title) if title else ""
    # The path is built from integers only; nothing of the caller's text is inside it.
    body = mark_safe(  # noqa: S308
        f'<rect width="{n}" height="{n}" fill="#fff"/><path d="{path}" fill="#000"/></svg>'
    )
    return format_html("{}{}{}", head, title_html, body)
