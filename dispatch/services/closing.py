"""The end of the loop: 核查 then 结案归档 (or 返工), 回访, 重办."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import calendar, deadlines, recipients
from dispatch.actors import Actor, user_of
from dispatch.errors import DispatchError
from dispatch.models import Assignment, AssignmentRole, AssignmentStatus, Case, CaseEvent
from dispatch.notifications import notify
from dispatch.policy import Op, grade_refusal
from dispatch.services import _core
from dispatch.services.assignment import withdraw_live
from dispatch.states import Action, Satisfaction
from people.models import User


def verify_case(
    *,
    case: Case,
    actor: User,
    passed: bool,
    carried_out: bool = True,
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """核查: pass archives the case (结案归档); fail sends it back to the handler (返工)."""
    now = now or timezone.now()
    note = note.strip()
    if not passed and not note:
        raise DispatchError(_("核查不通过须填写返工意见"), code="reason_required")
    with transaction.atomic():
        case, _s = _core.begin(Op.VERIFY, case=case, actor=actor, now=now, seen_seq=seen_seq)
        if passed:
            refusal = grade_refusal(case)
            if refusal is not None:
                raise DispatchError(refusal.message, code=refusal.code)
            event = archive_locked(case, actor=actor, carried_out=carried_out, note=note, now=now)
            notify_closed(case, event, now=now)
            return case
        lead = (
            case.assignments.filter(role=AssignmentRole.LEAD, status=AssignmentStatus.DONE)
            .select_related("unit")
            .order_by("-pk")
            .first()
        )
        if lead is not None:
            lead.status = AssignmentStatus.SIGNED
            lead.finished_at = None
            lead.save(update_fields=["status", "finished_at"])
        event = _core.transition(
            case,
            action=Action.REWORK,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note,
            public=True,
            fields={"rework_count": case.rework_count + 1, "feedback_at": None},
        )
        if lead is not None:
            notify(
                case=case,
                kind="rework",
                params={"code": case.code, "note": note},
                users=recipients.handlers_of(case, [lead.unit]),
                key=f"case:{case.pk}:{event.seq}:rework",
                now=now,
            )
    return case


def archive_locked(
    case: Case,
    *,
    actor: User,
    carried_out: bool,
    note: str,
    now: dt.datetime,
    level: str | None = None,
) -> CaseEvent:
    """核查通过 then 结案归档, on the locked case; ``level`` is the level that closed it."""
    _core.transition(
        case,
        action=Action.VERIFIED,
        actor=actor,
        now=now,
        actor_unit=case.owner_unit,
        note=note,
        public=True,
        data={"carried_out": carried_out},
    )
    # Assisting tasks still open end with the case: signed ones as done, unsigned withdrawn.
    case.assignments.filter(status=AssignmentStatus.SIGNED).update(
        status=AssignmentStatus.DONE, finished_at=now
    )
    withdraw_live(case, now=now)
    on_time = None if case.due_at is None else now <= case.due_at
    started = timezone.localdate(case.registered_at or case.reported_at)
    taken = calendar.working_days_between(started, timezone.localdate(now))
    return _core.transition(
        case,
        action=Action.ARCHIVED,
        actor=actor,
        now=now,
        actor_unit=case.owner_unit,
        public=True,
        fields={
            "closed_at": now,
            "closed_level": level or case.owner_level,
            "closed_on_time": on_time,
            "carried_out": carried_out,
            "working_days_taken": taken,
        },
    )


def notify_closed(case: Case, event: CaseEvent, *, now: dt.datetime) -> None:
    notify(
        case=case,
        kind="closed",
        params={"code": case.code},
        party=recipients.applicant(case),
        key=f"case:{case.pk}:{event.seq}:closed",
        now=now,
    )


def follow_up_case(
    *,
    case: Case,
    actor: User,
    satisfaction: int,
    carried_out: bool | None = None,
    note: str = "",
    again: bool = False,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """回访: the follow-up call after closing, with the resident's satisfaction.

    ``again`` is a second call, chosen as such; the latest call's answers are the case's.
    """
    now = now or timezone.now()
    try:
        level = Satisfaction(int(satisfaction))
    except (TypeError, ValueError):
        raise DispatchError(_("请选择回访满意度"), code="satisfaction") from None
    with transaction.atomic():
        op = Op.FOLLOW_UP_AGAIN if again else Op.FOLLOW_UP
        case, _s = _core.begin(op, case=case, actor=actor, now=now, seen_seq=seen_seq)
        fields: dict = {"followup_satisfaction": int(level), "followed_up_at": now}
        if carried_out is not None:
            fields["carried_out"] = carried_out
        _core.record(
            case,
            action=Action.FOLLOWED_UP,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note.strip(),
            fields=fields,
            data={"satisfaction": int(level), "carried_out": carried_out, "again": again},
        )
    return case


def reopen_case(
    *,
    case: Case,
    actor: User,
    reason: str,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """重办 decided by a supervisor: once, within 15 days of closing."""
    now = now or timezone.now()
    reason = _core.required(reason, _("重办必须填写理由"))
    with transaction.atomic():
        case, _s = _core.begin(Op.REOPEN, case=case, actor=actor, now=now, seen_seq=seen_seq)
        reopen_locked(case, actor=actor, reason=reason, now=now)
    return case


def reopen_locked(case: Case, *, actor: Actor, reason: str, now: dt.datetime) -> None:
    """The lead unit that closed the case takes it again, on a fresh completion clock."""
    lead = (
        case.assignments.filter(role=AssignmentRole.LEAD, status=AssignmentStatus.DONE)
        .select_related("unit")
        .order_by("-pk")
        .first()
    )
    fields: dict = {
        "reopen_count": case.reopen_count + 1,
        "closed_at": None,
        "closed_level": "",
        "closed_on_time": None,
        "carried_out": None,
        "working_days_taken": None,
        "feedback_at": None,
    }
    if case.profile is not None:
        computed = deadlines.deadline_fields(case, profile=case.profile, start=now)
        fields.update({k: computed[k] for k in ("due_at", "warn_at")})
    if lead is not None:
        Assignment.objects.create(
            case=case,
            unit=lead.unit,
            role=AssignmentRole.LEAD,
            status=AssignmentStatus.SIGNED,
            assigned_by=user_of(actor),
            assigned_at=now,
            signed_at=now,
            note=reason,
        )
        fields["lead_unit"] = lead.unit
    event = _core.transition(
        case,
        action=Action.REOPENED,
        actor=actor,
        now=now,
        actor_unit=case.owner_unit,
        note=reason,
        public=True,
        fields=fields,
    )
    if lead is not None:
        notify(
            case=case,
            kind="reopened",
            params={"code": case.code, "note": reason},
            users=recipients.handlers_of(case, [lead.unit]),
            key=f"case:{case.pk}:{event.seq}:assigned",
            now=now,
        )
