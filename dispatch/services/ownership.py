"""Moving a case between centres: 上报 (escalate), 下派 (delegate), 转办 (transfer).

Ownership moves never close a case and never reach the unit the case complains about.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch.errors import DispatchError
from dispatch.models import Case
from dispatch.policy import Op
from dispatch.services import _core
from dispatch.services.assignment import withdraw_live
from dispatch.states import Action, Status
from grids.models import Region, Unit, UnitKind
from grids.selectors import centre_of
from people.models import User


def upper_centre(case: Case) -> Unit | None:
    """The centre a case escalates to: the nearest one above, passing over an accused one."""
    region = case.owner_unit.region.parent
    while region is not None:
        centre = centre_of(region)
        if centre is not None and centre.is_active and centre.pk != case.accused_unit_id:
            return centre
        region = region.parent
    return None


def escalate_case(
    *,
    case: Case,
    actor: User,
    reason: str,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """上报: the centre of the level above takes the case over."""
    now = now or timezone.now()
    reason = _core.required(reason, _("上报必须填写理由"))
    with transaction.atomic():
        case, _s = _core.begin(Op.ESCALATE, case=case, actor=actor, now=now, seen_seq=seen_seq)
        target = upper_centre(case)
        if target is None:
            raise DispatchError(_("已是最高层级，无法再上报"), code="top_level")
        _move_owner(
            case,
            actor=actor,
            action=Action.ESCALATED,
            target=target,
            note=reason,
            now=now,
            extra={"escalation_count": case.escalation_count + 1},
        )
    return case


def delegate_case(
    *,
    case: Case,
    actor: User,
    to_unit: Unit,
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """下派: hand a registered case to a lower centre on the way to where it happened."""
    now = now or timezone.now()
    with transaction.atomic():
        case, _s = _core.begin(Op.DELEGATE, case=case, actor=actor, now=now, seen_seq=seen_seq)
        owner = case.owner_unit
        if (
            to_unit.kind != UnitKind.CENTRE
            or to_unit.pk == owner.pk
            or not to_unit.region.path.startswith(owner.region.path)
            or not case.region.path.startswith(to_unit.region.path)
        ):
            raise DispatchError(_("只能下派给事发地所在的下级综治中心"), code="delegate_target")
        if case.accused_unit_id == to_unit.pk:
            raise DispatchError(_("不能下派给被投诉单位"), code="accused")
        _move_owner(
            case, actor=actor, action=Action.DELEGATED, target=to_unit, note=note.strip(), now=now
        )
    return case


def transfer_case(
    *,
    case: Case,
    actor: User,
    to_unit: Unit,
    reason: str,
    region: Region | None = None,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """转办: the case belongs to another centre; it moves there (never closed as not ours).

    When the place was recorded wrongly, ``region`` corrects it; it must lie in the receiving
    centre's area, as must the place the case keeps.
    """
    now = now or timezone.now()
    reason = _core.required(reason, _("转办必须填写理由"))
    with transaction.atomic():
        case, _s = _core.begin(Op.TRANSFER, case=case, actor=actor, now=now, seen_seq=seen_seq)
        if to_unit.kind != UnitKind.CENTRE or to_unit.pk == case.owner_unit_id:
            raise DispatchError(_("请选择接收转办的其他综治中心"), code="transfer_target")
        if case.accused_unit_id == to_unit.pk:
            raise DispatchError(_("不能转办给被投诉单位"), code="accused")
        place = region or case.region
        if not place.path.startswith(to_unit.region.path):
            raise DispatchError(
                _("事发地%(region)s不在%(unit)s辖区内，请同时更正事发地")
                % {"region": place.name, "unit": to_unit.name},
                code="territory",
            )
        _move_owner(
            case,
            actor=actor,
            action=Action.TRANSFERRED,
            target=to_unit,
            note=reason,
            now=now,
            extra={"region": place} if region is not None else None,
        )
    return case


def _move_owner(
    case: Case,
    *,
    actor: User,
    action: Action,
    target: Unit,
    note: str,
    now: dt.datetime,
    extra: dict | None = None,
) -> None:
    previous = case.owner_unit
    fields = {
        "owner_unit": target,
        "owner_level": target.level,
        "lead_unit": None,
        "signed_at": None,
        **(extra or {}),
    }
    if case.status == Status.REPORTED:
        fields["registered_at"] = now
    withdraw_live(case, now=now)
    _core.transition(
        case,
        action=action,
        actor=actor,
        now=now,
        actor_unit=previous,
        note=note,
        # The resident's timeline names the centre that now holds the case.
        public=True,
        public_unit=target,
        data={"from_unit": previous.pk, "to_unit": target.pk},
        fields=fields,
    )
