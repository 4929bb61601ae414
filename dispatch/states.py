"""The case's states and the allowed transitions, as data.

Services call ``check_transition`` before writing; a CheckConstraint guards the column. The
six steps of the closed loop (六步闭环) map onto the states in ``STEPS`` for the public page.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class Status(models.TextChoices):
    REPORTED = "reported", _("问题上报")
    REGISTERED = "registered", _("案卷建立")
    ASSIGNED = "assigned", _("任务指派")
    IN_PROGRESS = "in_progress", _("调查落实")
    FEEDBACK = "feedback", _("处理反馈")
    ARCHIVED = "archived", _("结案归档")
    REJECTED = "rejected", _("不予受理")


OPEN_STATUSES = frozenset(
    {Status.REPORTED, Status.REGISTERED, Status.ASSIGNED, Status.IN_PROGRESS, Status.FEEDBACK}
)
CLOSED_STATUSES = frozenset({Status.ARCHIVED, Status.REJECTED})

# The six public steps, in order; a case's current step is the index of its status here.
STEPS: list[Status] = [
    Status.REPORTED,
    Status.REGISTERED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.FEEDBACK,
    Status.ARCHIVED,
]


class Action(models.TextChoices):
    """Every event a case can record. Dotted codes, as stored in ``CaseEvent.action``.

    The labels name what happened ("Registered"), in the "event" context: the same Chinese word
    on a button names what to do ("Register", ``dispatch.policy.Op``).
    """

    REPORTED = "case.reported", pgettext_lazy("event", "问题上报")
    REGISTERED = "case.registered", pgettext_lazy("event", "立案")
    REJECTED = "case.rejected", pgettext_lazy("event", "不予受理")
    DISPATCHED = "case.dispatched", pgettext_lazy("event", "派单")
    SIGNED = "case.signed", pgettext_lazy("event", "签收")
    RETURNED = "case.returned", pgettext_lazy("event", "退回")
    ESCALATED = "case.escalated", pgettext_lazy("event", "上报上级")
    DELEGATED = "case.delegated", pgettext_lazy("event", "下派")
    TRANSFERRED = "case.transferred", pgettext_lazy("event", "转办")
    PROGRESS = "case.progress", pgettext_lazy("event", "办理进展")
    FEEDBACK = "case.feedback", pgettext_lazy("event", "处理反馈")
    VERIFIED = "case.verified", pgettext_lazy("event", "核查通过")
    REWORK = "case.rework", pgettext_lazy("event", "核查未通过，返工")
    ARCHIVED = "case.archived", pgettext_lazy("event", "结案归档")
    REOPENED = "case.reopened", pgettext_lazy("event", "重办")
    EXTENSION_REQUESTED = "case.extension_requested", pgettext_lazy("event", "申请延期")
    EXTENSION_APPROVED = "case.extension_approved", pgettext_lazy("event", "批准延期")
    EXTENSION_DENIED = "case.extension_denied", pgettext_lazy("event", "驳回延期")
    PAUSE_REQUESTED = "case.pause_requested", pgettext_lazy("event", "申请中止")
    PAUSED = "case.paused", pgettext_lazy("event", "中止办理")
    PAUSE_DENIED = "case.pause_denied", pgettext_lazy("event", "驳回中止")
    RESUMED = "case.resumed", pgettext_lazy("event", "恢复办理")
    REPLIED = "case.replied", pgettext_lazy("event", "告知当事人")
    URGED = "case.urged", pgettext_lazy("event", "督办")
    RESIDENT_URGED = "case.resident_urged", pgettext_lazy("event", "群众催办")
    FLAGGED = "case.flagged", pgettext_lazy("event", "挂牌督办")
    WARNED = "case.warned", pgettext_lazy("event", "即将超期预警")
    OVERDUE = "case.overdue", pgettext_lazy("event", "超期")
    ESCALATED_OVERDUE = "case.overdue_escalated", pgettext_lazy("event", "超期升级督办")
    ROUTED = "case.routed", pgettext_lazy("event", "系统派单建议")
    ROUTING_FAILED = "case.routing_failed", pgettext_lazy("event", "未匹配派单规则")
    RATED = "case.rated", pgettext_lazy("event", "群众评价")
    FOLLOWED_UP = "case.followed_up", pgettext_lazy("event", "回访")
    TOKEN_REISSUED = "case.token_reissued", pgettext_lazy("event", "补发查询码")
    LINKED = "case.linked", pgettext_lazy("event", "合并诉求")
    SUMMONED = "case.summoned", pgettext_lazy("event", "吹哨报到")


# from-states for each action that changes state, and the state it leads to. ``None`` as the
# target keeps the state (escalate/delegate/transfer move ownership, not the step).
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status | None]] = {
    Action.REGISTERED: (frozenset({Status.REPORTED}), Status.REGISTERED),
    Action.REJECTED: (frozenset({Status.REPORTED}), Status.REJECTED),
    Action.DISPATCHED: (frozenset({Status.REGISTERED}), Status.ASSIGNED),
    Action.SIGNED: (frozenset({Status.ASSIGNED}), Status.IN_PROGRESS),
    Action.RETURNED: (frozenset({Status.ASSIGNED, Status.IN_PROGRESS}), Status.REGISTERED),
    Action.ESCALATED: (
        frozenset({Status.REPORTED, Status.REGISTERED, Status.ASSIGNED, Status.IN_PROGRESS}),
        Status.REGISTERED,
    ),
    Action.DELEGATED: (frozenset({Status.REGISTERED}), Status.REGISTERED),
    Action.TRANSFERRED: (
        frozenset({Status.REPORTED, Status.REGISTERED, Status.ASSIGNED, Status.IN_PROGRESS}),
        Status.REGISTERED,
    ),
    Action.FEEDBACK: (frozenset({Status.IN_PROGRESS}), Status.FEEDBACK),
    Action.REWORK: (frozenset({Status.FEEDBACK}), Status.IN_PROGRESS),
    Action.ARCHIVED: (frozenset({Status.FEEDBACK}), Status.ARCHIVED),
    Action.REOPENED: (frozenset({Status.ARCHIVED}), Status.IN_PROGRESS),
}


# Events that urge the handling of a case: a task given before one of them shows as urged
# (``Assignment.urged_at``) in its handler's inbox.
URGING_ACTIONS = frozenset({Action.URGED, Action.RESIDENT_URGED, Action.ESCALATED_OVERDUE})


def target_status(action: Action, status: Status | str) -> Status | None:
    """The state ``action`` leads to from ``status``, or None if the table forbids it."""
    try:
        sources, target = TRANSITIONS[action]
    except KeyError:
        return Status(status)  # actions that do not change state are allowed in any state
    if status not in sources:
        return None
    return target if target is not None else Status(status)


def step_index(status: Status | str) -> int:
    """0-5 on the six-step line; a rejected case stops after the first step."""
    if status == Status.REJECTED:
        return 0
    return STEPS.index(Status(status))


class Grade(models.TextChoices):
    ORDINARY = "ordinary", _("一般")
    SIGNIFICANT = "significant", _("较大")
    MAJOR = "major", _("重大")
    EMERGENCY = "emergency", _("紧急")


class Channel(models.TextChoices):
    WINDOW = "window", _("窗口")
    GRID = "grid", _("网格上报")
    PHONE = "phone", _("电话")
    ONLINE = "online", _("网络")
    HOTLINE_12345 = "hotline_12345", _("12345转办")
    LETTER = "letter", _("来信")


class ReplyMethod(models.TextChoices):
    """How the resident was told (告知): the reply clock stops at the first one."""

    WRITTEN = "written", _("书面告知")
    PHONE = "phone", _("电话告知")
    SMS = "sms", _("短信告知")


class Satisfaction(models.IntegerChoices):
    VERY_SATISFIED = 5, _("非常满意")
    SATISFIED = 4, _("满意")
    BASICALLY_SATISFIED = 3, _("基本满意")
    DISSATISFIED = 2, _("不满意")
    VERY_DISSATISFIED = 1, _("非常不满意")


NEGATIVE_RATINGS = frozenset({Satisfaction.DISSATISFIED, Satisfaction.VERY_DISSATISFIED})


# The lowest level allowed to close a case of each grade: small problems stay in the grid,
# ordinary ones in the village, prominent ones in the township, major ones go to the county.
GRADE_MIN_CLOSE_LEVEL = {
    Grade.ORDINARY: "grid",
    Grade.SIGNIFICANT: "village",
    Grade.MAJOR: "township",
    Grade.EMERGENCY: "county",
}
