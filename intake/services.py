"""Intake at the window: the clerk's one-page screen turned into one transaction.

The case's own rules live in ``dispatch.services``; this module composes them with what only
the counter has: the party records the clerk confirmed, the files checked before the
transaction (and removed again if no case came of them), the receipt, the resident lookup.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import services as case_services
from dispatch.errors import DispatchError
from dispatch.models import Case, Category
from grids.models import Region, Unit
from intake import attachments as att
from intake.receipt import queue_receipt
from intake.selectors import clerk_centre
from people.models import Party, User
from people.services import (
    PartyConflictError,
    PartyDetails,
    find_parties,
    record_audit,
    resolve_party,
)

# A clerk looks residents up while they stand at the counter: a handful an hour. More than this
# in the window is refused, so that the lookup cannot be used to walk the county's records.
LOOKUP_LIMIT = 30
LOOKUP_WINDOW = 600


class IntakeError(Exception):
    """Intake that the rules refuse; the message is for the clerk."""

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
    """One applicant or respondent as the clerk gave them (already validated)."""

    role: str
    details: PartyDetails
    row: int = 0  # the form row, to show a conflict where it was typed


class PartyMismatchError(IntakeError):
    """A typed party matches a known record whose details differ; the clerk chooses."""

    def __init__(self, data: PartyData, conflict: PartyConflictError) -> None:
        super().__init__(conflict.args[0], code="party_mismatch")
        self.data = data
        self.party = conflict.party
        self.fields = conflict.fields


@dataclass
class IntakeResult:
    case: Case
    created: bool
    attachments: list = field(default_factory=list)


def _resolve_parties(actor: User, parties: list[PartyData]) -> list[tuple[Party, str]]:
    rows: list[tuple[Party, str]] = []
    seen: set[tuple[int, str]] = set()
    for data in parties:
        try:
            party = resolve_party(details=data.details, actor=actor)
        except PartyConflictError as conflict:
            raise PartyMismatchError(data, conflict) from None
        if (party.pk, data.role) not in seen:  # the same person typed twice in one role
            seen.add((party.pk, data.role))
            rows.append((party, data.role))
    return rows


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
    parties: list[PartyData] | None = None,
    accused_unit: Unit | None = None,
    address_detail: str = "",
    files: list[att.CheckedFile] | None = None,
    stashed: list[tuple[att.StoredFile, str]] | None = None,
    result: str = "",
    reject_reason: str = "",
    referral: str = "",
    now: dt.datetime | None = None,
) -> IntakeResult:
    """Register, resolve on the spot or refuse a request from the window, in one transaction.

    The owner centre is the clerk's centre. A retried submit with the same ``intake_key``
    returns the case the first one created and changes nothing. Raises ``PartyMismatchError`` when
    a party needs the clerk's decision; nothing is saved then.
    """
    now = now or timezone.now()
    existing = Case.objects.filter(intake_key=intake_key).first()
    if existing is not None:
        return IntakeResult(existing, created=False)
    owner = clerk_centre(actor)
    if owner is None:
        raise IntakeError(_("您不是任何综治中心的窗口受理员，不能受理诉求"), code="forbidden")
    if outcome not in (Outcome.REGISTER, Outcome.RESOLVE, Outcome.REJECT):
        raise IntakeError(_("请选择受理结果"), code="outcome")

    # Disk I/O before the transaction, not inside it; files stashed by an earlier render of the
    # same form are already in storage.
    fresh = att.store_files(list(files or []))
    stored: list[tuple[att.CheckedFile | att.StoredFile, str]] = [*(stashed or []), *fresh]
    try:
        with transaction.atomic():
            case, created = case_services.create_case(
                actor=actor,
                channel=channel,
                category=category,
                summary=summary,
                region=region,
                owner_unit=owner,
                grade=grade,
                narrative=narrative,
                parties=_resolve_parties(actor, parties or []),
                accused_unit=accused_unit,
                address_detail=address_detail,
                intake_key=intake_key,
                now=now,
            )
            rows = []
            if created:
                rows = att.attach_stored(case=case, stored=stored, actor=actor)
                if outcome == Outcome.REGISTER:
                    case = case_services.register_case(case=case, actor=actor, now=now)
                elif outcome == Outcome.RESOLVE:
                    case = case_services.resolve_on_spot(
                        case=case, actor=actor, result=result, now=now
                    )
                else:
                    case = case_services.reject_case(
                        case=case, actor=actor, reason=reject_reason, referral=referral, now=now
                    )
                queue_receipt(case)
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


def link_request(
    *,
    actor: User,
    case: Case,
    intake_key: uuid.UUID,
    summary: str,
    channel: str,
    parties: list[PartyData] | None = None,
    files: list[att.CheckedFile] | None = None,
    stashed: list[tuple[att.StoredFile, str]] | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """合并诉求: record the request, its parties and files on an existing case.

    ``case`` must come from the clerk's scoped selector. A retry with the same key records
    nothing twice.
    """
    fresh = att.store_files(list(files or []))  # before the transaction
    try:
        with transaction.atomic():
            case, event = case_services.link_request(
                case=case,
                actor=actor,
                intake_key=intake_key,
                summary=summary,
                channel=channel,
                parties=_resolve_parties(actor, parties or []),
                now=now,
            )
            if event is None:
                att.discard_files(fresh)
                return case
            carried: list[tuple[att.CheckedFile | att.StoredFile, str]] = [
                *(stashed or []),
                *fresh,
            ]
            att.attach_stored(case=case, stored=carried, actor=actor, event=event)
    except DispatchError as exc:
        att.discard_files(fresh)
        raise IntakeError(exc.message, code=exc.code) from exc
    except BaseException:
        att.discard_files(fresh)
        raise
    return case


@dataclass
class Lookup:
    parties: list[Party]
    limited: bool = False


def look_up_resident(
    *, actor: User, phone: str = "", id_number: str = "", address: str = "", now=None
) -> Lookup:
    """A returning resident at the counter, by the phone or ID number they give.

    Rate-limited per clerk; every lookup is recorded (what was searched by, how many records
    came back, never the number). The caller shows the records masked.
    """
    key = f"intake:lookup:{actor.pk}"
    cache.add(key, 0, timeout=LOOKUP_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=LOOKUP_WINDOW)
        count = 1
    by = "id_number" if id_number else "phone"
    if count > LOOKUP_LIMIT:
        record_audit(
            user=actor,
            action="party.lookup",
            outcome="limited",
            address=address,
            data={"by": by},
            now=now,
        )
        return Lookup([], limited=True)
    found = find_parties(phone=phone, id_number=id_number)
    record_audit(
        user=actor,
        action="party.lookup",
        address=address,
        data={"by": by, "found": len(found)},
        now=now,
    )
    return Lookup(found)
