"""Tasks: 派单 (one lead unit and assisting units), 签收, 退回, 吹哨报到."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import deadlines, recipients
from dispatch.actors import Actor, user_of
from dispatch.errors import DispatchError
from dispatch.models import (
    Assignment,
    AssignmentRole,
    AssignmentStatus,
    Case,
    CaseEvent,
    DeadlineProfile,
)
from dispatch.notifications import notify
from dispatch.policy import LIVE_TASK, Op
from dispatch.services import _core
from dispatch.states import Action
from grids.models import Level, Unit
from people.models import User


def check_dispatch_target(case: Case, unit: Unit) -> None:
    """属地管理: the unit serves the place, and sits at or below the owner centre's level."""
    if case.accused_unit_id and unit.pk == case.accused_unit_id:
        raise DispatchError(
            _("“%(unit)s”是本案的被投诉单位，不能向其派单") % {"unit": unit.name},
            code="accused",
        )
    if not unit.is_active:
        raise DispatchError(_("“%(unit)s”已停用") % {"unit": unit.name}, code="inactive_unit")
    owner = case.owner_unit
    if not unit.region.path.startswith(owner.region.path):
        raise DispatchError(
            _("“%(unit)s”（%(level)s）不在本中心的派单范围内，请上报上级中心派单")
            % {"unit": unit.name, "level": Level(unit.level).label},
            code="level",
        )
    if not case.region.path.startswith(unit.region.path):
        raise DispatchError(
            _("“%(unit)s”不负责事发地%(region)s，请选择属地单位")
            % {"unit": unit.name, "region": case.region.name},
            code="territory",
        )


def withdraw_live(case: Case, *, now: dt.datetime) -> None:
    case.assignments.filter(status__in=LIVE_TASK).update(
        status=AssignmentStatus.WITHDRAWN, finished_at=now
    )


