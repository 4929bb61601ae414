"""The deadline sweeper: warnings, overdue notices and escalation tiers, each exactly once.

Deadlines are columns (``Case.warn_at``, ``due_at``, ``sign_due_at``, ``reply_due_at``). Every
minute ``dispatch.tasks.sweep_deadlines`` calls ``sweep``, which finds open, unpaused cases with
a passed column, and for each stage that is due and not yet recorded opens one short
transaction for that case. Inside it, the ``Alert`` row is inserted first; its unique constraint
(case, clock, stage, due_at) decides who does the work. Only the transaction whose insert
succeeded records the event and writes the notifications, so a second sweeper, a redelivered
task or a restarted beat sends nothing twice. An extension gives a new ``due_at``, hence new
alerts for the new deadline.

Stages:

* completion clock (办结): 黄灯 ``yellow`` at ``warn_at`` (only while the deadline is still
  ahead), 红灯 ``red`` at ``due_at``, ``tier1`` (the handling unit's head) ``tier1_after_hours``
  after it and ``tier2`` (the supervisor of the level above) ``tier2_after_hours`` after it;
  the tier delays are wall-clock hours;
* sign-for (签收) and first-reply (告知) clocks: ``red`` at their deadline, told to the handling
  unit; escalation follows the completion clock only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from dispatch.models import Alert, Case, DeadlineProfile
from dispatch.states import OPEN_STATUSES, Action, Status
from grids.models import Unit
from people.models import Role, User

log = logging.getLogger("dispatch.sweeper")

BATCH_SIZE = 200
MAX_CASES_PER_PASS = 20_000
_DEFAULTS = DeadlineProfile(name="", sign_amount=0, reply_amount=0, complete_amount=0)

Clock = Alert.Clock
Stage = Alert.Stage
ACTION_OF_STAGE = {
    Stage.YELLOW: Action.WARNED,
    Stage.RED: Action.OVERDUE,
    Stage.TIER1: Action.ESCALATED_OVERDUE,
    Stage.TIER2: Action.ESCALATED_OVERDUE,
}


@dataclasses.dataclass(frozen=True)
class DueStage:
    clock: str
    stage: str
    due_at: dt.datetime

    @property
    def key(self) -> tuple:
        return (self.clock, self.stage, self.due_at)


def due_stages(case: Case, now: dt.datetime) -> list[DueStage]:
    """The stages whose time has come for ``case`` at ``now``, in the order they happen."""
    if case.status not in OPEN_STATUSES or case.paused_at is not None:
        return []
    profile = case.profile if case.profile is not None else _DEFAULTS
    stages: list[DueStage] = []
    if case.sign_due_at and case.signed_at is None and case.status == Status.ASSIGNED:
        if case.sign_due_at <= now:
            stages.append(DueStage(Clock.SIGN, Stage.RED, case.sign_due_at))
    if case.reply_due_at and case.replied_at is None and case.reply_due_at <= now:
        stages.append(DueStage(Clock.REPLY, Stage.RED, case.reply_due_at))
    due = case.due_at
    if due is not None:
        if case.warn_at is not None and case.warn_at <= now < due:
            stages.append(DueStage(Clock.COMPLETE, Stage.YELLOW, due))
        if due <= now:
            stages.append(DueStage(Clock.COMPLETE, Stage.RED, due))
        if due + dt.timedelta(hours=profile.tier1_after_hours) <= now:
            stages.append(DueStage(Clock.COMPLETE, Stage.TIER1, due))
        if due + dt.timedelta(hours=profile.tier2_after_hours) <= now:
            stages.append(DueStage(Clock.COMPLETE, Stage.TIER2, due))
    return stages


def _finished(clock: str, stage: str, column: str) -> Exists:
    """The last stage of a clock is recorded for the column's current deadline."""
    return Exists(
        Alert.objects.filter(case=OuterRef("pk"), clock=clock, stage=stage, due_at=OuterRef(column))
    )


def _passes(now: dt.datetime) -> list:
    """One query per clock, each led by an index, each leaving out finished clocks.

    Every completion deadline has its ``warn_at`` (``warn_at <= due_at``), so the partial index
    on ``warn_at`` over open cases finds yellow, red and both tiers. A clock whose last stage is
    recorded for its current deadline drops out, so cases long overdue do not cost the sweep
    every minute; the unique index behind ``Alert`` answers that check.
    """
    live = Case.objects.filter(status__in=sorted(OPEN_STATUSES), paused_at__isnull=True)
    return [
        live.filter(warn_at__lte=now).exclude(_finished(Clock.COMPLETE, Stage.TIER2, "due_at")),
        live.filter(status=Status.ASSIGNED, signed_at__isnull=True, sign_due_at__lte=now).exclude(
            _finished(Clock.SIGN, Stage.RED, "sign_due_at")
        ),
        live.filter(replied_at__isnull=True, reply_due_at__lte=now).exclude(
            _finished(Clock.REPLY, Stage.RED, "reply_due_at")
        ),
    ]


