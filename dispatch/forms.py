"""Forms of the staff pages. Each validates one action's input; the service decides the rest."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from dispatch.attachments import MultipleFileField
from dispatch.models import Case, Category, DeadlineProfile, PendingRequest
from dispatch.states import Grade, ReplyMethod, Satisfaction
from grids.models import Region, Unit, UnitKind

TEXTAREA = forms.Textarea(attrs={"rows": 3})
ATTACHMENTS_LABEL = _("附件（照片、扫描件、PDF）")


def request_label(request: PendingRequest) -> str:
    """延期：等待鉴定（3个工作日）, as one translated pattern."""
    values = {"kind": request.get_kind_display(), "reason": request.reason}
    if request.days:
        return gettext("%(kind)s：%(reason)s（%(days)s）") % {
            **values,
            "days": working_days(request.days),
        }
    return gettext("%(kind)s：%(reason)s") % values


def working_days(n: int) -> str:
    """The one wording of a number of working days (延期 counts working days)."""
    return ngettext("%(n)d个工作日", "%(n)d个工作日", n) % {"n": n}


def _ancestor_paths(path: str) -> list[str]:
    """'/a/b/c/' -> ['/a/', '/a/b/', '/a/b/c/']."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def dispatch_targets(case: Case):
    """Units a case may go to: serving its place, at or below the owner centre (属地管理)."""
    owner_path = case.owner_unit.region.path
    paths = [p for p in _ancestor_paths(case.region.path) if p.startswith(owner_path)]
    qs = Unit.objects.filter(region__path__in=paths, is_active=True).select_related("region")
    if case.accused_unit_id:
        qs = qs.exclude(pk=case.accused_unit_id)
    return qs.order_by("region__path", "kind", "name")


class CaseActionForm(forms.Form):
    """Base: every action form knows the case and the user, and carries what the user saw.

    ``seen`` is the number of the case's last event when the form was drawn; the service
    refuses the form if anything happened to the case since (dispatch.services._core).
    """

    seen = forms.IntegerField(min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args, case: Case, user, **kwargs):
        self.case = case
        self.user = user
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("seen", case.event_count)
        super().__init__(*args, **kwargs)


def seen_now(data, case: Case, *, prefix: str):
    """The submitted data, marked as drawn against the case as it is now."""
    data = data.copy()
    data[f"{prefix}-seen"] = str(case.event_count)
    return data


def unit_label(unit: Unit) -> str:
    """A unit with its level: 兴隆台派出所（乡镇/街道）."""
    return gettext("%(name)s（%(level)s）") % {"name": unit.name, "level": unit.get_level_display()}


class UnitChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Unit) -> str:
        return unit_label(obj)


class UnitMultipleChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Unit) -> str:
        return unit_label(obj)


class RegisterForm(CaseActionForm):
    category = forms.ModelChoiceField(
        label=_("分类"),
        queryset=Category.objects.filter(is_active=True, parent__isnull=False).select_related(
            "parent"
        ),
        required=False,
    )
    grade = forms.ChoiceField(label=_("等级"), choices=Grade.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].initial = self.case.category_id
        self.fields["grade"].initial = self.case.grade


class RejectForm(CaseActionForm):
    reason = forms.CharField(label=_("不予受理理由"), widget=TEXTAREA, max_length=1000)
    referral = forms.CharField(label=_("引导去向"), max_length=200, required=False)


class ResolveForm(CaseActionForm):
    result = forms.CharField(label=_("当场办结结果"), widget=TEXTAREA, max_length=2000)


