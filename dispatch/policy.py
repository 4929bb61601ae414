"""Who may do what to a case, in which state: one precondition per operation.

Services call ``require`` with the locked case before they write; the pages (and the API) call
``check`` or ``available`` with the same ``Subject`` to decide which actions to offer. A rule is
written once here and nowhere else: not in a view, a form or a template.

A precondition depends on the actor, the case and the clock, never on what a form typed: that
(a reason left empty, a unit outside the place) is the service's input check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from dispatch.access import (
    MANAGER_ROLES,
    REGISTER_ROLES,
    SUPERVISE_ROLES,
    Reach,
    reach_of,
)
from dispatch.actors import Actor, ResidentActor, SystemActor
from dispatch.errors import DispatchError, StaleCaseError
from dispatch.models import (
    LIVE_TASK,
    Assignment,
    AssignmentRole,
    AssignmentStatus,
    Case,
    PendingRequest,
)
from dispatch.states import (
    GRADE_MIN_CLOSE_LEVEL,
    NEGATIVE_RATINGS,
    OPEN_STATUSES,
    TRANSITIONS,
    Action,
    Grade,
    Status,
)
from grids.models import LEVEL_ORDER, Level
from people.models import Role, User

# 重办 may be asked for within this time after closing.
REOPEN_WINDOW = dt.timedelta(days=15)
WORKING = frozenset({Status.ASSIGNED, Status.IN_PROGRESS})


class Op(models.TextChoices):
    """Every operation on a case. The slugs are the pages' and the API's action names."""

    REGISTER = "register", gettext_lazy("立案")
    RESOLVE = "resolve", gettext_lazy("当场办结")
    REJECT = "reject", gettext_lazy("不予受理")
    DISPATCH = "dispatch", gettext_lazy("派单")
    SUMMON = "summon", gettext_lazy("吹哨报到")
    ESCALATE = "escalate", gettext_lazy("上报上级")
    DELEGATE = "delegate", gettext_lazy("下派")
    TRANSFER = "transfer", gettext_lazy("转办")
    SIGN = "sign", gettext_lazy("签收")
    PROGRESS = "progress", gettext_lazy("记录办理进展")
    REPLY = "reply", gettext_lazy("告知当事人")
    FEEDBACK = "feedback", gettext_lazy("反馈办理结果")
    EXTENSION = "extension", gettext_lazy("申请延期")
    PAUSE = "pause", gettext_lazy("申请中止")
    RETURN = "return", gettext_lazy("退回")
    DECIDE = "decide", gettext_lazy("审批延期/中止")
    RESUME = "resume", gettext_lazy("恢复办理")
    VERIFY = "verify", gettext_lazy("核查")
    URGE = "urge", gettext_lazy("督办")
    FLAG = "flag", gettext_lazy("挂牌督办")
    FOLLOW_UP = "followup", gettext_lazy("回访")
    FOLLOW_UP_AGAIN = "followup_again", gettext_lazy("再次回访")
    REOPEN = "reopen", gettext_lazy("重办")
    RECEIPT = "receipt", gettext_lazy("打印受理单")
    REISSUE_TOKEN = "reissue_token", gettext_lazy("补发查询码")
    LINK = "link", gettext_lazy("合并诉求")
    # The product's own operations.
    ROUTE = "route", gettext_lazy("系统派单")
    ALERT = "alert", gettext_lazy("时限预警")
    # The resident's, on the tracking page.
    RATE = "rate", gettext_lazy("群众评价")
    RESIDENT_URGE = "resident_urge", gettext_lazy("群众催办")
    RESIDENT_REOPEN = "resident_reopen", gettext_lazy("申请重办")


SYSTEM_OPS = frozenset({Op.DISPATCH, Op.ROUTE, Op.ALERT})
RESIDENT_OPS = frozenset({Op.RATE, Op.RESIDENT_URGE, Op.RESIDENT_REOPEN})
STAFF_OPS = frozenset(set(Op) - {Op.ROUTE, Op.ALERT} - RESIDENT_OPS)


@dataclass(frozen=True)
class Refusal:
    message: str
    code: str


def _forbidden() -> Refusal:
    return Refusal(_("您没有办理该案件此项操作的权限"), "forbidden")


class Subject:
    """An actor facing one case at one moment; what the rules ask, each read at most once.

    Services build it on the row they locked; a page builds it once for all its buttons.
    """

    def __init__(self, actor: Actor, case: Case, *, now: dt.datetime | None = None) -> None:
        self.actor = actor
        self.case = case
        self.now = now or timezone.now()

    @property
    def is_staff(self) -> bool:
        return isinstance(self.actor, User)

    @property
    def is_system(self) -> bool:
        return isinstance(self.actor, SystemActor)

    @property
    def is_resident(self) -> bool:
        return isinstance(self.actor, ResidentActor)

    @cached_property
    def reach(self) -> Reach | None:
        return reach_of(self.actor) if isinstance(self.actor, User) else None

    @cached_property
    def accused_member(self) -> bool:
        """Works for the unit the case complains about: may do nothing with it."""
        return self.reach is not None and self.reach.is_member_of(self.case.accused_unit_id)

    def _centre_role(self, roles) -> bool:
        if self.reach is None or self.accused_member:
            return False
        return self.reach.covers_centre(self.case.owner_unit, roles)

    @cached_property
    def registrar(self) -> bool:
        return self._centre_role(REGISTER_ROLES)

    @cached_property
    def manager(self) -> bool:
        return self._centre_role(MANAGER_ROLES)

    @cached_property
    def supervisor(self) -> bool:
        return self._centre_role(SUPERVISE_ROLES)

    @cached_property
    def counter_clerk(self) -> bool:
        """A clerk of the centre whose counter took the case in (receipts carry the token)."""
        if self.reach is None or self.accused_member:
            return False
        return self.reach.covers_centre(self.case.intake_unit, (Role.CLERK,))

    @cached_property
    def grid_worker(self) -> bool:
        return (
            self.reach is not None
            and not self.accused_member
            and self.reach.grid_worker_of(self.case.region)
        )

    @cached_property
    def live_tasks(self) -> list[Assignment]:
        """Live tasks on the case, the lead's first."""
        if self.case.pk is None:
            return []
        rows = list(
            self.case.assignments.filter(status__in=LIVE_TASK)
            .select_related("unit__region")
            .order_by("pk")
        )
        return sorted(rows, key=lambda a: a.role != AssignmentRole.LEAD)

    @cached_property
    def my_tasks(self) -> list[Assignment]:
        if self.reach is None or self.accused_member:
            return []
        return [a for a in self.live_tasks if self.reach.handles(a.unit)]

    def task(self, *, unit_id: int | None = None, lead: bool = False, status=None):
        for task in self.my_tasks:
            if unit_id is not None and task.unit_id != unit_id:
                continue
            if lead and task.role != AssignmentRole.LEAD:
                continue
            if status is not None and task.status != status:
                continue
            return task
        return None

    @cached_property
    def pending_requests(self) -> list[PendingRequest]:
        return list(self.case.requests.filter(state=PendingRequest.State.PENDING).order_by("pk"))

    def pending(self, kind: str) -> PendingRequest | None:
        return next((r for r in self.pending_requests if r.kind == kind), None)

    @property
    def paused(self) -> bool:
        return self.case.paused_at is not None


