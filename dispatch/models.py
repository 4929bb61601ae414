"""Cases, their immutable events, assignments, and the tables that drive routing and deadlines.

No model here has behaviour in ``save()``; every change to a case goes through
``dispatch.services``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from dispatch.actors import ActorKind, SystemSource
from dispatch.states import OPEN_STATUSES, Action, Channel, Grade, Satisfaction, Status
from grids.models import Level, Region, Unit
from people.fields import EncryptedTextField
from people.identity import mask_name, mask_phone
from people.models import Party


class CategoryKind(models.TextChoices):
    DISPUTE = "dispute", _("矛盾纠纷")
    REQUEST = "request", _("民生诉求")
    HAZARD = "hazard", _("安全隐患")


class Category(models.Model):
    """Two levels, editable by administrators: 矛盾纠纷 > 邻里纠纷."""

    code = models.SlugField(_("编码"), max_length=48, unique=True)
    name = models.CharField(_("名称"), max_length=48)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级分类"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    kind = models.CharField(_("类型"), max_length=16, choices=CategoryKind.choices)
    pinyin_initials = models.CharField(max_length=48, blank=True, db_index=True, editable=False)
    sort = models.PositiveSmallIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("案件分类")
        verbose_name_plural = _("案件分类")
        ordering = ["sort", "code"]

    def __str__(self) -> str:
        return f"{self.parent.name} / {self.name}" if self.parent is not None else self.name


class DeadlineUnit(models.TextChoices):
    WORKING_DAYS = "working_days", _("工作日")
    WORKING_HOURS = "working_hours", _("工作小时")
    CALENDAR_HOURS = "calendar_hours", _("自然小时")


class DeadlineProfile(models.Model):
    """The three clocks of a case: sign for (签收), first reply (告知), completion (办结)."""

    name = models.CharField(_("名称"), max_length=48, unique=True)
    sign_amount = models.PositiveIntegerField(_("签收时限"))
    sign_unit = models.CharField(
        _("签收时限单位"),
        max_length=16,
        choices=DeadlineUnit.choices,
        default=DeadlineUnit.WORKING_HOURS,
    )
    reply_amount = models.PositiveIntegerField(_("告知时限"))
    reply_unit = models.CharField(
        _("告知时限单位"),
        max_length=16,
        choices=DeadlineUnit.choices,
        default=DeadlineUnit.WORKING_DAYS,
    )
    complete_amount = models.PositiveIntegerField(_("办结时限"))
    complete_unit = models.CharField(
        _("办结时限单位"),
        max_length=16,
        choices=DeadlineUnit.choices,
        default=DeadlineUnit.WORKING_DAYS,
    )
    # 黄灯 at this share of the allowed time; 红灯 at the deadline.
    warn_ratio = models.DecimalField(_("黄灯预警比例"), max_digits=3, decimal_places=2, default=0.8)
    # Escalation tiers after the deadline: unit head, then the upper level's supervisor.
    tier1_after_hours = models.PositiveIntegerField(_("一级升级(小时)"), default=0)
    tier2_after_hours = models.PositiveIntegerField(_("二级升级(小时)"), default=24)
    max_extensions = models.PositiveSmallIntegerField(_("最多延期次数"), default=1)

    class Meta:
        verbose_name = _("时限方案")
        verbose_name_plural = _("时限方案")

    def __str__(self) -> str:
        return self.name


class RoutingRule(models.Model):
    """Category x region subtree x grade -> handling unit (属地管理 + 谁主管谁负责).

    The most specific matching rule wins (deepest region, then category, then grade), ties
    broken by ``priority``.
    """

    category = models.ForeignKey(
        Category,
        verbose_name=_("分类"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("留空表示任意分类"),
    )
    region = models.ForeignKey(Region, verbose_name=_("适用区域(含下级)"), on_delete=models.CASCADE)
    grade = models.CharField(
        _("等级"), max_length=16, choices=Grade.choices, blank=True, help_text=_("留空表示任意等级")
    )
    handling_level = models.CharField(_("承办层级"), max_length=16, choices=Level.choices)
    unit = models.ForeignKey(
        Unit,
        verbose_name=_("承办单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text=_("留空表示事发地该层级的综治中心"),
    )
    auto_dispatch = models.BooleanField(_("自动派单"), default=False)
    profile = models.ForeignKey(
        DeadlineProfile, verbose_name=_("时限方案"), on_delete=models.PROTECT
    )
    priority = models.SmallIntegerField(_("优先级"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("派单规则")
        verbose_name_plural = _("派单规则")

    def __str__(self) -> str:
        return f"{self.category or '*'} @ {self.region} -> {self.unit or self.handling_level}"


class CalendarYear(models.Model):
    """A year whose holidays and make-up working days are known to be complete.

    ``seed_calendar`` records the years the ``chinesecalendar`` package covers; an administrator
    confirms a year entered by hand once the State Council has published its schedule. Deadlines
    in a year without this row are counted Monday-Friday, and administrators and supervisors are
    told so (``dispatch.calendar.missing_years``).
    """

    year = models.PositiveSmallIntegerField(_("年份"), primary_key=True)
    source = models.CharField(_("来源"), max_length=32)
    confirmed_at = models.DateTimeField(_("确认时间"))
    note = models.CharField(_("说明"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("节假日年度安排")
        verbose_name_plural = _("节假日年度安排")
        ordering = ["-year"]

    def __str__(self) -> str:
        return str(self.year)


class CalendarDay(models.Model):
    """A date that differs from the Monday-Friday rule: a holiday, or a make-up working day."""

    date = models.DateField(_("日期"), unique=True)
    is_workday = models.BooleanField(_("是否上班"))
    name = models.CharField(_("名称"), max_length=32, blank=True)
    edited_by_admin = models.BooleanField(_("管理员修订"), default=False)

    class Meta:
        verbose_name = _("节假日与调休")
        verbose_name_plural = _("节假日与调休")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


# The columns a scope filters cases on (``dispatch.selectors.cases_within``): list indexes that
# include them count a section without reading the cases.
SCOPE_COLUMNS = ["id", "region", "owner_unit", "lead_unit", "accused_unit"]
# The case's long texts and secrets, which no line of a list shows: deferred where a list reads
# cases beside other rows (messages, requests).
CASE_TEXTS = (
    "narrative",
    "result",
    "reject_reason",
    "resident_comment",
    "tracking_token",
    "last_event_hash",
)


class Case(models.Model):
    code = models.CharField(_("案件编号"), max_length=24, unique=True)
    # The secret the QR carries. Replaced (never reused) when staff reissue a lost receipt.
    tracking_token = models.CharField(max_length=43, unique=True, editable=False)
    # A double-clicked or retried submit carries the same key and gets the same case.
    intake_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)

    channel = models.CharField(_("来源渠道"), max_length=16, choices=Channel.choices)
    category = models.ForeignKey(
        Category, verbose_name=_("分类"), on_delete=models.PROTECT, related_name="+"
    )
    grade = models.CharField(
        _("等级"), max_length=16, choices=Grade.choices, default=Grade.ORDINARY
    )
    summary = models.CharField(_("诉求摘要"), max_length=200)
    narrative = models.TextField(_("详细情况"), blank=True)
    region = models.ForeignKey(
        Region, verbose_name=_("事发地"), on_delete=models.PROTECT, related_name="+"
    )
    address_detail = models.CharField(_("详细地点"), max_length=200, blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    # A complaint about a government unit: that unit never handles nor sees the case.
    accused_unit = models.ForeignKey(
        Unit,
        verbose_name=_("被投诉单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    parties: models.ManyToManyField[Party, CaseParty] = models.ManyToManyField(
        Party, through="CaseParty", related_name="cases"
    )
    linked_to = models.ForeignKey(
        "self",
        verbose_name=_("关联案件"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="linked_requests",
    )

    status = models.CharField(
        _("状态"), max_length=16, choices=Status.choices, default=Status.REPORTED
    )
    # The centre that holds the case (registers, dispatches, verifies); changes on escalation
    # and delegation. ``owner_level`` is denormalised for the dashboard's level split.
    owner_unit = models.ForeignKey(
        Unit, verbose_name=_("受理中心"), on_delete=models.PROTECT, related_name="+"
    )
    owner_level = models.CharField(max_length=16, choices=Level.choices)
    # The centre whose counter took the case in: its counter staff print the receipt (which
    # carries the resident's token) and reissue it; escalation never moves this.
    intake_unit = models.ForeignKey(
        Unit, verbose_name=_("受理窗口"), on_delete=models.PROTECT, related_name="+"
    )
    # The lead handling unit (主办) while assigned; assisting units are Assignment rows.
    lead_unit = models.ForeignKey(
        Unit,
        verbose_name=_("承办单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("受理人"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    profile = models.ForeignKey(
        DeadlineProfile, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    needs_routing = models.BooleanField(_("待人工派单"), default=False)
    suggested_unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    is_flagged = models.BooleanField(_("挂牌督办"), default=False)
    reject_reason = models.TextField(_("不予受理理由"), blank=True)
    referral = models.CharField(_("引导去向"), max_length=200, blank=True)
    result = models.TextField(_("办理结果"), blank=True)

    # Milestones.
    reported_at = models.DateTimeField(_("上报时间"))
    registered_at = models.DateTimeField(_("立案时间"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("派单时间"), null=True, blank=True)
    signed_at = models.DateTimeField(_("签收时间"), null=True, blank=True)
    replied_at = models.DateTimeField(_("告知时间"), null=True, blank=True)
    feedback_at = models.DateTimeField(_("反馈时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("办结时间"), null=True, blank=True)

    # Deadlines are columns; the sweeper compares them with now (no timers).
    sign_due_at = models.DateTimeField(_("签收期限"), null=True, blank=True)
    reply_due_at = models.DateTimeField(_("告知期限"), null=True, blank=True)
    due_at = models.DateTimeField(_("办结期限"), null=True, blank=True, db_index=True)
    warn_at = models.DateTimeField(null=True, blank=True)
    # When the sweeper next has a warning or escalation to record (dispatch.deadlines
    # .next_alert_at), kept by the writers; None when nothing is ahead (closed, paused).
    next_alert_at = models.DateTimeField(null=True, blank=True, editable=False)
    # While paused the clock stops: resume pushes every deadline by the paused time.
    paused_at = models.DateTimeField(_("中止时间"), null=True, blank=True)
    paused_seconds = models.PositiveIntegerField(default=0)

    extension_count = models.PositiveSmallIntegerField(default=0)
    rework_count = models.PositiveSmallIntegerField(default=0)
    reopen_count = models.PositiveSmallIntegerField(default=0)
    escalation_count = models.PositiveSmallIntegerField(default=0)
    # Tasks returned as wrongly assigned (退回): the dashboard's dispatch quality.
    return_count = models.PositiveSmallIntegerField(default=0)
    # Outcome facts for the dashboard's rates.
    closed_level = models.CharField(max_length=16, choices=Level.choices, blank=True)
    closed_on_time = models.BooleanField(null=True, blank=True)
    # Working days from registration to closing, counted on the calendar when it closed.
    working_days_taken = models.PositiveIntegerField(null=True, blank=True)
    carried_out = models.BooleanField(_("落实到位"), null=True, blank=True)
    resident_rating = models.PositiveSmallIntegerField(
        _("群众评价"), null=True, blank=True, choices=Satisfaction.choices
    )
    resident_comment = models.CharField(_("评价意见"), max_length=500, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    followup_satisfaction = models.PositiveSmallIntegerField(
        _("回访满意度"), null=True, blank=True, choices=Satisfaction.choices
    )
    followed_up_at = models.DateTimeField(null=True, blank=True)
    resident_urged_at = models.DateTimeField(null=True, blank=True)

    receipt_pdf = models.FileField(_("受理单PDF"), upload_to="receipts/%Y/%m/", blank=True)
    event_count = models.PositiveIntegerField(default=0, editable=False)
    last_event_hash = models.CharField(max_length=64, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("案件")
        verbose_name_plural = _("案件")
        ordering = ["-reported_at"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=Status.values), name="case_status_valid"),
            models.CheckConstraint(condition=Q(grade__in=Grade.values), name="case_grade_valid"),
            models.CheckConstraint(
                condition=Q(channel__in=Channel.values), name="case_channel_valid"
            ),
            models.CheckConstraint(
                condition=Q(resident_rating__isnull=True) | Q(resident_rating__range=(1, 5)),
                name="case_rating_range",
            ),
            models.CheckConstraint(
                condition=~Q(lead_unit=models.F("accused_unit")) | Q(accused_unit__isnull=True),
                name="case_not_handled_by_accused",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="case_status_due"),
            models.Index(fields=["owner_unit", "status"], name="case_owner_status"),
            models.Index(fields=["lead_unit", "status"], name="case_lead_status"),
            models.Index(fields=["region", "reported_at"], name="case_region_reported"),
            models.Index(fields=["reported_at"], name="case_reported"),
            models.Index(fields=["closed_at"], name="case_closed"),
            models.Index(
                fields=["warn_at"],
                name="case_warn_open",
                condition=Q(status__in=sorted(OPEN_STATUSES)),
            ),
            # The work lists: each reads its own small index, whatever the number of closed cases.
            models.Index(
                fields=["reported_at"],
                name="case_to_register_dispatch",
                condition=Q(status__in=["reported", "registered"]),
            ),
            # The supervisor's overdue and feedback sections: counted from the index alone, with
            # the columns every scope filters on (``SCOPE_COLUMNS``).
            models.Index(
                fields=["due_at"],
                include=SCOPE_COLUMNS,
                name="case_running_due",
                condition=Q(status__in=["assigned", "in_progress"], paused_at__isnull=True),
            ),
            models.Index(
                fields=["feedback_at"],
                include=SCOPE_COLUMNS,
                name="case_to_verify",
                condition=Q(status="feedback"),
            ),
            models.Index(
                fields=["rated_at"],
                name="case_negative_rating",
                condition=Q(resident_rating__lte=2),
            ),
            # The open cases with every column their counts filter on: the dashboard's summary
            # (``dispatch.dashboard.open_now``) and the queues' section counts read this index
            # alone, whatever the number of closed cases.
            models.Index(
                fields=["region", "status", "category", "lead_unit", "intake_unit"],
                include=[
                    *(c for c in SCOPE_COLUMNS if c not in ("region", "lead_unit")),
                    *("paused_at", "due_at", "warn_at", "is_flagged"),
                ],
                name="case_open_summary",
                condition=Q(status__in=sorted(OPEN_STATUSES)),
            ),
            # The dashboard's open lists, each ordered as it reads, and the live part of today's
            # figures (a few hours of each fact's clock), whatever the number of closed cases.
            models.Index(
                fields=["due_at"],
                name="case_open_running_due",
                condition=Q(status__in=sorted(OPEN_STATUSES), paused_at__isnull=True),
            ),
            models.Index(
                fields=["due_at"],
                name="case_flagged_open",
                condition=Q(status__in=sorted(OPEN_STATUSES), is_flagged=True),
            ),
            models.Index(
                fields=["rated_at"],
                name="case_awaiting_follow_up",
                condition=Q(resident_rating__lte=2)
                & (Q(followed_up_at__isnull=True) | Q(followed_up_at__lt=models.F("rated_at"))),
            ),
            models.Index(fields=["registered_at"], name="case_registered"),
            models.Index(fields=["reply_due_at"], name="case_reply_due"),
            models.Index(fields=["followed_up_at"], name="case_followed_up"),
            models.Index(fields=["rated_at"], name="case_rated"),
            # The sweeper's one question, "what is due now?": a probe of this small index.
            models.Index(
                fields=["next_alert_at"],
                name="case_next_alert",
                condition=Q(next_alert_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_paused(self) -> bool:
        return self.paused_at is not None


class PartyRole(models.TextChoices):
    APPLICANT = "applicant", _("申请人")
    RESPONDENT = "respondent", _("被申请人")
    THIRD_PARTY = "third_party", _("第三人")


class CaseParty(models.Model):
    """A party to one case, with the contact details the case was registered with.

    The ``Party`` row is the person; these columns are what the resident gave for this case,
    kept as given: a later case with a new phone changes the person's current details (and
    their history), never where this case's messages go or what its receipt shows.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="case_parties")
    party = models.ForeignKey(Party, on_delete=models.PROTECT, related_name="case_links")
    role = models.CharField(_("身份"), max_length=16, choices=PartyRole.choices)
    sort = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(_("姓名/名称"), max_length=64)
    phone = EncryptedTextField(_("联系电话"), blank=True)
    phone_last4 = models.CharField(max_length=4, blank=True, editable=False)
    address = EncryptedTextField(_("住址"), blank=True)
    is_organisation = models.BooleanField(_("单位/组织"), default=False)

    class Meta:
        verbose_name = _("案件当事人")
        verbose_name_plural = _("案件当事人")
        ordering = ["sort"]
        constraints = [
            models.UniqueConstraint(fields=["case", "party", "role"], name="case_party_unique")
        ]

    def __str__(self) -> str:
        return f"{self.case} {self.get_role_display()}"

    @property
    def masked_name(self) -> str:
        return self.name if self.is_organisation else mask_name(self.name)

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


