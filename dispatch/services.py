"""The only writers of a case's state. One function per transition, keyword-only.

Each transition: one transaction, the case row locked with ``select_for_update``, the table in
``dispatch.states`` checked, fields saved with ``update_fields``, one event appended. Side
effects (tasks, SMS, PDFs) are queued with ``transaction.on_commit``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch.attachments import CheckedFile, attach_stored, files_stored
from dispatch.codes import new_case_code, new_tracking_token
from dispatch.events import append_event
from dispatch.models import (
    Assignment,
    AssignmentRole,
    AssignmentStatus,
    Case,
    CaseEvent,
    CaseParty,
    Category,
    DeadlineProfile,
    PartyRole,
    PendingRequest,
)
from dispatch.states import (
    GRADE_MIN_CLOSE_LEVEL,
    Action,
    Grade,
    Satisfaction,
    Status,
    target_status,
)
from grids.models import LEVEL_ORDER, Level, Region, Unit, UnitKind
from grids.selectors import centre_of
from people.models import Party, Role, RoleGrant, User
from people.selectors import roles_of, staff_with_role

LIVE_ASSIGNMENT = (AssignmentStatus.PENDING, AssignmentStatus.SIGNED)


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


def check_expected_status(case: Case, expected_status: Status | str | None) -> None:
    """Refuse when the case has moved on since the user saw it (two dispatchers at once)."""
    if expected_status is not None and case.status != expected_status:
        raise StaleCaseError(
            _("案件状态已被他人更新为“%(status)s”，请刷新后重试")
            % {"status": Status(case.status).label},
            code="stale",
        )


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
    check_expected_status(case, expected_status)
    old = case.status
    new = target_status(action, old)
    if new is None:
        raise DispatchError(
            _("案件当前为“%(status)s”，不能执行“%(action)s”")
            % {"status": Status(old).label, "action": Action(action).label},
            code="transition",
        )
    return _save_with_event(
        case,
        new_status=new,
        fields=fields,
        action=action,
        at=now,
        actor=actor,
        actor_unit=actor_unit,
        note=note,
        is_public=is_public,
        public_unit_name=public_unit_name,
        data=data,
    )


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
    return _save_with_event(
        case,
        new_status=case.status,
        fields=fields,
        action=action,
        at=now,
        actor=actor,
        actor_unit=actor_unit,
        note=note,
        is_public=is_public,
        public_unit_name=public_unit_name,
        data=data,
    )


def _save_with_event(case: Case, *, new_status: str, fields: dict | None, **event):
    """Set ``fields`` and the status, append the event, save only what changed."""
    update_fields = {"event_count", "last_event_hash", "updated_at"}
    for name, value in (fields or {}).items():
        setattr(case, name, value)
        update_fields.add(name)
    old_status = case.status
    if new_status != old_status:
        case.status = new_status
        update_fields.add("status")
    appended = append_event(case=case, from_status=old_status, to_status=new_status, **event)
    case.save(update_fields=sorted(update_fields))
    return appended


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
        if not acts_for_centre(actor, case, REGISTER_ROLES):
            raise _forbidden()
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
    expected_status: str | None = None,
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
            expected_status=expected_status,
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


# --- Who may act -----------------------------------------------------------------------------
#
# Roles come from grants on tree nodes (people.selectors). A dispatcher or supervisor acts for
# every centre in the subtree of the region they are granted on; a handler acts for the unit
# they are granted in (a lower centre acting as handler: its handlers granted on its region).
# ``actor=None`` is the system itself (routing rules, the sweeper, the resident's own page).

MANAGER_ROLES = (Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER)
REGISTER_ROLES = (Role.CLERK, Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER)
SUPERVISE_ROLES = (Role.SUPERVISOR, Role.LEADER)


def _forbidden() -> DispatchError:
    return DispatchError(_("您没有办理该案件此项操作的权限"), code="forbidden")


def _grant_path(grant) -> str | None:
    """The subtree a grant covers, or None when it covers one non-centre unit only."""
    if grant.region_id:
        return grant.region.path
    if grant.unit.kind == UnitKind.CENTRE:
        return grant.unit.region.path
    return None


def acts_for_centre(user: User | None, case: Case, roles: Iterable[str]) -> bool:
    """Does ``user`` hold one of ``roles`` over the centre that owns ``case``?"""
    if user is None:
        return True
    owner = case.owner_unit
    roles = set(roles)
    for grant in roles_of(user):
        if grant.role not in roles:
            continue
        if case.accused_unit_id and grant.unit_id == case.accused_unit_id:
            continue
        if grant.unit_id == owner.pk:
            return True
        path = _grant_path(grant)
        if path and owner.region.path.startswith(path):
            return True
    return False


def acts_for_unit(user: User | None, unit: Unit) -> bool:
    """Is ``user`` a handler of ``unit``?"""
    if user is None:
        return True
    for grant in roles_of(user):
        if grant.role != Role.HANDLER:
            continue
        if grant.unit_id == unit.pk:
            return True
        if unit.kind == UnitKind.CENTRE and grant.region_id == unit.region_id:
            return True
    return False


def _require_manager(actor: User | None, case: Case, roles=MANAGER_ROLES) -> None:
    if not acts_for_centre(actor, case, roles):
        raise _forbidden()


def _live_assignments(case: Case) -> list[Assignment]:
    return list(case.assignments.filter(status__in=LIVE_ASSIGNMENT).select_related("unit"))


def _handler_assignment(
    case: Case, actor: User | None, unit: Unit | None, *, lead_only: bool = False
) -> Assignment:
    """The live task the acting handler holds on ``case`` (the lead's first)."""
    live = sorted(_live_assignments(case), key=lambda a: a.role != AssignmentRole.LEAD)
    for assignment in live:
        if unit is not None and assignment.unit_id != unit.pk:
            continue
        if lead_only and assignment.role != AssignmentRole.LEAD:
            continue
        if acts_for_unit(actor, assignment.unit):
            return assignment
    if lead_only and any(
        a.role == AssignmentRole.ASSIST
        and (unit is None or a.unit_id == unit.pk)
        and acts_for_unit(actor, a.unit)
        for a in live
    ):
        raise DispatchError(_("此项操作须由主办单位办理"), code="lead_only")
    raise _forbidden()


def _level_rank(level: str) -> int:
    return LEVEL_ORDER.index(Level(level))


def _refuse_when_paused(case: Case) -> None:
    if case.paused_at is not None:
        raise DispatchError(_("案件已中止办理，请先恢复办理"), code="paused")


def _applicant(case: Case) -> Party | None:
    link = (
        case.case_parties.filter(role=PartyRole.APPLICANT)
        .select_related("party")
        .order_by("sort")
        .first()
    )
    return link.party if link else None


def _notify(**kwargs) -> None:
    """The outbox writer; imported here so that services load before notifications do."""
    from dispatch import notifications

    notifications.notify(**kwargs)


def _handlers_of(units: Iterable[Unit]) -> list[User]:
    users: dict[int, User] = {}
    for unit in units:
        for user in staff_with_role(Role.HANDLER, unit=unit):
            users[user.pk] = user
    return list(users.values())


def _supervisors_of(case: Case) -> list[User]:
    """The supervisors nearest the owner centre: its own region's, else the next level up."""
    codes = case.owner_unit.region.ancestor_codes()  # the owner region and its ancestors
    grants = RoleGrant.objects.filter(
        role=Role.SUPERVISOR, region__code__in=codes, user__is_active=True
    ).select_related("user", "region")
    by_depth: dict[int, dict[int, User]] = {}
    for grant in grants:
        if grant.region is not None:
            by_depth.setdefault(len(grant.region.path), {})[grant.user_id] = grant.user
    return list(by_depth[max(by_depth)].values()) if by_depth else []


def _deadline_module():
    from dispatch import deadlines

    return deadlines


# --- The transitions ---------------------------------------------------------------------------


def _dispatch_locked(
    case: Case,
    *,
    actor: User | None,
    unit: Unit,
    assisting_units=(),
    profile: DeadlineProfile | None,
    due_at: dt.datetime | None,
    note: str,
    now: dt.datetime,
    expected_status: str | None = None,
) -> CaseEvent:
    assisting = [u for u in assisting_units if u.pk != unit.pk]
    if len({u.pk for u in assisting}) != len(assisting):
        raise DispatchError(_("协办单位不能重复"), code="duplicate_unit")
    for target in [unit, *assisting]:
        _check_dispatch_target(case, target)
    # A centre that may not close the case must report it up before anyone works on it.
    check_grade_rule(case)
    profile = profile or case.profile
    fields: dict = {
        "lead_unit": unit,
        "assigned_at": now,
        "needs_routing": False,
        "profile": profile,
    }
    first_dispatch = case.due_at is None
    if profile is not None:
        computed = _deadline_module().deadline_fields(case, profile=profile, start=now)
        fields.update(computed if first_dispatch else {"sign_due_at": computed["sign_due_at"]})
    elif due_at is None and first_dispatch:
        raise DispatchError(_("请选择时限方案或填写办结期限"), code="deadline_required")
    if due_at is not None:
        if due_at <= now:
            raise DispatchError(_("办结期限必须晚于当前时间"), code="due_in_past")
        ratio = float(profile.warn_ratio) if profile is not None else 0.8
        fields["due_at"] = due_at
        fields["warn_at"] = now + (due_at - now) * ratio
    event = apply_transition(
        case,
        action=Action.DISPATCHED,
        actor=actor,
        now=now,
        actor_unit=case.owner_unit,
        note=note,
        is_public=True,
        public_unit_name=case.owner_unit.name,
        fields=fields,
        expected_status=expected_status,
        data={
            "lead": unit.pk,
            "lead_name": unit.name,
            "assist": [u.pk for u in assisting],
            "assist_names": [u.name for u in assisting],
        },
    )
    Assignment.objects.bulk_create(
        [
            Assignment(
                case=case,
                unit=unit,
                role=AssignmentRole.LEAD,
                assigned_by=actor,
                assigned_at=now,
                note=note,
            )
        ]
        + [
            Assignment(
                case=case,
                unit=u,
                role=AssignmentRole.ASSIST,
                assigned_by=actor,
                assigned_at=now,
                note=note,
            )
            for u in assisting
        ]
    )
    return event


def _check_dispatch_target(case: Case, unit: Unit) -> None:
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


def dispatch_case(
    *,
    case: Case,
    actor: User | None,
    unit: Unit,
    assisting_units: Iterable[Unit] = (),
    profile: DeadlineProfile | None = None,
    due_at: dt.datetime | None = None,
    note: str = "",
    expected_status: str | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """派单: give a registered case to one lead unit (主办) and any assisting units (协办)."""
    now = now or timezone.now()
    assisting_units = list(assisting_units)
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case, (Role.DISPATCHER, Role.SUPERVISOR, Role.LEADER))
        event = _dispatch_locked(
            case,
            actor=actor,
            unit=unit,
            assisting_units=assisting_units,
            profile=profile,
            due_at=due_at,
            note=note.strip(),
            now=now,
            expected_status=expected_status,
        )
        units = [unit, *[u for u in assisting_units if u.pk != unit.pk]]
        _notify(
            case=case,
            kind="assigned",
            users=_handlers_of(units),
            title=_("新派单：%(code)s") % {"code": case.code},
            body=_("%(category)s：%(summary)s，请及时签收。")
            % {"category": case.category.name, "summary": case.summary},
            dedup_key=f"case:{case.pk}:{event.seq}:assigned",
            now=now,
        )
    return case


def sign_case(
    *, case: Case, actor: User | None, unit: Unit | None = None, now: dt.datetime | None = None
) -> Case:
    """签收: the lead's signature moves the case to 调查落实; an assisting unit's is recorded."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        _refuse_when_paused(case)
        assignment = _handler_assignment(case, actor, unit)
        if assignment.status != AssignmentStatus.PENDING:
            raise DispatchError(_("本单位已签收该任务"), code="already_signed")
        _sign_locked(case, assignment, actor=actor, now=now)
    return case


def _sign_locked(
    case: Case, assignment: Assignment, *, actor: User | None, now: dt.datetime
) -> None:
    assignment.status = AssignmentStatus.SIGNED
    assignment.signed_at = now
    assignment.signed_by = actor
    assignment.save(update_fields=["status", "signed_at", "signed_by"])
    if assignment.role == AssignmentRole.LEAD:
        apply_transition(
            case,
            action=Action.SIGNED,
            actor=actor,
            now=now,
            actor_unit=assignment.unit,
            is_public=True,
            public_unit_name=assignment.unit.name,
            fields={"signed_at": now},
        )
    else:
        record_event(
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
    actor: User | None,
    reason: str,
    unit: Unit | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """退回: a wrongly assigned task goes back to the dispatcher, with the reason."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise DispatchError(_("退回必须填写理由"), code="reason_required")
    with transaction.atomic():
        case = lock_case(case)
        assignment = _handler_assignment(case, actor, unit)
        assignment.status = AssignmentStatus.RETURNED
        assignment.finished_at = now
        assignment.note = reason
        assignment.save(update_fields=["status", "finished_at", "note"])
        if assignment.role == AssignmentRole.LEAD:
            _withdraw_live(case, now=now)
            apply_transition(
                case,
                action=Action.RETURNED,
                actor=actor,
                now=now,
                actor_unit=assignment.unit,
                note=reason,
                fields={"lead_unit": None, "signed_at": None},
            )
        else:
            record_event(
                case,
                action=Action.RETURNED,
                actor=actor,
                now=now,
                actor_unit=assignment.unit,
                note=reason,
                data={"role": AssignmentRole.ASSIST},
            )
    return case


def _withdraw_live(case: Case, *, now: dt.datetime) -> None:
    case.assignments.filter(status__in=LIVE_ASSIGNMENT).update(
        status=AssignmentStatus.WITHDRAWN, finished_at=now
    )


def escalate_case(
    *,
    case: Case,
    actor: User | None,
    reason: str,
    expected_status: str | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """上报: the centre of the parent region takes the case over."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise DispatchError(_("上报必须填写理由"), code="reason_required")
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case)
        parent = case.owner_unit.region.parent
        target = centre_of(parent) if parent is not None else None
        if target is None:
            raise DispatchError(_("已是最高层级，无法再上报"), code="top_level")
        _move_owner(
            case,
            actor=actor,
            action=Action.ESCALATED,
            target=target,
            note=reason,
            now=now,
            expected_status=expected_status,
            extra={"escalation_count": case.escalation_count + 1},
        )
    return case


def delegate_case(
    *,
    case: Case,
    actor: User | None,
    to_unit: Unit,
    note: str = "",
    expected_status: str | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """下派: hand a registered case to a lower centre on the way to where it happened."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case)
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
            case,
            actor=actor,
            action=Action.DELEGATED,
            target=to_unit,
            note=note.strip(),
            now=now,
            expected_status=expected_status,
        )
    return case


def transfer_case(
    *,
    case: Case,
    actor: User | None,
    to_unit: Unit,
    reason: str,
    region: Region | None = None,
    expected_status: str | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """转办: the case belongs to another centre; it moves there (never closed as not ours).

    When the place was recorded wrongly, ``region`` corrects it; it must lie in the receiving
    centre's area, as must the place the case keeps.
    """
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise DispatchError(_("转办必须填写理由"), code="reason_required")
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case)
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
            expected_status=expected_status,
            extra={"region": place} if region is not None else None,
        )
    return case


