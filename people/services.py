"""Writers for staff grants and case parties."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from grids.models import Region, Unit
from people.identity import normalize_id_number, normalize_phone
from people.models import ADMIN_ROLES, Party, Role, RoleGrant, User, id_number_index, phone_index


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


def save_party(
    *,
    name: str,
    phone: str = "",
    id_number: str = "",
    address: str = "",
    region: Region | None = None,
    is_organisation: bool = False,
) -> Party:
    """Find the resident by ID number (else phone and name) and update them, or create them.

    Raises ``django.core.exceptions.ValidationError`` for a bad phone or ID number.
    """
    name = name.strip()
    phone = normalize_phone(phone) if phone.strip() else ""
    id_number = normalize_id_number(id_number) if id_number.strip() else ""
    values = {
        "name": name,
        "phone": phone,
        "phone_index": phone_index(phone),
        "phone_last4": phone[-4:],
        "id_number": id_number,
        "id_number_index": id_number_index(id_number),
        "address": address.strip(),
        "region": region,
        "is_organisation": is_organisation,
    }
    for _attempt in range(2):
        with transaction.atomic():
            party = None
            if id_number:
                party = (
                    Party.objects.select_for_update()
                    .filter(id_number_index=values["id_number_index"])
                    .first()
                )
            elif phone:
                party = (
                    Party.objects.select_for_update()
                    .filter(phone_index=values["phone_index"], name=name)
                    .first()
                )
            if party is None:
                try:
                    with transaction.atomic():
                        return Party.objects.create(**values)
                except IntegrityError:
                    continue  # another clerk created the same resident a moment ago
            for field, value in values.items():
                # A returning resident keeps details the clerk did not retype.
                if value not in ("", None):
                    setattr(party, field, value)
            party.save()
            return party
    raise PeopleError(_("保存当事人失败，请重试"))


def find_parties(*, phone: str = "", id_number: str = "") -> list[Party]:
    """Residents matching a phone or ID number exactly, through the blind indexes."""
    if id_number:
        return list(
            Party.objects.filter(id_number_index=id_number_index(normalize_id_number(id_number)))
        )
    if phone:
        return list(Party.objects.filter(phone_index=phone_index(normalize_phone(phone))))
    return []
