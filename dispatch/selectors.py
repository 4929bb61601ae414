"""Every read of cases starts here. Out-of-scope and missing answer alike (404).

Sight comes from ``dispatch.access.Reach``: the region subtrees of the staff's area roles, the
tasks of the units they handle for (live or finished: a unit that returned a task was never
the case's and keeps no sight of it), and explicit per-case grants (django-guardian). The
members of a unit the case complains about never see it, whatever else would show it.
"""

from __future__ import annotations

from django.db.models import Case as SqlCase
from django.db.models import CharField, Exists, F, OuterRef, Q, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone

from dispatch.access import MANAGER_ROLES, REGION_ROLES, SUPERVISE_ROLES, Reach, reach_of
from dispatch.models import (
    CASE_TEXTS,
    LIVE_TASK,
    Assignment,
    AssignmentStatus,
    Case,
    CaseEvent,
    CaseUserObjectPermission,
    PendingRequest,
)
from dispatch.states import Status
from grids.selectors import ids_within, unit_ids_within
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
    paths = reach.area_paths(REGION_ROLES)
    if paths:
        cond |= Q(region_id__in=ids_within(paths))
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
    # The grants are an uncorrelated subquery (a few case ids, read once): a correlated EXISTS
    # would keep PostgreSQL from counting an area's list from its index alone.
    cond |= Q(
        pk__in=CaseUserObjectPermission.objects.filter(
            user=user, permission__codename="view_case"
        ).values("content_object_id")
    )
    return not_accused(reach, Case.objects.filter(cond))


def not_accused(reach: Reach, qs: QuerySet, case: str = "") -> QuerySet:
    """``qs`` without the cases that complain about a unit the user belongs to (``case``: the
    path from ``qs``'s model to the case, e.g. ``"case__"``)."""
    members = reach.member_unit_ids
    return qs.exclude(**{f"{case}accused_unit_id__in": members}) if members else qs


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
# Each queue is the scoped set above narrowed to what one role acts on: one ordered queryset per
# section, which the page reads a page at a time (``zongzhi.paging``), so a county's backlog of
# thousands costs a COUNT and fifty rows per section, and nothing is cut off unseen.


def _centre_scope(reach: Reach, roles) -> Q | None:
    """Owner centres covered by grants of ``roles``: region subtrees and centre units."""
    paths = reach.area_paths(roles)
    return Q(owner_unit_id__in=unit_ids_within(paths)) if paths else None


def _list_columns(qs: QuerySet[Case]) -> QuerySet[Case]:
    """The queues' rows: what ``_case_row.html`` and the queue pages show, and no more."""
    return qs.select_related(
        "category__parent", "region", "owner_unit", "lead_unit", "suggested_unit"
    ).only(*QUEUE_COLUMNS)


QUEUE_COLUMNS = (
    "code",
    "is_flagged",
    "grade",
    "summary",
    "status",
    "channel",
    "needs_routing",
    "reported_at",
    "due_at",
    "feedback_at",
    "category__name",
    "category__parent__name",
    "region__name",
    "owner_unit__name",
    "lead_unit__name",
    "suggested_unit__name",
)


DISPATCHER_SECTIONS = ("reported", "registered")


def dispatcher_queue(user: User) -> dict[str, QuerySet[Case]]:
    """What a dispatcher acts on: 待立案 (oldest first), 待派单 (returned and unrouted first)."""
    reach = reach_of(user)
    scope = _centre_scope(reach, MANAGER_ROLES)
    if scope is None:
        return {key: Case.objects.none() for key in DISPATCHER_SECTIONS}
    mine = _list_columns(cases_within(reach).filter(scope))
    registered = mine.filter(status=Status.REGISTERED).annotate(
        was_returned=Exists(
            Assignment.objects.filter(case=OuterRef("pk"), status=AssignmentStatus.RETURNED)
        )
    )
    return {
        "reported": mine.filter(status=Status.REPORTED).order_by("reported_at", "pk"),
        "registered": registered.order_by(
            F("was_returned").desc(), F("needs_routing").desc(), "reported_at", "pk"
        ),
    }


INBOX_SECTIONS = ("pending", "overdue", "due_soon", "urged", "in_progress")
SECTION = "section"  # the annotation that names a task's section


