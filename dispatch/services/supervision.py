"""Supervision: 督办 (urging), 挂牌督办 (flagging), and the deadline alerts of the sweeper."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import bulk, recipients
from dispatch.actors import SWEEPER
from dispatch.deadlines import due_stages, next_alert_at
from dispatch.errors import DispatchError
from dispatch.events import (
    chain_event,
    mark_urged,
    queue_tracking_renders,
    retire_tracking_pages,
)
from dispatch.models import Alert, Case, CaseEvent
from dispatch.notifications import Message, notify, notify_all
from dispatch.policy import Op, Subject, allows
from dispatch.services import _core
from dispatch.states import URGING_ACTIONS, Action
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


def record_deadline_alerts(
    *, case_ids: Sequence[int], now: dt.datetime, told: StageRecipients | None = None
) -> int:
    """Record every warning and escalation stage now due for these cases; returns how many.

    One transaction for the batch, set-based: the cases are locked together (in primary-key
    order, so two sweepers never deadlock), the stages already recorded are read once under
    those locks (a second sweeper waits for the locks, then finds them), and the alerts, their
    events and their messages are inserted in bulk. The ``Alert`` unique constraint stays the
    last word: each stage of each deadline happens once. ``told``: the recipients already
    looked up in this pass (a sweep passes one for all its batches).
    """
    written = 0
    with transaction.atomic():
        cases = list(
            Case.objects.select_for_update(of=("self",))
            .filter(pk__in=list(case_ids))
            .select_related("profile")
            # The few units and places of a batch read once and shared by its cases.
            .prefetch_related("owner_unit__region", "lead_unit__region", "accused_unit")
            .order_by("pk")
        )
        loaded = {case.pk: case.event_count for case in cases}
        done = set(
            Alert.objects.filter(case__in=cases).values_list("case_id", "clock", "stage", "due_at")
        )
        recorded: dict[int, set[tuple]] = {case.pk: set() for case in cases}
        for case_id, *key in done:
            recorded[case_id].add(tuple(key))
        alerts: list[Alert] = []
        events: list[CaseEvent] = []
        messages: list[Message] = []
        told = told if told is not None else StageRecipients()
        for case in cases:
            if not allows(Op.ALERT, Subject(SWEEPER, case, now=now)):
                continue
            new = [s for s in due_stages(case, now) if s.key not in recorded[case.pk]]
            recorded[case.pk].update(s.key for s in new)
            for stage in new:
                alerts.append(
                    Alert(
                        case_id=case.pk,
                        clock=stage.clock,
                        stage=stage.stage,
                        due_at=stage.due_at,
                        created_at=now,
                    )
                )
                event = chain_event(
                    case=case,
                    action=ACTION_OF_STAGE[Alert.Stage(stage.stage)],
                    at=now,
                    actor=SWEEPER,
                    from_status=case.status,
                    to_status=case.status,
                    data={
                        "clock": stage.clock,
                        "stage": stage.stage,
                        "due_at": stage.due_at.isoformat(),
                    },
                )
                events.append(event)
                messages.append(
                    Message(
                        case=case,
                        kind=f"deadline_{stage.stage}",
                        params={
                            "code": case.code,
                            "summary": case.summary,
                            "clock": Alert.Clock(stage.clock).label,
                            # As the pages print it (Y-m-d H:i), for ten thousand at once.
                            "when": timezone.localtime(stage.due_at).strftime("%Y-%m-%d %H:%M"),
                        },
                        key=f"alert:{case.pk}:{stage.clock}:{stage.stage}:{event.seq}",
                        users=told.of(case, stage.stage),
                    )
                )
        # Every case of the batch gets its next moment, alerted or not (a stage overtaken).
        for case in cases:
            case.next_alert_at = next_alert_at(case, recorded=recorded[case.pk], now=now)
        changed = [case for case in cases if case.event_count != loaded[case.pk]]
        for case in changed:
            case.updated_at = now
        bulk.insert(Alert, alerts)
        bulk.insert(CaseEvent, events)
        mark_urged({e.case_id for e in events if e.action in URGING_ACTIONS}, at=now)
        _save_sweep_columns(cases)
        notify_all(messages, now=now)
        # The resident's page shows the overdue state: after the commit the stored pages are
        # retired first, then the render jobs are offered (on_commit runs in this order).
        tokens = [case.tracking_token for case in changed]
        transaction.on_commit(lambda: retire_tracking_pages(tokens), robust=True)
        queue_tracking_renders({case.pk: case.event_count for case in changed}, now=now)
        written = len(alerts)
    return written


SWEEP_COLUMNS = ("event_count", "last_event_hash", "updated_at", "next_alert_at")


def _save_sweep_columns(cases: list[Case]) -> None:
    """Write the columns a sweep changes, for the whole batch in one statement.

    On PostgreSQL an UPDATE joined to the batch's values as arrays (``bulk_update`` builds a
    CASE per column and row, which costs more to compile than to run); elsewhere bulk_update.
    """
    if not cases:
        return
    if connection.vendor != "postgresql":
        Case.objects.bulk_update(cases, list(SWEEP_COLUMNS))
        return
    table = Case._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS c SET event_count = v.event_count, "  # noqa: S608 - model name
            "last_event_hash = v.last_event_hash, updated_at = v.updated_at, "
            "next_alert_at = v.next_alert_at "
            "FROM unnest(%s::bigint[], %s::integer[], %s::varchar[], %s::timestamptz[], "
            "%s::timestamptz[]) AS v(id, event_count, last_event_hash, updated_at, next_alert_at) "
            "WHERE c.id = v.id",
            [
                [case.pk for case in cases],
                [case.event_count for case in cases],
                [case.last_event_hash for case in cases],
                [case.updated_at for case in cases],
                [case.next_alert_at for case in cases],
            ],
        )


class StageRecipients:
    """Who is told of each stage, asked once per stage and what decides it in a sweep: the
    head of the handling unit (tier 1), the supervisors above it (tier 2), the task's holders
    (warnings and overdue); never anyone of the accused unit."""

    def __init__(self) -> None:
        self._seen: dict[tuple, list] = {}

    def of(self, case: Case, stage: str) -> list:
        if stage in (Alert.Stage.TIER1, Alert.Stage.TIER2):
            key: tuple = (stage, case.lead_unit_id or case.owner_unit_id, case.accused_unit_id)
        else:
            key = (stage, case.lead_unit_id, case.owner_unit_id, case.accused_unit_id)
        if key not in self._seen:
            if stage == Alert.Stage.TIER1:
                users = recipients.unit_heads(case)
            elif stage == Alert.Stage.TIER2:
                users = recipients.upper_supervisors(case)
            else:
                users = recipients.task_holders(case)
            self._seen[key] = users
        return self._seen[key]
