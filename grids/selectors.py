"""Read helpers for the tree. Everything under a node is one indexed prefix query."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from grids.models import Region, Unit


def subtree(region: Region, *, include_self: bool = True) -> QuerySet[Region]:
    qs = Region.objects.filter(path__startswith=region.path)
    return qs if include_self else qs.exclude(pk=region.pk)


def ids_within(paths: Iterable[str]) -> list[int]:
    """The ids of every region under any of ``paths`` (the nodes themselves included).

    One small query. Case scopes filter on these ids rather than joining the tree with a prefix
    match, so that the planner knows how many cases a scope holds and can walk a list's index
    in order instead of reading every open case of the county to keep twenty.
    """
    return list(_under(paths).values_list("pk", flat=True))


def unit_ids_within(paths: Iterable[str]) -> list[int]:
    """The ids of every unit placed in a region under any of ``paths`` (as ``ids_within``)."""
    units = Unit.objects.filter(region__in=_under(paths))
    return list(units.order_by().values_list("pk", flat=True))


def _under(paths: Iterable[str]) -> QuerySet[Region]:
    cond = Q(pk__in=[])
    for path in paths:
        cond |= Q(path__startswith=path)
    return Region.objects.filter(cond).order_by()


def centre_of(region: Region) -> Unit | None:
    return Unit.objects.filter(region=region, kind="centre").first()


def search_regions(term: str, *, within: Region | None = None, limit: int = 20) -> QuerySet[Region]:
    """Regions whose name, code or pinyin initials match ``term`` (the region picker)."""
    term = term.strip()
    qs = Region.objects.filter(is_active=True)
    if within is not None:
        qs = qs.filter(path__startswith=within.path)
    if not term:
        return qs.none()
    cond = Q(name__contains=term) | Q(code__startswith=term)
    if term.isascii() and term.isalpha():
        cond |= Q(pinyin_initials__startswith=term.lower()) | Q(pinyin__startswith=term.lower())
    return qs.filter(cond).order_by("path")[:limit]