def _move_owner(
    case: Case,
    *,
    actor,
    action: Action,
    target: Unit,
    note: str,
    now: dt.datetime,
    expected_status: str | None,
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
    _withdraw_live(case, now=now)
    apply_transition(
        case,
        action=action,
        actor=actor,
        now=now,
        actor_unit=previous,
        note=note,
        is_public=True,
        public_unit_name=target.name,
        fields=fields,
        expected_status=expected_status,
        data={"from_unit": previous.pk, "to_unit": target.pk},
    )


def summon_units(
    *,
    case: Case,
    actor: User | None,
    units: Iterable[Unit],
    note: str = "",
    now: dt.datetime | None = None,
) -> Case:
    """吹哨报到: the centre summons several departments to an assigned case at once."""
    now = now or timezone.now()
    units = list(units)
    if not units:
        raise DispatchError(_("请选择要召集的部门"), code="units_required")
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case)
        if case.status not in (Status.ASSIGNED, Status.IN_PROGRESS):
            raise DispatchError(_("只有已派单的案件才能吹哨报到"), code="transition")
        live = {a.unit_id for a in _live_assignments(case)}
        new_units = [u for u in units if u.pk not in live]
        if not new_units:
            raise DispatchError(_("所选部门均已在办理该案件"), code="duplicate_unit")
        for unit in new_units:
            _check_dispatch_target(case, unit)
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
        event = record_event(
            case,
            action=Action.SUMMONED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note.strip(),
            is_public=True,
            public_unit_name=case.owner_unit.name,
            data={"units": [u.pk for u in new_units], "unit_names": [u.name for u in new_units]},
        )
        _notify(
            case=case,
            kind="assigned",
            users=_handlers_of(new_units),
            title=_("吹哨报到：%(code)s") % {"code": case.code},
            body=_("%(centre)s召集贵单位协办：%(summary)s")
            % {"centre": case.owner_unit.name, "summary": case.summary},
            dedup_key=f"case:{case.pk}:{event.seq}:assigned",
            now=now,
        )
    return case