class CaseEvent(models.Model):
    """One immutable row per thing that happened to a case: its history and its audit.

    Rows are chained: ``hash`` covers this row's content and the previous row's hash, so that
    editing or deleting history is detectable (``manage.py verify_case_chain``).
    """

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveIntegerField()
    action = models.CharField(max_length=40, choices=Action.choices)
    from_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=Status.choices, blank=True)
    # Who acted: a member of staff (``actor``), the product itself (``data["system"]`` names the
    # routing rule or the sweeper), or the resident holding the receipt.
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    actor_unit = models.ForeignKey(
        Unit, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # For the resident's timeline: which unit acted, never which person.
    public_unit_name = models.CharField(max_length=64, blank=True)
    at = models.DateTimeField(db_index=True)
    note = models.TextField(blank=True)
    is_public = models.BooleanField(default=False)
    data = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("案件事件")
        verbose_name_plural = _("案件事件")
        ordering = ["case", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["case", "seq"], name="event_seq_unique"),
            models.CheckConstraint(
                condition=Q(actor_kind__in=ActorKind.values), name="event_actor_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(actor_kind="staff", actor__isnull=False)
                | (~Q(actor_kind="staff") & Q(actor__isnull=True)),
                name="event_staff_actor_named",
            ),
        ]
        indexes = [models.Index(fields=["action", "at"], name="event_action_at")]

    def __str__(self) -> str:
        return f"{self.case_id}#{self.seq} {self.action}"

    @property
    def actor_label(self) -> str:
        """Who acted, for staff pages: the product names itself and the rule that decided."""
        if self.actor_kind == ActorKind.RESIDENT:
            return str(ActorKind.RESIDENT.label)
        if self.actor_kind != ActorKind.SYSTEM:
            return str(self.actor) if self.actor_id else ""
        system = self.data.get("system") or {}
        source = system.get("source")
        label = SystemSource(source).label if source in SystemSource.values else ""
        if system.get("rule"):
            return _("系统（%(source)s #%(rule)s）") % {"source": label, "rule": system["rule"]}
        return _("系统（%(source)s）") % {"source": label} if label else str(ActorKind.SYSTEM.label)


