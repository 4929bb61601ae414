"""Opening a case: 问题上报, 立案, 不予受理, 当场办结, a request joined to a case, the receipt."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import outbox
from dispatch.actors import Actor, user_of
from dispatch.codes import new_case_code, new_tracking_token
from dispatch.errors import DispatchError
from dispatch.events import append_event
from dispatch.models import Assignment, AssignmentRole, Case, CaseEvent, CaseParty, Category
from dispatch.policy import Op, closing_level
from dispatch.services import _core
from dispatch.services.assignment import sign_locked
from dispatch.services.closing import archive_locked, notify_closed
from dispatch.services.handling import feedback_locked
from dispatch.states import Action, Status
from grids.models import Region, Unit
from people.models import Party, User

ROUTE_TOPIC = "case.route"


def _party_row(case: Case, party: Party, role: str, sort: int) -> CaseParty:
    """The party as given for this case: their details now, kept with the case."""
    return CaseParty(
        case=case,
        party=party,
        role=role,
        sort=sort,
        name=party.name,
        phone=party.phone,
        phone_last4=party.phone_last4,
        address=party.address,
        is_organisation=party.is_organisation,
    )


def create_case(
    *,
    actor: Actor,
    channel: str,
    category: Category,
    summary: str,
    region: Region,
    owner_unit: Unit,
    grade: str = "ordinary",
    narrative: str = "",
    parties: Iterable[tuple[Party, str]] = (),
    accused_unit: Unit | None = None,
    address_detail: str = "",
    latitude=None,
    longitude=None,
    intake_key: uuid.UUID | None = None,
    now: dt.datetime | None = None,
) -> tuple[Case, bool]:
    """Open a case at step 1 (问题上报) with its code and tracking token.

    Returns ``(case, created)``. A retried submit with the same ``intake_key`` returns the
    case the first submit created. Each party is recorded with the details it has now.
    """
    now = now or timezone.now()
    if intake_key is not None:
        existing = Case.objects.filter(intake_key=intake_key).first()
        if existing is not None:
            return existing, False
    if accused_unit is not None and owner_unit.pk == accused_unit.pk:
        raise DispatchError(_("被投诉单位不能受理针对自己的诉求"), code="accused")
    local_day = timezone.localtime(now).date()
    try:
        with transaction.atomic():
            case = Case(
                code=new_case_code(county_code=region.county_code, on=local_day),
                tracking_token=new_tracking_token(),
                intake_key=intake_key,
                channel=channel,
                category=category,
                grade=grade,
                summary=summary.strip(),
                narrative=narrative.strip(),
                region=region,
                address_detail=address_detail.strip(),
                latitude=latitude,
                longitude=longitude,
                accused_unit=accused_unit,
                status=Status.REPORTED,
                owner_unit=owner_unit,
                owner_level=owner_unit.level,
                intake_unit=owner_unit,
                created_by=user_of(actor),
                reported_at=now,
            )
            case.save(force_insert=True)
            CaseParty.objects.bulk_create(
                _party_row(case, party, role, i) for i, (party, role) in enumerate(parties)
            )
            append_event(
                case=case,
                action=Action.REPORTED,
                at=now,
                actor=actor,
                actor_unit=owner_unit,
                to_status=Status.REPORTED,
                is_public=True,
                public_unit_name=owner_unit.name,
                data={"channel": channel},
            )
            case.save(update_fields=["event_count", "last_event_hash"])
    except IntegrityError:
        # Two submits with one key raced past the check above: the loser returns the winner.
        if intake_key is not None:
            existing = Case.objects.filter(intake_key=intake_key).first()
            if existing is not None:
                return existing, False
        raise
    return case, True


def register_case(
    *,
    case: Case,
    actor: User,
    category: Category | None = None,
    grade: str | None = None,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """立案: accept a reported case into the loop; routing runs after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        case, _s = _core.begin(Op.REGISTER, case=case, actor=actor, now=now, seen_seq=seen_seq)
        fields: dict = {"registered_at": now}
        if category is not None:
            fields["category"] = category
        if grade is not None:
            fields["grade"] = grade
        event = _core.transition(
            case,
            action=Action.REGISTERED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            public=True,
            fields=fields,
        )
        queue_routing(case, event)
    return case


def queue_routing(case: Case, event: CaseEvent) -> None:
    """Routing runs from the outbox once the registration has committed."""
    outbox.enqueue(
        ROUTE_TOPIC,
        key=f"route:{case.pk}:{event.seq}",
        payload={"case_id": case.pk},
        now=event.at,
    )


