"""The only writers of a case's state. One function per transition, keyword-only.

Each transition: one transaction, the case row locked with ``select_for_update``, the table in
``dispatch.states`` checked, fields saved with ``update_fields``, one event appended. Side
effects (tasks, SMS, PDFs) are queued with ``transaction.on_commit``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch.codes import new_case_code, new_tracking_token
from dispatch.events import append_event
from dispatch.models import Case, CaseParty, Category
from dispatch.states import Action, Status, target_status
from grids.models import Region, Unit
from people.models import Party, User


class DispatchError(Exception):
    """A transition the rules refuse. The message is translated and shown to the user."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class StaleCaseError(DispatchError):
    """Someone else changed the case first (two dispatchers, a retried request)."""


def lock_case(case: Case | int) -> Case:
    """Re-read the case under a row lock; call inside ``transaction.atomic``."""
    pk = case.pk if isinstance(case, Case) else case
    return Case.objects.select_for_update().get(pk=pk)


def apply_transition(
    case: Case,
    *,
    action: Action,
    actor: User | None,
    now: dt.datetime,
    actor_unit: Unit | None = None,
    note: str = "",
    is_public: bool = False,
    public_unit_name: str = "",
    data: dict | None = None,
    fields: dict | None = None,
    expected_status: Status | str | None = None,
):
    """Check the table, set the new status and ``fields``, append the event, save.

    ``case`` must be the instance returned by ``lock_case`` in the current transaction.
    ``expected_status`` is the status the user saw: if it has moved on, the user gets a clear
    "someone else acted first" instead of an action applied to a state they never saw.
    """
    if expected_status is not None and case.status != expected_status:
        raise StaleCaseError(
            _("案件状态已被他人更新为“%(status)s”，请刷新后重试")
            % {"status": Status(case.status).label},
            code="stale",
        )
    old = case.status
    new = target_status(action, old)
    if new is None:
        raise DispatchError(
            _("案件当前为“%(status)s”，不能执行“%(action)s”")
            % {"status": Status(old).label, "action": Action(action).label},
            code="transition",
        )
    update_fields = {"event_count", "last_event_hash", "updated_at"}
    for name, value in (fields or {}).items():
        setattr(case, name, value)
        update_fields.add(name)
    if new != old:
        case.status = new
        update_fields.add("status")
    event = append_event(
        case=case,
        action=action,
        at=now,
        actor=actor,
        actor_unit=actor_unit,
        from_status=old,
        to_status=new,
        note=note,
        is_public=is_public,
        public_unit_name=public_unit_name,
        data=data,
    )
    case.save(update_fields=sorted(update_fields))
    return event


def record_event(
    case: Case,
    *,
    action: Action,
    actor: User | None,
    now: dt.datetime,
    actor_unit: Unit | None = None,
    note: str = "",
    is_public: bool = False,
    public_unit_name: str = "",
    data: dict | None = None,
    fields: dict | None = None,
):
    """An event that does not move the step (urging, progress, ratings). Case locked by caller."""
    update_fields = {"event_count", "last_event_hash", "updated_at"}
    for name, value in (fields or {}).items():
        setattr(case, name, value)
        update_fields.add(name)
    event = append_event(
        case=case,
        action=action,
        at=now,
        actor=actor,
        actor_unit=actor_unit,
        from_status=case.status,
        to_status=case.status,
        note=note,
        is_public=is_public,
        public_unit_name=public_unit_name,
        data=data,
    )
    case.save(update_fields=sorted(update_fields))
    return event


def create_case(
    *,
    actor: User | None,
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
    case the first submit created.
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
                created_by=actor,
                reported_at=now,
            )
            case.save(force_insert=True)
            CaseParty.objects.bulk_create(
                CaseParty(case=case, party=party, role=role, sort=i)
                for i, (party, role) in enumerate(parties)
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
    actor: User | None,
    category: Category | None = None,
    grade: str | None = None,
    now: dt.datetime | None = None,
    expected_status: str | None = None,
) -> Case:
    """立案: accept a reported case into the loop; routing runs after commit."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        fields: dict = {"registered_at": now}
        if category is not None:
            fields["category"] = category
        if grade is not None:
            fields["grade"] = grade
        apply_transition(
            case,
            action=Action.REGISTERED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            is_public=True,
            public_unit_name=case.owner_unit.name,
            fields=fields,
            expected_status=expected_status,
        )
        _after_commit_route(case)
    return case


def _after_commit_route(case: Case) -> None:
    from dispatch import tasks  # tasks import services; import here to keep the cycle lazy

    case_id = case.pk
    transaction.on_commit(lambda: tasks.route_case.delay(case_id))


def reject_case(
    *,
    case: Case,
    actor: User | None,
    reason: str,
    referral: str = "",
    now: dt.datetime | None = None,
) -> Case:
    """不予受理: refuse with the reason and where to go instead (printed on the receipt)."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise DispatchError(_("不予受理必须填写理由"), code="reason_required")
    with transaction.atomic():
        case = lock_case(case)
        apply_transition(
            case,
            action=Action.REJECTED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=reason,
            is_public=True,
            public_unit_name=case.owner_unit.name,
            data={"referral": referral.strip()},
            fields={"reject_reason": reason, "referral": referral.strip(), "closed_at": now},
        )
    return case


def reissue_tracking_token(*, case: Case, actor: User, now: dt.datetime | None = None) -> Case:
    """A lost receipt: a new token for the QR; the old one stops working at once."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        record_event(
            case,
            action=Action.TOKEN_REISSUED,
            actor=actor,
            now=now,
            fields={"tracking_token": new_tracking_token()},
        )
    return case