def record_progress(
    *,
    case: Case,
    actor: User | None,
    note: str,
    unit: Unit | None = None,
    is_public: bool = False,
    files: Sequence[CheckedFile] = (),
    now: dt.datetime | None = None,
) -> CaseEvent:
    """办理进展: a note, with checked files (photos, scans, PDFs) linked to the returned event.

    The files are written before the transaction and removed if it does not commit. They are
    staff-only: the resident's timeline shows the note of a public progress, never its files.
    """
    now = now or timezone.now()
    note = note.strip()
    if not note:
        raise DispatchError(_("请填写办理进展"), code="note_required")
    with files_stored(files) as stored, transaction.atomic():
        case = lock_case(case)
        if case.status not in (Status.ASSIGNED, Status.IN_PROGRESS):
            raise DispatchError(_("案件不在办理中，不能记录进展"), code="transition")
        assignment = _handler_assignment(case, actor, unit)
        event = record_event(
            case,
            action=Action.PROGRESS,
            actor=actor,
            now=now,
            actor_unit=assignment.unit,
            note=note,
            is_public=is_public,
            public_unit_name=assignment.unit.name if is_public else "",
        )
        attach_stored(case=case, stored=stored, actor=actor, event=event)
        return event


def submit_feedback(
    *,
    case: Case,
    actor: User | None,
    result: str,
    unit: Unit | None = None,
    files: Sequence[CheckedFile] = (),
    now: dt.datetime | None = None,
) -> Case:
    """反馈: the lead unit reports the result; the owner centre verifies next.

    Checked files are linked to the feedback event, as for ``record_progress`` (staff-only).
    """
    now = now or timezone.now()
    result = result.strip()
    if not result:
        raise DispatchError(_("请填写办理结果"), code="result_required")
    with files_stored(files) as stored, transaction.atomic():
        case = lock_case(case)
        _refuse_when_paused(case)
        assignment = _handler_assignment(case, actor, unit, lead_only=True)
        event = _feedback_locked(case, assignment, actor=actor, result=result, now=now)
        attach_stored(case=case, stored=stored, actor=actor, event=event)
        _notify(
            case=case,
            kind="feedback",
            users=_supervisors_of(case),
            title=_("待核查：%(code)s") % {"code": case.code},
            body=_("%(unit)s已反馈办理结果，请核查。") % {"unit": assignment.unit.name},
            dedup_key=f"case:{case.pk}:{event.seq}:feedback",
            now=now,
        )
        party = _applicant(case)
        if party is not None and party.phone:
            _notify(
                case=case,
                kind="feedback_resident",
                party=party,
                title=_("办理结果反馈"),
                body=_("您的诉求（编号%(code)s）已有办理结果，可扫描受理单二维码查看。")
                % {"code": case.code},
                dedup_key=f"case:{case.pk}:{event.seq}:feedback_sms",
                now=now,
            )
    return case


