"""The three clocks of a case (签收, 告知, 办结) as column values.

These functions compute fields; they never save. The transition in ``dispatch.services`` that
starts, extends or resumes a clock writes what they return in its own transaction, and the
sweeper (``dispatch.tasks.sweep_deadlines``) compares the columns with the time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

from dispatch import calendar
from dispatch.models import Alert, Case, DeadlineProfile, DeadlineUnit
from dispatch.states import OPEN_STATUSES, Status

# The clock kind used when a case has no profile: completion in working days, signing in
# working hours.
_MODE_OF_UNIT = {
    DeadlineUnit.WORKING_DAYS: calendar.DAYS,
    DeadlineUnit.WORKING_HOURS: calendar.HOURS,
    DeadlineUnit.CALENDAR_HOURS: calendar.WALL,
}


def due_after(start: dt.datetime, amount: int, unit: str) -> dt.datetime:
    """The deadline ``amount`` ``unit``s after ``start``."""
    if unit == DeadlineUnit.WORKING_DAYS:
        return calendar.add_working_days(start, amount)
    if unit == DeadlineUnit.WORKING_HOURS:
        return calendar.add_working_hours(start, amount)
    if unit == DeadlineUnit.CALENDAR_HOURS:
        return start + dt.timedelta(hours=amount)
    raise ValueError(f"unknown deadline unit {unit!r}")


def warn_time(
    start: dt.datetime, due: dt.datetime, *, ratio: Decimal | float, mode: str
) -> dt.datetime:
    """The moment ``ratio`` of the working time from ``start`` to ``due`` has passed (黄灯)."""
    allowed = calendar.working_time_between(start, due, mode=mode)
    share = dt.timedelta(seconds=allowed.total_seconds() * float(ratio))
    return calendar.add_working_time(start, share, mode=mode)


def clock_modes(profile: DeadlineProfile | None) -> dict[str, str]:
    """The kind of time each clock counts, keyed by the case's deadline column."""
    if profile is None:
        return {
            "sign_due_at": calendar.HOURS,
            "reply_due_at": calendar.DAYS,
            "due_at": calendar.DAYS,
            "warn_at": calendar.DAYS,
        }
    complete = _MODE_OF_UNIT[DeadlineUnit(profile.complete_unit)]
    return {
        "sign_due_at": _MODE_OF_UNIT[DeadlineUnit(profile.sign_unit)],
        "reply_due_at": _MODE_OF_UNIT[DeadlineUnit(profile.reply_unit)],
        "due_at": complete,
        "warn_at": complete,
    }


def deadline_fields(case: Case, *, profile: DeadlineProfile, start: dt.datetime) -> dict:
    """The deadline columns for a case whose clocks start at ``start`` (usually dispatch).

    The reply clock keeps running from the first dispatch: a re-dispatch after a return does
    not give the resident's first answer more time, so an existing ``reply_due_at`` is kept
    while the case has not been replied to.
    """
    due = due_after(start, profile.complete_amount, profile.complete_unit)
    mode = _MODE_OF_UNIT[DeadlineUnit(profile.complete_unit)]
    if case.reply_due_at is not None and case.replied_at is None:
        reply_due = case.reply_due_at
    else:
        reply_due = due_after(start, profile.reply_amount, profile.reply_unit)
    return {
        "sign_due_at": due_after(start, profile.sign_amount, profile.sign_unit),
        "reply_due_at": reply_due,
        "due_at": due,
        "warn_at": warn_time(start, due, ratio=profile.warn_ratio, mode=mode),
    }


def extension_fields(case: Case, *, days: int, now: dt.datetime) -> dict:
    """延期: ``days`` working days added to the current completion deadline.

    The new 黄灯 falls at the profile's share of the time left from ``now`` to the new deadline,
    so a warning already given for the old deadline is not repeated at once for the new one.
    """
    if case.due_at is None:
        raise ValueError("the case has no completion deadline to extend")
    if days < 1:
        raise ValueError("an extension adds at least one working day")
    due = calendar.add_working_days(case.due_at, days)
    ratio = case.profile.warn_ratio if case.profile is not None else Decimal("0.8")
    return {"due_at": due, "warn_at": warn_time(now, due, ratio=ratio, mode=calendar.DAYS)}


