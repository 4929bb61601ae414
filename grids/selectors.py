"""Read helpers for the tree. Everything under a node is one indexed prefix query."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from grids.models import Region, Unit


def subtree(region: Region, *, include_self: bool = True) -> QuerySet[Region]:
    qs = Region.objects.filter(path__startswith=region.path)
    return qs if include_self else qs.exclude(pk=region.pk)


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