def _feedback_locked(
    case: Case, assignment: Assignment, *, actor, result: str, now: dt.datetime
) -> CaseEvent:
    assignment.status = AssignmentStatus.DONE
    assignment.finished_at = now
    assignment.save(update_fields=["status", "finished_at"])
    return apply_transition(
        case,
        action=Action.FEEDBACK,
        actor=actor,
        now=now,
        actor_unit=assignment.unit,
        note=result,
        is_public=True,
        public_unit_name=assignment.unit.name,
        fields={"result": result, "feedback_at": now},
    )


def check_grade_rule(case: Case, *, level: str | None = None) -> None:
    """A centre below the grade's lowest closing level may not archive: it must escalate.

    ``level`` is the level that would close the case (the owner centre's unless a grid worker
    resolves it in the grid).
    """
    minimum = GRADE_MIN_CLOSE_LEVEL[Grade(case.grade)]
    if _level_rank(level or case.owner_level) < _level_rank(minimum):
        raise DispatchError(
            _("%(grade)s案件须由%(level)s及以上层级结案，本级不能归档，请上报上级中心")
            % {"grade": Grade(case.grade).label, "level": Level(minimum).label},
            code="grade",
        )


def verify_case(
    *,
    case: Case,
    actor: User | None,
    passed: bool,
    carried_out: bool = True,
    note: str = "",
    expected_status: str | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """核查: pass archives the case (结案归档); fail sends it back to the handler (返工)."""
    now = now or timezone.now()
    note = note.strip()
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case, SUPERVISE_ROLES)
        check_expected_status(case, expected_status)
        if case.status != Status.FEEDBACK:
            raise DispatchError(_("只有已反馈的案件才能核查"), code="transition")
        if passed:
            check_grade_rule(case)
            event = _archive_locked(case, actor=actor, carried_out=carried_out, note=note, now=now)
            _notify_closed(case, event, now=now)
        else:
            if not note:
                raise DispatchError(_("核查不通过须填写返工意见"), code="reason_required")
            lead = (
                case.assignments.filter(role=AssignmentRole.LEAD, status=AssignmentStatus.DONE)
                .order_by("-pk")
                .first()
            )
            if lead is not None:
                lead.status = AssignmentStatus.SIGNED
                lead.finished_at = None
                lead.save(update_fields=["status", "finished_at"])
            event = apply_transition(
                case,
                action=Action.REWORK,
                actor=actor,
                now=now,
                actor_unit=case.owner_unit,
                note=note,
                is_public=True,
                public_unit_name=case.owner_unit.name,
                fields={"rework_count": case.rework_count + 1, "feedback_at": None},
            )
            if lead is not None:
                _notify(
                    case=case,
                    kind="rework",
                    users=_handlers_of([lead.unit]),
                    title=_("核查未通过：%(code)s") % {"code": case.code},
                    body=note,
                    dedup_key=f"case:{case.pk}:{event.seq}:rework",
                    now=now,
                )
    return case


