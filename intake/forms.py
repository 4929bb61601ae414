"""The intake screen's forms: the request, its parties (formsets) and the resident's forms."""

from __future__ import annotations

import uuid

from django import forms
from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dispatch.attachments import MultipleFileField
from dispatch.models import Category, PartyRole
from dispatch.states import Channel, Grade, Satisfaction
from grids.pinyin import pinyin_initials
from intake.selectors import accused_unit_choices, intake_regions
from intake.services import Outcome, PartyData
from people.identity import normalize_id_number, normalize_phone
from people.models import Party
from people.services import PartyDetails

KNOWN_SALT = "intake.known-party"
KNOWN_MAX_AGE = 12 * 3600


def sign_known(party: Party, *, user) -> str:
    """A reference to a record the clerk found, usable by that clerk only, for a working day.

    The browser holds this instead of the record's name, phone and ID number.
    """
    return signing.dumps({"p": party.pk, "u": user.pk}, salt=KNOWN_SALT, compress=True)


def unsign_known(value: str, *, user) -> int | None:
    try:
        data = signing.loads(value, salt=KNOWN_SALT, max_age=KNOWN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("u") != user.pk:
        return None
    return data.get("p")


OUTCOME_CHOICES = [
    (Outcome.REGISTER, gettext_lazy("立案")),
    (Outcome.RESOLVE, gettext_lazy("当场办结")),
    (Outcome.REJECT, gettext_lazy("不予受理")),
]


def category_label(category: Category) -> str:
    return str(category)


def resolve_category(text: str) -> Category | None:
    """The category the clerk typed or picked: "上级 / 名称", a unique name, code or initials."""
    text = (text or "").strip()
    if not text:
        return None
    active = Category.objects.filter(is_active=True, parent__isnull=False).select_related("parent")
    if " / " in text:
        parent_name, _sep, name = text.partition(" / ")
        match = [
            c
            for c in active.filter(name=name.strip())
            if c.parent is not None and c.parent.name == parent_name
        ]
        if len(match) == 1:
            return match[0]
    for cond in (Q(name=text), Q(code=text), Q(pinyin_initials=text.lower())):
        match = list(active.filter(cond)[:2])
        if len(match) == 1:
            return match[0]
    if text.isascii() and text.isalpha():
        # Rows saved without their initials (fixtures, imports): the list is short, compute.
        match = [c for c in active if pinyin_initials(c.name) == text.lower()]
        if len(match) == 1:
            return match[0]
    return None


class IntakeForm(forms.Form):
    intake_key = forms.UUIDField(widget=forms.HiddenInput)
    find = forms.CharField(
        label=gettext_lazy("查找当事人（手机号或身份证号）"), required=False, max_length=32
    )
    channel = forms.ChoiceField(
        label=gettext_lazy("来源渠道"), choices=Channel.choices, initial=Channel.WINDOW
    )
    category = forms.CharField(
        label=gettext_lazy("案件分类"),
        max_length=100,
        widget=forms.TextInput(
            attrs={
                "list": "category-list",
                "autocomplete": "off",
                "placeholder": gettext_lazy("输入名称或拼音首字母，如 lljf"),
            }
        ),
    )
    grade = forms.ChoiceField(
        label=gettext_lazy("等级"), choices=Grade.choices, initial=Grade.ORDINARY
    )
    summary = forms.CharField(label=gettext_lazy("诉求摘要"), max_length=200)
    narrative = forms.CharField(
        label=gettext_lazy("详细情况"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=5000,
    )
    region: forms.ModelChoiceField = forms.ModelChoiceField(
        label=gettext_lazy("事发地"),
        queryset=None,
        empty_label=gettext_lazy("请选择事发地"),
        error_messages={"invalid_choice": gettext_lazy("请选择有效的事发地")},
    )
    address_detail = forms.CharField(label=gettext_lazy("详细地点"), required=False, max_length=200)
    accused_unit: forms.ModelChoiceField = forms.ModelChoiceField(
        label=gettext_lazy("被投诉单位（投诉政府单位时填写）"),
        queryset=None,
        required=False,
        empty_label=gettext_lazy("无"),
    )
    attachments = MultipleFileField(label=gettext_lazy("附件（照片、扫描件、PDF）"))
    outcome = forms.ChoiceField(
        label=gettext_lazy("受理结果"),
        choices=OUTCOME_CHOICES,
        initial=Outcome.REGISTER,
        widget=forms.RadioSelect,
    )
    result = forms.CharField(
        label=gettext_lazy("当场办结的处理结果"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
    )
    reject_reason = forms.CharField(
        label=gettext_lazy("不予受理理由"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=2000,
    )
    referral = forms.CharField(
        label=gettext_lazy("引导去向（如：县人民法院立案庭）"), required=False, max_length=200
    )
    confirm_new = forms.BooleanField(
        label=gettext_lazy("已核对，不是重复诉求，仍然新建"), required=False
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["region"].queryset = intake_regions(user)
        self.fields["accused_unit"].queryset = accused_unit_choices(user)
        if not self.is_bound:
            self.initial.setdefault("intake_key", uuid.uuid4())

    def clean_category(self):
        text = self.cleaned_data["category"]
        category = resolve_category(text)
        if category is None:
            raise ValidationError(
                _("没有找到分类“%(text)s”，请从列表中选择二级分类") % {"text": text}
            )
        return category

    def clean_summary(self):
        value = self.cleaned_data["summary"].strip()
        if not value:
            raise ValidationError(_("请填写诉求摘要"))
        return value

    def clean(self):
        data = super().clean()
        outcome = data.get("outcome")
        if outcome == Outcome.RESOLVE and not (data.get("result") or "").strip():
            self.add_error("result", _("当场办结须填写处理结果"))
        if outcome == Outcome.REJECT and not (data.get("reject_reason") or "").strip():
            self.add_error("reject_reason", _("不予受理须填写理由"))
        return data


class PartyForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("姓名/名称"), max_length=64, required=False)
    phone = forms.CharField(label=gettext_lazy("联系电话"), max_length=32, required=False)
    id_number = forms.CharField(label=gettext_lazy("身份证号码"), max_length=32, required=False)
    address = forms.CharField(label=gettext_lazy("住址"), max_length=200, required=False)
    is_organisation = forms.BooleanField(label=gettext_lazy("单位/组织"), required=False)
    # A record found by the lookup ("use this"), signed; its details on file fill what is empty.
    known = forms.CharField(required=False, widget=forms.HiddenInput)
    # The clerk's answer when the ID number or phone matches a record whose details differ.
    same_person = forms.BooleanField(
        label=gettext_lazy("是同一人，以本次填写的信息为准（原信息留存备查）"), required=False
    )

    role = PartyRole.APPLICANT
    TYPED = ("name", "phone", "id_number", "address")

    def __init__(self, *args, user=None, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    @property
    def known_party(self) -> Party | None:
        """The record behind the row's reference, for its masked label on the form."""
        value = self["known"].value()
        party_id = unsign_known(value, user=self.user) if value and self.user else None
        return Party.objects.filter(pk=party_id).first() if party_id else None

    def clean_known(self):
        value = self.cleaned_data["known"]
        if not value:
            return None
        party_id = unsign_known(value, user=self.user)
        if party_id is None:
            raise ValidationError(_("当事人查找结果已过期，请重新查找"))
        return party_id

    def clean_phone(self):
        value = self.cleaned_data["phone"]
        if not value.strip():
            return ""
        return normalize_phone(value)

    def clean_id_number(self):
        value = self.cleaned_data["id_number"]
        if not value.strip():
            return ""
        return normalize_id_number(value)

    def _typed(self) -> bool:
        return any(str(self.data.get(self.add_prefix(k), "")).strip() for k in self.TYPED)

    def has_content(self) -> bool:
        data = getattr(self, "cleaned_data", {})
        return bool(data.get("known")) or any(str(data.get(k) or "").strip() for k in self.TYPED)

    def clean(self):
        data = super().clean()
        if data.get("known") or "known" in self.errors:
            return data  # the record found supplies the name and phone on file
        typed = self._typed()
        if typed and not (data.get("name") or "").strip():
            self.add_error("name", _("请填写姓名或单位名称"))
        if (
            typed
            and self.role == PartyRole.APPLICANT
            and "phone" not in self.errors
            and not (data.get("phone"))
        ):
            self.add_error("phone", _("申请人须填写联系电话，用于告知办理结果"))
        return data

    def to_data(self, row: int = 0) -> PartyData:
        d = self.cleaned_data
        return PartyData(
            role=self.role,
            row=row,
            details=PartyDetails(
                name=d["name"].strip(),
                phone=d.get("phone", ""),
                id_number=d.get("id_number", ""),
                address=d.get("address", ""),
                is_organisation=d.get("is_organisation", False),
                known_id=d.get("known"),
                same_person=d.get("same_person", False),
            ),
        )


class ApplicantForm(PartyForm):
    role = PartyRole.APPLICANT


class RespondentForm(PartyForm):
    role = PartyRole.RESPONDENT


class _BaseParties(forms.BaseFormSet):
    def parties(self) -> list[PartyData]:
        return [
            f.to_data(row=i) for i, f in enumerate(self.forms) if f.is_valid() and f.has_content()
        ]


class _Applicants(_BaseParties):
    def clean(self):
        if any(self.errors):
            return
        if not self.parties():
            raise ValidationError(_("请至少填写一名申请人"))


ApplicantFormSet = forms.formset_factory(
    ApplicantForm, formset=_Applicants, extra=0, min_num=1, max_num=20, validate_max=True
)
RespondentFormSet = forms.formset_factory(
    RespondentForm, formset=_BaseParties, extra=0, min_num=1, max_num=20, validate_max=True
)


# --- The resident's forms -------------------------------------------------------------------


class RatingForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=gettext_lazy("您对办理结果的评价"),
        coerce=int,
        choices=Satisfaction.choices,
        widget=forms.RadioSelect,
        error_messages={"required": gettext_lazy("请选择评价等级")},
    )
    comment = forms.CharField(
        label=gettext_lazy("意见建议（选填）"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class LookupForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("案件编号（20位）"),
        max_length=32,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    last4 = forms.CharField(
        label=gettext_lazy("申请人手机号后四位"),
        min_length=4,
        max_length=4,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