# --- shared conditions ----------------------------------------------------------------------


def _level_rank(level: str) -> int:
    return LEVEL_ORDER.index(Level(level))


def grade_refusal(case: Case, *, level: str | None = None) -> Refusal | None:
    """A centre below the grade's lowest closing level may not close: it must escalate.

    ``level`` is the level that would close (the owner centre's unless a grid worker settles it
    in the grid).
    """
    minimum = GRADE_MIN_CLOSE_LEVEL[Grade(case.grade)]
    if _level_rank(level or case.owner_level) < _level_rank(minimum):
        return Refusal(
            _("%(grade)s案件须由%(level)s及以上层级结案，本级不能归档，请上报上级中心")
            % {"grade": Grade(case.grade).label, "level": Level(minimum).label},
            "grade",
        )
    return None


def closing_level(subject: Subject) -> str:
    """The level a 当场办结 counts at: the grid when the grid's own worker settles it."""
    if not subject.registrar and subject.grid_worker:
        return Level.GRID
    return subject.case.owner_level


def _state(subject: Subject, states: Iterable[str], op: Op) -> Refusal | None:
    if subject.case.status in states:
        return None
    return Refusal(
        _("案件当前为“%(status)s”，不能执行“%(action)s”")
        % {"status": Status(subject.case.status).label, "action": op.label},
        "transition",
    )


