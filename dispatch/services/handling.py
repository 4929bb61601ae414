"""Handling: 办理进展, 告知 (the reply to the resident), 反馈 (the lead unit's result)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import recipients
from dispatch.attachments import CheckedFile, attach_stored, files_stored
from dispatch.errors import DispatchError
from dispatch.models import Assignment, AssignmentStatus, Case, CaseEvent
from dispatch.notifications import notify
from dispatch.policy import Op
from dispatch.services import _core
from dispatch.states import Action, ReplyMethod
from grids.models import Unit
from people.models import User


def record_progress(
    *,
    case: Case,
    actor: User,
    note: str,
    unit: Unit | None = None,
    is_public: bool = False,
    files: Sequence[CheckedFile] = (),
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> CaseEvent:
    """办理进展: a note, with checked files (photos, scans, PDFs) linked to the returned event.

    The files are written before the transaction and removed if it does not commit. They are
    staff-only: the resident's timeline shows the note of a public progress, never its files.
    """
    now = now or timezone.now()
    note = _core.required(note, _("请填写办理进展"), "note_required")
    with files_stored(files) as stored, transaction.atomic():
        case, subject = _core.begin(Op.PROGRESS, case=case, actor=actor, now=now, seen_seq=seen_seq)
        task = subject.task(unit_id=unit.pk if unit is not None else None)
        if task is None:
            raise DispatchError(_("您没有办理该案件此项操作的权限"), code="forbidden")
        event = _core.record(
            case,
            action=Action.PROGRESS,
            actor=actor,
            now=now,
            actor_unit=task.unit,
            note=note,
            public=is_public,
        )
        attach_stored(case=case, stored=stored, actor=actor, event=event)
        return event


def reply_to_resident(
    *,
    case: Case,
    actor: User,
    method: str,
    note: str,
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> CaseEvent:
    """告知: the resident was told (in writing, by phone, by SMS) how the case will be handled.

    The first reply stops the reply clock (告知时限); the resident's timeline shows when and how
    they were told, never what a member of staff noted about the call.
    """
    now = now or timezone.now()
    method = ReplyMethod(method)
    note = _core.required(note, _("请填写告知内容"), "note_required")
    with transaction.atomic():
        case, subject = _core.begin(Op.REPLY, case=case, actor=actor, now=now, seen_seq=seen_seq)
        task = subject.task(lead=True)
        unit = task.unit if task is not None else case.owner_unit
        fields = {"replied_at": now} if case.replied_at is None else {}
        return _core.record(
            case,
            action=Action.REPLIED,
            actor=actor,
            now=now,
            actor_unit=unit,
            note=note,
            public=True,
            data={"method": method.value, "first": case.replied_at is None},
            fields=fields,
        )


def submit_feedback(
    *,
    case: Case,
    actor: User,
    result: str,
    unit: Unit | None = None,
    files: Sequence[CheckedFile] = (),
    seen_seq: int | None = None,
    now: dt.datetime | None = None,
) -> Case:
    """反馈: the lead unit reports the result; the owner centre verifies next.

    The resident hears of the result when it has passed verification (``closing``), not
    before: a result sent back for rework was never theirs to read. Checked files are linked
    to the feedback event, as for ``record_progress`` (staff-only).
    """
    now = now or timezone.now()
    result = _core.required(result, _("请填写办理结果"), "result_required")
    with files_stored(files) as stored, transaction.atomic():
        case, subject = _core.begin(Op.FEEDBACK, case=case, actor=actor, now=now, seen_seq=seen_seq)
        task = subject.task(
            unit_id=unit.pk if unit is not None else None,
            lead=True,
            status=AssignmentStatus.SIGNED,
        )
        if task is None:
            raise DispatchError(_("此项操作须由主办单位办理"), code="lead_only")
        event = feedback_locked(case, task, actor=actor, result=result, now=now)
        attach_stored(case=case, stored=stored, actor=actor, event=event)
        notify(
            case=case,
            kind="feedback",
            params={"code": case.code, "unit": task.unit.name},
            users=recipients.nearest_supervisors(case),
            key=f"case:{case.pk}:{event.seq}:feedback",
            now=now,
        )
    return case


def feedback_locked(
    case: Case, assignment: Assignment, *, actor: User, result: str, now: dt.datetime
) -> CaseEvent:
    assignment.status = AssignmentStatus.DONE
    assignment.finished_at = now
    assignment.save(update_fields=["status", "finished_at"])
    return _core.transition(
        case,
        action=Action.FEEDBACK,
        actor=actor,
        now=now,
        actor_unit=assignment.unit,
        note=result,
        public=True,
        fields={"result": result, "feedback_at": now},
    )
