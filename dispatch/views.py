"""Staff pages of the closed loop: the three work queues and the case page with its actions.

Views are adapters: resolve the case through the scoped selector (404 for missing and
out-of-scope alike), ask ``dispatch.policy`` which actions to offer, validate one form, call one
service, turn a ``DispatchError`` into a message. They never write a case themselves, and no
precondition is written here: the buttons are exactly what the policy allows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Page
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from dispatch import dashboard, figures, forms, policy, selectors, services
from dispatch.access import reach_of, require_desk
from dispatch.errors import DispatchError
from dispatch.models import PendingRequest
from dispatch.notifications import inbox_of
from dispatch.policy import Op
from grids.models import Region
from zongzhi.paging import first_pages, page_of


@dataclass(frozen=True)
class CaseAction:
    """An operation offered on the case page: its form, and the service call it makes."""

    op: Op
    form: type[forms.CaseActionForm]
    run: Callable  # (request, case, cleaned_data) -> the service's result
    danger: bool = False

    @property
    def slug(self) -> str:
        return self.op.value

    @property
    def label(self) -> str:
        return str(self.op.label)


def _yes(value: str) -> bool:
    return value == "yes"


def _follow_up(request, case, data, *, again: bool = False):
    return services.follow_up_case(
        case=case,
        actor=request.user,
        satisfaction=data["satisfaction"],
        carried_out=None if not data["carried_out"] else _yes(data["carried_out"]),
        note=data["note"],
        again=again,
        seen_seq=data["seen"],
    )


def _decide(request, case, data):
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
        seen_seq=data["seen"],
    )


ACTIONS: list[CaseAction] = [
    CaseAction(
        Op.REGISTER,
        forms.RegisterForm,
        lambda r, c, d: services.register_case(
            case=c, actor=r.user, category=d["category"], grade=d["grade"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.RESOLVE,
        forms.ResolveForm,
        lambda r, c, d: services.resolve_on_spot(
            case=c, actor=r.user, result=d["result"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.REJECT,
        forms.RejectForm,
        lambda r, c, d: services.reject_case(
            case=c, actor=r.user, reason=d["reason"], referral=d["referral"], seen_seq=d["seen"]
        ),
        danger=True,
    ),
    CaseAction(
        Op.DISPATCH,
        forms.DispatchForm,
        lambda r, c, d: services.dispatch_case(
            case=c,
            actor=r.user,
            unit=d["unit"],
            assisting_units=d["assisting_units"],
            profile=d["profile"],
            due_at=d["due_at"],
            note=d["note"],
            seen_seq=d["seen"],
        ),
    ),
    CaseAction(
        Op.SUMMON,
        forms.SummonForm,
        lambda r, c, d: services.summon_units(
            case=c, actor=r.user, units=d["units"], note=d["note"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.ESCALATE,
        forms.ReasonForm,
        lambda r, c, d: services.escalate_case(
            case=c, actor=r.user, reason=d["reason"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.DELEGATE,
        forms.DelegateForm,
        lambda r, c, d: services.delegate_case(
            case=c, actor=r.user, to_unit=d["to_unit"], note=d["note"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.TRANSFER,
        forms.TransferForm,
        lambda r, c, d: services.transfer_case(
            case=c,
            actor=r.user,
            to_unit=d["to_unit"],
            reason=d["reason"],
            region=d["region_code"],
            seen_seq=d["seen"],
        ),
    ),
    CaseAction(
        Op.SIGN,
        forms.CaseActionForm,
        lambda r, c, d: services.sign_case(case=c, actor=r.user, seen_seq=d["seen"]),
    ),
    CaseAction(
        Op.PROGRESS,
        forms.ProgressForm,
        lambda r, c, d: services.record_progress(
            case=c,
            actor=r.user,
            note=d["note"],
            is_public=d["is_public"],
            files=d["attachments"],
            seen_seq=d["seen"],
        ),
    ),
    CaseAction(
        Op.REPLY,
        forms.ReplyForm,
        lambda r, c, d: services.reply_to_resident(
            case=c, actor=r.user, method=d["method"], note=d["note"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.FEEDBACK,
        forms.FeedbackForm,
        lambda r, c, d: services.submit_feedback(
            case=c, actor=r.user, result=d["result"], files=d["attachments"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.EXTENSION,
        forms.ExtensionForm,
        lambda r, c, d: services.request_extension(
            case=c, actor=r.user, days=d["days"], reason=d["reason"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.PAUSE,
        forms.PauseForm,
        lambda r, c, d: services.request_pause(
            case=c, actor=r.user, reason=d["reason"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.RETURN,
        forms.ReasonForm,
        lambda r, c, d: services.return_case(
            case=c, actor=r.user, reason=d["reason"], seen_seq=d["seen"]
        ),
        danger=True,
    ),
    CaseAction(Op.DECIDE, forms.DecideForm, _decide),
    CaseAction(
        Op.RESUME,
        forms.OptionalNoteForm,
        lambda r, c, d: services.resume_case(
            case=c, actor=r.user, note=d["note"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.VERIFY,
        forms.VerifyForm,
        lambda r, c, d: services.verify_case(
            case=c,
            actor=r.user,
            passed=d["outcome"] == "pass",
            carried_out=_yes(d["carried_out"]),
            note=d["note"],
            seen_seq=d["seen"],
        ),
    ),
    CaseAction(
        Op.URGE,
        forms.NoteForm,
        lambda r, c, d: services.urge_case(
            case=c, actor=r.user, note=d["note"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.FLAG,
        forms.FlagForm,
        lambda r, c, d: services.flag_case(
            case=c, actor=r.user, flagged=_yes(d["flagged"]), note=d["note"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(Op.FOLLOW_UP, forms.FollowUpForm, lambda r, c, d: _follow_up(r, c, d)),
    CaseAction(
        Op.FOLLOW_UP_AGAIN, forms.FollowUpForm, lambda r, c, d: _follow_up(r, c, d, again=True)
    ),
    CaseAction(
        Op.REOPEN,
        forms.ReasonForm,
        lambda r, c, d: services.reopen_case(
            case=c, actor=r.user, reason=d["reason"], seen_seq=d["seen"]
        ),
    ),
    CaseAction(
        Op.REISSUE_TOKEN,
        forms.CaseActionForm,
        lambda r, c, d: services.reissue_tracking_token(case=c, actor=r.user, seen_seq=d["seen"]),
    ),
]
ACTIONS_BY_SLUG = {a.slug: a for a in ACTIONS}


# --- Pages ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One list of a work page: its anchor, its heading and the page of it being shown."""

    key: str
    label: str
    page: Page