def _archive_locked(
    case: Case,
    *,
    actor,
    carried_out: bool,
    note: str,
    now: dt.datetime,
    closed_level: str | None = None,
) -> CaseEvent:
    apply_transition(
        case,
        action=Action.VERIFIED,
        actor=actor,
        now=now,
        actor_unit=case.owner_unit,
        note=note,
        is_public=True,
        public_unit_name=case.owner_unit.name,
        data={"carried_out": carried_out},
    )
    # Assisting tasks still open end with the case: signed ones as done, unsigned withdrawn.
    case.assignments.filter(status=AssignmentStatus.SIGNED).update(
        status=AssignmentStatus.DONE, finished_at=now
    )
    _withdraw_live(case, now=now)
    on_time = None if case.due_at is None else now <= case.due_at
    return apply_transition(
        case,
        action=Action.ARCHIVED,
        actor=actor,
        now=now,
        actor_unit=case.owner_unit,
        is_public=True,
        public_unit_name=case.owner_unit.name,
        fields={
            "closed_at": now,
            "closed_level": closed_level or case.owner_level,
            "closed_on_time": on_time,
            "carried_out": carried_out,
        },
    )


def _notify_closed(case: Case, event: CaseEvent, *, now: dt.datetime) -> None:
    party = _applicant(case)
    if party is not None and party.phone:
        _notify(
            case=case,
            kind="closed",
            party=party,
            title=_("诉求已办结"),
            body=_("您的诉求（编号%(code)s）已办结，欢迎扫描受理单二维码评价。")
            % {"code": case.code},
            dedup_key=f"case:{case.pk}:{event.seq}:closed",
            now=now,
        )