class DispatchForm(CaseActionForm):
    unit = UnitChoiceField(label=_("主办单位"), queryset=Unit.objects.none())
    assisting_units = UnitMultipleChoiceField(
        label=_("协办单位"), queryset=Unit.objects.none(), required=False
    )
    profile = forms.ModelChoiceField(
        label=_("时限方案"), queryset=DeadlineProfile.objects.all(), required=False
    )
    due_at = forms.DateTimeField(
        label=_("办结期限（可选，覆盖时限方案）"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    note = forms.CharField(label=_("派单意见"), widget=TEXTAREA, max_length=1000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        targets = dispatch_targets(self.case)
        self.fields["unit"].queryset = targets
        self.fields["assisting_units"].queryset = targets
        self.fields["unit"].initial = self.case.suggested_unit_id
        self.fields["profile"].initial = self.case.profile_id

    def clean(self):
        data = super().clean()
        unit = data.get("unit")
        if unit is not None and unit in (data.get("assisting_units") or []):
            self.add_error("assisting_units", _("主办单位不能同时作为协办单位"))
        if (
            not data.get("profile")
            and not data.get("due_at")
            and self.case.due_at is None
            and not self.case.profile_id
        ):
            self.add_error("profile", _("请选择时限方案或填写办结期限"))
        return data


class ReasonForm(CaseActionForm):
    reason = forms.CharField(label=_("理由"), widget=TEXTAREA, max_length=1000)


class DelegateForm(CaseActionForm):
    to_unit = UnitChoiceField(label=_("下派至"), queryset=Unit.objects.none())
    note = forms.CharField(label=_("下派意见"), widget=TEXTAREA, max_length=1000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_unit"].queryset = (
            dispatch_targets(self.case)
            .filter(kind=UnitKind.CENTRE)
            .exclude(pk=self.case.owner_unit_id)
        )


class TransferForm(CaseActionForm):
    to_unit = UnitChoiceField(label=_("转办至"), queryset=Unit.objects.none())
    reason = forms.CharField(label=_("转办理由"), widget=TEXTAREA, max_length=1000)
    region_code = forms.CharField(
        label=_("更正事发地区划代码（转至其他辖区时填写）"), max_length=15, required=False
    )

    def clean_region_code(self):
        code = self.cleaned_data["region_code"].strip()
        if not code:
            return None
        region = Region.objects.filter(code=code, is_active=True).first()
        if region is None:
            raise forms.ValidationError(_("区划代码%(code)s不存在") % {"code": code})
        return region

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        qs = (
            Unit.objects.filter(kind=UnitKind.CENTRE, is_active=True)
            .exclude(pk=self.case.owner_unit_id)
            .select_related("region")
            .order_by("region__path")
        )
        if self.case.accused_unit_id:
            qs = qs.exclude(pk=self.case.accused_unit_id)
        self.fields["to_unit"].queryset = qs


class SummonForm(CaseActionForm):
    units = UnitMultipleChoiceField(label=_("召集部门"), queryset=Unit.objects.none())
    note = forms.CharField(label=_("说明"), widget=TEXTAREA, max_length=1000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["units"].queryset = dispatch_targets(self.case)


class NoteForm(CaseActionForm):
    note = forms.CharField(label=_("意见"), widget=TEXTAREA, max_length=2000)


class OptionalNoteForm(CaseActionForm):
    note = forms.CharField(label=_("说明"), widget=TEXTAREA, max_length=2000, required=False)


class ProgressForm(CaseActionForm):
    note = forms.CharField(label=_("办理进展"), widget=TEXTAREA, max_length=2000)
    is_public = forms.BooleanField(label=_("向群众公开此进展"), required=False)
    attachments = MultipleFileField(label=ATTACHMENTS_LABEL)


class ReplyForm(CaseActionForm):
    method = forms.ChoiceField(label=_("告知方式"), choices=ReplyMethod.choices)
    note = forms.CharField(label=_("告知内容"), widget=TEXTAREA, max_length=2000)


class FeedbackForm(CaseActionForm):
    result = forms.CharField(label=_("办理结果"), widget=TEXTAREA, max_length=4000)
    attachments = MultipleFileField(label=ATTACHMENTS_LABEL)


class ExtensionForm(CaseActionForm):
    days = forms.IntegerField(label=_("延期工作日数"), min_value=1, max_value=30)
    reason = forms.CharField(label=_("延期理由"), widget=TEXTAREA, max_length=1000)


class PauseForm(CaseActionForm):
    reason = forms.CharField(label=_("中止理由"), widget=TEXTAREA, max_length=1000)


DECISIONS = [("approve", _("批准")), ("deny", _("驳回"))]


class DecideForm(CaseActionForm):
    request = forms.ModelChoiceField(label=_("申请"), queryset=PendingRequest.objects.none())
    decision = forms.ChoiceField(label=_("审批意见"), choices=DECISIONS, widget=forms.RadioSelect)
    note = forms.CharField(label=_("说明"), widget=TEXTAREA, max_length=1000, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["request"].queryset = PendingRequest.objects.filter(
            case=self.case, state=PendingRequest.State.PENDING
        )
        self.fields["request"].label_from_instance = request_label


VERIFY_CHOICES = [("pass", _("核查通过，结案归档")), ("fail", _("核查未通过，返工"))]
YES_NO = [("yes", _("是")), ("no", _("否"))]


class VerifyForm(CaseActionForm):
    outcome = forms.ChoiceField(
        label=_("核查结论"), choices=VERIFY_CHOICES, widget=forms.RadioSelect
    )
    # Nothing is chosen for the supervisor: an answer not given is not recorded as "yes".
    carried_out = forms.ChoiceField(
        label=_("是否落实到位"), choices=YES_NO, widget=forms.RadioSelect
    )
    note = forms.CharField(
        label=_("核查意见（返工时必填）"), widget=TEXTAREA, max_length=2000, required=False
    )

    def clean(self):
        data = super().clean()
        if data.get("outcome") == "fail" and not (data.get("note") or "").strip():
            self.add_error("note", _("核查不通过须填写返工意见"))
        return data


class FlagForm(CaseActionForm):
    flagged = forms.ChoiceField(
        label=_("挂牌督办"), choices=[("yes", _("挂牌")), ("no", _("摘牌"))]
    )
    note = forms.CharField(label=_("说明"), widget=TEXTAREA, max_length=1000, required=False)


class FollowUpForm(CaseActionForm):
    # No level is preselected: a follow-up submitted without choosing records nothing.
    satisfaction = forms.TypedChoiceField(
        label=_("回访满意度"),
        choices=Satisfaction.choices,
        coerce=int,
        widget=forms.RadioSelect,
        error_messages={"required": _("请选择回访满意度")},
    )
    carried_out = forms.ChoiceField(
        label=_("是否落实到位"), choices=[("", _("未确认")), *YES_NO], required=False
    )
    note = forms.CharField(label=_("回访记录"), widget=TEXTAREA, max_length=2000, required=False)
