"""Who is told about what. Every notice of the loop picks its staff recipients here.

* the handlers of a unit: staff granted as handlers in it (for a centre, also on its node);
* the dispatchers of the owner centre, when no unit handles the case yet;
* the nearest supervisors: of the owner centre's node, else the closest node above it
  (feedback to verify, negative ratings, residents' urging);
* the head of the handling unit (escalation tier 1): its leader, else its supervisor, else a
  leader of its node;
* the supervisors of the level above the handling unit (tier 2).

Nobody who works for the unit the case complains about is ever told (``dispatch.access``), and
inactive accounts are left out.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q, QuerySet

from dispatch.access import in_unit, members_of
from dispatch.models import Case, CaseParty, PartyRole
from grids.models import Region, Unit, UnitKind
from people.models import Role, User


def _staff(case: Case, cond: Q) -> list[User]:
    qs: QuerySet[User] = User.objects.filter(cond, is_active=True)
    if case.accused_unit is not None:
        qs = qs.exclude(pk__in=members_of(case.accused_unit).values("pk"))
    return list(qs.distinct().order_by("pk"))


def handlers_of(case: Case, units: Iterable[Unit]) -> list[User]:
    cond = Q(pk__in=[])
    for unit in units:
        cond |= in_unit(Role.HANDLER, unit)
    return _staff(case, cond)


def dispatchers_of(case: Case) -> list[User]:
    return _staff(case, in_unit(Role.DISPATCHER, case.owner_unit))


def task_holders(case: Case) -> list[User]:
    """Whoever must act on a deadline now: the lead unit's handlers, else the dispatchers."""
    if case.lead_unit is not None:
        found = handlers_of(case, [case.lead_unit])
        if found:
            return found
    return dispatchers_of(case)


def _nearest(case: Case, role: str, region: Region) -> list[User]:
    """Holders of ``role`` on ``region`` or its centre, else on the closest node above."""
    codes = region.ancestor_codes()
    for code in reversed(codes):
        found = _staff(
            case,
            Q(grants__role=role, grants__region__code=code)
            | Q(
                grants__role=role,
                grants__unit__kind=UnitKind.CENTRE,
                grants__unit__region__code=code,
            ),
        )
        if found:
            return found
    return []


def nearest_supervisors(case: Case) -> list[User]:
    return _nearest(case, Role.SUPERVISOR, case.owner_unit.region)


def unit_heads(case: Case) -> list[User]:
    """Tier 1: the head of the handling unit (its leader, else its supervisor)."""
    unit = case.lead_unit or case.owner_unit
    return (
        _staff(case, Q(grants__role=Role.LEADER, grants__unit=unit))
        or _staff(case, Q(grants__role=Role.SUPERVISOR, grants__unit=unit))
        or _staff(
            case,
            in_unit(Role.LEADER, unit)
            | Q(grants__role=Role.LEADER, grants__region_id=unit.region_id),
        )
    )


def upper_supervisors(case: Case) -> list[User]:
    """Tier 2: supervisors of the level above the handling unit (the county at the top)."""
    unit = case.lead_unit or case.owner_unit
    region = unit.region
    upper = region.parent if region.parent is not None else region
    return _nearest(case, Role.SUPERVISOR, upper)


def applicant(case: Case) -> CaseParty | None:
    """The first applicant, with the contact details given for this case."""
    return (
        case.case_parties.filter(role=PartyRole.APPLICANT)
        .select_related("party")
        .order_by("sort", "pk")
        .first()
    )
