"""Who holds which role where. Scope for every read is built from these."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from grids.models import Region, Unit
from people.models import Role, RoleGrant, User


def roles_of(user: User) -> list[RoleGrant]:
    if not user.is_authenticated:
        return []
    return list(user.grants.select_related("region", "unit__region").order_by("role"))


def has_role(user: User, *roles: str) -> bool:
    return user.is_authenticated and user.grants.filter(role__in=roles).exists()


def regions_for(user: User, *roles: str) -> list[Region]:
    """The tree nodes on which ``user`` holds any of ``roles`` (a unit's grant gives its region)."""
    grants = user.grants.filter(role__in=roles).select_related("region", "unit__region")
    regions = []
    for g in grants:
        if g.region is not None:
            regions.append(g.region)
        else:
            assert g.unit is not None  # constraint grant_has_scope: no region means a unit
            regions.append(g.unit.region)
    return regions


def units_for(user: User, *roles: str) -> QuerySet[Unit]:
    return Unit.objects.filter(grants__user=user, grants__role__in=roles).distinct()


def staff_with_role(
    role: str, *, unit: Unit | None = None, region: Region | None = None
) -> QuerySet[User]:
    cond = Q(grants__role=role)
    if unit is not None:
        cond &= Q(grants__unit=unit) | Q(grants__region=unit.region)
    if region is not None:
        cond &= Q(grants__region=region)
    return User.objects.filter(cond, is_active=True).distinct()


__all__ = ["Role", "has_role", "regions_for", "roles_of", "staff_with_role", "units_for"]
