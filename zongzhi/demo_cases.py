"""The demo county's cases: a few hundred, spread over the last months, in every step.

Each case is driven through the same services the screens call (``dispatch.services``,
``dispatch.routing``, ``intake.services``) with a past ``now=``, so its history, deadlines,
notifications and hash chain are what production would hold. Cases are keyed by
``intake_key`` (uuid5 of a fixed namespace and the case's index): a second run finds every
case already there and adds nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import uuid
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from dispatch import routing
from dispatch import services as ds
from dispatch.models import Case, Category, DeadlineProfile, PartyRole
from dispatch.states import Channel, Grade, Satisfaction, Status
from grids.models import Level, Region, Unit
from people.identity import id_check_digit
from people.models import Party, Role, RoleGrant, User
from people.services import save_party
from zongzhi.demo import DemoCounty, demo_person_name, stable_int

log = logging.getLogger("zongzhi.demo")

DEMO_NAMESPACE = uuid.UUID("5b0f3c1e-8a52-4d6b-9a57-1c9e7f0d2a11")
SPAN_DAYS = 150

# Categories whose lead is a county bureau: a township centre cannot dispatch to the county, so
# such cases are registered at the county centre (hotline, online) or escalated there.
BUREAU_OF = {
    "dispute-labour": "rsj",
    "dispute-pollution": "sthj",
    "dispute-consumer": "scjg",
    "dispute-medical": "wjj",
    "dispute-land": "zrzy",
    "dispute-demolition": "zjj",
    "request-municipal": "zjj",
    "request-social": "rsj",
    "hazard-production": "yjj",
    "hazard-fire": "yjj",
    "hazard-food": "scjg",
    "hazard-geology": "zrzy",
    "hazard-public-order": "gaj",
}
CATEGORY_WEIGHTS = {
    "dispute-neighbour": 14,
    "dispute-property": 8,
    "dispute-labour": 8,
    "dispute-marriage": 6,
    "dispute-homestead": 5,
    "dispute-land": 3,
    "dispute-contract": 3,
    "dispute-damage": 3,
    "dispute-consumer": 3,
    "dispute-traffic": 2,
    "dispute-demolition": 2,
    "dispute-village": 3,
    "dispute-pollution": 2,
    "dispute-business": 2,
    "dispute-medical": 1,
    "dispute-inheritance": 2,
    "dispute-other": 2,
    "request-city": 6,
    "request-municipal": 5,
    "request-policy": 4,
    "request-social": 3,
    "request-traffic": 2,
    "request-education": 2,
    "hazard-production": 3,
    "hazard-public-order": 2,
    "hazard-fire": 2,
    "hazard-food": 1,
    "hazard-geology": 1,
}
CHANNELS = {
    Channel.WINDOW: 35,
    Channel.GRID: 25,
    Channel.PHONE: 12,
    Channel.HOTLINE_12345: 15,
    Channel.ONLINE: 10,
    Channel.LETTER: 3,
}
GRADES = {Grade.ORDINARY: 78, Grade.SIGNIFICANT: 15, Grade.MAJOR: 5, Grade.EMERGENCY: 2}
SUMMARIES = {
    "dispute-neighbour": [
        "楼上住户装修噪音扰民，多次沟通无果",
        "邻居占用公共通道堆放杂物",
        "邻里因排水沟堵塞发生争执",
    ],
    "dispute-property": ["物业公司收费标准争议", "小区电梯长期故障，物业未维修"],
    "dispute-labour": ["施工队拖欠农民工工资约三万元", "工厂解除劳动合同未支付补偿"],
    "dispute-marriage": ["夫妻因赡养老人问题发生矛盾", "离婚后子女探视纠纷"],
    "dispute-homestead": ["宅基地边界争议，双方各执一词", "翻建房屋超出原宅基地范围"],
    "request-city": ["路边摊点占道经营影响通行", "小区周边垃圾清运不及时"],
    "request-municipal": ["路灯损坏多日未修", "供水管道漏水，路面结冰"],
    "request-policy": ["咨询城乡居民医保缴费政策", "咨询高龄津贴申领条件"],
    "hazard-production": ["冷库附近闻到刺鼻氨味", "小作坊违规存放液化气罐"],
    "hazard-fire": ["楼道堆放杂物堵塞消防通道", "电动车在楼道内充电"],
}
RESULTS = [
    "经调解双方达成一致，签订调解协议",
    "已现场处置，隐患消除",
    "已督促责任方整改到位",
    "已向当事人解释政策，当事人表示理解",
    "已协调相关部门落实，问题解决",
]


@dataclass
class Plan:
    index: int
    reported_at: dt.datetime
    grid: Region
    category: Category
    channel: str
    grade: str
    outcome: str  # a Status value, or "on_spot"
    rng: random.Random

    @property
    def village(self) -> Region:
        village = self.grid.parent
        assert village is not None  # a grid always sits under its village
        return village


class Cast:
    """Who does what for a case: the demo logins by role and unit."""

    def __init__(self, demo: DemoCounty) -> None:
        self.demo = demo
        self.users = demo.users
        self.grid_worker_of: dict[int, User] = {}
        for grant in RoleGrant.objects.filter(role=Role.GRID_WORKER).select_related("user"):
            if grant.region_id is not None:
                self.grid_worker_of.setdefault(grant.region_id, grant.user)
        self.handler_of_unit: dict[int, User] = {}
        for grant in RoleGrant.objects.filter(role=Role.HANDLER, unit__isnull=False).select_related(
            "user"
        ):
            assert grant.unit_id is not None  # filtered on unit__isnull=False
            self.handler_of_unit.setdefault(grant.unit_id, grant.user)
        self.town_key = {t.pk: key for key, t in demo.townships.items()}
        self.profiles = {p.name[:2]: p for p in DeadlineProfile.objects.all()}

    def township_of(self, region: Region) -> Region:
        code = region.code[:9] + "000"
        return next(t for t in self.demo.townships.values() if t.code == code)

    def key_for_owner(self, owner: Unit) -> str:
        if owner.level == Level.COUNTY:
            return "county"
        region = owner.region
        return self.town_key[self.township_of(region).pk]

    def dispatcher(self, owner: Unit) -> User:
        return self.users[f"dispatcher_{self.key_for_owner(owner)}"]

    def supervisor(self, owner: Unit) -> User:
        return self.users[f"supervisor_{self.key_for_owner(owner)}"]

    def clerk(self, owner: Unit) -> User:
        return self.users[f"clerk_{self.key_for_owner(owner)}"]

    def grid_worker(self, grid: Region) -> User | None:
        return self.grid_worker_of.get(grid.pk)

    def handler(self, unit: Unit) -> User | None:
        return self.handler_of_unit.get(unit.pk)

    def profile_for(self, category: Category, grade: str) -> DeadlineProfile:
        if grade == Grade.EMERGENCY:
            return self.profiles["紧急"]
        if category.kind == "hazard":
            return self.profiles["公共"]
        if category.code in BUREAU_OF and category.kind == "dispute":
            return self.profiles["复杂"]
        return self.profiles["一般"]


def _weighted(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _outcome(rng: random.Random, age_days: float) -> str:
    if age_days > 30:
        shares = {
            Status.ARCHIVED: 83,
            "on_spot": 6,
            Status.REJECTED: 4,
            Status.IN_PROGRESS: 4,
            Status.FEEDBACK: 3,
        }
    elif age_days > 8:
        shares = {
            Status.ARCHIVED: 45,
            "on_spot": 6,
            Status.REJECTED: 4,
            Status.IN_PROGRESS: 20,
            Status.FEEDBACK: 12,
            Status.ASSIGNED: 6,
            Status.REGISTERED: 7,
        }
    else:
        shares = {
            Status.REPORTED: 12,
            Status.REGISTERED: 12,
            Status.ASSIGNED: 18,
            Status.IN_PROGRESS: 24,
            Status.FEEDBACK: 12,
            Status.ARCHIVED: 10,
            "on_spot": 7,
            Status.REJECTED: 5,
        }
    return _weighted(rng, shares)


# The last week's cases cycle through every step, so that each screen has something to show
# whatever the number of demo cases.
RECENT_DAYS = 8
RECENT_CYCLE = [
    Status.REPORTED,
    Status.REGISTERED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.FEEDBACK,
    Status.ARCHIVED,
    "on_spot",
    Status.REJECTED,
    Status.IN_PROGRESS,
    Status.ASSIGNED,
]


def plan_case(demo: DemoCounty, index: int, total: int, now: dt.datetime) -> Plan:
    rng = random.Random(f"qinghe-demo-case-{index}")  # noqa: S311 - demo data, not secrets
    # Oldest first, denser towards today (as a centre's open work is), always in office hours.
    age_days = SPAN_DAYS * (1 - index / total) ** 1.5 + rng.uniform(-0.3, 0.3)
    day = timezone.localtime(now - dt.timedelta(days=max(age_days, 0.2))).replace(
        hour=rng.randint(8, 16), minute=rng.randint(0, 59), second=rng.randint(0, 59), microsecond=0
    )
    reported_at = min(day, now - dt.timedelta(hours=2))
    age = (now - reported_at).total_seconds() / 86400
    codes = [c for c in CATEGORY_WEIGHTS if c in demo.categories]
    category = demo.categories[_weighted(rng, {c: CATEGORY_WEIGHTS[c] for c in codes})]
    outcome = RECENT_CYCLE[index % len(RECENT_CYCLE)] if age <= RECENT_DAYS else _outcome(rng, age)
    channel, grade = _weighted(rng, CHANNELS), _weighted(rng, GRADES)
    if outcome == "on_spot" and rng.random() < 0.5:
        # Half of what is settled on the spot is a grid worker's small matter in their grid.
        channel, grade = Channel.GRID, Grade.ORDINARY
    return Plan(
        index=index,
        reported_at=reported_at,
        grid=rng.choice(demo.grids),
        category=category,
        channel=channel,
        grade=grade,
        outcome=outcome,
        rng=rng,
    )


def _id_number(index: int) -> str:
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=stable_int("birth", index, modulo=18000))
    first17 = f"139901{birth:%Y%m%d}{stable_int('seq', index, modulo=1000):03d}"
    return first17 + id_check_digit(first17)


def _parties(plan: Plan) -> list[tuple[Party, str]]:
    i = plan.index
    applicant = save_party(
        name=demo_person_name("applicant", i),
        phone=f"139{stable_int('phone', i, modulo=10**8):08d}",
        id_number=_id_number(i) if plan.rng.random() < 0.7 else "",
        address=f"{plan.village.name}{plan.rng.randint(1, 9)}组{plan.rng.randint(1, 60)}号",
    )
    rows: list[tuple[Party, str]] = [(applicant, PartyRole.APPLICANT)]
    if plan.category.kind == "dispute" and plan.rng.random() < 0.6:
        respondent = save_party(
            name=demo_person_name("respondent", i),
            phone=f"138{stable_int('phone2', i, modulo=10**8):08d}",
        )
        rows.append((respondent, PartyRole.RESPONDENT))
    return rows


class Clock:
    """The case's own time line; a step that would land in the future does not happen."""

    def __init__(self, start: dt.datetime, now: dt.datetime, rng: random.Random) -> None:
        self.t, self.now, self.rng = start, now, rng

    def advance(self, low_hours: float, high_hours: float) -> bool:
        nxt = self.t + dt.timedelta(hours=self.rng.uniform(low_hours, high_hours))
        if nxt >= self.now - dt.timedelta(minutes=5):
            return False
        self.t = nxt
        return True