def reject_case(
    *,
    case: Case,
    actor: User,
    reason: str,
    referral: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """不予受理: refuse with the reason and where to go instead (printed on the receipt)."""
    now = now or timezone.now()
    reason = _core.required(reason, _("不予受理必须填写理由"))
    referral = referral.strip()
    with transaction.atomic():
        case, _s = _core.begin(Op.REJECT, case=case, actor=actor, now=now, seen_seq=seen_seq)
        _core.transition(
            case,
            action=Action.REJECTED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=reason,
            public=True,
            data={"referral": referral},
            fields={"reject_reason": reason, "referral": referral, "closed_at": now},
        )
    return case


def resolve_on_spot(
    *,
    case: Case,
    actor: User,
    result: str,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """当场办结: the clerk's centre registers, handles, verifies and archives at once.

    Every step of the loop is still its own event, in one transaction; no routing runs. A grid
    worker may do the same for a case in their own grid: it then counts as closed at grid
    level (小问题不出网格), which the grade rule must allow.
    """
    now = now or timezone.now()
    result = _core.required(result, _("请填写当场办结的处理结果"), "result_required")
    with transaction.atomic():
        case, subject = _core.begin(Op.RESOLVE, case=case, actor=actor, now=now, seen_seq=seen_seq)
        level = closing_level(subject)
        owner = case.owner_unit
        _core.transition(
            case,
            action=Action.REGISTERED,
            actor=actor,
            now=now,
            actor_unit=owner,
            public=True,
            fields={"registered_at": now},
        )
        _core.transition(
            case,
            action=Action.DISPATCHED,
            actor=actor,
            now=now,
            actor_unit=owner,
            public=True,
            fields={"lead_unit": owner, "assigned_at": now, "due_at": now, "sign_due_at": now},
            data={"lead": owner.pk, "lead_name": owner.name, "on_spot": True},
        )
        assignment = Assignment.objects.create(
            case=case,
            unit=owner,
            role=AssignmentRole.LEAD,
            assigned_by=actor,
            assigned_at=now,
        )
        sign_locked(case, assignment, actor=actor, now=now)
        feedback_locked(case, assignment, actor=actor, result=result, now=now)
        event = archive_locked(case, actor=actor, carried_out=True, note="", now=now, level=level)
        notify_closed(case, event, now=now)
    return case


def reissue_tracking_token(
    *, case: Case, actor: User, seen_seq: int | None = None, now: dt.datetime | None = None
) -> Case:
    """A lost receipt: a new token for the QR; the old one stops working at once."""
    now = now or timezone.now()
    with transaction.atomic():
        case, _s = _core.begin(Op.REISSUE_TOKEN, case=case, actor=actor, now=now, seen_seq=seen_seq)
        _core.record(
            case,
            action=Action.TOKEN_REISSUED,
            actor=actor,
            now=now,
            actor_unit=case.intake_unit,
            fields={"tracking_token": new_tracking_token()},
        )
    return case


def attach_receipt(*, case_id: int, replaces: str, name: str) -> bool:
    """Point the case at its newly rendered receipt PDF, unless another render won first.

    A compare-and-swap on the file name, outside any transaction: two renders racing leave the
    newer file in place, and the loser learns it should remove its own file.
    """
    return bool(Case.objects.filter(pk=case_id, receipt_pdf=replaces).update(receipt_pdf=name))


def link_request(
    *,
    case: Case,
    actor: User,
    intake_key: uuid.UUID,
    summary: str,
    channel: str,
    parties: Iterable[tuple[Party, str]] = (),
    now: dt.datetime | None = None,
) -> tuple[Case, CaseEvent | None]:
    """合并诉求: record a request on an existing case instead of opening another.

    The request's parties join the case. Returns the case and the event, or None as the event
    when this form's key was already recorded (a retry records nothing twice).
    """
    now = now or timezone.now()
    key = str(intake_key)
    with transaction.atomic():
        case, _s = _core.begin(Op.LINK, case=case, actor=actor, now=now)
        if case.events.filter(action=Action.LINKED, data__intake_key=key).exists():
            return case, None
        joined = []
        sort = case.case_parties.count()
        for party, role in parties:
            joined.append(party.pk)
            if not CaseParty.objects.filter(case=case, party=party, role=role).exists():
                _party_row(case, party, role, sort).save()
                sort += 1
        event = _core.record(
            case,
            action=Action.LINKED,
            actor=actor,
            now=now,
            actor_unit=case.intake_unit,
            note=summary.strip(),
            data={"intake_key": key, "channel": channel, "parties": joined},
        )
    return case, event