def _from(action: Action) -> frozenset[Status]:
    return TRANSITIONS[action][0]


def _not_paused(subject: Subject) -> Refusal | None:
    if subject.paused:
        return Refusal(_("案件已中止办理，请先恢复办理"), "paused")
    return None


def _task(subject: Subject, *, lead: bool = False, status=None) -> Refusal | None:
    """The actor holds a live task (of the lead, in ``status``) on the case."""
    if subject.task(lead=lead, status=status) is not None:
        return None
    if lead and subject.task() is not None:
        return Refusal(_("此项操作须由主办单位办理"), "lead_only")
    if status == AssignmentStatus.PENDING and subject.task() is not None:
        return Refusal(_("本单位已签收该任务"), "already_signed")
    return _forbidden()


def _who(allowed: bool) -> Refusal | None:
    return None if allowed else _forbidden()


def _first(*checks: Callable[[], Refusal | None]) -> Refusal | None:
    for check in checks:
        refusal = check()
        if refusal is not None:
            return refusal
    return None


def is_late(case: Case, *, now: dt.datetime) -> bool:
    return (
        case.status in OPEN_STATUSES
        and case.due_at is not None
        and case.paused_at is None
        and case.due_at < now
    )


def reopen_refusal(case: Case, *, now: dt.datetime) -> Refusal | None:
    """重办: once, within 15 days of closing."""
    if case.status != Status.ARCHIVED or case.closed_at is None:
        return Refusal(_("只有已办结的案件才能重办"), "transition")
    if case.reopen_count >= 1:
        return Refusal(_("本案已重办过一次，不能再次重办"), "reopen_limit")
    if now - case.closed_at > REOPEN_WINDOW:
        return Refusal(_("已超过办结后15天，不能申请重办"), "too_late")
    return None


# --- the rules --------------------------------------------------------------------------------


def _register(s: Subject) -> Refusal | None:
    return _first(
        lambda: _who(s.registrar), lambda: _state(s, _from(Action.REGISTERED), Op.REGISTER)
    )


def _resolve(s: Subject) -> Refusal | None:
    return _first(
        lambda: _who(s.registrar or s.grid_worker),
        lambda: _state(s, _from(Action.REGISTERED), Op.RESOLVE),
        lambda: grade_refusal(s.case, level=closing_level(s)),
    )


def _reject(s: Subject) -> Refusal | None:
    return _first(lambda: _who(s.registrar), lambda: _state(s, _from(Action.REJECTED), Op.REJECT))


def _dispatch(s: Subject) -> Refusal | None:
    return _first(
        lambda: _who(s.is_system or s.manager),
        lambda: _state(s, _from(Action.DISPATCHED), Op.DISPATCH),
        # A centre that may not close the case must report it up before anyone works on it.
        lambda: grade_refusal(s.case),
    )


def _summon(s: Subject) -> Refusal | None:
    return _first(lambda: _who(s.manager), lambda: _state(s, WORKING, Op.SUMMON))


def _escalate(s: Subject) -> Refusal | None:
    def has_upper() -> Refusal | None:
        if s.case.owner_unit.region.parent_id is None:
            return Refusal(_("已是最高层级，无法再上报"), "top_level")
        return None

    return _first(
        lambda: _who(s.manager), lambda: _state(s, _from(Action.ESCALATED), Op.ESCALATE), has_upper
    )


def _delegate(s: Subject) -> Refusal | None:
    return _first(lambda: _who(s.manager), lambda: _state(s, _from(Action.DELEGATED), Op.DELEGATE))


def _transfer(s: Subject) -> Refusal | None:
    return _first(
        lambda: _who(s.manager), lambda: _state(s, _from(Action.TRANSFERRED), Op.TRANSFER)
    )


def _sign(s: Subject) -> Refusal | None:
    return _first(
        lambda: _task(s, status=AssignmentStatus.PENDING),
        lambda: _state(s, WORKING, Op.SIGN),
        lambda: _not_paused(s),
    )


def _progress(s: Subject) -> Refusal | None:
    return _first(lambda: _task(s), lambda: _state(s, WORKING, Op.PROGRESS))


REPLY_STATES = frozenset({Status.REGISTERED, Status.ASSIGNED, Status.IN_PROGRESS, Status.FEEDBACK})


