"""Requests a handler makes and a supervisor decides: 延期 (extension), 中止 (pause), 恢复."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import deadlines
from dispatch.errors import DispatchError, StaleCaseError
from dispatch.models import Case, PendingRequest
from dispatch.policy import WORKING, Op
from dispatch.services import _core
from dispatch.states import Action
from people.models import User


def request_extension(
    *,
    case: Case,
    actor: User,
    days: int,
    reason: str,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> PendingRequest:
    """延期申请: before the deadline, at most ``profile.max_extensions`` times (once)."""
    now = now or timezone.now()
    reason = _core.required(reason, _("申请延期必须说明理由"))
    if days < 1:
        raise DispatchError(_("延期至少1个工作日"), code="days")
    with transaction.atomic():
        case, _s = _core.begin(Op.EXTENSION, case=case, actor=actor, now=now, seen_seq=seen_seq)
        return _open_request(
            case,
            kind=PendingRequest.Kind.EXTENSION,
            actor=actor,
            reason=reason,
            days=days,
            now=now,
            action=Action.EXTENSION_REQUESTED,
        )


def request_pause(
    *,
    case: Case,
    actor: User,
    reason: str,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> PendingRequest:
    """中止申请: e.g. waiting for a court; approved by a supervisor, it stops the clock."""
    now = now or timezone.now()
    reason = _core.required(reason, _("申请中止必须说明理由"))
    with transaction.atomic():
        case, _s = _core.begin(Op.PAUSE, case=case, actor=actor, now=now, seen_seq=seen_seq)
        return _open_request(
            case,
            kind=PendingRequest.Kind.PAUSE,
            actor=actor,
            reason=reason,
            days=None,
            now=now,
            action=Action.PAUSE_REQUESTED,
        )


def _open_request(
    case: Case, *, kind: str, actor: User, reason: str, days, now, action
) -> PendingRequest:
    request = PendingRequest.objects.create(
        case=case, kind=kind, reason=reason, days=days, requested_by=actor, requested_at=now
    )
    _core.record(
        case,
        action=action,
        actor=actor,
        now=now,
        actor_unit=case.lead_unit,
        note=reason,
        data={"request": request.pk, "days": days},
    )
    return request


def _decide(
    request: PendingRequest,
    *,
    actor: User,
    kind: str,
    approve: bool,
    now: dt.datetime,
    seen_seq: int | None,
) -> tuple[Case, PendingRequest]:
    case, _s = _core.begin(Op.DECIDE, case=request.case_id, actor=actor, now=now, seen_seq=seen_seq)
    request = PendingRequest.objects.select_for_update().get(pk=request.pk)
    if request.kind != kind:
        raise DispatchError(_("申请类型不符"), code="kind")
    if request.state != PendingRequest.State.PENDING:
        raise StaleCaseError(_("该申请已被他人审批，请刷新后查看"))
    if approve and case.status not in WORKING:
        raise DispatchError(_("案件不在办理中，不能批准该申请"), code="transition")
    request.state = PendingRequest.State.APPROVED if approve else PendingRequest.State.DENIED
    request.decided_by = actor
    request.decided_at = now
    request.save(update_fields=["state", "decided_by", "decided_at"])
    return case, request


def _record_decision(
    case: Case,
    request: PendingRequest,
    *,
    actor: User,
    approve: bool,
    note: str,
    now: dt.datetime,
    approved: Action,
    denied: Action,
    fields: dict | None = None,
) -> None:
    """The decision's event: an approval is public (the resident sees the new date)."""
    _core.record(
        case,
        action=approved if approve else denied,
        actor=actor,
        now=now,
        actor_unit=case.owner_unit,
        note=note.strip(),
        public=approve,
        fields=fields if approve else None,
        data={"request": request.pk, "days": request.days},
    )


def decide_extension(
    *,
    request: PendingRequest,
    actor: User,
    approve: bool,
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """延期审批: approval moves the deadline; the resident sees the new date."""
    now = now or timezone.now()
    with transaction.atomic():
        case, request = _decide(
            request,
            actor=actor,
            kind=PendingRequest.Kind.EXTENSION,
            approve=approve,
            now=now,
            seen_seq=seen_seq,
        )
        fields = None
        if approve:
            fields = deadlines.extension_fields(case, days=request.days or 1, now=now)
            fields["extension_count"] = case.extension_count + 1
        _record_decision(
            case,
            request,
            actor=actor,
            approve=approve,
            note=note,
            now=now,
            approved=Action.EXTENSION_APPROVED,
            denied=Action.EXTENSION_DENIED,
            fields=fields,
        )
    return case


def decide_pause(
    *,
    request: PendingRequest,
    actor: User,
    approve: bool,
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """中止审批: approval stops every clock until the case is resumed."""
    now = now or timezone.now()
    with transaction.atomic():
        case, request = _decide(
            request,
            actor=actor,
            kind=PendingRequest.Kind.PAUSE,
            approve=approve,
            now=now,
            seen_seq=seen_seq,
        )
        if approve and case.paused_at is not None:
            raise DispatchError(_("案件已中止办理，请先恢复办理"), code="paused")
        _record_decision(
            case,
            request,
            actor=actor,
            approve=approve,
            note=note,
            now=now,
            approved=Action.PAUSED,
            denied=Action.PAUSE_DENIED,
            fields={"paused_at": now},
        )
    return case


def resume_case(
    *,
    case: Case,
    actor: User,
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """恢复办理: every deadline moves on by the time the case was paused."""
    now = now or timezone.now()
    with transaction.atomic():
        case, _s = _core.begin(Op.RESUME, case=case, actor=actor, now=now, seen_seq=seen_seq)
        assert case.paused_at is not None  # the policy refuses a case that is not paused
        paused_for = int((now - case.paused_at).total_seconds())
        _core.record(
            case,
            action=Action.RESUMED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note.strip(),
            public=True,
            fields=deadlines.resume_fields(case, now=now),
            data={"paused_seconds": paused_for},
        )
    return case
