"""Reads for the intake screen and the resident's tracking page.

Staff reads start from ``dispatch.selectors.cases_visible_to``; the public page reads one case
by its secret token and builds a context that holds nothing personal.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hmac
import re
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import policy
from dispatch.access import reach_of
from dispatch.actors import RESIDENT
from dispatch.models import Case, CaseEvent, CaseParty, Category, PartyRole
from dispatch.policy import Op
from dispatch.selectors import cases_visible_to
from dispatch.states import (
    NEGATIVE_RATINGS,
    OPEN_STATUSES,
    STEPS,
    Action,
    ReplyMethod,
    Status,
    step_index,
)
from grids.models import Level, Region, Unit
from grids.selectors import centre_of, search_regions
from people.models import Party, User

DUPLICATE_WINDOW = dt.timedelta(days=30)
SIMILARITY_THRESHOLD = 0.8
# PostgreSQL narrows the village's month to candidates through the trigram index on the summary
# (pg_trgm's ``%`` operator) before the ratio above decides. The floor sits under every pair at a
# ratio of 0.8 or more in a probe of 20,000 summaries edited at random (the lowest was 0.185), so
# the index never hides a case the ratio would show.
TRIGRAM_FLOOR = 0.15
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{22,43}$")


# --- The clerk --------------------------------------------------------------------------------


def clerk_region(user: User) -> Region | None:
    """The tree node the clerk works for: the highest node they hold the clerk role on."""
    return reach_of(user).clerk_region()


def clerk_centre(user: User) -> Unit | None:
    region = clerk_region(user)
    return centre_of(region) if region is not None else None


def intake_regions(user: User) -> QuerySet[Region]:
    """Where a clerk may say a case happened: their own subtree."""
    region = clerk_region(user)
    if region is None:
        return Region.objects.none()
    return Region.objects.filter(path__startswith=region.path, is_active=True).order_by("path")


def region_choices_for(user: User, term: str, *, limit: int = 20) -> list[dict]:
    """The region picker's JSON rows: name, code, level, full path name."""
    within = clerk_region(user)
    if within is None:
        return []
    rows = list(search_regions(term, within=within, limit=limit))
    return [
        {"id": r.pk, "code": r.code, "name": r.name, "level": Level(r.level).label} for r in rows
    ]


def intake_categories() -> list[tuple[Category, list[Category]]]:
    """Active categories as (top level, children), for a grouped select."""
    cats = list(Category.objects.filter(is_active=True).select_related("parent"))
    tops = [c for c in cats if c.parent_id is None]
    return [(top, [c for c in cats if c.parent_id == top.pk]) for top in tops]


def accused_unit_choices(user: User) -> QuerySet[Unit]:
    """Units a request may complain about: every active unit of the clerk's county."""
    region = clerk_region(user)
    if region is None:
        return Unit.objects.none()
    county_path = "/" + region.ancestor_codes()[0] + "/"
    return Unit.objects.filter(region__path__startswith=county_path, is_active=True).order_by(
        "region__path", "name"
    )


def case_for_intake_key(user: User, key) -> Case | None:
    """The case a form with this intake key already created or was linked to."""
    visible = cases_visible_to(user)
    case = visible.filter(intake_key=key).first()
    if case is None:
        linked = CaseEvent.objects.filter(action=Action.LINKED, data__intake_key=str(key)).first()
        if linked is not None:
            case = visible.filter(pk=linked.case_id).first()
    return case


# --- Returning residents and duplicates -------------------------------------------------------


def cases_of_parties(user: User, parties: list[Party], *, limit: int = 10) -> list[Case]:
    """The parties' cases that this clerk may see, open ones first, newest first."""
    if not parties:
        return []
    qs = (
        cases_visible_to(user)
        .filter(case_parties__party__in=parties)
        .select_related("category__parent")
        .distinct()
        .order_by("-reported_at")
    )
    rows = list(qs[: limit * 2])
    rows.sort(key=lambda c: (c.status not in OPEN_STATUSES, -c.reported_at.timestamp()))
    return rows[:limit]


@dataclass
class Duplicate:
    case: Case
    reasons: list[str] = field(default_factory=list)


def village_of(region: Region) -> Region:
    """The village (or the region itself when higher) a region belongs to."""
    codes = region.ancestor_codes()
    if region.level == Level.GRID and len(codes) >= 3:
        return Region.objects.filter(code=codes[2]).first() or region
    return region