def _reply(s: Subject) -> Refusal | None:
    return _first(
        lambda: _who(s.manager or s.task(lead=True) is not None),
        lambda: _state(s, REPLY_STATES, Op.REPLY),
    )


def _feedback(s: Subject) -> Refusal | None:
    return _first(
        lambda: _task(s, lead=True, status=AssignmentStatus.SIGNED),
        lambda: _state(s, _from(Action.FEEDBACK), Op.FEEDBACK),
        lambda: _not_paused(s),
    )


def _extension(s: Subject) -> Refusal | None:
    case = s.case

    def in_time() -> Refusal | None:
        if case.due_at is None or s.now >= case.due_at:
            return Refusal(_("已超过办结期限，不能再申请延期"), "too_late")
        limit = case.profile.max_extensions if case.profile is not None else 1
        if case.extension_count >= limit:
            return Refusal(
                _("本案已延期%(n)s次，不能再申请延期") % {"n": case.extension_count},
                "extension_limit",
            )
        if s.pending(PendingRequest.Kind.EXTENSION) is not None:
            return Refusal(_("已有待审批的同类申请"), "pending_exists")
        return None

    return _first(
        lambda: _task(s, lead=True),
        lambda: _state(s, WORKING, Op.EXTENSION),
        lambda: _not_paused(s),
        in_time,
    )


def _pause(s: Subject) -> Refusal | None:
    def none_pending() -> Refusal | None:
        if s.pending(PendingRequest.Kind.PAUSE) is not None:
            return Refusal(_("已有待审批的同类申请"), "pending_exists")
        return None

    return _first(
        lambda: _task(s, lead=True),
        lambda: _state(s, WORKING, Op.PAUSE),
        lambda: _not_paused(s),
        none_pending,
    )


def _return(s: Subject) -> Refusal | None:
    return _first(lambda: _task(s), lambda: _state(s, _from(Action.RETURNED), Op.RETURN))


def _decide(s: Subject) -> Refusal | None:
    def something_pending() -> Refusal | None:
        if not s.pending_requests:
            return Refusal(_("该申请已被他人审批，请刷新后查看"), "stale")
        return None

    return _first(lambda: _who(s.supervisor), something_pending)


def _resume(s: Subject) -> Refusal | None:
    def paused() -> Refusal | None:
        if not s.paused:
            return Refusal(_("案件未中止，无需恢复"), "not_paused")
        return None

    return _first(lambda: _who(s.supervisor), paused)


def _verify(s: Subject) -> Refusal | None:
    return _first(lambda: _who(s.supervisor), lambda: _state(s, _from(Action.ARCHIVED), Op.VERIFY))


def _urge(s: Subject) -> Refusal | None:
    return _first(lambda: _who(s.supervisor), lambda: _state(s, OPEN_STATUSES, Op.URGE))


def _flag(s: Subject) -> Refusal | None:
    return _first(lambda: _who(s.supervisor), lambda: _state(s, OPEN_STATUSES, Op.FLAG))


def _follow_up(s: Subject) -> Refusal | None:
    def not_yet() -> Refusal | None:
        if s.case.followed_up_at is not None:
            return Refusal(_("本案已回访；如需再次回访，请选择“再次回访”"), "followed_up")
        return None

    return _first(
        lambda: _who(s.supervisor),
        lambda: _state(s, {Status.ARCHIVED}, Op.FOLLOW_UP),
        not_yet,
    )


def _follow_up_again(s: Subject) -> Refusal | None:
    """A second call, intended and labelled as such: only after the first."""

    def done_once() -> Refusal | None:
        if s.case.followed_up_at is None:
            return Refusal(_("本案尚未回访"), "not_followed_up")
        return None

    return _first(
        lambda: _who(s.supervisor),
        lambda: _state(s, {Status.ARCHIVED}, Op.FOLLOW_UP_AGAIN),
        done_once,
    )


def _reopen(s: Subject) -> Refusal | None:
    return _first(lambda: _who(s.supervisor), lambda: reopen_refusal(s.case, now=s.now))


def _receipt(s: Subject) -> Refusal | None:
    return _who(s.counter_clerk)