class AssignmentRole(models.TextChoices):
    LEAD = "lead", _("主办")
    ASSIST = "assist", _("协办")


class AssignmentStatus(models.TextChoices):
    PENDING = "pending", _("待签收")
    SIGNED = "signed", _("办理中")
    RETURNED = "returned", _("已退回")
    DONE = "done", _("已反馈")
    WITHDRAWN = "withdrawn", _("已撤回")


# The tasks still in hand (to sign, or being handled).
LIVE_TASK = (AssignmentStatus.PENDING, AssignmentStatus.SIGNED)


class Assignment(models.Model):
    """A unit's task on a case: one lead (主办), any number of assisting units (协办)."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="assignments")
    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="assignments")
    role = models.CharField(max_length=8, choices=AssignmentRole.choices)
    status = models.CharField(
        max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.PENDING
    )
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    assigned_at = models.DateTimeField()
    signed_at = models.DateTimeField(null=True, blank=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    # The first urging of the case (``URGING_ACTIONS``) since the task was given, set when the
    # event is written (``dispatch.events.mark_urged``): the inbox's 督办 section reads it.
    urged_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        constraints = [
            # At most one live lead per case; one live task per unit per case.
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(role="lead", status__in=["pending", "signed"]),
                name="assignment_one_live_lead",
            ),
            models.UniqueConstraint(
                fields=["case", "unit"],
                condition=Q(status__in=["pending", "signed"]),
                name="assignment_one_live_per_unit",
            ),
        ]
        indexes = [models.Index(fields=["unit", "status"], name="assignment_unit_status")]

    def __str__(self) -> str:
        return f"{self.case_id} -> {self.unit_id} ({self.role})"


class Attachment(models.Model):
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    event = models.ForeignKey(
        CaseEvent, null=True, blank=True, on_delete=models.PROTECT, related_name="attachments"
    )
    file = models.FileField(upload_to="attachments/%Y/%m/")
    original_name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("附件")
        verbose_name_plural = _("附件")

    def __str__(self) -> str:
        return self.original_name


class PendingRequest(models.Model):
    """An extension (延期) or pause (中止) asked for by a handler, decided by a supervisor."""

    class Kind(models.TextChoices):
        EXTENSION = "extension", _("延期")
        PAUSE = "pause", _("中止")

    class State(models.TextChoices):
        PENDING = "pending", _("待审批")
        APPROVED = "approved", _("已批准")
        DENIED = "denied", _("已驳回")

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="requests")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    reason = models.TextField()
    days = models.PositiveSmallIntegerField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case", "kind"],
                condition=Q(state="pending"),
                name="one_pending_request_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.kind} {self.state}"


class Alert(models.Model):
    """A deadline warning or escalation tier that has happened. Unique: each happens once."""

    class Clock(models.TextChoices):
        SIGN = "sign", _("签收")
        REPLY = "reply", _("告知")
        COMPLETE = "complete", _("办结")

    class Stage(models.TextChoices):
        YELLOW = "yellow", _("黄灯预警")
        RED = "red", _("红灯超期")
        TIER1 = "tier1", _("一级升级")
        TIER2 = "tier2", _("二级升级")

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="alerts")
    clock = models.CharField(max_length=16, choices=Clock.choices)
    stage = models.CharField(max_length=16, choices=Stage.choices)
    # The deadline this alert was for: an extension gives a new deadline and new alerts.
    due_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "clock", "stage", "due_at"], name="alert_once")
        ]

    def __str__(self) -> str:
        return f"{self.case_id} {self.clock} {self.stage}"


class Notification(models.Model):
    """A message to staff (the in-app inbox) or a resident (SMS), written with its event.

    Inbox rows are delivered by being written; an SMS row is sent by the ``notification.send``
    job (``dispatch.outbox``) that the same transaction records.
    """

    class Channel(models.TextChoices):
        INBOX = "inbox", _("站内消息")
        SMS = "sms", _("短信")

    class State(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("发送失败")
        SKIPPED = "skipped", _("历史数据，未发送")

    dedup_key = models.CharField(max_length=160, unique=True)
    channel = models.CharField(max_length=8, choices=Channel.choices)
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notifications",
    )
    # An SMS goes to the phone this party gave for this case (``CaseParty.phone``).
    recipient_party = models.ForeignKey(
        CaseParty, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The language the title and body were rendered in: the recipient's, not the actor's.
    language = models.CharField(max_length=16)
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=40)
    title = models.CharField(max_length=200)
    body = models.TextField()
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="notification_inbox"),
            # The inbox's unread messages, newest first: the first twenty read in order, however
            # many a sweep left unread.
            models.Index(
                fields=["recipient", "-created_at", "-id"],
                name="notification_unread",
                condition=Q(read_at__isnull=True, channel="inbox"),
            ),
            models.Index(
                fields=["state", "created_at"],
                name="notification_outbox",
                condition=Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} -> {self.recipient_id or self.recipient_party_id}"


class Job(models.Model):
    """Work that must happen after a commit: routing, a receipt, an SMS, a page to refresh.

    Written in the transaction whose change needs it, so it exists exactly when that change
    does; run by the workers from this table (``dispatch.outbox``), so a broker that is down at
    commit time delays it and loses nothing. ``key`` makes writing the same job twice (a retried
    task) a no-op.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("待执行")
        RUNNING = "running", _("执行中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")
        # Recorded while history was loaded (the demo county): the past is not work for now.
        SKIPPED = "skipped", _("历史数据，未执行")

    key = models.CharField(max_length=160, unique=True)
    topic = models.CharField(max_length=48)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=8, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField()
    # Not before this moment: retries back off by moving it.
    run_after = models.DateTimeField()
    # A running job whose worker died is run again once its lease has passed.
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = _("后台任务")
        verbose_name_plural = _("后台任务")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "running", "done", "failed", "skipped"]),
                name="job_state_valid",
            ),
        ]
        indexes = [
            # The relay's question: what is due now. Finished jobs drop out of the index.
            models.Index(
                fields=["run_after"],
                name="job_due",
                condition=Q(state__in=["pending", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic} {self.key} ({self.state})"


class CaseCodeCounter(models.Model):
    """The daily sequence behind case codes; incremented with one atomic upsert."""

    prefix = models.CharField(max_length=16, primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.prefix}:{self.last}"


# django-guardian with direct foreign keys (generic grants grow slow and can leak to a new row
# that reuses a primary key): explicit per-case grants, e.g. to a department summoned to help.


class CaseUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)


class CaseGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Case, on_delete=models.CASCADE)


class FigureCounts(models.Model):
    """The counters of a roll-up row: one per fact of ``dispatch.figures.FACTS``, each dated by
    the fact's own day (a summed fact also keeps how many cases it adds up)."""

    received = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    closed = models.PositiveIntegerField(default=0)
    closed_carried_out = models.PositiveIntegerField(default=0)
    closed_reworked = models.PositiveIntegerField(default=0)
    closed_extended = models.PositiveIntegerField(default=0)
    closed_returned = models.PositiveIntegerField(default=0)
    closed_escalated = models.PositiveIntegerField(default=0)
    closed_grid = models.PositiveIntegerField(default=0)
    closed_village = models.PositiveIntegerField(default=0)
    closed_township = models.PositiveIntegerField(default=0)
    closed_county = models.PositiveIntegerField(default=0)
    working_days = models.PositiveIntegerField(default=0)
    working_days_count = models.PositiveIntegerField(default=0)
    due = models.PositiveIntegerField(default=0)
    due_on_time = models.PositiveIntegerField(default=0)
    due_paused = models.PositiveIntegerField(default=0)
    reply_due = models.PositiveIntegerField(default=0)
    replied_on_time = models.PositiveIntegerField(default=0)
    followed_up = models.PositiveIntegerField(default=0)
    followed_up_satisfied = models.PositiveIntegerField(default=0)
    rated = models.PositiveIntegerField(default=0)
    rated_negative = models.PositiveIntegerField(default=0)
    disputes_accepted = models.PositiveIntegerField(default=0)
    disputes_resolved = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class DailyFigure(FigureCounts):
    """The dashboard's counts of one day, for one place, category, handling unit and window.

    Kept by the workers (``dispatch.rollups``) for days before today; today is always counted
    live.
    """

    day = models.DateField()
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    # The place's path, so that a township or county sums its rows with one prefix filter.
    region_path = models.CharField(max_length=255)
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    unit = models.ForeignKey(Unit, null=True, on_delete=models.CASCADE, related_name="+")
    window = models.ForeignKey(Unit, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "region", "category", "unit", "window"],
                name="daily_figure_unique",
                nulls_distinct=False,
            )
        ]
        indexes = [
            models.Index(fields=["region_path", "day"], name="daily_figure_scope"),
            models.Index(fields=["day"], name="daily_figure_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.region_id}"


class DailyTotal(FigureCounts):
    """The same counts at the grain of place and day only: the rows of ``DailyFigure`` summed
    over category, unit and window (about forty a day for a county instead of a thousand), so
    that a year's trend reads a few thousand rows. Written with them, in the same transaction
    (``dispatch.rollups.rebuild``)."""

    day = models.DateField()
    region = models.ForeignKey(Region, on_delete=models.CASCADE, related_name="+")
    region_path = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day", "region"], name="daily_total_unique"),
        ]
        indexes = [models.Index(fields=["day"], name="daily_total_day")]

    def __str__(self) -> str:
        return f"{self.day} {self.region_id}"


class RollupDay(models.Model):
    """A day whose figures must be counted again (a fact of it changed), or the last day done."""

    day = models.DateField(primary_key=True)
    # True: the day's figures are current. False: a case's fact of that day changed since.
    done = models.BooleanField(default=False)
    # New with every count of the day: sums kept of the counted days name the counts they add
    # up (``dispatch.rollups.tally``), so a sum is never read after one of its days changed.
    generation = models.UUIDField(default=uuid.uuid4)

    def __str__(self) -> str:
        return f"{self.day} {'done' if self.done else 'dirty'}"