def request_extension(
    *,
    case: Case,
    actor: User | None,
    days: int,
    reason: str,
    unit: Unit | None = None,
    now: dt.datetime | None = None,
) -> PendingRequest:
    """延期申请: before the deadline, at most ``profile.max_extensions`` times (once)."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise DispatchError(_("申请延期必须说明理由"), code="reason_required")
    if days < 1:
        raise DispatchError(_("延期天数至少为1天"), code="days")
    with transaction.atomic():
        case = lock_case(case)
        _refuse_when_paused(case)
        if case.status not in (Status.ASSIGNED, Status.IN_PROGRESS):
            raise DispatchError(_("案件不在办理中，不能申请延期"), code="transition")
        _handler_assignment(case, actor, unit, lead_only=True)
        if case.due_at is None or now >= case.due_at:
            raise DispatchError(_("已超过办结期限，不能再申请延期"), code="too_late")
        limit = case.profile.max_extensions if case.profile is not None else 1
        if case.extension_count >= limit:
            raise DispatchError(
                _("本案已延期%(n)s次，不能再申请延期") % {"n": case.extension_count},
                code="extension_limit",
            )
        return _open_request(
            case,
            kind=PendingRequest.Kind.EXTENSION,
            actor=actor,
            reason=reason,
            days=days,
            now=now,
            action=Action.EXTENSION_REQUESTED,
        )


def _open_request(case: Case, *, kind, actor, reason: str, days, now, action) -> PendingRequest:
    if actor is None:
        # A request is a person's: the supervisor decides on who asked and why.
        raise DispatchError(_("延期或中止须由承办人本人申请"), code="actor_required")
    if case.requests.filter(kind=kind, state=PendingRequest.State.PENDING).exists():
        raise DispatchError(_("已有待审批的同类申请"), code="pending_exists")
    request = PendingRequest.objects.create(
        case=case, kind=kind, reason=reason, days=days, requested_by=actor, requested_at=now
    )
    record_event(
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
    request: PendingRequest, *, actor, kind, approve: bool, now: dt.datetime
) -> tuple[Case, PendingRequest]:
    case = lock_case(request.case_id)
    request = PendingRequest.objects.select_for_update().get(pk=request.pk)
    if request.kind != kind:
        raise DispatchError(_("申请类型不符"), code="kind")
    _require_manager(actor, case, SUPERVISE_ROLES)
    if request.state != PendingRequest.State.PENDING:
        raise StaleCaseError(_("该申请已被他人审批，请刷新后查看"), code="stale")
    request.state = PendingRequest.State.APPROVED if approve else PendingRequest.State.DENIED
    request.decided_by = actor
    request.decided_at = now
    request.save(update_fields=["state", "decided_by", "decided_at"])
    return case, request


def decide_extension(
    *,
    request: PendingRequest,
    actor: User | None,
    approve: bool,
    note: str = "",
    now: dt.datetime | None = None,
) -> Case:
    """延期审批: approval moves the deadline; the resident sees the new date."""
    now = now or timezone.now()
    with transaction.atomic():
        case, request = _decide(
            request, actor=actor, kind=PendingRequest.Kind.EXTENSION, approve=approve, now=now
        )
        if approve:
            if case.status not in (Status.ASSIGNED, Status.IN_PROGRESS):
                raise DispatchError(_("案件不在办理中，不能延期"), code="transition")
            fields = _deadline_module().extension_fields(case, days=request.days, now=now)
            fields["extension_count"] = case.extension_count + 1
            record_event(
                case,
                action=Action.EXTENSION_APPROVED,
                actor=actor,
                now=now,
                actor_unit=case.owner_unit,
                note=note.strip(),
                is_public=True,
                public_unit_name=case.owner_unit.name,
                fields=fields,
                data={"request": request.pk, "days": request.days},
            )
        else:
            record_event(
                case,
                action=Action.EXTENSION_DENIED,
                actor=actor,
                now=now,
                actor_unit=case.owner_unit,
                note=note.strip(),
                data={"request": request.pk},
            )
    return case


def request_pause(
    *,
    case: Case,
    actor: User | None,
    reason: str,
    unit: Unit | None = None,
    now: dt.datetime | None = None,
) -> PendingRequest:
    """中止申请: e.g. waiting for a court; approved by a supervisor, it stops the clock."""
    now = now or timezone.now()
    reason = reason.strip()
    if not reason:
        raise DispatchError(_("申请中止必须说明理由"), code="reason_required")
    with transaction.atomic():
        case = lock_case(case)
        _refuse_when_paused(case)
        if case.status not in (Status.ASSIGNED, Status.IN_PROGRESS):
            raise DispatchError(_("案件不在办理中，不能申请中止"), code="transition")
        _handler_assignment(case, actor, unit, lead_only=True)
        return _open_request(
            case,
            kind=PendingRequest.Kind.PAUSE,
            actor=actor,
            reason=reason,
            days=None,
            now=now,
            action=Action.PAUSE_REQUESTED,
        )


def decide_pause(
    *,
    request: PendingRequest,
    actor: User | None,
    approve: bool,
    note: str = "",
    now: dt.datetime | None = None,
) -> Case:
    now = now or timezone.now()
    with transaction.atomic():
        case, request = _decide(
            request, actor=actor, kind=PendingRequest.Kind.PAUSE, approve=approve, now=now
        )
        if approve:
            _refuse_when_paused(case)
            if case.status not in (Status.ASSIGNED, Status.IN_PROGRESS):
                raise DispatchError(_("案件不在办理中，不能中止"), code="transition")
            record_event(
                case,
                action=Action.PAUSED,
                actor=actor,
                now=now,
                actor_unit=case.owner_unit,
                note=note.strip(),
                is_public=True,
                public_unit_name=case.owner_unit.name,
                fields={"paused_at": now},
                data={"request": request.pk},
            )
        else:
            record_event(
                case,
                action=Action.PAUSE_DENIED,
                actor=actor,
                now=now,
                actor_unit=case.owner_unit,
                note=note.strip(),
                data={"request": request.pk},
            )
    return case


def resume_case(
    *, case: Case, actor: User | None, note: str = "", now: dt.datetime | None = None
) -> Case:
    """恢复办理: every deadline moves on by the time the case was paused."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case, SUPERVISE_ROLES)
        if case.paused_at is None:
            raise DispatchError(_("案件未中止，无需恢复"), code="not_paused")
        paused_for = int((now - case.paused_at).total_seconds())
        fields = _deadline_module().resume_fields(case, now=now)
        record_event(
            case,
            action=Action.RESUMED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note.strip(),
            is_public=True,
            public_unit_name=case.owner_unit.name,
            fields=fields,
            data={"paused_seconds": paused_for},
        )
    return case


