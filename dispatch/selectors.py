"""Every read of cases starts here. Out-of-scope and missing answer alike (404).

Sight comes from ``dispatch.access.Reach``: the region subtrees of the staff's area roles, the
tasks of the units they handle for (live or finished: a unit that returned a task was never
the case's and keeps no sight of it), and explicit per-case grants (django-guardian). The
members of a unit the case complains about never see it, whatever else would show it.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from dispatch.access import MANAGER_ROLES, REGION_ROLES, SUPERVISE_ROLES, Reach, reach_of
from dispatch.models import (
    Assignment,
    AssignmentStatus,
    Case,
    CaseEvent,
    CaseUserObjectPermission,
    PendingRequest,
)
from dispatch.states import Status
from people.models import User

# Tasks that give their unit sight of the case: live ones, and those it finished.
SEEING_TASKS = (AssignmentStatus.PENDING, AssignmentStatus.SIGNED, AssignmentStatus.DONE)


def cases_visible_to(user: User) -> QuerySet[Case]:
    """Cases ``user`` may see: their area, their units' tasks, explicit grants."""
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    return cases_within(reach_of(user))


def cases_within(reach: Reach) -> QuerySet[Case]:
    """``cases_visible_to`` for a reach already read (a page reads the grants once)."""
    user = reach.user
    if not user.is_authenticated or not user.is_active:
        return Case.objects.none()
    cond = Q(pk__in=[])
    for path in reach.area_paths(REGION_ROLES):
        cond |= Q(region__path__startswith=path)
    unit_ids = {g.unit_id for g in reach.grants if g.unit_id} | set(reach.handled_unit_ids)
    if unit_ids:
        cond |= Q(owner_unit_id__in=unit_ids) | Q(lead_unit_id__in=unit_ids)
        cond |= Q(
            Exists(
                Assignment.objects.filter(
                    case=OuterRef("pk"), unit_id__in=unit_ids, status__in=SEEING_TASKS
                )
            )
        )
    cond |= Q(
        Exists(
            CaseUserObjectPermission.objects.filter(
                content_object=OuterRef("pk"), user=user, permission__codename="view_case"
            )
        )
    )
    qs = Case.objects.filter(cond)
    members = reach.member_unit_ids
    if members:
        qs = qs.exclude(accused_unit_id__in=members)
    return qs


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

LIVE_TASK = (AssignmentStatus.PENDING, AssignmentStatus.SIGNED)
URGING_ACTIONS = ("case.urged", "case.resident_urged", "case.overdue_escalated")


def _centre_scope(reach: Reach, roles) -> Q | None:
    """Owner centres covered by grants of ``roles``: region subtrees and centre units."""
    cond = None
    for path in reach.area_paths(roles):
        part = Q(owner_unit__region__path__startswith=path)
        cond = part if cond is None else cond | part
    return cond


def _list_columns(qs: QuerySet[Case]) -> QuerySet[Case]:
    return qs.select_related(
        "category__parent", "region", "owner_unit", "lead_unit", "suggested_unit"
    )


def dispatcher_queue(user: User) -> dict[str, list[Case]]:
    """What a dispatcher acts on: 待立案, 待派单 (returned and unrouted first)."""
    reach = reach_of(user)
    scope = _centre_scope(reach, MANAGER_ROLES)
    if scope is None:
        return {"reported": [], "registered": []}
    qs = _list_columns(
        cases_within(reach).filter(scope).filter(status__in=(Status.REPORTED, Status.REGISTERED))
    )
    qs = qs.annotate(
        was_returned=Exists(
            Assignment.objects.filter(case=OuterRef("pk"), status=AssignmentStatus.RETURNED)
        )
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
    reach = reach_of(user)
    inbox: dict[str, list[Assignment]] = {key: [] for key in INBOX_SECTIONS}
    units = reach.handled_unit_ids
    if not units:
        return inbox
    tasks = (
        Assignment.objects.filter(
            unit_id__in=units, status__in=LIVE_TASK, case__in=cases_within(reach)
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
    if task.status == AssignmentStatus.PENDING:
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
    reach = reach_of(user)
    scope = _centre_scope(reach, SUPERVISE_ROLES)
    empty: dict[str, list] = {"requests": [], "feedback": [], "overdue": []}
    if scope is None:
        return empty
    visible = cases_within(reach).filter(scope)
    requests = list(
        PendingRequest.objects.filter(state=PendingRequest.State.PENDING, case__in=visible)
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
