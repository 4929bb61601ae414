"""What every writer of a case shares: the row lock, the freshness check, the state table, the
event. Private to ``dispatch.services``.

A change to a case is one transaction: ``begin`` locks the row, refuses a form drawn before the
case's last event, and asks ``dispatch.policy`` whether the actor may; then ``transition`` (a
step of the loop, checked against ``dispatch.states``) or ``record`` (an event that keeps the
step) sets the fields, appends the hash-chained event and saves only what changed.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import deadlines, figures, notifications, policy, rollups
from dispatch.actors import Actor
from dispatch.errors import DispatchError, StaleCaseError
from dispatch.events import append_event
from dispatch.models import Case, CaseEvent
from dispatch.states import Action, Status, target_status
from grids.models import Unit


def lock_case(case: Case | int) -> Case:
    """Re-read the case under a row lock; call inside ``transaction.atomic``."""
    pk = case.pk if isinstance(case, Case) else case
    return Case.objects.select_for_update().select_related("owner_unit__region").get(pk=pk)


def check_fresh(case: Case, seen_seq: int | None) -> None:
    """Refuse a form drawn before the case's last event: someone else acted in between."""
    if seen_seq is not None and case.event_count != seen_seq:
        raise StaleCaseError(
            _("案件在您打开页面后已有新的办理记录（当前为“%(status)s”），请查看后重新操作")
            % {"status": Status(case.status).label}
        )


def begin(
    op: policy.Op,
    *,
    case: Case | int,
    actor: Actor,
    now: dt.datetime,
    seen_seq: int | None = None,
) -> tuple[Case, policy.Subject]:
    """Lock the case, check the form is fresh and the actor may do ``op``; inside atomic()."""
    locked = lock_case(case)
    check_fresh(locked, seen_seq)
    subject = policy.Subject(actor, locked, now=now)
    policy.require(op, subject)
    return locked, subject


def transition(
    case: Case,
    *,
    action: Action,
    actor: Actor,
    now: dt.datetime,
    actor_unit: Unit | None = None,
    note: str = "",
    public: bool = False,
    public_unit: Unit | None = None,
    data: dict | None = None,
    fields: dict | None = None,
) -> CaseEvent:
    """A step of the loop: check the state table, set the new status and ``fields``, append.

    ``public`` puts the event on the resident's timeline, named by ``public_unit`` (by default
    ``actor_unit``): the resident sees which unit acted, never which person.
    """
    new = target_status(action, case.status)
    if new is None:
        raise DispatchError(
            _("案件当前为“%(status)s”，不能执行“%(action)s”")
            % {"status": Status(case.status).label, "action": Action(action).label},
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
        is_public=public,
        public_unit_name=_public_name(public, public_unit or actor_unit),
        data=data,
    )


def record(
    case: Case,
    *,
    action: Action,
    actor: Actor,
    now: dt.datetime,
    actor_unit: Unit | None = None,
    note: str = "",
    public: bool = False,
    public_unit: Unit | None = None,
    data: dict | None = None,
    fields: dict | None = None,
) -> CaseEvent:
    """An event that keeps the step (urging, progress, a rating); the case is locked."""
    return _save_with_event(
        case,
        new_status=case.status,
        fields=fields,
        action=action,
        at=now,
        actor=actor,
        actor_unit=actor_unit,
        note=note,
        is_public=public,
        public_unit_name=_public_name(public, public_unit or actor_unit),
        data=data,
    )


# Fields whose change no figure depends on.
BOOKKEEPING = frozenset(
    {"event_count", "last_event_hash", "updated_at", "next_alert_at", "tracking_token"}
)


def _fact_days(case: Case) -> set:
    """The local days the case's dated facts fall on."""
    return {
        timezone.localdate(value)
        for column in figures.WHEN_COLUMNS
        if (value := getattr(case, column)) is not None
    }


def _public_name(public: bool, unit: Unit | None) -> str:
    return unit.name if public and unit is not None else ""


def _save_with_event(case: Case, *, new_status: str, fields: dict | None, **event) -> CaseEvent:
    update_fields = {"event_count", "last_event_hash", "updated_at"}
    # The dashboard's past days count this case's facts; those days are counted again.
    before = _fact_days(case)
    for name, value in (fields or {}).items():
        setattr(case, name, value)
        update_fields.add(name)
    old_status = case.status
    if new_status != old_status:
        case.status = new_status
        update_fields.add("status")
    if update_fields & deadlines.CLOCK_FIELDS:
        # Deadlines are columns, and so is the moment the sweeper must look at the case again.
        case.next_alert_at = deadlines.next_alert_at(
            case, recorded=deadlines.recorded_alerts(case), now=event["at"]
        )
        update_fields.add("next_alert_at")
    appended = append_event(case=case, from_status=old_status, to_status=new_status, **event)
    case.save(update_fields=sorted(update_fields))
    if update_fields - BOOKKEEPING:
        rollups.mark_changed(before | _fact_days(case), today=timezone.localdate(event["at"]))
    notifications.settle(appended)
    return appended


def required(value: str, message: str, code: str = "reason_required") -> str:
    """The stripped text, or the refusal when it is empty."""
    value = (value or "").strip()
    if not value:
        raise DispatchError(message, code=code)
    return value
