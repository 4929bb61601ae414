"""Long lists are read a page at a time: one COUNT and one page of rows, whatever the backlog.

A page that shows several lists pages each on its own query parameter (``<key>_page``), so
moving through one list keeps the place in the others; the links land on the list's heading.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest

PER_PAGE = 50


def page_of(
    request: HttpRequest,
    rows: QuerySet,
    key: str = "",
    count: int | None = None,
    first: list | None = None,
) -> Page:
    """The requested page of ``rows`` (a bad or out-of-range number gives the nearest page).

    When a page reads several lists at once: ``count``, how many rows there are; ``first``,
    the first page's rows (``first_pages``), read only if another page is asked for.
    """
    param = f"{key}_page" if key else "page"
    paginator = Paginator(rows, PER_PAGE)
    if count is not None:
        paginator.count = count  # type: ignore[misc]  # the cached property, already known
    page = paginator.get_page(request.GET.get(param))
    if first is not None and page.number == 1:
        page.object_list = first

    def link(number: int) -> str:
        query = request.GET.copy()
        query[param] = str(number)
        return f"?{query.urlencode()}" + (f"#{key}" if key else "")

    page.previous_url = link(page.previous_page_number()) if page.has_previous() else ""  # type: ignore[attr-defined]
    page.next_url = link(page.next_page_number()) if page.has_next() else ""  # type: ignore[attr-defined]
    return page


def first_pages(rows: QuerySet, by: str) -> tuple[dict[Any, list], dict[Any, int]]:
    """The first page of each group of ``rows`` (by the column or annotation ``by``), each in
    ``rows``' order, and how many rows each group has: one query ranks and counts every
    group's rows, instead of a count and a page per list."""
    order: list[Any] = list(rows.query.order_by)  # the lists' own ordering, "-field" and all
    ranked = rows.annotate(
        page_rank=Window(RowNumber(), partition_by=[F(by)], order_by=order),
        group_size=Window(Count("pk"), partition_by=[F(by)]),
    ).filter(page_rank__lte=PER_PAGE)
    pages: dict[Any, list] = {}
    sizes: dict[Any, int] = {}
    for row in ranked:
        pages.setdefault(getattr(row, by), []).append(row)
        sizes[getattr(row, by)] = row.group_size
    return pages, sizes
