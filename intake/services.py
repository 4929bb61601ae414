"""Intake at the window and the resident's own actions on the tracking page.

The transitions themselves live in ``dispatch.services``; this module composes them: one
transaction for party records, the case, its outcome and its attachment rows. Files are written
before the transaction and removed again if no case came of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch.models import Case, CaseParty, Category, PartyRole
from dispatch.services import (
    DispatchError,
    create_case,
    lock_case,
    record_event,
    register_case,
    reject_case,
)
from dispatch.states import NEGATIVE_RATINGS, Action, Satisfaction, Status
from grids.models import Region, Unit
from intake import attachments as att
from intake.selectors import REOPEN_WINDOW, can_rate, can_urge, clerk_centre
from people.models import Party, Role, User
from people.services import save_party

logger = logging.getLogger(__name__)


class IntakeError(Exception):
    """Intake or a resident's action that the rules refuse; the message is for the user."""

    def __init__(self, message: str, *, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Outcome:
    REGISTER = "register"  # 立案
    RESOLVE = "resolve"  # 当场办结
    REJECT = "reject"  # 不予受理


@dataclass
class PartyData:
    """One applicant or respondent as the clerk typed them (already validated)."""

    role: str
    name: str
    phone: str = ""
    id_number: str = ""
    address: str = ""
    is_organisation: bool = False


@dataclass
class IntakeResult:
    case: Case
    created: bool
    linked: bool = False
    attachments: list = field(default_factory=list)


def intake_case(
    *,
    actor: User,
    outcome: str,
    intake_key: uuid.UUID,
    channel: str,
    category: Category,
    summary: str,
    region: Region,
    grade: str = "ordinary",
    narrative: str = "",
    parties: list[PartyData] = (),  # type: ignore[assignment]
    accused_unit: Unit | None = None,
    address_detail: str = "",
    files: list[att.CheckedFile] = (),  # type: ignore[assignment]
    stashed: list[tuple[att.StoredFile, str]] = (),  # type: ignore[assignment]
    result: str = "",
    reject_reason: str = "",
    referral: str = "",
    now: dt.datetime | None = None,
) -> IntakeResult:
    """Register, resolve on the spot or refuse a request from the window, in one transaction.

    The owner centre is the clerk's centre. A retried submit with the same ``intake_key``
    returns the case the first one created and changes nothing.
    """
    now = now or timezone.now()
    existing = Case.objects.filter(intake_key=intake_key).first()
    if existing is not None:
        return IntakeResult(existing, created=False)
    owner = clerk_centre(actor)
    if owner is None:
        raise IntakeError(_("您不是任何综治中心的窗口受理员，不能受理诉求"), code="forbidden")
    if outcome == Outcome.RESOLVE and not result.strip():
        raise IntakeError(_("当场办结须填写处理结果"), code="result_required")
    if outcome == Outcome.REJECT and not reject_reason.strip():
        raise IntakeError(_("不予受理须填写理由"), code="reason_required")
    if outcome not in (Outcome.REGISTER, Outcome.RESOLVE, Outcome.REJECT):
        raise IntakeError(_("请选择受理结果"), code="outcome")

    # Disk I/O before the transaction, not inside it; files stashed by an earlier render of the
    # same form are already in storage.
    fresh = att.store_files(list(files))
    stored: list[tuple[att.CheckedFile | att.StoredFile, str]] = [*stashed, *fresh]
    try:
        with transaction.atomic():
            party_rows = [
                (
                    save_party(
                        name=p.name,
                        phone=p.phone,
                        id_number=p.id_number,
                        address=p.address,
                        region=region if p.role == PartyRole.APPLICANT else None,
                        is_organisation=p.is_organisation,
                    ),
                    p.role,
                )
                for p in parties
            ]
            case, created = create_case(
                actor=actor,
                channel=channel,
                category=category,
                summary=summary,
                region=region,
                owner_unit=owner,
                grade=grade,
                narrative=narrative,
                parties=_unique(party_rows),
                accused_unit=accused_unit,
                address_detail=address_detail,
                intake_key=intake_key,
                now=now,
            )
            rows = []
            if created:
                rows = att.attach_stored(case=case, stored=stored, actor=actor)
                if outcome == Outcome.REGISTER:
                    case = register_case(case=case, actor=actor, now=now)
                elif outcome == Outcome.RESOLVE:
                    from dispatch.services import resolve_on_spot

                    case = resolve_on_spot(case=case, actor=actor, result=result, now=now)
                else:
                    case = reject_case(
                        case=case, actor=actor, reason=reject_reason, referral=referral, now=now
                    )
                _queue_receipt(case)
    except DispatchError as exc:
        att.discard_files(fresh)
        raise IntakeError(exc.message, code=exc.code) from exc
    except BaseException:
        att.discard_files(fresh)
        raise
    if not created:
        # Stashed files stay: the first submit of this form attached them to its case.
        att.discard_files(fresh)
    return IntakeResult(case, created=created, attachments=rows)


def _unique(rows: list[tuple[Party, str]]) -> list[tuple[Party, str]]:
    """The same person typed twice in one role is one party row."""
    seen: set[tuple[int, str]] = set()
    out = []
    for party, role in rows:
        if (party.pk, role) not in seen:
            seen.add((party.pk, role))
            out.append((party, role))
    return out


def _queue_receipt(case: Case) -> None:
    try:
        from intake.receipt import queue_receipt
    except ImportError:  # the receipt renderer is optional for intake itself
        logger.warning("intake.receipt.queue_receipt is not available; no receipt queued")
        return
    queue_receipt(case)


def link_request(
    *,
    actor: User,
    case: Case,
    intake_key: uuid.UUID,
    summary: str,
    channel: str,
    parties: list[PartyData] = (),  # type: ignore[assignment]
    files: list[att.CheckedFile] = (),  # type: ignore[assignment]
    stashed: list[tuple[att.StoredFile, str]] = (),  # type: ignore[assignment]
    now: dt.datetime | None = None,
) -> Case:
    """合并诉求: record the request on an existing case instead of opening another.

    ``case`` must come from the clerk's scoped selector. The request's parties and files join
    the case; a retry with the same key records nothing twice.
    """
    now = now or timezone.now()
    key = str(intake_key)
    fresh = att.store_files(list(files))  # before the transaction
    try:
        with transaction.atomic():
            case = lock_case(case)
            if case.events.filter(action=Action.LINKED, data__intake_key=key).exists():
                att.discard_files(fresh)
                return case
            linked_party_ids = []
            for p in parties:
                party = save_party(
                    name=p.name,
                    phone=p.phone,
                    id_number=p.id_number,
                    address=p.address,
                    is_organisation=p.is_organisation,
                )
                linked_party_ids.append(party.pk)
                if not CaseParty.objects.filter(case=case, party=party, role=p.role).exists():
                    CaseParty.objects.create(
                        case=case, party=party, role=p.role, sort=case.case_parties.count()
                    )
            event = record_event(
                case,
                action=Action.LINKED,
                actor=actor,
                now=now,
                actor_unit=clerk_centre(actor),
                note=summary.strip(),
                is_public=False,
                data={"intake_key": key, "channel": channel, "parties": linked_party_ids},
            )
            carried: list[tuple[att.CheckedFile | att.StoredFile, str]] = [*stashed, *fresh]
            att.attach_stored(case=case, stored=carried, actor=actor, event=event)
    except BaseException:
        att.discard_files(fresh)
        raise
    return case


# --- The resident's actions (no login; the tracking token is the credential) ---------------------


def rate_case(
    *, case: Case, rating: int, comment: str = "", now: dt.datetime | None = None
) -> Case:
    """好差评: the resident rates once, after feedback or archiving."""
    now = now or timezone.now()
    try:
        rating = Satisfaction(int(rating))
    except (TypeError, ValueError):
        raise IntakeError(_("请选择评价等级"), code="rating") from None
    comment = (comment or "").strip()[:500]
    with transaction.atomic():
        case = lock_case(case)
        if case.resident_rating is not None:
            raise IntakeError(_("您已评价过本案件，每件只能评价一次"), code="rated")
        if not can_rate(case):
            raise IntakeError(_("案件办理反馈后才能评价"), code="too_early")
        record_event(
            case,
            action=Action.RATED,
            actor=None,
            now=now,
            is_public=True,
            public_unit_name="",
            note=comment,
            data={"rating": int(rating)},
            fields={"resident_rating": int(rating), "resident_comment": comment, "rated_at": now},
        )
        if rating in NEGATIVE_RATINGS:
            _notify_supervisors(
                case,
                kind="negative_rating",
                now=now,
                title=_("差评待跟进：%(code)s") % {"code": case.code},
                body=_("群众对案件%(code)s评价为“%(label)s”，请于15个工作日内跟进。")
                % {"code": case.code, "label": rating.label},
            )
    return case


def resident_reopen_case(*, case: Case, reason: str = "", now: dt.datetime | None = None) -> Case:
    """重办 asked by the resident after a negative rating: once, within 15 days of closing."""
    from dispatch.services import reopen_case

    now = now or timezone.now()
    if case.resident_rating not in NEGATIVE_RATINGS:
        raise IntakeError(_("只有不满意的评价才能申请重办"), code="not_negative")
    if case.closed_at is not None and now - case.closed_at > REOPEN_WINDOW:
        raise IntakeError(_("已超过办结后15天，不能申请重办"), code="too_late")
    try:
        return reopen_case(
            case=case, actor=None, reason=reason or _("群众评价不满意，申请重办"), now=now
        )
    except DispatchError as exc:
        raise IntakeError(exc.message, code=exc.code) from exc


def resident_urge_case(*, case: Case, now: dt.datetime | None = None) -> Case:
    """催办: while overdue, once a day; it reaches the owner centre's supervisors."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        if not can_urge(case, now=now):
            if case.resident_urged_at is not None and (
                timezone.localdate(case.resident_urged_at) == timezone.localdate(now)
            ):
                raise IntakeError(_("今天已经催办过了，请明天再试"), code="once_a_day")
            raise IntakeError(_("案件尚未超期，暂不能催办"), code="not_late")
        event = record_event(
            case,
            action=Action.RESIDENT_URGED,
            actor=None,
            now=now,
            is_public=True,
            public_unit_name="",
            fields={"resident_urged_at": now},
        )
        _notify_supervisors(
            case,
            kind="resident_urged",
            now=now,
            seq=event.seq,
            title=_("群众催办：%(code)s") % {"code": case.code},
            body=_("案件%(code)s已超期，群众通过查询页催办，请督促办理。") % {"code": case.code},
        )
    return case


def supervisors_of_owner(case: Case) -> list[User]:
    """Supervisors granted on the owner centre's region or any region above it."""
    codes = case.owner_unit.region.ancestor_codes()
    return list(
        User.objects.filter(
            is_active=True, grants__role=Role.SUPERVISOR, grants__region__code__in=codes
        ).distinct()
    )


def _notify_supervisors(
    case: Case, *, kind: str, title: str, body: str, now: dt.datetime, seq: int | None = None
) -> None:
    try:
        from dispatch.notifications import notify
    except ImportError:
        return
    users = supervisors_of_owner(case)
    if not users:
        return
    seq = seq if seq is not None else case.event_count
    notify(
        case=case,
        kind=kind,
        users=users,
        title=title,
        body=body,
        dedup_key=f"case:{case.pk}:{seq}:{kind}",
        now=now,
    )


__all__ = [
    "IntakeError",
    "IntakeResult",
    "Outcome",
    "PartyData",
    "Status",
    "intake_case",
    "link_request",
    "rate_case",
    "resident_reopen_case",
    "resident_urge_case",
]
