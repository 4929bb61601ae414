"""Supervision: 督办 (urging), 挂牌督办 (flagging), and the deadline alerts of the sweeper."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from dispatch import recipients
from dispatch.actors import SWEEPER
from dispatch.deadlines import due_stages
from dispatch.errors import DispatchError
from dispatch.models import Alert, Case
from dispatch.notifications import notify
from dispatch.policy import Op, Subject, allows
from dispatch.services import _core
from dispatch.states import Action
from people.models import User

ACTION_OF_STAGE = {
    Alert.Stage.YELLOW: Action.WARNED,
    Alert.Stage.RED: Action.OVERDUE,
    Alert.Stage.TIER1: Action.ESCALATED_OVERDUE,
    Alert.Stage.TIER2: Action.ESCALATED_OVERDUE,
}


def urge_case(
    *,
    case: Case,
    actor: User,
    note: str,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """督办: a supervisor's note to the handling units (or the dispatchers), in their inbox."""
    now = now or timezone.now()
    note = _core.required(note, _("请填写督办意见"), "note_required")
    with transaction.atomic():
        case, subject = _core.begin(Op.URGE, case=case, actor=actor, now=now, seen_seq=seen_seq)
        event = _core.record(
            case, action=Action.URGED, actor=actor, now=now, actor_unit=case.owner_unit, note=note
        )
        units = [task.unit for task in subject.live_tasks]
        notify(
            case=case,
            kind="urged",
            params={"code": case.code, "note": note},
            users=recipients.handlers_of(case, units) if units else recipients.dispatchers_of(case),
            key=f"case:{case.pk}:{event.seq}:urged",
            now=now,
        )
    return case


def flag_case(
    *,
    case: Case,
    actor: User,
    flagged: bool = True,
    note: str = "",
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """挂牌督办: mark (or unmark) a key case."""
    now = now or timezone.now()
    with transaction.atomic():
        case, _s = _core.begin(Op.FLAG, case=case, actor=actor, now=now, seen_seq=seen_seq)
        if case.is_flagged == flagged:
            raise DispatchError(_("案件已是该挂牌状态"), code="unchanged")
        _core.record(
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


def record_deadline_alerts(*, case_id: int, now: dt.datetime) -> int:
    """Record every warning and escalation stage now due for one case; returns how many.

    One short transaction. The ``Alert`` row is inserted first: its unique constraint decides
    which of two sweepers (or a redelivered task) records the stage, so each happens once.
    """
    written = 0
    with transaction.atomic():
        case = _core.lock_case(case_id)
        if not allows(Op.ALERT, Subject(SWEEPER, case, now=now)):
            return 0
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
                continue  # someone else already recorded this stage
            event = _core.record(
                case,
                action=ACTION_OF_STAGE[Alert.Stage(stage.stage)],
                actor=SWEEPER,
                now=now,
                data={
                    "clock": stage.clock,
                    "stage": stage.stage,
                    "due_at": stage.due_at.isoformat(),
                },
            )
            if stage.stage == Alert.Stage.TIER1:
                users = recipients.unit_heads(case)
            elif stage.stage == Alert.Stage.TIER2:
                users = recipients.upper_supervisors(case)
            else:
                users = recipients.task_holders(case)
            notify(
                case=case,
                kind=f"deadline_{stage.stage}",
                params={
                    "code": case.code,
                    "summary": case.summary,
                    "clock": Alert.Clock(stage.clock).label,
                    "when": formats.date_format(timezone.localtime(stage.due_at), "Y-m-d H:i"),
                },
                users=users,
                key=f"alert:{alert.pk}:{event.seq}",
                now=now,
            )
            written += 1
    return written
