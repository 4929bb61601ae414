"""What a member of staff reaches, computed once from their grants.

Roles are granted on tree nodes or in units (``people.RoleGrant``). A manager role (dispatcher,
supervisor, leader) or a clerk's role held on a node covers every centre in that node's subtree;
held in a centre, the centre's area. A handler handles for the unit they are granted in, or, when
granted on a node, for that node's centre. Staff are *members* of the units they work for: the
unit they are granted in, the centre or village committee of the node they are granted on, and
a grid worker's village. The members of a unit that a case complains about never see, handle or
hear of it (信访 rules), whatever else their grants would give.

``dispatch.policy`` (who may act), ``dispatch.selectors`` (who may see) and
``dispatch.recipients`` (who is told) all start from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from grids.models import Level, Region, Unit, UnitKind
from people.models import Role, RoleGrant, User
from people.selectors import roles_of

MANAGER_ROLES = frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER})
REGISTER_ROLES = frozenset({Role.CLERK, Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER})
SUPERVISE_ROLES = frozenset({Role.SUPERVISOR, Role.LEADER})
# Roles whose sight is the region subtree they are granted on.
REGION_ROLES = frozenset(
    {Role.CLERK, Role.GRID_WORKER, Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER}
)
# The work desks and who may open them. The pages refuse everyone else (403) and the
# navigation (zongzhi.navigation) offers each desk to exactly these roles.
DESK_ROLES: dict[str, frozenset[str]] = {
    "intake": frozenset({Role.CLERK}),
    "dispatcher": MANAGER_ROLES,
    "inbox": frozenset({Role.HANDLER}),
    "supervise": SUPERVISE_ROLES,
}
# Units whose members include the staff granted on their region.
REGIONAL_KINDS = (UnitKind.CENTRE, UnitKind.COMMITTEE)


def outermost(paths: Iterable[str]) -> list[str]:
    """Drop paths already covered by an ancestor path, so a query has fewer ORs."""
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if not any(path.startswith(other) for other in kept):
            kept.append(path)
    return kept


class Reach:
    """One user's grants, read once, and what they cover."""

    def __init__(self, user: User, grants: list[RoleGrant] | None = None) -> None:
        self.user = user
        active = user.is_authenticated and user.is_active
        self.grants: list[RoleGrant] = (
            (grants if grants is not None else roles_of(user)) if active else []
        )

    @cached_property
    def roles(self) -> frozenset[str]:
        return frozenset(g.role for g in self.grants)

    def has(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def area_paths(self, roles: Iterable[str]) -> list[str]:
        """Region subtrees covered by grants of ``roles`` (a centre grant covers its area)."""
        wanted = set(roles)
        paths = []
        for grant in self.grants:
            if grant.role not in wanted:
                continue
            if grant.region_id or grant.in_centre:
                paths.append(grant.node.path)
        return outermost(paths)

    def covers_centre(self, centre: Unit, roles: Iterable[str]) -> bool:
        """Does one of ``roles`` reach ``centre`` (granted in it, or on a node above it)?"""
        wanted = set(roles)
        if any(g.role in wanted and g.unit_id == centre.pk for g in self.grants):
            return True
        return any(centre.region.path.startswith(p) for p in self.area_paths(wanted))

    def handles(self, unit: Unit) -> bool:
        """Is the user a handler of ``unit``?"""
        for grant in self.grants:
            if grant.role != Role.HANDLER:
                continue
            if grant.unit_id == unit.pk:
                return True
            if unit.kind == UnitKind.CENTRE and grant.region_id == unit.region_id:
                return True
        return False

    @cached_property
    def handled_unit_ids(self) -> frozenset[int]:
        """Every unit the user handles for (one query for node-granted handlers)."""
        ids = {g.unit_id for g in self.grants if g.role == Role.HANDLER and g.unit_id}
        regions = {g.region_id for g in self.grants if g.role == Role.HANDLER and g.region_id}
        if regions:
            ids |= set(
                Unit.objects.filter(kind=UnitKind.CENTRE, region_id__in=regions).values_list(
                    "pk", flat=True
                )
            )
        return frozenset(ids)

    @cached_property
    def member_unit_ids(self) -> frozenset[int]:
        """The units the user works for (one query), for the accused-unit rule."""
        ids = {g.unit_id for g in self.grants if g.unit_id}
        regions: set[int] = set()
        for grant in self.grants:
            if grant.region is None:
                continue
            regions.add(grant.region.pk)
            if (
                grant.role == Role.GRID_WORKER
                and grant.region.level == Level.GRID
                and grant.region.parent_id is not None
            ):
                # A grid worker works for the village (community) of the grid.
                regions.add(grant.region.parent_id)
        if regions:
            ids |= set(
                Unit.objects.filter(kind__in=REGIONAL_KINDS, region_id__in=regions).values_list(
                    "pk", flat=True
                )
            )
        return frozenset(ids)

    def is_member_of(self, unit_id: int | None) -> bool:
        return unit_id is not None and unit_id in self.member_unit_ids

    def grid_worker_of(self, region: Region) -> bool:
        return region.level == Level.GRID and any(
            g.role == Role.GRID_WORKER and g.region_id == region.pk for g in self.grants
        )

    def clerk_region(self) -> Region | None:
        """The highest node the user is a counter clerk on."""
        regions = [g.node for g in self.grants if g.role == Role.CLERK]
        return min(regions, key=lambda r: len(r.path)) if regions else None


def reach_of(user: User) -> Reach:
    """The user's reach, computed once per user object (a request, a task)."""
    cached = getattr(user, "_zz_reach", None)
    if cached is None:
        cached = Reach(user)
        if user.is_authenticated:
            # The grants are read once per request or task; a grant given meanwhile counts
            # from the next one.
            setattr(user, "_zz_reach", cached)  # noqa: B010
    return cached


def in_unit(role: str, unit: Unit) -> Q:
    """Users holding ``role`` for ``unit`` (for a centre, also on its node), as a filter."""
    cond = Q(grants__role=role, grants__unit=unit)
    if unit.kind == UnitKind.CENTRE:
        cond |= Q(grants__role=role, grants__region_id=unit.region_id)
    return cond


def members_of(unit: Unit) -> QuerySet[User]:
    """Everyone who works for ``unit`` (the mirror of ``Reach.member_unit_ids``)."""
    cond = Q(grants__unit=unit)
    if unit.kind in REGIONAL_KINDS:
        cond |= Q(grants__region_id=unit.region_id)
        if unit.region.level == Level.VILLAGE:
            cond |= Q(grants__role=Role.GRID_WORKER, grants__region__parent_id=unit.region_id)
    return User.objects.filter(cond)


def may_use_desk(user: User, desk: str) -> bool:
    return user.is_authenticated and reach_of(user).has(*DESK_ROLES[desk])


def require_desk(user: User, desk: str) -> None:
    """A page of a desk the user does not work at answers 403 (styled, with the way back)."""
    if not may_use_desk(user, desk):
        raise PermissionDenied(_("您的岗位不使用此工作台"))