def dispatch_case(
    *,
    case: Case,
    actor: Actor,
    unit: Unit,
    assisting_units: Iterable[Unit] = (),
    profile: DeadlineProfile | None = None,
    due_at: dt.datetime | None = None,
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """派单: give a registered case to one lead unit (主办) and any assisting units (协办).

    ``actor`` is a dispatcher, or a routing rule (``dispatch.actors.routing_rule``) that
    dispatches by itself.
    """
    now = now or timezone.now()
    note = note.strip()
    assisting = [u for u in assisting_units if u.pk != unit.pk]
    if len({u.pk for u in assisting}) != len(assisting):
        raise DispatchError(_("协办单位不能重复"), code="duplicate_unit")
    with transaction.atomic():
        case, _s = _core.begin(Op.DISPATCH, case=case, actor=actor, now=now, seen_seq=seen_seq)
        for target in [unit, *assisting]:
            check_dispatch_target(case, target)
        profile = profile or case.profile
        fields: dict = {
            "lead_unit": unit,
            "assigned_at": now,
            "needs_routing": False,
            "profile": profile,
        }
        first_dispatch = case.due_at is None
        if profile is not None:
            computed = deadlines.deadline_fields(case, profile=profile, start=now)
            fields.update(computed if first_dispatch else {"sign_due_at": computed["sign_due_at"]})
        elif due_at is None and first_dispatch:
            raise DispatchError(_("请选择时限方案或填写办结期限"), code="deadline_required")
        if due_at is not None:
            if due_at <= now:
                raise DispatchError(_("办结期限必须晚于当前时间"), code="due_in_past")
            ratio = float(profile.warn_ratio) if profile is not None else 0.8
            fields["due_at"] = due_at
            fields["warn_at"] = now + (due_at - now) * ratio
        event = _core.transition(
            case,
            action=Action.DISPATCHED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note,
            public=True,
            fields=fields,
            data={
                "lead": unit.pk,
                "lead_name": unit.name,
                "assist": [u.pk for u in assisting],
                "assist_names": [u.name for u in assisting],
            },
        )
        by = user_of(actor)
        Assignment.objects.bulk_create(
            Assignment(
                case=case,
                unit=u,
                role=AssignmentRole.LEAD if u is unit else AssignmentRole.ASSIST,
                assigned_by=by,
                assigned_at=now,
                note=note,
            )
            for u in [unit, *assisting]
        )
        notify(
            case=case,
            kind="assigned",
            params={"code": case.code, "category": case.category.name, "summary": case.summary},
            users=recipients.handlers_of(case, [unit, *assisting]),
            key=f"case:{case.pk}:{event.seq}:assigned",
            now=now,
        )
    return case


def sign_case(
    *,
    case: Case,
    actor: User,
    unit: Unit | None = None,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """签收: the lead's signature moves the case to 调查落实; an assisting unit's is recorded."""
    now = now or timezone.now()
    with transaction.atomic():
        case, subject = _core.begin(Op.SIGN, case=case, actor=actor, now=now, seen_seq=seen_seq)
        task = subject.task(
            unit_id=unit.pk if unit is not None else None, status=AssignmentStatus.PENDING
        )
        if task is None:
            raise DispatchError(_("本单位已签收该任务"), code="already_signed")
        sign_locked(case, task, actor=actor, now=now)
    return case


def sign_locked(case: Case, assignment: Assignment, *, actor: User, now: dt.datetime) -> None:
    assignment.status = AssignmentStatus.SIGNED
    assignment.signed_at = now
    assignment.signed_by = actor
    assignment.save(update_fields=["status", "signed_at", "signed_by"])
    if assignment.role == AssignmentRole.LEAD:
        _core.transition(
            case,
            action=Action.SIGNED,
            actor=actor,
            now=now,
            actor_unit=assignment.unit,
            public=True,
            fields={"signed_at": now},
        )
    else:
        _core.record(
            case,
            action=Action.SIGNED,
            actor=actor,
            now=now,
            actor_unit=assignment.unit,
            data={"role": AssignmentRole.ASSIST},
        )


def return_case(
    *,
    case: Case,
    actor: User,
    reason: str,
    unit: Unit | None = None,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """退回: a wrongly assigned task goes back to the dispatcher, with the reason.

    The returning unit keeps no sight of the case: it was never theirs.
    """
    now = now or timezone.now()
    reason = _core.required(reason, _("退回必须填写理由"))
    with transaction.atomic():
        case, subject = _core.begin(Op.RETURN, case=case, actor=actor, now=now, seen_seq=seen_seq)
        task = subject.task(unit_id=unit.pk if unit is not None else None)
        if task is None:
            raise DispatchError(_("您没有办理该案件此项操作的权限"), code="forbidden")
        task.status = AssignmentStatus.RETURNED
        task.finished_at = now
        task.note = reason
        task.save(update_fields=["status", "finished_at", "note"])
        if task.role == AssignmentRole.LEAD:
            withdraw_live(case, now=now)
            _core.transition(
                case,
                action=Action.RETURNED,
                actor=actor,
                now=now,
                actor_unit=task.unit,
                note=reason,
                fields={
                    "lead_unit": None,
                    "signed_at": None,
                    "return_count": case.return_count + 1,
                },
            )
        else:
            _core.record(
                case,
                action=Action.RETURNED,
                actor=actor,
                now=now,
                actor_unit=task.unit,
                note=reason,
                data={"role": AssignmentRole.ASSIST},
            )
    return case


def summon_units(
    *,
    case: Case,
    actor: User,
    units: Iterable[Unit],
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """吹哨报到: the centre summons several departments to an assigned case at once."""
    now = now or timezone.now()
    units = list(units)
    note = note.strip()
    if not units:
        raise DispatchError(_("请选择要召集的部门"), code="units_required")
    with transaction.atomic():
        case, subject = _core.begin(Op.SUMMON, case=case, actor=actor, now=now, seen_seq=seen_seq)
        live = {a.unit_id for a in subject.live_tasks}
        new_units = [u for u in units if u.pk not in live]
        if not new_units:
            raise DispatchError(_("所选部门均已在办理该案件"), code="duplicate_unit")
        for unit in new_units:
            check_dispatch_target(case, unit)
        Assignment.objects.bulk_create(
            Assignment(
                case=case,
                unit=u,
                role=AssignmentRole.ASSIST,
                assigned_by=actor,
                assigned_at=now,
                note=note,
            )
            for u in new_units
        )
        event: CaseEvent = _core.record(
            case,
            action=Action.SUMMONED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note,
            public=True,
            data={"units": [u.pk for u in new_units], "unit_names": [u.name for u in new_units]},
        )
        notify(
            case=case,
            kind="summoned",
            params={"code": case.code, "centre": case.owner_unit.name, "summary": case.summary},
            users=recipients.handlers_of(case, new_units),
            key=f"case:{case.pk}:{event.seq}:assigned",
            now=now,
        )
    return case