def resume_fields(case: Case, *, now: dt.datetime) -> dict:
    """恢复: push every open deadline by the working time the pause took.

    Each clock is pushed by the pause as that clock counts time (a clock in working hours by
    the office hours paused, a clock in working days by the working days paused); the wall
    seconds paused are added to ``paused_seconds`` for the dashboard.
    """
    if case.paused_at is None:
        raise ValueError("the case is not paused")
    paused_from = case.paused_at
    modes = clock_modes(case.profile if case.profile_id else None)
    fields: dict = {
        "paused_at": None,
        "paused_seconds": case.paused_seconds + max(0, int((now - paused_from).total_seconds())),
    }
    open_clocks = {
        "sign_due_at": case.signed_at is None,
        "reply_due_at": case.replied_at is None,
        "due_at": True,
        "warn_at": True,
    }
    for name, is_open in open_clocks.items():
        value = getattr(case, name)
        if value is None or not is_open:
            continue
        mode = modes[name]
        # Only the part of the pause before the deadline stopped this clock: a pause that
        # starts after a deadline passed does not undo the lateness.
        if value <= paused_from:
            continue
        lost = calendar.working_time_between(paused_from, now, mode=mode)
        fields[name] = calendar.add_working_time(value, lost, mode=mode)
    return fields


# --- the stages the sweeper records -----------------------------------------------------------
#
# completion clock (办结): 黄灯 ``yellow`` at ``warn_at`` (only while the deadline is still ahead),
# 红灯 ``red`` at ``due_at``, ``tier1`` (the handling unit's head) ``tier1_after_hours`` after it
# and ``tier2`` (the supervisor of the level above) ``tier2_after_hours`` after it; the tier
# delays are wall-clock hours. Sign-for (签收) and first-reply (告知) clocks: ``red`` at their
# deadline, told to the handling unit; escalation follows the completion clock only.

_DEFAULTS = DeadlineProfile(name="", sign_amount=0, reply_amount=0, complete_amount=0)


@dataclasses.dataclass(frozen=True)
class DueStage:
    clock: str
    stage: str
    due_at: dt.datetime

    @property
    def key(self) -> tuple:
        return (self.clock, self.stage, self.due_at)


def _stages(case: Case) -> list[tuple[dt.datetime, dt.datetime | None, DueStage]]:
    """Every stage the case's current deadlines hold: (from, until, stage), in time order.

    ``until`` closes a stage's window: 黄灯 is only given while the deadline is still ahead.
    """
    if case.status not in OPEN_STATUSES or case.paused_at is not None:
        return []
    profile = case.profile if case.profile is not None else _DEFAULTS
    clock, stage = Alert.Clock, Alert.Stage
    stages: list[tuple[dt.datetime, dt.datetime | None, DueStage]] = []
    if case.sign_due_at and case.signed_at is None and case.status == Status.ASSIGNED:
        stages.append((case.sign_due_at, None, DueStage(clock.SIGN, stage.RED, case.sign_due_at)))
    if case.reply_due_at and case.replied_at is None:
        stages.append(
            (case.reply_due_at, None, DueStage(clock.REPLY, stage.RED, case.reply_due_at))
        )
    due = case.due_at
    if due is not None:
        if case.warn_at is not None and case.warn_at < due:
            stages.append((case.warn_at, due, DueStage(clock.COMPLETE, stage.YELLOW, due)))
        stages.append((due, None, DueStage(clock.COMPLETE, stage.RED, due)))
        tier1 = due + dt.timedelta(hours=profile.tier1_after_hours)
        stages.append((tier1, None, DueStage(clock.COMPLETE, stage.TIER1, due)))
        tier2 = due + dt.timedelta(hours=profile.tier2_after_hours)
        stages.append((tier2, None, DueStage(clock.COMPLETE, stage.TIER2, due)))
    return stages


def due_stages(case: Case, now: dt.datetime) -> list[DueStage]:
    """The stages whose time has come for ``case`` at ``now``, in the order they happen."""
    return [
        stage
        for start, until, stage in _stages(case)
        if start <= now and (until is None or now < until)
    ]


def next_alert_at(case: Case, *, recorded: set[tuple], now: dt.datetime) -> dt.datetime | None:
    """When the sweeper next has something to record for the case (None: nothing ahead).

    ``recorded`` holds the (clock, stage, due_at) keys of the alerts already written. A stage
    whose window has closed unrecorded (a 黄灯 overtaken by its deadline) is passed over.
    """
    moments = [
        start
        for start, until, stage in _stages(case)
        if stage.key not in recorded and (until is None or now < until)
    ]
    return min(moments) if moments else None


# A change to any of these can move the case's next alert.
CLOCK_FIELDS = frozenset(
    {
        "status",
        "profile",
        "sign_due_at",
        "reply_due_at",
        "due_at",
        "warn_at",
        "paused_at",
        "signed_at",
        "replied_at",
    }
)


def recorded_alerts(case: Case) -> set[tuple]:
    return set(Alert.objects.filter(case=case).values_list("clock", "stage", "due_at"))