def possible_duplicates(
    user: User,
    *,
    parties: list[Party],
    category: Category | None,
    summary: str,
    region: Region | None,
    now: dt.datetime | None = None,
) -> list[Duplicate]:
    """Recent cases that look like this request.

    Same applicant and category within 30 days, or a very similar summary in the same village
    within 30 days. Only cases the clerk may see are considered.
    """
    now = now or timezone.now()
    since = now - DUPLICATE_WINDOW
    recent = cases_visible_to(user).filter(reported_at__gte=since).exclude(status=Status.REJECTED)
    found: dict[int, Duplicate] = {}
    if parties and category is not None:
        for case in recent.filter(
            case_parties__party__in=parties,
            case_parties__role=PartyRole.APPLICANT,
            category=category,
        ).distinct()[:10]:
            found.setdefault(case.pk, Duplicate(case)).reasons.append(
                _("同一申请人30天内有同类诉求")
            )
    summary = (summary or "").strip()
    if region is not None and summary:
        village = village_of(region)
        nearby = recent.filter(region__path__startswith=village.path)
        for case in _similar_summaries(nearby, summary):
            ratio = difflib.SequenceMatcher(None, summary, case.summary).ratio()
            if ratio >= SIMILARITY_THRESHOLD:
                found.setdefault(case.pk, Duplicate(case)).reasons.append(
                    _("同一村(社区)内有内容相近的诉求（相似度%(p)d%%）") % {"p": round(ratio * 100)}
                )
    if not found:
        return []
    cases = {
        c.pk: c
        for c in Case.objects.filter(pk__in=found).select_related("category__parent", "region")
    }
    rows = []
    for pk, dup in found.items():
        dup.case = cases[pk]
        rows.append(dup)
    rows.sort(key=lambda d: d.case.reported_at, reverse=True)
    return rows


def _similar_summaries(cases: QuerySet[Case], summary: str) -> list[Case]:
    """The cases whose summary may be close to ``summary``: trigram candidates on PostgreSQL."""
    cases = cases.only("pk", "summary")
    if not _trigrams_read_chinese():
        return list(cases.order_by("-reported_at")[:500])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL pg_trgm.similarity_threshold = %s", [TRIGRAM_FLOOR])
        return list(cases.filter(summary__trigram_similar=summary).order_by("-reported_at")[:50])


_TRIGRAMS: dict[str, bool] = {}


def _trigrams_read_chinese() -> bool:
    """Whether this database's pg_trgm splits Chinese text (not under the ``C`` locale, where
    no Chinese character is a letter and every summary would have no trigram at all)."""
    if connection.vendor != "postgresql":
        return False
    name = str(connection.settings_dict["NAME"])
    if name not in _TRIGRAMS:
        with connection.cursor() as cursor:
            cursor.execute("SELECT cardinality(show_trgm('邻里纠纷')) > 0")
            _TRIGRAMS[name] = bool(cursor.fetchone()[0])
    return _TRIGRAMS[name]


# --- The resident's page ----------------------------------------------------------------------


def case_by_token(token: str) -> Case | None:
    """The case this tracking token opens, or None (malformed, unknown or revoked alike)."""
    if not token or not TOKEN_RE.match(token):
        return None
    case = (
        Case.objects.select_related("category__parent", "owner_unit", "lead_unit")
        .filter(tracking_token=token)
        .first()
    )
    if case is None or not hmac.compare_digest(case.tracking_token, token):
        return None
    return case


@dataclass
class Step:
    label: str
    state: str  # "done", "current" or "todo"
    at: dt.datetime | None


@dataclass
class TimelineRow:
    label: str
    at: dt.datetime
    unit: str


# Supervision and bookkeeping stay off the resident's timeline even if marked public.
_INTERNAL_ACTIONS = {
    Action.ROUTED,
    Action.ROUTING_FAILED,
    Action.TOKEN_REISSUED,
    Action.LINKED,
    Action.FLAGGED,
    Action.URGED,
    Action.WARNED,
    Action.OVERDUE,
    Action.ESCALATED_OVERDUE,
    Action.EXTENSION_REQUESTED,
    Action.EXTENSION_DENIED,
    Action.PAUSE_REQUESTED,
    Action.PAUSE_DENIED,
}


def _public_label(event: CaseEvent) -> str:
    """The timeline's words for an event: a reply says how the resident was told."""
    if event.action == Action.REPLIED and event.data.get("method") in ReplyMethod.values:
        return str(ReplyMethod(event.data["method"]).label)
    return str(Action(event.action).label)


def public_events(case: Case) -> list[CaseEvent]:
    """The case's public events, oldest first: one query, shared by every rendered variant."""
    return list(
        CaseEvent.objects.filter(case_id=case.pk, is_public=True)
        .only("action", "at", "public_unit_name", "seq", "data")
        .order_by("seq")
    )