def inbox_section(now) -> SqlCase:
    """Which section a live task falls in, the first that applies: 待签收 (not yet signed),
    then of the signed: 已超期 (running clock past the deadline), 即将超期 (past the warning),
    督办 (flagged, or urged since it was assigned), 办理中 (the rest)."""
    signed = Q(status=AssignmentStatus.SIGNED)
    running = signed & Q(case__paused_at__isnull=True)
    return SqlCase(
        When(Q(status=AssignmentStatus.PENDING), then=Value("pending")),
        When(running & Q(case__due_at__lte=now), then=Value("overdue")),
        When(running & Q(case__warn_at__lte=now), then=Value("due_soon")),
        When(signed & (Q(case__is_flagged=True) | Q(urged_at__isnull=False)), then=Value("urged")),
        default=Value("in_progress"),
        output_field=CharField(),
    )


# A live task of one's own unit shows its case (``cases_within``): the inbox needs no other
# test of sight than the accused unit's.
assert set(LIVE_TASK) <= set(SEEING_TASKS)


def inbox_tasks(user: User, *, now=None) -> QuerySet[Assignment]:
    """A handler's live tasks, each with its ``section``, soonest deadline first."""
    now = now or timezone.now()
    reach = reach_of(user)
    units = reach.handled_unit_ids
    if not units or not user.is_active:
        return Assignment.objects.none()
    return (
        not_accused(
            reach, Assignment.objects.filter(unit_id__in=units, status__in=LIVE_TASK), "case__"
        )
        .annotate(**{SECTION: inbox_section(now)})
        .select_related("unit", "case__category__parent", "case__region")
        .only(*INBOX_COLUMNS)
        .order_by("case__due_at", "assigned_at", "pk")
    )


def sections_of(tasks: QuerySet[Assignment]) -> dict[str, QuerySet[Assignment]]:
    return {key: tasks.filter(**{SECTION: key}) for key in INBOX_SECTIONS}


def handler_inbox(user: User, *, now=None) -> dict[str, QuerySet[Assignment]]:
    """A handler's live tasks by urgency, each section soonest deadline first."""
    return sections_of(inbox_tasks(user, now=now))


# What an inbox row shows (``dispatch/inbox.html`` and ``_case_row.html``).
INBOX_COLUMNS = (
    "role",
    "status",
    "assigned_at",
    "urged_at",
    "unit__name",
    "case__code",
    "case__is_flagged",
    "case__grade",
    "case__summary",
    "case__status",
    "case__due_at",
    "case__warn_at",
    "case__paused_at",
    "case__category__name",
    "case__category__parent__name",
    "case__region__name",
)


SUPERVISOR_SECTIONS = ("requests", "feedback", "overdue")


def supervisor_queue(user: User, *, now=None) -> dict[str, QuerySet]:
    """Requests to decide, feedback to verify, overdue cases, in the supervisor's centres."""
    now = now or timezone.now()
    reach = reach_of(user)
    scope = _centre_scope(reach, SUPERVISE_ROLES)
    if scope is None:
        return {
            "requests": PendingRequest.objects.none(),
            "feedback": Case.objects.none(),
            "overdue": Case.objects.none(),
        }
    visible = cases_within(reach).filter(scope)
    return {
        "requests": PendingRequest.objects.filter(
            state=PendingRequest.State.PENDING, case__in=visible
        )
        .select_related(
            "case__category__parent", "case__owner_unit", "case__lead_unit", "requested_by"
        )
        .defer(*(f"case__{name}" for name in CASE_TEXTS))
        .order_by("requested_at", "pk"),
        "feedback": _list_columns(visible.filter(status=Status.FEEDBACK)).order_by(
            "feedback_at", "pk"
        ),
        "overdue": _list_columns(
            visible.filter(
                status__in=(Status.ASSIGNED, Status.IN_PROGRESS),
                due_at__lte=now,
                paused_at__isnull=True,
            )
        ).order_by("due_at", "pk"),
    }


def case_timeline(case: Case, *, public_only: bool = False) -> QuerySet[CaseEvent]:
    qs = case.events.select_related("actor", "actor_unit").order_by("seq")
    return qs.filter(is_public=True) if public_only else qs