STEP: list[str] = [
    Status.REPORTED,
    Status.REGISTERED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.FEEDBACK,
    Status.ARCHIVED,
]


def _reached(outcome: str, status: str) -> bool:
    """Does a case planned to end at ``outcome`` go through ``status``?"""
    if outcome in ("on_spot", Status.REJECTED):
        return False
    return STEP.index(outcome) >= STEP.index(status)


def play_case(cast: Cast, plan: Plan, now: dt.datetime) -> Case | None:
    """Create the case and drive it as far as its plan (and the clock) allows."""
    demo, rng = cast.demo, plan.rng
    bureau_key = BUREAU_OF.get(plan.category.code)
    township = cast.township_of(plan.grid)
    village = plan.village
    at_county = plan.grade == Grade.EMERGENCY or (
        bureau_key is not None and plan.channel in (Channel.HOTLINE_12345, Channel.ONLINE)
    )
    owner = demo.centres[demo.county.code if at_county else township.code]
    grid_worker = cast.grid_worker(plan.grid)
    creator = (
        grid_worker
        if plan.channel == Channel.GRID and not at_county and grid_worker is not None
        else cast.clerk(owner)
    )
    summary = rng.choice(SUMMARIES.get(plan.category.code, [f"{plan.category.name}诉求"]))
    case, created = ds.create_case(
        actor=creator,
        channel=plan.channel,
        category=plan.category,
        grade=plan.grade,
        summary=f"{village.name}：{summary}",
        narrative=f"当事人反映：{summary}。请求尽快处理。",
        region=plan.grid,
        owner_unit=owner,
        parties=_parties(plan),
        address_detail=f"{village.name}{rng.randint(1, 9)}组附近",
        intake_key=uuid.uuid5(DEMO_NAMESPACE, f"case-{plan.index}"),
        now=plan.reported_at,
    )
    if not created:
        return None
    clock = Clock(plan.reported_at, now, rng)
    try:
        _drive(cast, plan, case, owner, bureau_key, clock)
    except ds.DispatchError as exc:
        # The case keeps the steps already taken; the demo is still consistent.
        log.warning("demo case %s stopped at %s: %s", case.code, case.status, exc.message)
    return case


