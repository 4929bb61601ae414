"""Staff pages of the closed loop: the three work queues and the case page with its actions.

Views are adapters: resolve the case through the scoped selector (404 for missing and
out-of-scope alike), validate one form, call one service, turn a ``DispatchError`` into a
message. They never write a case themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from dispatch import forms, selectors, services
from dispatch.models import AssignmentRole, AssignmentStatus, PendingRequest
from dispatch.notifications import inbox_of
from dispatch.services import (
    MANAGER_ROLES,
    REGISTER_ROLES,
    SUPERVISE_ROLES,
    DispatchError,
    acts_for_centre,
    acts_for_unit,
)
from dispatch.states import TRANSITIONS, Action, Status
from people.selectors import roles_of

WORKING = (Status.ASSIGNED, Status.IN_PROGRESS)


@dataclass(frozen=True)
class CaseAction:
    slug: str
    label: object
    form: type[forms.CaseActionForm]
    run: Callable
    available: Callable  # (ctx) -> bool
    danger: bool = False


class Context:
    """What the user may do on this case, computed once per page."""

    def __init__(self, user, case):
        self.user = user
        self.case = case
        self.registrar = acts_for_centre(user, case, REGISTER_ROLES)
        self.manager = acts_for_centre(user, case, MANAGER_ROLES)
        self.supervisor = acts_for_centre(user, case, SUPERVISE_ROLES)
        self.assignments = list(case.assignments.select_related("unit").order_by("pk"))
        live = [
            a
            for a in self.assignments
            if a.status in (AssignmentStatus.PENDING, AssignmentStatus.SIGNED)
        ]
        self.my_tasks = [a for a in live if acts_for_unit(user, a.unit)]
        self.pending_requests = list(case.requests.filter(state=PendingRequest.State.PENDING))

    @property
    def status(self):
        return self.case.status

    @property
    def paused(self) -> bool:
        return self.case.paused_at is not None

    def has_task(self, *, status=None, lead=False) -> bool:
        return any(
            (status is None or a.status == status) and (not lead or a.role == AssignmentRole.LEAD)
            for a in self.my_tasks
        )


def _can(action: Action, status) -> bool:
    return status in TRANSITIONS[action][0]


def _yes(value: str) -> bool:
    return value == "yes"


ACTIONS: list[CaseAction] = [
    CaseAction(
        "register",
        gettext_lazy("立案"),
        forms.RegisterForm,
        lambda r, c, d, f: services.register_case(
            case=c,
            actor=r.user,
            category=d["category"],
            grade=d["grade"],
            expected_status=f.expected(),
        ),
        lambda x: x.registrar and x.status == Status.REPORTED,
    ),
    CaseAction(
        "resolve",
        gettext_lazy("当场办结"),
        forms.ResolveForm,
        lambda r, c, d, f: services.resolve_on_spot(case=c, actor=r.user, result=d["result"]),
        lambda x: (
            (x.registrar or services.is_grid_worker_of(x.user, x.case))
            and x.status == Status.REPORTED
        ),
    ),
    CaseAction(
        "reject",
        gettext_lazy("不予受理"),
        forms.RejectForm,
        lambda r, c, d, f: services.reject_case(
            case=c,
            actor=r.user,
            reason=d["reason"],
            referral=d["referral"],
            expected_status=f.expected(),
        ),
        lambda x: x.registrar and x.status == Status.REPORTED,
        danger=True,
    ),
    CaseAction(
        "dispatch",
        gettext_lazy("派单"),
        forms.DispatchForm,
        lambda r, c, d, f: services.dispatch_case(
            case=c,
            actor=r.user,
            unit=d["unit"],
            assisting_units=d["assisting_units"],
            profile=d["profile"],
            due_at=d["due_at"],
            note=d["note"],
            expected_status=f.expected(),
        ),
        lambda x: x.manager and x.status == Status.REGISTERED,
    ),
    CaseAction(
        "summon",
        gettext_lazy("吹哨报到"),
        forms.SummonForm,
        lambda r, c, d, f: services.summon_units(
            case=c, actor=r.user, units=d["units"], note=d["note"]
        ),
        lambda x: x.manager and x.status in WORKING,
    ),
    CaseAction(
        "escalate",
        gettext_lazy("上报上级"),
        forms.ReasonForm,
        lambda r, c, d, f: services.escalate_case(
            case=c, actor=r.user, reason=d["reason"], expected_status=f.expected()
        ),
        lambda x: (
            x.manager
            and _can(Action.ESCALATED, x.status)
            and x.case.owner_unit.region.parent_id is not None
        ),
    ),
    CaseAction(
        "delegate",
        gettext_lazy("下派"),
        forms.DelegateForm,
        lambda r, c, d, f: services.delegate_case(
            case=c, actor=r.user, to_unit=d["to_unit"], note=d["note"], expected_status=f.expected()
        ),
        lambda x: x.manager and _can(Action.DELEGATED, x.status),
    ),
    CaseAction(
        "transfer",
        gettext_lazy("转办"),
        forms.TransferForm,
        lambda r, c, d, f: services.transfer_case(
            case=c,
            actor=r.user,
            to_unit=d["to_unit"],
            reason=d["reason"],
            expected_status=f.expected(),
        ),
        lambda x: x.manager and _can(Action.TRANSFERRED, x.status),
    ),
    CaseAction(
        "sign",
        gettext_lazy("签收"),
        forms.EmptyForm,
        lambda r, c, d, f: services.sign_case(case=c, actor=r.user),
        lambda x: x.has_task(status=AssignmentStatus.PENDING) and not x.paused,
    ),
    CaseAction(
        "progress",
        gettext_lazy("记录办理进展"),
        forms.ProgressForm,
        lambda r, c, d, f: services.record_progress(
            case=c,
            actor=r.user,
            note=d["note"],
            is_public=d["is_public"],
            files=d["attachments"],
        ),
        lambda x: x.has_task() and x.status in WORKING,
    ),
    CaseAction(
        "feedback",
        gettext_lazy("反馈办理结果"),
        forms.FeedbackForm,
        lambda r, c, d, f: services.submit_feedback(
            case=c, actor=r.user, result=d["result"], files=d["attachments"]
        ),
        lambda x: (
            x.has_task(status=AssignmentStatus.SIGNED, lead=True)
            and x.status == Status.IN_PROGRESS
            and not x.paused
        ),
    ),
    CaseAction(
        "extension",
        gettext_lazy("申请延期"),
        forms.ExtensionForm,
        lambda r, c, d, f: services.request_extension(
            case=c, actor=r.user, days=d["days"], reason=d["reason"]
        ),
        lambda x: x.has_task(lead=True) and x.status in WORKING and not x.paused,
    ),
    CaseAction(
        "pause",
        gettext_lazy("申请中止"),
        forms.PauseForm,
        lambda r, c, d, f: services.request_pause(case=c, actor=r.user, reason=d["reason"]),
        lambda x: x.has_task(lead=True) and x.status in WORKING and not x.paused,
    ),
    CaseAction(
        "return",
        gettext_lazy("退回"),
        forms.ReasonForm,
        lambda r, c, d, f: services.return_case(case=c, actor=r.user, reason=d["reason"]),
        lambda x: x.has_task() and x.status in WORKING,
        danger=True,
    ),
    CaseAction(
        "decide",
        gettext_lazy("审批延期/中止"),
        forms.DecideForm,
        lambda r, c, d, f: _decide(r, d),
        lambda x: x.supervisor and bool(x.pending_requests),
    ),
    CaseAction(
        "resume",
        gettext_lazy("恢复办理"),
        forms.OptionalNoteForm,
        lambda r, c, d, f: services.resume_case(case=c, actor=r.user, note=d["note"]),
        lambda x: x.supervisor and x.paused,
    ),
    CaseAction(
        "verify",
        gettext_lazy("核查"),
        forms.VerifyForm,
        lambda r, c, d, f: services.verify_case(
            case=c,
            actor=r.user,
            passed=d["outcome"] == "pass",
            carried_out=_yes(d["carried_out"]),
            note=d["note"],
            expected_status=f.expected(),
        ),
        lambda x: x.supervisor and x.status == Status.FEEDBACK,
    ),
    CaseAction(
        "urge",
        gettext_lazy("督办"),
        forms.NoteForm,
        lambda r, c, d, f: services.urge_case(case=c, actor=r.user, note=d["note"]),
        lambda x: x.supervisor and x.case.is_open,
    ),
    CaseAction(
        "flag",
        gettext_lazy("挂牌督办"),
        forms.FlagForm,
        lambda r, c, d, f: services.flag_case(
            case=c, actor=r.user, flagged=_yes(d["flagged"]), note=d["note"]
        ),
        lambda x: x.supervisor and x.case.is_open,
    ),
    CaseAction(
        "followup",
        gettext_lazy("回访"),
        forms.FollowUpForm,
        lambda r, c, d, f: services.follow_up_case(
            case=c,
            actor=r.user,
            satisfaction=d["satisfaction"],
            carried_out=None if not d["carried_out"] else _yes(d["carried_out"]),
            note=d["note"],
        ),
        lambda x: x.supervisor and x.status == Status.ARCHIVED,
    ),
    CaseAction(
        "reopen",
        gettext_lazy("重办"),
        forms.ReasonForm,
        lambda r, c, d, f: services.reopen_case(case=c, actor=r.user, reason=d["reason"]),
        lambda x: x.supervisor and x.status == Status.ARCHIVED and x.case.reopen_count == 0,
    ),
]
ACTIONS_BY_SLUG = {a.slug: a for a in ACTIONS}


def _decide(request, data):
    pending = data["request"]
    decide = (
        services.decide_extension
        if pending.kind == PendingRequest.Kind.EXTENSION
        else services.decide_pause
    )
    return decide(
        request=pending,
        actor=request.user,
        approve=data["decision"] == "approve",
        note=data["note"],
    )


# --- Pages ---------------------------------------------------------------------------------------


@login_required
@require_GET
def dispatcher_queue(request):
    queue = selectors.dispatcher_queue(request.user)
    return render(request, "dispatch/dispatcher.html", {"queue": queue})


@login_required
@require_GET
def handler_inbox(request):
    inbox = selectors.handler_inbox(request.user)
    sections = [(key, SECTION_LABELS[key], inbox[key]) for key in selectors.INBOX_SECTIONS]
    # Urging notes and new tasks: the messages written by the services' notify().
    notes = list(inbox_of(request.user).filter(read_at__isnull=True)[:20])
    return render(request, "dispatch/inbox.html", {"sections": sections, "notes": notes})


SECTION_LABELS = {
    "pending": gettext_lazy("待签收"),
    "overdue": gettext_lazy("已超期"),
    "due_soon": gettext_lazy("即将超期"),
    "urged": gettext_lazy("督办"),
    "in_progress": gettext_lazy("办理中"),
}


@login_required
@require_GET
def supervisor_queue(request):
    queue = selectors.supervisor_queue(request.user)
    return render(request, "dispatch/supervise.html", {"queue": queue})


@login_required
@require_GET
def case_detail(request, code: str):
    case = selectors.case_for(request.user, code=code)
    return _render_case(request, case)


def _render_case(request, case, *, bound_slug: str | None = None, bound_form=None, status=200):
    ctx = Context(request.user, case)
    available = []
    for action in ACTIONS:
        if not action.available(ctx):
            continue
        form = (
            bound_form
            if action.slug == bound_slug
            else action.form(case=case, user=request.user, prefix=action.slug)
        )
        available.append({"action": action, "form": form, "open": action.slug == bound_slug})
    events = selectors.case_timeline(case).prefetch_related("attachments")
    parties = case.case_parties.select_related("party").order_by("sort")
    now = timezone.now()
    return render(
        request,
        "dispatch/case_detail.html",
        {
            "case": case,
            "ctx": ctx,
            "actions": available,
            "events": events,
            "parties": parties,
            "case_files": case.attachments.filter(event__isnull=True).order_by("pk"),
            "overdue": case.is_open
            and case.due_at is not None
            and case.due_at <= now
            and case.paused_at is None,
            "grants": roles_of(request.user),
        },
        status=status,
    )


@login_required
@require_POST
def case_action(request, code: str, action: str):
    case = selectors.case_for(request.user, code=code)
    spec = ACTIONS_BY_SLUG.get(action)
    if spec is None:
        raise Http404
    # The files are checked (sniffed, sized) here, before the service's transaction.
    form = spec.form(request.POST, request.FILES, case=case, user=request.user, prefix=spec.slug)
    if not form.is_valid():
        messages.error(request, _("请检查填写内容：%(action)s未提交") % {"action": spec.label})
        return _render_case(request, case, bound_slug=spec.slug, bound_form=form, status=400)
    try:
        spec.run(request, case, form.cleaned_data, form)
    except DispatchError as exc:
        messages.error(request, exc.message)
        # Re-read: the case may have moved on (another dispatcher); keep what was typed.
        case = selectors.case_for(request.user, code=code)
        return _render_case(request, case, bound_slug=spec.slug, bound_form=form, status=409)
    messages.success(request, _("已办理：%(action)s") % {"action": spec.label})
    if selectors.cases_visible_to(request.user).filter(pk=case.pk).exists():
        return redirect("dispatch:case", code=case.code)
    return redirect("home")


@login_required
@require_GET
def attachment_download(request, code: str, pk: int):
    """One attachment of a case the user may see; never rendered inline by the browser."""
    case = selectors.case_for(request.user, code=code)
    attachment = get_object_or_404(case.attachments, pk=pk)
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=attachment.original_name,
        content_type=attachment.content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