def urge_case(*, case: Case, actor: User | None, note: str, now: dt.datetime | None = None) -> Case:
    """督办: a supervisor's note to the handling units, shown in their inbox."""
    now = now or timezone.now()
    note = note.strip()
    if not note:
        raise DispatchError(_("请填写督办意见"), code="note_required")
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case, SUPERVISE_ROLES)
        if not case.is_open:
            raise DispatchError(_("案件已办结，不能督办"), code="transition")
        event = record_event(
            case, action=Action.URGED, actor=actor, now=now, actor_unit=case.owner_unit, note=note
        )
        units = [a.unit for a in _live_assignments(case)]
        _notify(
            case=case,
            kind="urged",
            users=_handlers_of(units) if units else _managers_of(case),
            title=_("督办：%(code)s") % {"code": case.code},
            body=note,
            dedup_key=f"case:{case.pk}:{event.seq}:urged",
            now=now,
        )
    return case


def _managers_of(case: Case) -> list[User]:
    return list(staff_with_role(Role.DISPATCHER, region=case.owner_unit.region))


def flag_case(
    *,
    case: Case,
    actor: User | None,
    flagged: bool = True,
    note: str = "",
    now: dt.datetime | None = None,
) -> Case:
    """挂牌督办: mark (or unmark) a key case."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case, SUPERVISE_ROLES)
        if case.is_flagged == flagged:
            raise DispatchError(_("案件已是该挂牌状态"), code="unchanged")
        record_event(
            case,
            action=Action.FLAGGED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note.strip(),
            fields={"is_flagged": flagged},
            data={"flagged": flagged},
        )
    return case


def follow_up_case(
    *,
    case: Case,
    actor: User | None,
    satisfaction: int,
    carried_out: bool | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> Case:
    """回访: the follow-up call after closing, with the resident's satisfaction."""
    now = now or timezone.now()
    satisfaction = Satisfaction(int(satisfaction))
    with transaction.atomic():
        case = lock_case(case)
        _require_manager(actor, case, SUPERVISE_ROLES)
        if case.status != Status.ARCHIVED:
            raise DispatchError(_("只有已办结的案件才能回访"), code="transition")
        fields: dict = {"followup_satisfaction": satisfaction, "followed_up_at": now}
        if carried_out is not None:
            fields["carried_out"] = carried_out
        record_event(
            case,
            action=Action.FOLLOWED_UP,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=note.strip(),
            fields=fields,
            data={"satisfaction": int(satisfaction), "carried_out": carried_out},
        )
    return case