def _drive(cast: Cast, plan: Plan, case: Case, owner: Unit, bureau_key, clock: Clock) -> None:
    rng = plan.rng
    if plan.outcome == "on_spot":
        if plan.grade in (Grade.ORDINARY, Grade.SIGNIFICANT) and clock.advance(0.1, 0.5):
            # A grid worker settles small matters in their own grid (小问题不出网格).
            small = plan.channel == Channel.GRID and plan.grade == Grade.ORDINARY
            actor = cast.grid_worker(plan.grid) if small else None
            ds.resolve_on_spot(
                case=case,
                actor=actor or cast.clerk(owner),
                result=rng.choice(RESULTS),
                now=clock.t,
            )
            _after_close(cast, plan, case, clock)
        return
    if plan.outcome == Status.REJECTED:
        if clock.advance(0.1, 1):
            ds.reject_case(
                case=case,
                actor=cast.clerk(owner),
                reason="该事项已进入诉讼程序，不属于本中心受理范围",
                referral="县人民法院诉讼服务中心",
                now=clock.t,
            )
        return
    if not _reached(plan.outcome, Status.REGISTERED) or not clock.advance(0.2, 3):
        return
    dispatcher = cast.dispatcher(owner)
    ds.register_case(case=case, actor=dispatcher, now=clock.t)
    routing.route_registered_case(case_id=case.pk, now=clock.t)
    case.refresh_from_db()
    if not _reached(plan.outcome, Status.ASSIGNED):
        return
    if case.status == Status.REGISTERED:
        lead = _choose_lead(cast, plan, case, bureau_key)
        if lead.level == Level.COUNTY and case.owner_level != Level.COUNTY:
            if not clock.advance(0.5, 6):
                return
            ds.escalate_case(case=case, actor=dispatcher, reason="需县级职能部门办理", now=clock.t)
            case.refresh_from_db()
            dispatcher = cast.dispatcher(case.owner_unit)
        if not clock.advance(0.2, 5):
            return
        ds.dispatch_case(
            case=case,
            actor=dispatcher,
            unit=lead,
            profile=cast.profile_for(plan.category, plan.grade),
            now=clock.t,
        )
        case.refresh_from_db()
    # 退回: now and then the first unit was the wrong one.
    if rng.random() < 0.06 and clock.advance(1, 8):
        wrong = case.lead_unit
        assert wrong is not None  # the case has been dispatched to its lead unit
        handler = cast.handler(wrong)
        ds.return_case(
            case=case, actor=handler, reason="不属于本单位职责范围，请重新派单", now=clock.t
        )
        case.refresh_from_db()
        lead = _choose_lead(cast, plan, case, bureau_key, avoid=wrong)
        if lead.pk == wrong.pk or not clock.advance(0.5, 4):
            return
        ds.dispatch_case(case=case, actor=cast.dispatcher(case.owner_unit), unit=lead, now=clock.t)
        case.refresh_from_db()
    if not _reached(plan.outcome, Status.IN_PROGRESS) or not clock.advance(0.2, 6):
        return
    assert case.lead_unit is not None  # the case has been dispatched to its lead unit
    lead = case.lead_unit
    handler = cast.handler(lead)
    ds.sign_case(case=case, actor=handler, now=clock.t)
    case.refresh_from_db()
    supervisor = cast.supervisor(case.owner_unit)
    if case.is_flagged is False and plan.grade == Grade.MAJOR and clock.advance(1, 4):
        ds.flag_case(
            case=case, actor=supervisor, flagged=True, note="重大案件，挂牌督办", now=clock.t
        )
    if rng.random() < 0.08 and case.due_at and clock.advance(4, 24) and clock.t < case.due_at:
        request = ds.request_extension(
            case=case, actor=handler, days=5, reason="需等待第三方鉴定结果", now=clock.t
        )
        if clock.advance(1, 8):
            approve = rng.random() < 0.75
            ds.decide_extension(
                request=request,
                actor=supervisor,
                approve=approve,
                note="同意延期5个工作日" if approve else "理由不充分，请按期办结",
                now=clock.t,
            )
        case.refresh_from_db()
    if not _reached(plan.outcome, Status.FEEDBACK):
        # Still being handled: an overdue one has been urged by the supervisor.
        if case.due_at and case.due_at < clock.now and rng.random() < 0.6:
            urge_at = max(case.due_at, clock.t) + dt.timedelta(hours=rng.uniform(2, 20))
            if urge_at < clock.now - dt.timedelta(minutes=5):
                ds.urge_case(
                    case=case, actor=supervisor, note="已超期，请于两日内办结并反馈", now=urge_at
                )
        return
    # Handling time: a day or two for most, longer for complex ones; some run late.
    if not clock.advance(4, 24 * rng.choice([1, 2, 3, 5, 12])):
        return
    ds.record_progress(
        case=case,
        actor=handler,
        note="已联系双方当事人，正在调查核实",
        now=clock.t - dt.timedelta(hours=2),
    )
    ds.submit_feedback(case=case, actor=handler, result=rng.choice(RESULTS), now=clock.t)
    if not _reached(plan.outcome, Status.ARCHIVED) or not clock.advance(1, 30):
        return
    if rng.random() < 0.06:
        ds.verify_case(
            case=case,
            actor=supervisor,
            passed=False,
            note="现场核查问题仍未解决，请返工",
            now=clock.t,
        )
        if not clock.advance(4, 48):
            return
        ds.submit_feedback(case=case, actor=handler, result="返工后已整改到位", now=clock.t)
        if not clock.advance(1, 24):
            return
    ds.verify_case(
        case=case, actor=supervisor, passed=True, carried_out=rng.random() < 0.95, now=clock.t
    )
    _after_close(cast, plan, case, clock)