def _sections(request, queue: dict, labels: dict) -> list[Section]:
    return [Section(key, labels[key], page_of(request, rows, key)) for key, rows in queue.items()]


@login_required
@require_GET
def dispatcher_queue(request):
    require_desk(request.user, "dispatcher")
    queue = selectors.dispatcher_queue(request.user)
    sections = {s.key: s for s in _sections(request, queue, DISPATCHER_LABELS)}
    return render(request, "dispatch/dispatcher.html", {"sections": sections})


DISPATCHER_LABELS = {"reported": gettext_lazy("待立案"), "registered": gettext_lazy("待派单")}


@login_required
@require_GET
def handler_inbox(request):
    require_desk(request.user, "inbox")
    tasks = selectors.inbox_tasks(request.user, now=timezone.now())
    firsts, counts = first_pages(tasks, selectors.SECTION)
    sections = [
        Section(
            key,
            SECTION_LABELS[key],
            page_of(request, rows, key, count=counts.get(key, 0), first=firsts.get(key, [])),
        )
        for key, rows in selectors.sections_of(tasks).items()
    ]
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
    require_desk(request.user, "supervise")
    queue = selectors.supervisor_queue(request.user, now=timezone.now())
    sections = {s.key: s for s in _sections(request, queue, SUPERVISOR_LABELS)}
    return render(request, "dispatch/supervise.html", {"sections": sections})


SUPERVISOR_LABELS = {
    "requests": gettext_lazy("待审批的延期/中止申请"),
    "feedback": gettext_lazy("待核查"),
    "overdue": gettext_lazy("已超期"),
}


