"""Writers for staff grants, residents (parties to cases) and the audit records."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from grids.models import Region, Unit
from people.identity import normalize_id_number, normalize_phone
from people.models import (
    ADMIN_ROLES,
    AuditRecord,
    Party,
    PartyChange,
    Role,
    RoleGrant,
    User,
    id_number_index,
    phone_index,
)


class PeopleError(Exception):
    """A change to people that the rules refuse; the message is for the user."""


def grant_role(
    *, user: User, role: str, region: Region | None = None, unit: Unit | None = None
) -> RoleGrant:
    """Give ``user`` a role on a node or in a unit (idempotent)."""
    if region is None and unit is None:
        raise PeopleError(_("授权必须指定区划或单位"))
    if role in ADMIN_ROLES:
        held = set(user.grants.filter(role__in=ADMIN_ROLES).values_list("role", flat=True))
        if held - {role}:
            raise PeopleError(_("系统管理员、安全管理员、审计管理员须由不同人员担任（三权分立）"))
    with transaction.atomic():
        grant, _created = RoleGrant.objects.get_or_create(
            user=user, role=Role(role), region=region, unit=unit
        )
    return grant


@dataclass
class PartyDetails:
    """A party as the clerk gave them for one case (phone and ID number already normalised)."""

    name: str
    phone: str = ""
    id_number: str = ""
    address: str = ""
    is_organisation: bool = False
    # The record the clerk chose after a lookup ("use this"): its details on file stand for
    # whatever the clerk left empty.
    known_id: int | None = None
    # The clerk confirmed that a record matching the ID number or phone is this person and the
    # details typed now replace those on file (the earlier ones are kept in ``PartyChange``).
    same_person: bool = False


class PartyConflictError(PeopleError):
    """The ID number or phone matches a record whose other details differ: the clerk decides."""

    def __init__(self, party: Party, fields: list[str]) -> None:
        super().__init__(_("身份证号或电话与已登记的当事人一致，但其他信息不同"))
        self.party = party
        self.fields = fields


COMPARED = ("name", "phone", "address")


def matching_party(details: PartyDetails) -> Party | None:
    """The record this person already has: the one chosen, else by ID number, else by phone
    and the same name (two people may share a family phone)."""
    if details.known_id is not None:
        return Party.objects.filter(pk=details.known_id).first()
    if details.id_number:
        return Party.objects.filter(id_number_index=id_number_index(details.id_number)).first()
    if details.phone and details.name:
        return Party.objects.filter(
            phone_index=phone_index(details.phone), name=details.name.strip()
        ).first()
    return None


def differences(party: Party, details: PartyDetails) -> list[str]:
    """The details typed now that differ from the record (empty ones say nothing)."""
    typed = {"name": details.name.strip(), "phone": details.phone, "address": details.address}
    return [f for f in COMPARED if typed[f] and typed[f] != getattr(party, f)]


def save_party(
    *,
    name: str,
    phone: str = "",
    id_number: str = "",
    address: str = "",
    is_organisation: bool = False,
    actor: User | None = None,
    same_person: bool = False,
) -> Party:
    """``resolve_party`` for values not yet normalised (loaders, the demo, tests)."""
    details = PartyDetails(
        name=name,
        phone=normalize_phone(phone) if phone.strip() else "",
        id_number=normalize_id_number(id_number) if id_number.strip() else "",
        address=address,
        is_organisation=is_organisation,
        same_person=same_person,
    )
    return resolve_party(details=details, actor=actor)


def resolve_party(*, details: PartyDetails, actor: User | None, now=None) -> Party:
    """The party record for this case: a new one, or the matching one, never overwritten
    without the clerk's word.

    Raises ``PartyConflictError`` when a record matches by ID number or phone but differs in name,
    phone or address and the clerk has not confirmed it is the same person, and
    ``django.core.exceptions.ValidationError`` for a bad phone or ID number.
    """
    now = now or timezone.now()
    for _attempt in range(2):
        with transaction.atomic():
            party = matching_party(details)
            if party is None:
                try:
                    with transaction.atomic():
                        return Party.objects.create(**_values(details))
                except IntegrityError:
                    continue  # another clerk created the same resident a moment ago
            party = Party.objects.select_for_update().get(pk=party.pk)
            changed = differences(party, details)
            if not changed:
                return party
            # Choosing the record after a lookup is the clerk's word that it is this person.
            if actor is None or not (details.same_person or details.known_id is not None):
                raise PartyConflictError(party, changed)
            PartyChange.objects.create(
                party=party,
                changed_at=now,
                changed_by=actor,
                old_name=party.name,
                old_phone=party.phone,
                old_address=party.address,
                fields=changed,
            )
            values = _values(details)
            replaced = {
                "name": ["name"],
                "phone": ["phone", "phone_index", "phone_last4"],
                "address": ["address"],
            }
            for field in changed:
                for column in replaced[field]:
                    setattr(party, column, values[column])
            party.save()
            return party
    raise PeopleError(_("保存当事人失败，请重试"))


def _values(details: PartyDetails) -> dict:
    return {
        "name": details.name.strip(),
        "phone": details.phone,
        "phone_index": phone_index(details.phone),
        "phone_last4": details.phone[-4:],
        "id_number": details.id_number,
        "id_number_index": id_number_index(details.id_number),
        "address": details.address.strip(),
        "is_organisation": details.is_organisation,
    }


def record_audit(
    *,
    user: User | None,
    action: str,
    outcome: str = "ok",
    object_type: str = "",
    object_id: str = "",
    address: str = "",
    data: dict | None = None,
    now=None,
) -> AuditRecord:
    """Append one audit record; ``data`` must hold no personal value."""
    return AuditRecord.objects.create(
        at=now or timezone.now(),
        user=user,
        action=action,
        outcome=outcome,
        object_type=object_type,
        object_id=str(object_id),
        address=address[:64],
        data=data or {},
    )


def find_parties(*, phone: str = "", id_number: str = "") -> list[Party]:
    """Residents matching a phone or ID number exactly, through the blind indexes."""
    if id_number:
        return list(
            Party.objects.filter(id_number_index=id_number_index(normalize_id_number(id_number)))
        )
    if phone:
        return list(Party.objects.filter(phone_index=phone_index(normalize_phone(phone))))
    return []