def _after_close(cast: Cast, plan: Plan, case: Case, clock: Clock) -> None:
    """The resident's rating and the follow-up call (回访) after closing."""
    rng = plan.rng
    case.refresh_from_db()
    rating = None
    if rng.random() < 0.6 and clock.advance(1, 48):
        rating = _weighted(
            rng,
            {
                Satisfaction.VERY_SATISFIED: 45,
                Satisfaction.SATISFIED: 33,
                Satisfaction.BASICALLY_SATISFIED: 12,
                Satisfaction.DISSATISFIED: 6,
                Satisfaction.VERY_DISSATISFIED: 4,
            },
        )
        _rate(case, rating, clock.t)
    if rng.random() < 0.5 and clock.advance(20, 30):
        ds.follow_up_case(
            case=case,
            actor=cast.supervisor(case.owner_unit),
            satisfaction=rating or Satisfaction.SATISFIED,
            carried_out=True,
            note="电话回访",
            now=clock.t,
        )
    if (
        rating in (Satisfaction.DISSATISFIED, Satisfaction.VERY_DISSATISFIED)
        and rng.random() < 0.5
        and clock.advance(2, 48)
    ):
        ds.resident_reopen_case(case=case, reason="群众评价不满意，申请重办", now=clock.t)


def _rate(case: Case, rating: int, at: dt.datetime) -> None:
    try:
        ds.rate_case(case=case, rating=int(rating), comment="", now=at)
    except ds.DispatchError as exc:
        log.warning("demo case %s not rated: %s", case.code, exc)


