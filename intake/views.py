"""The clerk's one-page intake screen. Adapters only: forms in, one service call, redirect."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from dispatch import policy
from dispatch.access import require_desk
from dispatch.policy import Op
from dispatch.selectors import case_for
from dispatch.states import Action, Status
from dispatch.texts import joined
from intake import attachments as att
from intake import selectors
from intake.forms import (
    ApplicantFormSet,
    IntakeForm,
    RespondentFormSet,
    category_label,
    resolve_category,
    sign_known,
    unsign_known,
)
from intake.services import (
    IntakeError,
    PartyMismatchError,
    intake_case,
    link_request,
    look_up_resident,
)
from people.identity import mask_id_number, normalize_id_number, normalize_phone
from people.models import Party
from people.services import find_parties

ADD_ROW = {"add_applicant": "applicants", "add_respondent": "respondents"}


def _require_clerk(request):
    require_desk(request.user, "intake")
    if selectors.clerk_centre(request.user) is None:
        raise PermissionDenied(_("您所在区划尚未设立综治中心，请联系系统管理员"))


def _forms(request, data=None, files=None):
    form = IntakeForm(data, files, user=request.user)
    kwargs = {"user": request.user}
    applicants = ApplicantFormSet(data, prefix="applicants", form_kwargs=kwargs)
    respondents = RespondentFormSet(data, prefix="respondents", form_kwargs=kwargs)
    return form, applicants, respondents


@login_required
def intake_new(request):
    """GET a fresh form with its own intake key; POST find, add a row, or save."""
    _require_clerk(request)
    if request.method != "POST":
        form, applicants, respondents = _forms(request)
        return _render(request, form, applicants, respondents)

    action = request.POST.get("action", "save")
    data = request.POST.copy()
    pending = att.unsign_pending(request.POST.get("pending_attachments", ""))
    if action in ADD_ROW:
        prefix = ADD_ROW[action]
        key = f"{prefix}-TOTAL_FORMS"
        data[key] = str(min(int(data.get(key) or 1) + 1, 20))
        form, applicants, respondents = _forms(request, data)
        return _render(
            request, form, applicants, respondents, pending=_stash_uploads(request, pending)
        )
    if action == "find":
        return _find(request, data, _stash_uploads(request, pending))
    if request.POST.get("use"):  # "use this" on one of several records found
        return _use(request, data, _stash_uploads(request, pending))

    form, applicants, respondents = _forms(request, data, request.FILES)
    valid = form.is_valid() & applicants.is_valid() & respondents.is_valid()
    if not valid:
        # Every file that passes its own check is kept, even when another one was refused.
        return _render(
            request,
            form,
            applicants,
            respondents,
            show_errors=True,
            status=400,
            pending=_stash_uploads(request, pending),
        )

    d = form.cleaned_data
    done = selectors.case_for_intake_key(request.user, d["intake_key"])
    if done is not None:  # a double click or a retry of a submit that already went through
        messages.info(request, _("该表单已提交过，以下为已处理的案件"))
        return redirect("intake_case", code=done.code)
    parties = applicants.parties() + respondents.parties()
    link_code = request.POST.get("link_to", "").strip()
    if link_code:
        target = case_for(request.user, code=link_code)
        try:
            case = link_request(
                actor=request.user,
                case=target,
                intake_key=d["intake_key"],
                summary=d["summary"],
                channel=d["channel"],
                parties=applicants.parties(),
                files=d["attachments"],
                stashed=att.pending_as_stored(pending),
            )
        except IntakeError as exc:
            return _refused(request, form, applicants, respondents, exc, pending, d)
        messages.success(
            request, _("已将本次诉求合并到案件%(code)s，未新建案件") % {"code": case.code}
        )
        return redirect("intake_case", code=case.code)

    if not d["confirm_new"]:
        known = _known_parties(applicants.parties())
        duplicates = selectors.possible_duplicates(
            request.user,
            parties=known,
            category=d["category"],
            summary=d["summary"],
            region=d["region"],
        )
        if duplicates:
            return _render(
                request,
                form,
                applicants,
                respondents,
                duplicates=duplicates,
                notice=_("发现可能重复的诉求，请核对后选择合并或仍然新建"),
                status=409,
                pending=pending + att.stash_files(d["attachments"]),
            )

    try:
        result = intake_case(
            actor=request.user,
            outcome=d["outcome"],
            intake_key=d["intake_key"],
            channel=d["channel"],
            category=d["category"],
            summary=d["summary"],
            region=d["region"],
            grade=d["grade"],
            narrative=d["narrative"],
            parties=parties,
            accused_unit=d["accused_unit"],
            address_detail=d["address_detail"],
            files=d["attachments"],
            stashed=att.pending_as_stored(pending),
            result=d["result"],
            reject_reason=d["reject_reason"],
            referral=d["referral"],
        )
    except IntakeError as exc:
        return _refused(request, form, applicants, respondents, exc, pending, d)
    if result.created:
        messages.success(request, outcome_message(result.case))
    else:
        messages.info(request, _("该表单已提交过，以下为已创建的案件"))
    return redirect("intake_case", code=result.case.code)


def outcome_message(case) -> str:
    """What the clerk is told after saving: each outcome in its own words."""
    if case.status == Status.REJECTED:
        return _("已登记为不予受理，案件编号 %(code)s。请打印不予受理告知单交给群众。") % {
            "code": case.code
        }
    if case.status == Status.ARCHIVED:
        return _("已当场办结，案件编号 %(code)s。请打印办结告知单交给群众。") % {"code": case.code}
    return _("已受理，案件编号 %(code)s。请打印受理回执交给群众。") % {"code": case.code}


def _known_parties(parties):
    """Existing party rows of the applicants given (the record chosen, by ID, else phone)."""
    found = {}
    for p in parties:
        details = p.details
        if details.known_id is not None:
            rows = list(Party.objects.filter(pk=details.known_id))
        else:
            rows = find_parties(
                phone=details.phone if not details.id_number else "",
                id_number=details.id_number,
            )
        for party in rows:
            found[party.pk] = party
    return list(found.values())


def _refused(request, form, applicants, respondents, exc: IntakeError, pending, d):
    """The service refused: the form comes back with its message and everything given kept."""
    if isinstance(exc, PartyMismatchError):
        return _mismatch(request, form, applicants, respondents, exc, pending, d)
    form.add_error(None, exc.message)
    return _render(
        request,
        form,
        applicants,
        respondents,
        show_errors=True,
        status=400,
        pending=pending + att.stash_files(d["attachments"]),
    )


def _mismatch(request, form, applicants, respondents, exc: PartyMismatchError, pending, d):
    """A typed party matches a record with other details: show both, masked, and ask."""
    role = _("申请人") if exc.data.role == "applicant" else _("被申请人")
    labels = {"name": _("姓名"), "phone": _("电话"), "address": _("住址")}
    notice = _(
        "%(role)s第%(row)d行的身份证号或电话与已登记的当事人%(name)s（%(phone)s）一致，"
        "但%(fields)s不同。若是同一人，请勾选“是同一人”后再提交（原信息留存备查）；"
        "若不是同一人，请核对身份证号或电话。"
    ) % {
        "role": role,
        "row": exc.data.row + 1,
        "name": exc.party.masked_name,
        "phone": exc.party.masked_phone or "—",
        "fields": joined(labels[f] for f in exc.fields),
    }
    return _render(
        request,
        form,
        applicants,
        respondents,
        notice=notice,
        conflict={"role": exc.data.role, "row": exc.data.row},
        status=409,
        pending=pending + att.stash_files(d["attachments"]),
    )


def _stash_uploads(request, pending: list[dict]) -> list[dict]:
    """Keep the valid files of a request that re-renders the form; bad ones are re-checked
    (and their messages shown) when the clerk saves."""
    checked = []
    for upload in request.FILES.getlist("attachments"):
        try:
            checked.append(att.check_upload(upload))
        except ValidationError:
            continue
    return pending + att.stash_files(checked)


def _address(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def _find(request, data, pending):
    """Look the resident up by the phone or ID number they give; offer the records masked."""
    term = (data.get("find") or "").strip()
    found: list[Party] = []
    error = ""
    searched: dict[str, str] = {}
    if term:
        try:
            if len(term.replace(" ", "")) >= 15:
                searched = {"id_number": normalize_id_number(term)}
            else:
                searched = {"phone": normalize_phone(term)}
        except ValidationError as exc:
            error = " ".join(exc.messages)
    else:
        error = _("请输入手机号或身份证号码")
    if searched:
        lookup = look_up_resident(actor=request.user, address=_address(request), **searched)
        if lookup.limited:
            error = _("查找过于频繁，请稍后再试；可直接录入当事人信息")
        found = lookup.parties
    if len(found) == 1:
        _fill_applicant(data, found[0], request.user, searched)
    form, applicants, respondents = _forms(request, data)
    return _render(
        request,
        form,
        applicants,
        respondents,
        pending=pending,
        found=[_offer(p, request.user) for p in found],
        found_cases=selectors.cases_of_parties(request.user, found),
        find_error=error,
        notice="" if found or error else _("未找到该当事人，请直接录入新当事人"),
    )


def _offer(party: Party, user) -> dict:
    """What the clerk is shown of a record found: masked, with a reference to use it."""
    return {
        "name": party.masked_name,
        "phone": party.masked_phone,
        "id_number": mask_id_number(party.id_number) if party.id_number else "",
        "ref": sign_known(party, user=user),
    }


def _fill_applicant(data, party: Party, user, searched: dict[str, str]) -> None:
    """Put the record into the first empty applicant row, by reference: only what the clerk
    typed into the search goes back to the browser in clear."""
    total = int(data.get("applicants-TOTAL_FORMS") or 1)
    row = next(
        (
            i
            for i in range(total)
            if not any(
                (data.get(f"applicants-{i}-{k}") or "").strip()
                for k in ("name", "phone", "id_number", "known")
            )
        ),
        total,
    )
    if row == total:
        data["applicants-TOTAL_FORMS"] = str(total + 1)
    data[f"applicants-{row}-known"] = sign_known(party, user=user)
    data[f"applicants-{row}-name"] = ""
    data[f"applicants-{row}-phone"] = searched.get("phone", "")
    data[f"applicants-{row}-id_number"] = searched.get("id_number", "")
    data[f"applicants-{row}-is_organisation"] = "on" if party.is_organisation else ""


def _use(request, data, pending):
    """The clerk chose one of several records found ("use this")."""
    party_id = unsign_known(data.get("use", ""), user=request.user)
    party = Party.objects.filter(pk=party_id).first() if party_id else None
    if party is not None:
        _fill_applicant(data, party, request.user, {})
    form, applicants, respondents = _forms(request, data)
    return _render(request, form, applicants, respondents, pending=pending)


def _render(
    request,
    form,
    applicants,
    respondents,
    *,
    pending=(),
    show_errors=False,
    duplicates=(),
    found=(),
    found_cases=(),
    find_error="",
    notice="",
    conflict=None,
    status=200,
):
    return render(
        request,
        "intake/new.html",
        {
            "form": form,
            "applicants": applicants,
            "respondents": respondents,
            "show_errors": show_errors,
            "duplicates": duplicates,
            "found": found,
            "found_cases": found_cases,
            "find_error": find_error,
            "notice": notice,
            "conflict": conflict,
            "categories": selectors.intake_categories(),
            "centre": selectors.clerk_centre(request.user),
            "pending": pending,
            "pending_token": att.sign_pending(list(pending)),
        },
        status=status,
    )


@login_required
def intake_result(request, code):
    """The saved case as staff see it after intake, with the receipt links."""
    case = case_for(request.user, code=code)
    parties = list(case.case_parties.select_related("party").order_by("sort"))
    events = list(case.events.select_related("actor_unit").order_by("seq"))
    links = case.linked_requests.all()
    return render(
        request,
        "intake/case.html",
        {
            "case": case,
            "parties": parties,
            "events": events,
            "attachments": list(case.attachments.all()),
            "links": links,
            "linked_events": [e for e in events if e.action == Action.LINKED],
            "receipt_links": _receipt_links(request, case),
        },
    )


def _receipt_links(request, case) -> list[tuple[str, str]]:
    """The receipt's print view and PDF, for the counter staff of the centre that took it in."""
    if not policy.allows(Op.RECEIPT, policy.Subject(request.user, case)):
        return []
    return [
        (reverse("receipt_print", kwargs={"code": case.code}), _("打印受理单")),
        (reverse("receipt_pdf", kwargs={"code": case.code}), _("下载受理单PDF")),
    ]


@login_required
@require_GET
def regions_json(request):
    """The region picker: name, code or pinyin initials, within the clerk's subtree."""
    term = request.GET.get("q", "")[:32]
    return JsonResponse({"results": selectors.region_choices_for(request.user, term)})


@login_required
@require_GET
def categories_json(request):
    """Categories for the searchable picker (JS enhancement of the datalist)."""
    rows = []
    for top, children in selectors.intake_categories():
        for child in children:
            rows.append(
                {
                    "label": category_label(child),
                    "code": child.code,
                    "initials": child.pinyin_initials,
                    "top": top.name,
                }
            )
    term = request.GET.get("q", "").strip()
    if term:
        match = resolve_category(term)
        rows = [
            r
            for r in rows
            if term in r["label"]
            or r["initials"].startswith(term.lower())
            or (match is not None and r["code"] == match.code)
        ]
    return JsonResponse({"results": rows[:50]})
