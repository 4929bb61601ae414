"""Long lists are read a page at a time: one COUNT and one page of rows, whatever the backlog.

A page that shows several lists pages each on its own query parameter (``<key>_page``), so
moving through one list keeps the place in the others; the links land on the list's heading.
"""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

PER_PAGE = 50


def page_of(request: HttpRequest, rows: QuerySet, key: str = "") -> Page:
    """The requested page of ``rows`` (a bad or out-of-range number gives the nearest page)."""
    param = f"{key}_page" if key else "page"
    page = Paginator(rows, PER_PAGE).get_page(request.GET.get(param))

    def link(number: int) -> str:
        query = request.GET.copy()
        query[param] = str(number)
        return f"?{query.urlencode()}" + (f"#{key}" if key else "")

    page.previous_url = link(page.previous_page_number()) if page.has_previous() else ""  # type: ignore[attr-defined]
    page.next_url = link(page.next_page_number()) if page.has_next() else ""  # type: ignore[attr-defined]
    return page