def _choose_lead(
    cast: Cast, plan: Plan, case: Case, bureau_key, *, avoid: Unit | None = None
) -> Unit:
    demo, rng = cast.demo, plan.rng
    candidates: list[Unit] = []
    if bureau_key is not None:
        candidates.append(demo.departments[bureau_key])
    elif case.owner_level == Level.COUNTY:
        candidates += [demo.departments["gaj"], demo.departments["yjj"]]
    else:
        township = cast.township_of(plan.grid)
        key = cast.town_key[township.pk]
        candidates.append(demo.centres[plan.village.code])
        if plan.category.kind == "dispute" and f"sfs_{key}" in demo.departments:
            candidates.append(demo.departments[f"sfs_{key}"])
        if plan.category.code == "hazard-public-order" and f"pcs_{key}" in demo.departments:
            candidates.append(demo.departments[f"pcs_{key}"])
    choices = [u for u in candidates if avoid is None or u.pk != avoid.pk] or candidates
    if avoid is not None and len(choices) == len(candidates) and bureau_key is not None:
        # A bureau's case returned by the bureau goes to the place's township centre instead.
        owner_region = case.owner_unit.region
        choices = (
            [demo.centres[cast.township_of(plan.grid).code]]
            if owner_region.level == Level.COUNTY
            else candidates
        )
    return rng.choice(choices)


def load_demo_cases(demo: DemoCounty, *, total: int, now: dt.datetime | None = None) -> int:
    """Create the demo cases that do not exist yet; returns how many were created."""
    now = now or timezone.now()
    cast = Cast(demo)
    existing = set(
        Case.objects.filter(intake_key__isnull=False).values_list("intake_key", flat=True)
    )
    created = 0
    for index in range(total):
        if uuid.uuid5(DEMO_NAMESPACE, f"case-{index}") in existing:
            continue
        plan = plan_case(demo, index, total, now)
        # One transaction per case: its side effects (routing task, notifications) are queued
        # after the whole history is written, and find the case already past them.
        with transaction.atomic():
            if play_case(cast, plan, now) is not None:
                created += 1
    return created