def tracking_context(
    case: Case, *, now: dt.datetime, events: list[CaseEvent] | None = None
) -> dict:
    """Everything the public page shows. Nothing here names or locates a person.

    Labels are translated into the active language; ``events`` (``public_events``) lets the
    caller read the timeline once for several languages.
    """
    resident = policy.Subject(RESIDENT, case, now=now)
    milestones = {
        Status.REPORTED: case.reported_at,
        Status.REGISTERED: case.registered_at,
        Status.ASSIGNED: case.assigned_at,
        Status.IN_PROGRESS: case.signed_at,
        Status.FEEDBACK: case.feedback_at,
        Status.ARCHIVED: case.closed_at if case.status == Status.ARCHIVED else None,
    }
    current = step_index(case.status)
    steps = []
    for i, status in enumerate(STEPS):
        if case.status == Status.ARCHIVED or i < current:
            state = "done"
        elif i == current:
            state = "current"
        else:
            state = "todo"
        steps.append(
            Step(str(status.label), state, milestones.get(status) if i <= current else None)
        )
    if events is None:
        events = public_events(case)
    timeline = [
        TimelineRow(_public_label(e), e.at, e.public_unit_name)
        for e in events
        if e.action not in _INTERNAL_ACTIONS
    ]
    handling = case.lead_unit or case.owner_unit
    promised = case.due_at or case.reply_due_at
    return {
        "code": case.code,
        "category": str(case.category),
        "status_label": Status(case.status).label,
        "is_rejected": case.status == Status.REJECTED,
        "reject_reason": case.reject_reason if case.status == Status.REJECTED else "",
        "referral": case.referral if case.status == Status.REJECTED else "",
        "steps": steps,
        "current_step": current + 1,
        "handling_unit": handling.name if handling else "",
        "promised_at": promised,
        "is_late": policy.is_late(case, now=now),
        "is_paused": case.paused_at is not None,
        "closed_at": case.closed_at,
        "closed_late": case.closed_on_time is False,
        "timeline": timeline,
        "can_rate": policy.allows(Op.RATE, resident),
        "rating": case.resident_rating,
        "rating_label": case.get_resident_rating_display() if case.resident_rating else "",
        "can_reopen": policy.allows(Op.RESIDENT_REOPEN, resident),
        "negative": case.resident_rating in NEGATIVE_RATINGS,
        "reopened": case.reopen_count > 0,
        "can_urge": policy.allows(Op.RESIDENT_URGE, resident),
        "urged_today": (
            case.resident_urged_at is not None
            and timezone.localdate(case.resident_urged_at) == timezone.localdate(now)
        ),
    }


def tracking_changes_at(
    case: Case, *, now: dt.datetime, unmarked: bool = False
) -> dt.datetime | None:
    """When the clock next changes the public page by itself; None if only a change can.

    The first such moment after ``now``. The clock decides three things on the page
    (``dispatch.policy``): the case becomes overdue at ``due_at`` (the 催办 button appears), an
    urge counts for the day it was made (the button comes back at midnight), and 重办 may be
    asked for until 15 days after closing. A moment equal to ``now`` counts: a page rendered at
    that very instant is retired with it. ``unmarked`` leaves out the deadline, which the
    sweeper marks with its 红灯 event.
    """
    moments = []
    if case.status in OPEN_STATUSES and case.due_at is not None and not unmarked:
        moments.append(case.due_at)
    if case.resident_urged_at is not None:
        moments.append(_next_midnight(case.resident_urged_at))
    if case.status == Status.ARCHIVED and case.closed_at is not None:
        moments.append(case.closed_at + policy.REOPEN_WINDOW)
    upcoming = [moment for moment in moments if moment >= now]
    return min(upcoming, default=None)


def _next_midnight(moment: dt.datetime) -> dt.datetime:
    local = timezone.localtime(moment)
    return (local + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


def case_for_lookup(code: str, last4: str) -> Case | None:
    """A lost receipt: the case whose code and an applicant's phone's last four digits match."""
    code = (code or "").strip().upper()
    last4 = (last4 or "").strip()
    if len(code) != 20 or len(last4) != 4 or not last4.isdigit():
        return None
    case = Case.objects.filter(code=code).only("pk", "tracking_token").first()
    if case is None:
        # Compare anyway so that unknown and wrong take about as long.
        hmac.compare_digest("0000", last4)
        return None
    ok = False
    # The phone given for this case, not the person's current one.
    for stored in CaseParty.objects.filter(case=case, role=PartyRole.APPLICANT).values_list(
        "phone_last4", flat=True
    ):
        if stored and hmac.compare_digest(stored, last4):
            ok = True
    return case if ok else None