def _link(s: Subject) -> Refusal | None:
    """A clerk joins a returning resident's request to a case of their area."""
    reach = s.reach
    if reach is None or s.accused_member:
        return _forbidden()
    in_area = any(s.case.region.path.startswith(p) for p in reach.area_paths((Role.CLERK,)))
    return _who(s.registrar or s.counter_clerk or in_area)


def _route(s: Subject) -> Refusal | None:
    case = s.case
    if case.status != Status.REGISTERED or case.lead_unit_id is not None:
        return Refusal(_("案件已不在待派单状态"), "transition")
    if case.suggested_unit_id is not None or case.needs_routing:
        return Refusal(_("案件已按规则处理过"), "routed")
    return None


def _alert(s: Subject) -> Refusal | None:
    if s.case.status not in OPEN_STATUSES or s.paused:
        return Refusal(_("案件已办结或已中止"), "transition")
    return None


def _rate(s: Subject) -> Refusal | None:
    if s.case.resident_rating is not None:
        return Refusal(_("您已评价过本案件，每件只能评价一次"), "rated")
    # The resident rates a result that has passed verification, never one about to be reworked.
    if s.case.status != Status.ARCHIVED:
        return Refusal(_("案件办结后才能评价"), "too_early")
    return None


def _resident_urge(s: Subject) -> Refusal | None:
    case = s.case
    if not is_late(case, now=s.now):
        return Refusal(_("案件尚未超期，暂不能催办"), "not_late")
    if case.resident_urged_at is not None and (
        timezone.localdate(case.resident_urged_at) == timezone.localdate(s.now)
    ):
        return Refusal(_("今天已经催办过了，请明天再试"), "once_a_day")
    return None


def _resident_reopen(s: Subject) -> Refusal | None:
    if s.case.resident_rating not in NEGATIVE_RATINGS:
        return Refusal(_("只有不满意的评价才能申请重办"), "not_negative")
    return reopen_refusal(s.case, now=s.now)


RULES: dict[Op, Callable[[Subject], Refusal | None]] = {
    Op.REGISTER: _register,
    Op.RESOLVE: _resolve,
    Op.REJECT: _reject,
    Op.DISPATCH: _dispatch,
    Op.SUMMON: _summon,
    Op.ESCALATE: _escalate,
    Op.DELEGATE: _delegate,
    Op.TRANSFER: _transfer,
    Op.SIGN: _sign,
    Op.PROGRESS: _progress,
    Op.REPLY: _reply,
    Op.FEEDBACK: _feedback,
    Op.EXTENSION: _extension,
    Op.PAUSE: _pause,
    Op.RETURN: _return,
    Op.DECIDE: _decide,
    Op.RESUME: _resume,
    Op.VERIFY: _verify,
    Op.URGE: _urge,
    Op.FLAG: _flag,
    Op.FOLLOW_UP: _follow_up,
    Op.FOLLOW_UP_AGAIN: _follow_up_again,
    Op.REOPEN: _reopen,
    Op.RECEIPT: _receipt,
    Op.REISSUE_TOKEN: _receipt,
    Op.LINK: _link,
    Op.ROUTE: _route,
    Op.ALERT: _alert,
    Op.RATE: _rate,
    Op.RESIDENT_URGE: _resident_urge,
    Op.RESIDENT_REOPEN: _resident_reopen,
}


def check(op: Op, subject: Subject) -> Refusal | None:
    """Why ``subject`` may not do ``op`` now, or None when it may."""
    if subject.is_staff:
        allowed_ops = STAFF_OPS
    elif subject.is_system:
        allowed_ops = SYSTEM_OPS
    elif subject.is_resident:
        allowed_ops = RESIDENT_OPS
    else:
        raise TypeError(f"not an actor: {subject.actor!r}")
    if op not in allowed_ops:
        return _forbidden()
    return RULES[op](subject)


def allows(op: Op, subject: Subject) -> bool:
    return check(op, subject) is None


def require(op: Op, subject: Subject) -> None:
    """Raise the refusal as a ``DispatchError``; services call this on the locked case."""
    refusal = check(op, subject)
    if refusal is not None:
        error = StaleCaseError if refusal.code == "stale" else DispatchError
        raise error(refusal.message, code=refusal.code)


def available(subject: Subject, ops: Iterable[Op]) -> list[Op]:
    """The operations of ``ops`` the subject may do now, in the order given."""
    return [op for op in ops if check(op, subject) is None]