@login_required
@require_GET
def case_detail(request, code: str):
    case = selectors.case_for(request.user, code=code)
    return _render_case(request, case)


def _render_case(request, case, *, bound_slug: str | None = None, bound_form=None, status=200):
    now = timezone.now()
    subject = policy.Subject(request.user, case, now=now)
    available = []
    for action in ACTIONS:
        if not policy.allows(action.op, subject):
            continue
        form = (
            bound_form
            if action.slug == bound_slug
            else action.form(case=case, user=request.user, prefix=action.slug)
        )
        available.append({"action": action, "form": form, "open": action.slug == bound_slug})
    events = selectors.case_timeline(case).prefetch_related("attachments")
    parties = case.case_parties.order_by("sort")
    return render(
        request,
        "dispatch/case_detail.html",
        {
            "case": case,
            "actions": available,
            "assignments": case.assignments.select_related("unit").order_by("pk"),
            "pending_requests": subject.pending_requests,
            "may_print_receipt": policy.allows(Op.RECEIPT, subject),
            "events": events,
            "parties": parties,
            "case_files": case.attachments.filter(event__isnull=True).order_by("pk"),
            "overdue": policy.is_late(case, now=now),
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
        spec.run(request, case, form.cleaned_data)
    except DispatchError as exc:
        messages.error(request, exc.message)
        # Re-read: the case may have moved on (another dispatcher). Keep what was typed, and
        # mark the form as drawn now, so that a second submit after reading is not refused.
        case = selectors.case_for(request.user, code=code)
        redrawn = spec.form(
            forms.seen_now(request.POST, case, prefix=spec.slug),
            case=case,
            user=request.user,
            prefix=spec.slug,
        )
        return _render_case(request, case, bound_slug=spec.slug, bound_form=redrawn, status=409)
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


# --- The dashboard -------------------------------------------------------------------------------


def _day(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _board_request(request):
    """The scope and period a dashboard request asks for (within the user's areas)."""
    require_desk(request.user, "supervise")
    region = dashboard.scope_for(request.user, request.GET.get("region"))
    if region is None:
        raise Http404
    now = timezone.now()
    period = dashboard.period_of(
        request.GET.get("period", "month"),
        now=now,
        start=_day(request.GET.get("start")),
        end=_day(request.GET.get("end")),
    )
    return region, period, now


@login_required
@require_GET
def dashboard_page(request):
    region, period, now = _board_request(request)
    board = dashboard.build(request.user, region, period, now=now)
    return render(
        request,
        "dispatch/dashboard.html",
        {
            "board": board,
            "areas": dashboard.dashboard_areas(request.user),
            "children": Region.objects.filter(parent=region, is_active=True).order_by("code"),
            "periods": dashboard.PERIODS,
            "dimensions": dashboard.DIMENSIONS,
            "open_lists": dashboard.OPEN_LISTS,
            "min_sample": figures.min_sample(),
        },
    )


def _key(value: str | None) -> str | None:
    """A breakdown's row key: an id; anything else selects nothing (never an error)."""
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise Http404
    return value


@login_required
@require_GET
def dashboard_cases(request):
    """The cases behind a number of the dashboard, paginated."""
    region, period, now = _board_request(request)
    fact = request.GET.get("fact", "")
    listed = request.GET.get("list", "")
    if listed in dashboard.OPEN_LISTS:
        cases = dashboard.open_list(
            dashboard.scoped_cases(reach_of(request.user), region), listed, now=now
        )
        title = dashboard.OPEN_LISTS[listed]
    elif fact in figures.FACTS_BY_NAME:
        cases = dashboard.drill(
            request.user,
            region,
            fact=fact,
            start=period.start,
            end=period.end,
            dimension=request.GET.get("dim") or None,
            key=_key(request.GET.get("key")),
        )
        title = figures.FACTS_BY_NAME[fact].label
    else:
        raise Http404
    page = page_of(request, cases)
    return render(
        request,
        "dispatch/dashboard_cases.html",
        {"region": region, "period": period, "title": title, "page": page, "now": now},
    )