def sweep(*, now: dt.datetime | None = None, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """One pass over everything due; returns counts for logs and tests."""
    now = now or timezone.now()
    counts = {"cases": 0, "alerts": 0}
    for candidates in _passes(now):
        # The ids first, unordered, so that the planner leads with the clock's index (an
        # ORDER BY pk LIMIT page would walk the primary key through every closed case); then
        # the rows in bounded batches. A backlog larger than the cap is finished next minute.
        ids = list(candidates.order_by().values_list("pk", flat=True)[:MAX_CASES_PER_PASS])
        ids.sort()
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            batch = list(Case.objects.filter(pk__in=chunk).select_related("profile"))
            done = set(
                Alert.objects.filter(case__in=chunk).values_list(
                    "case_id", "clock", "stage", "due_at"
                )
            )
            for case in sorted(batch, key=lambda c: c.pk):
                missing = [s for s in due_stages(case, now) if (case.pk, *s.key) not in done]
                if not missing:
                    continue
                counts["cases"] += 1
                try:
                    counts["alerts"] += alert_case(case_id=case.pk, now=now)
                except Exception:
                    # One broken case must not stop the sweep of the others; the next minute
                    # tries it again.
                    log.exception("sweeping case %s failed", case.pk)
    return counts


def alert_case(*, case_id: int, now: dt.datetime) -> int:
    """Record every stage now due for one case, in one short transaction; returns how many."""
    from dispatch import services

    written = 0
    with transaction.atomic():
        case = services.lock_case(case_id)
        for stage in due_stages(case, now):
            try:
                with transaction.atomic():
                    alert = Alert.objects.create(
                        case=case,
                        clock=stage.clock,
                        stage=stage.stage,
                        due_at=stage.due_at,
                        created_at=now,
                    )
            except IntegrityError:
                continue  # someone else already did this stage
            event = services.record_event(
                case,
                action=ACTION_OF_STAGE[Stage(stage.stage)],
                actor=None,
                now=now,
                data={
                    "clock": stage.clock,
                    "stage": stage.stage,
                    "due_at": stage.due_at.isoformat(),
                },
            )
            _tell(case, stage, alert=alert, event_seq=event.seq, now=now)
            written += 1
    return written


# --- who is told ------------------------------------------------------------------------------


def _users(role: str, *, unit: Unit | None = None, region_id: int | None = None) -> list[User]:
    cond = Q(grants__role=role)
    if unit is not None:
        cond &= Q(grants__unit=unit)
    if region_id is not None:
        cond &= Q(grants__region_id=region_id) | Q(
            grants__unit__region_id=region_id, grants__unit__kind="centre"
        )
    return list(User.objects.filter(cond, is_active=True).distinct().order_by("pk"))


def handlers_of_case(case: Case) -> list[User]:
    if case.lead_unit_id:
        found = _users(Role.HANDLER, unit=case.lead_unit)
        if found:
            return found
    return _users(Role.DISPATCHER, unit=case.owner_unit) or _users(
        Role.DISPATCHER, region_id=case.owner_unit.region_id
    )


def unit_heads_of_case(case: Case) -> list[User]:
    """Tier 1: the head of the handling unit (its leader, else its supervisor)."""
    unit = case.lead_unit or case.owner_unit
    return (
        _users(Role.LEADER, unit=unit)
        or _users(Role.SUPERVISOR, unit=unit)
        or _users(Role.LEADER, region_id=unit.region_id)
    )


def upper_supervisors_of_case(case: Case) -> list[User]:
    """Tier 2: supervisors of the level above the handling unit (the county at the top)."""
    unit = case.lead_unit or case.owner_unit
    region = unit.region
    target_id = region.parent_id or region.pk
    return _users(Role.SUPERVISOR, region_id=target_id) or _users(
        Role.SUPERVISOR, region_id=region.pk
    )


def _tell(case: Case, stage: DueStage, *, alert: Alert, event_seq: int, now: dt.datetime) -> None:
    from dispatch.notifications import notify

    if stage.stage == Stage.TIER1:
        users = unit_heads_of_case(case)
    elif stage.stage == Stage.TIER2:
        users = upper_supervisors_of_case(case)
    else:
        users = handlers_of_case(case)
    if not users:
        return
    with override("zh-hans"):
        when = formats.date_format(timezone.localtime(stage.due_at), "Y-m-d H:i")
        clock = Alert.Clock(stage.clock).label
        params = {"code": case.code, "clock": clock, "when": when, "summary": case.summary}
        if stage.stage == Stage.YELLOW:
            title = _("即将超期：%(code)s") % params
            body = _("案件%(code)s（%(summary)s）的%(clock)s期限为%(when)s，即将到期。") % params
        elif stage.stage == Stage.RED:
            title = _("已超期：%(code)s") % params
            body = (
                _("案件%(code)s（%(summary)s）的%(clock)s期限%(when)s已过，请尽快办理。") % params
            )
        else:
            title = _("超期升级督办：%(code)s") % params
            body = _("案件%(code)s（%(summary)s）已超过%(clock)s期限%(when)s，升级督办。") % params
    notify(
        case=case,
        kind=f"deadline_{stage.stage}",
        users=users,
        title=title,
        body=body,
        dedup_key=f"alert:{alert.pk}",
        now=now,
    )