REOPEN_WINDOW = dt.timedelta(days=15)


def reopen_case(
    *, case: Case, actor: User | None, reason: str = "", now: dt.datetime | None = None
) -> Case:
    """重办: once, within 15 days of closing; ``actor=None`` is the resident's own request."""
    now = now or timezone.now()
    with transaction.atomic():
        case = lock_case(case)
        if actor is not None:
            _require_manager(actor, case, SUPERVISE_ROLES)
        if case.status != Status.ARCHIVED or case.closed_at is None:
            raise DispatchError(_("只有已办结的案件才能重办"), code="transition")
        if case.reopen_count >= 1:
            raise DispatchError(_("本案已重办过一次，不能再次重办"), code="reopen_limit")
        if now - case.closed_at > REOPEN_WINDOW:
            raise DispatchError(_("已超过办结后15天，不能申请重办"), code="too_late")
        lead = (
            case.assignments.filter(role=AssignmentRole.LEAD, status=AssignmentStatus.DONE)
            .order_by("-pk")
            .first()
        )
        fields: dict = {
            "reopen_count": case.reopen_count + 1,
            "closed_at": None,
            "closed_level": "",
            "closed_on_time": None,
            "carried_out": None,
            "feedback_at": None,
        }
        if case.profile_id:
            computed = _deadline_module().deadline_fields(case, profile=case.profile, start=now)
            fields.update({k: computed[k] for k in ("due_at", "warn_at") if k in computed})
        if lead is not None:
            Assignment.objects.create(
                case=case,
                unit=lead.unit,
                role=AssignmentRole.LEAD,
                status=AssignmentStatus.SIGNED,
                assigned_by=actor,
                assigned_at=now,
                signed_at=now,
                note=reason.strip(),
            )
            fields["lead_unit"] = lead.unit
        event = apply_transition(
            case,
            action=Action.REOPENED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=reason.strip(),
            is_public=True,
            public_unit_name=case.owner_unit.name,
            fields=fields,
            data={"by_resident": actor is None},
        )
        if lead is not None:
            _notify(
                case=case,
                kind="assigned",
                users=_handlers_of([lead.unit]),
                title=_("重办：%(code)s") % {"code": case.code},
                body=reason.strip() or _("群众对办理结果不满意，申请重办。"),
                dedup_key=f"case:{case.pk}:{event.seq}:assigned",
                now=now,
            )
    return case


def resolve_on_spot(
    *, case: Case, actor: User, result: str, now: dt.datetime | None = None
) -> Case:
    """当场办结: the clerk's centre registers, handles, verifies and archives at once.

    Every step of the loop is still its own event, in one transaction; no routing runs. A grid
    worker may do the same for a case in their own grid: it then counts as closed at grid
    level (小问题不出网格), which the grade rule must allow.
    """
    now = now or timezone.now()
    result = result.strip()
    if not result:
        raise DispatchError(_("请填写当场办结的处理结果"), code="result_required")
    with transaction.atomic():
        case = lock_case(case)
        level = case.owner_level
        if not acts_for_centre(actor, case, REGISTER_ROLES):
            if not is_grid_worker_of(actor, case):
                raise _forbidden()
            level = Level.GRID
        check_grade_rule(case, level=level)
        owner = case.owner_unit
        apply_transition(
            case,
            action=Action.REGISTERED,
            actor=actor,
            now=now,
            actor_unit=owner,
            is_public=True,
            public_unit_name=owner.name,
            fields={"registered_at": now},
            expected_status=Status.REPORTED,
        )
        apply_transition(
            case,
            action=Action.DISPATCHED,
            actor=actor,
            now=now,
            actor_unit=owner,
            is_public=True,
            public_unit_name=owner.name,
            fields={"lead_unit": owner, "assigned_at": now, "due_at": now, "sign_due_at": now},
            data={"lead": owner.pk, "lead_name": owner.name, "on_spot": True},
        )
        assignment = Assignment.objects.create(
            case=case, unit=owner, role=AssignmentRole.LEAD, assigned_by=actor, assigned_at=now
        )
        _sign_locked(case, assignment, actor=actor, now=now)
        _feedback_locked(case, assignment, actor=actor, result=result, now=now)
        event = _archive_locked(
            case, actor=actor, carried_out=True, note="", now=now, closed_level=level
        )
        _notify_closed(case, event, now=now)
    return case


def is_grid_worker_of(actor: User | None, case: Case) -> bool:
    """Is ``actor`` a grid worker of the grid where the case happened?"""
    if actor is None or case.region.level != Level.GRID:
        return False
    return any(
        grant.role == Role.GRID_WORKER and grant.region_id == case.region_id
        for grant in roles_of(actor)
    )
