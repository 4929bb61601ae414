"""Every read of cases starts here. Out-of-scope and missing answer alike (404)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from dispatch.models import Assignment, Case, CaseEvent, CaseUserObjectPermission, PendingRequest
from dispatch.states import Status
from grids.models import Unit, UnitKind
from people.models import Role, User
from people.selectors import roles_of

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
    return cases_visible_to_grants(user, roles_of(user))


def cases_visible_to_grants(user: User, grants) -> QuerySet[Case]:
    """``cases_visible_to`` for grants already read (a page reads them once)."""
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    cond = Q(pk__in=[])
    region_paths: set[str] = set()
    unit_ids: set[int] = set()
    handler_regions: set[int] = set()
    for g in grants:
        if g.unit_id:
            unit_ids.add(g.unit_id)
        if g.role in REGION_ROLES:
            # A manager role held in a centre covers the centre's area, as the services accept.
            if g.region_id:
                region_paths.add(g.region.path)
            elif g.unit.kind == UnitKind.CENTRE:
                region_paths.add(g.unit.region.path)
        if g.role == Role.HANDLER and g.region_id:
            handler_regions.add(g.region_id)
    if handler_regions:
        # A handler granted on a node handles for that node's centre (dispatch.services
        # .acts_for_unit): they see the centre's tasks, not the whole subtree.
        unit_ids |= set(
            Unit.objects.filter(kind=UnitKind.CENTRE, region_id__in=handler_regions).values_list(
                "pk", flat=True
            )
        )
    for path in _outermost(region_paths):
        cond |= Q(region__path__startswith=path)
    if unit_ids:
        cond |= Q(owner_unit_id__in=unit_ids) | Q(lead_unit_id__in=unit_ids)
        cond |= Q(Exists(Assignment.objects.filter(case=OuterRef("pk"), unit_id__in=unit_ids)))
    cond |= Q(
        Exists(
            CaseUserObjectPermission.objects.filter(
                content_object=OuterRef("pk"), user=user, permission__codename="view_case"
            )
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
        if pk is None:
            raise Http404
        return qs.get(pk=pk)
    except Case.DoesNotExist:
        raise Http404 from None


# --- Work queues --------------------------------------------------------------------------------
#
# Each queue is the scoped set above narrowed to what one role acts on, read with a fixed number
# of queries (the grants once, then one query per section) whatever the number of cases.

LIVE_TASK = ("pending", "signed")
URGING_ACTIONS = ("case.urged", "case.resident_urged", "case.overdue_escalated")


def _centre_scope(grants, roles) -> Q | None:
    """Owner centres covered by grants of ``roles``: region subtrees and centre units."""
    cond = None
    paths: set[str] = set()
    for grant in grants:
        if grant.role not in roles:
            continue
        if grant.region_id:
            paths.add(grant.region.path)
        elif grant.unit.kind == "centre":
            paths.add(grant.unit.region.path)
    for path in _outermost(paths):
        part = Q(owner_unit__region__path__startswith=path)
        cond = part if cond is None else cond | part
    return cond


def _list_columns(qs: QuerySet[Case]) -> QuerySet[Case]:
    return qs.select_related(
        "category__parent", "region", "owner_unit", "lead_unit", "suggested_unit"
    )


def dispatcher_queue(user: User) -> dict[str, list[Case]]:
    """What a dispatcher acts on: 待立案, 待派单 (returned and unrouted first)."""
    grants = roles_of(user)
    scope = _centre_scope(grants, (Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER))
    if scope is None:
        return {"reported": [], "registered": []}
    qs = _list_columns(
        cases_visible_to_grants(user, grants)
        .filter(scope)
        .filter(status__in=(Status.REPORTED, Status.REGISTERED))
    )
    qs = qs.annotate(
        was_returned=Exists(Assignment.objects.filter(case=OuterRef("pk"), status="returned"))
    ).order_by("reported_at", "pk")[:500]
    queue: dict[str, list[Case]] = {"reported": [], "registered": []}
    for case in qs:
        queue[case.status].append(case)
    queue["registered"].sort(
        key=lambda c: (not getattr(c, "was_returned", False), not c.needs_routing, c.reported_at)
    )
    return queue


def handler_inbox(user: User, *, now=None) -> dict[str, list[Assignment]]:
    """A handler's live tasks by urgency: 待签收, 已超期, 即将超期, 督办, 办理中."""
    now = now or timezone.now()
    grants = roles_of(user)
    unit_ids = {g.unit_id for g in grants if g.role == Role.HANDLER and g.unit_id}
    centre_regions = {g.region_id for g in grants if g.role == Role.HANDLER and g.region_id}
    inbox: dict[str, list[Assignment]] = {key: [] for key in INBOX_SECTIONS}
    if not unit_ids and not centre_regions:
        return inbox
    unit_cond = Q(unit_id__in=unit_ids) | Q(unit__kind="centre", unit__region_id__in=centre_regions)
    tasks = (
        Assignment.objects.filter(
            unit_cond, status__in=LIVE_TASK, case__in=cases_visible_to_grants(user, grants)
        )
        .select_related("unit", "case__category__parent", "case__region", "case__owner_unit")
        .annotate(
            urged=Exists(
                CaseEvent.objects.filter(
                    case=OuterRef("case_id"),
                    action__in=URGING_ACTIONS,
                    at__gte=OuterRef("assigned_at"),
                )
            )
        )
        .order_by("case__due_at", "assigned_at", "pk")[:500]
    )
    for task in tasks:
        inbox[inbox_section(task, now=now)].append(task)
    return inbox


INBOX_SECTIONS = ("pending", "overdue", "due_soon", "urged", "in_progress")


def inbox_section(task: Assignment, *, now) -> str:
    case = task.case
    if task.status == "pending":
        return "pending"
    running = case.paused_at is None
    if running and case.due_at is not None and case.due_at <= now:
        return "overdue"
    if running and case.warn_at is not None and case.warn_at <= now:
        return "due_soon"
    if case.is_flagged or getattr(task, "urged", False):
        return "urged"
    return "in_progress"


def supervisor_queue(user: User, *, now=None) -> dict[str, list]:
    """Requests to decide, feedback to verify, overdue cases, in the supervisor's centres."""
    now = now or timezone.now()
    grants = roles_of(user)
    scope = _centre_scope(grants, (Role.SUPERVISOR, Role.LEADER))
    empty: dict[str, list] = {"requests": [], "feedback": [], "overdue": []}
    if scope is None:
        return empty
    visible = cases_visible_to_grants(user, grants).filter(scope)
    requests = list(
        PendingRequest.objects.filter(state="pending", case__in=visible)
        .select_related(
            "case__category__parent", "case__owner_unit", "case__lead_unit", "requested_by"
        )
        .order_by("requested_at", "pk")[:500]
    )
    feedback = list(
        _list_columns(visible.filter(status=Status.FEEDBACK)).order_by("feedback_at", "pk")[:500]
    )
    overdue = list(
        _list_columns(
            visible.filter(
                status__in=(Status.ASSIGNED, Status.IN_PROGRESS),
                due_at__lte=now,
                paused_at__isnull=True,
            )
        ).order_by("due_at", "pk")[:500]
    )
    return {"requests": requests, "feedback": feedback, "overdue": overdue}


def case_timeline(case: Case, *, public_only: bool = False) -> QuerySet[CaseEvent]:
    qs = case.events.select_related("actor", "actor_unit").order_by("seq")
    return qs.filter(is_public=True) if public_only else qs
