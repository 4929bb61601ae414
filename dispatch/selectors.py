"""Every read of cases starts here. Out-of-scope and missing answer alike (404)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404

from dispatch.models import Assignment, Case, CaseUserObjectPermission
from people.models import Role, User

# Roles whose scope is the region subtree they are granted on.
REGION_ROLES = (Role.CLERK, Role.GRID_WORKER, Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER)
# Roles whose scope is the cases assigned to their unit.
UNIT_ROLES = (Role.HANDLER, Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER)


def cases_visible_to(user: User) -> QuerySet[Case]:
    """Cases ``user`` may see: their region subtrees, their units' tasks, explicit grants.

    A case that accuses a unit is never visible to that unit's staff (信访 rules), whatever
    else would grant it.
    """
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    grants = list(user.grants.select_related("region", "unit"))
    cond = Q(pk__in=[])
    region_paths = {g.region.path for g in grants if g.region_id and g.role in REGION_ROLES}
    for path in _outermost(region_paths):
        cond |= Q(region__path__startswith=path)
    unit_ids = {g.unit_id for g in grants if g.unit_id}
    if unit_ids:
        cond |= Q(owner_unit_id__in=unit_ids) | Q(lead_unit_id__in=unit_ids)
        cond |= Exists(Assignment.objects.filter(case=OuterRef("pk"), unit_id__in=unit_ids))
    cond |= Exists(
        CaseUserObjectPermission.objects.filter(
            content_object=OuterRef("pk"), user=user, permission__codename="view_case"
        )
    )
    qs = Case.objects.filter(cond)
    if unit_ids:
        qs = qs.exclude(accused_unit_id__in=unit_ids)
    return qs


def _outermost(paths: set[str]) -> list[str]:
    """Drop paths already covered by an ancestor path, so the query has fewer ORs."""
    kept: list[str] = []
    for path in sorted(paths, key=len):
        if not any(path.startswith(other) for other in kept):
            kept.append(path)
    return kept


def case_for(user: User, *, code: str | None = None, pk: int | None = None) -> Case:
    """Fetch one case through the scope; anything not visible is a plain 404."""
    qs = cases_visible_to(user).select_related(
        "category__parent", "region", "owner_unit", "lead_unit"
    )
    try:
        if code is not None:
            return qs.get(code=code)
        return qs.get(pk=pk)
    except Case.DoesNotExist:
        raise Http404 from None
