"""``manage.py generate_cases --cases N``: a large synthetic case load for benchmarks.

Cases are spread over the demo county's grids and villages, with realistic shares of
categories, channels, grades and steps (most archived, some open, some overdue). Each case gets
a valid unique code (the daily sequences are reserved in ``CaseCodeCounter`` first, so codes
issued later by clerks never collide), a random tracking token, its lead assignment, and the
hash-chained public events of every step it went through (``dispatch.events.verify_chain``
accepts them).

Rows are written in bulk, bypassing the services on purpose: the services lock, notify and
route one case at a time, which is right for real work and hours too slow for a million rows.
PostgreSQL gets ``COPY`` (psycopg 3), SQLite ``executemany`` in batches.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import random
import secrets
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch.actors import LOADER, ActorKind
from dispatch.events import event_digest
from dispatch.models import (
    Assignment,
    AssignmentRole,
    AssignmentStatus,
    Case,
    CaseEvent,
    Category,
    DeadlineProfile,
    DeadlineUnit,
)
from dispatch.states import Action, Channel, Grade, Satisfaction, Status
from grids.models import Level, Region, Unit, UnitKind
from people.identity import mod11_2_check

DEMO_COUNTY_CODE = "139901000000"

# Shares, loosely after published centre statistics: most cases come through the window and
# the grid workers, most are ordinary neighbourhood and labour matters.
CHANNEL_WEIGHTS = {
    Channel.WINDOW: 35,
    Channel.GRID: 25,
    Channel.PHONE: 15,
    Channel.HOTLINE_12345: 12,
    Channel.ONLINE: 10,
    Channel.LETTER: 3,
}
GRADE_WEIGHTS = {Grade.ORDINARY: 80, Grade.SIGNIFICANT: 14, Grade.MAJOR: 5, Grade.EMERGENCY: 1}
CATEGORY_WEIGHTS = {
    "dispute-neighbour": 14,
    "dispute-property": 8,
    "dispute-labour": 8,
    "dispute-marriage": 6,
    "dispute-homestead": 5,
    "dispute-land": 4,
    "dispute-contract": 3,
    "dispute-damage": 3,
    "dispute-consumer": 3,
    "dispute-traffic": 3,
    "dispute-demolition": 2,
    "dispute-village": 2,
    "dispute-pollution": 2,
    "dispute-business": 2,
    "dispute-medical": 1,
    "dispute-inheritance": 1,
    "dispute-other": 2,
    "request-city": 6,
    "request-municipal": 6,
    "request-policy": 4,
    "request-social": 3,
    "request-traffic": 2,
    "request-education": 2,
    "hazard-production": 2,
    "hazard-public-order": 2,
    "hazard-fire": 2,
    "hazard-food": 1,
    "hazard-geology": 1,
}
# Lead unit by category (county bureau login keys from the demo); others go to the village
# centre of the place or to the township's justice station.
CATEGORY_BUREAU = {
    "dispute-labour": "青禾县人力资源和社会保障局",
    "dispute-pollution": "青禾县生态环境分局",
    "dispute-consumer": "青禾县市场监督管理局",
    "dispute-medical": "青禾县卫生健康局",
    "dispute-land": "青禾县自然资源局",
    "dispute-demolition": "青禾县住房和城乡建设局",
    "request-municipal": "青禾县住房和城乡建设局",
    "request-social": "青禾县人力资源和社会保障局",
    "hazard-production": "青禾县应急管理局",
    "hazard-fire": "青禾县应急管理局",
    "hazard-food": "青禾县市场监督管理局",
    "hazard-geology": "青禾县自然资源局",
    "hazard-public-order": "青禾县公安局",
}
SUMMARIES = {
    "dispute": [
        "{place}{cat}，双方多次协商未果",
        "{place}{cat}，当事人请求调解",
        "{place}{cat}，涉及金额约{n}千元",
        "{place}{cat}，矛盾有激化苗头",
    ],
    "request": [
        "{place}{cat}问题，群众反映{n}次",
        "{place}{cat}诉求，希望尽快解决",
        "{place}{cat}问题影响周边{n}十户居民",
    ],
    "hazard": [
        "{place}发现{cat}，需现场核查",
        "网格员巡查发现{place}{cat}",
        "{place}{cat}，已设置警示标志",
    ],
}
RESULTS = [
    "经调解双方达成一致，已签订调解协议",
    "已现场处置完毕，群众认可",
    "已督促责任单位整改到位",
    "已向当事人解释相关政策，当事人表示理解",
    "已协调相关部门落实，问题解决",
]
REJECT_REASONS = [
    ("已进入诉讼程序，不属于本中心受理范围", "县人民法院"),
    ("属于劳动仲裁事项", "县劳动人事争议仲裁委员会"),
]
RATING_WEIGHTS = {
    Satisfaction.VERY_SATISFIED: 45,
    Satisfaction.SATISFIED: 35,
    Satisfaction.BASICALLY_SATISFIED: 12,
    Satisfaction.DISSATISFIED: 5,
    Satisfaction.VERY_DISSATISFIED: 3,
}

# Status shares by the case's age in days: (max age, {status: weight}).
STATUS_BY_AGE = [
    (
        3,
        {
            Status.REPORTED: 15,
            Status.REGISTERED: 15,
            Status.ASSIGNED: 20,
            Status.IN_PROGRESS: 30,
            Status.FEEDBACK: 10,
            Status.ARCHIVED: 10,
        },
    ),
    (
        15,
        {
            Status.REPORTED: 2,
            Status.REGISTERED: 5,
            Status.ASSIGNED: 8,
            Status.IN_PROGRESS: 25,
            Status.FEEDBACK: 15,
            Status.ARCHIVED: 45,
        },
    ),
    (
        45,
        {
            Status.REGISTERED: 2,
            Status.ASSIGNED: 3,
            Status.IN_PROGRESS: 10,
            Status.FEEDBACK: 5,
            Status.ARCHIVED: 80,
        },
    ),
    (10**6, {Status.ASSIGNED: 1, Status.IN_PROGRESS: 2, Status.FEEDBACK: 1, Status.ARCHIVED: 96}),
]
REJECT_SHARE = 0.03
STEP_ORDER = [
    Status.REPORTED,
    Status.REGISTERED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.FEEDBACK,
    Status.ARCHIVED,
]


class Weighted:
    """Fast repeated weighted choice (cumulative weights + bisect)."""

    def __init__(self, weights: dict) -> None:
        self.items = list(weights)
        self.cum = list(itertools.accumulate(weights.values()))

    def pick(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cum, rng.random() * self.cum[-1])]


@dataclass
class Place:
    region: Region
    village: Region
    township: Region


def _hours(amount: int, unit: str) -> float:
    """Deadline length in calendar hours (working days approximated as 1.4 calendar days)."""
    if unit == DeadlineUnit.WORKING_DAYS:
        return amount * 24 * 1.4
    if unit == DeadlineUnit.WORKING_HOURS:
        return amount * 3.0
    return float(amount)


class Generator:
    def __init__(self, *, county: Region, now: dt.datetime, rng: random.Random) -> None:
        self.now, self.rng = now, rng
        regions = list(Region.objects.filter(path__startswith=county.path))
        by_pk = {r.pk: r for r in regions}
        places, weights = [], {}
        for region in regions:
            if region.level not in (Level.GRID, Level.VILLAGE):
                continue
            village = region if region.level == Level.VILLAGE else by_pk[region.parent_id or 0]
            township = by_pk[village.parent_id or 0]
            places.append(Place(region, village, township))
            # Grids by households; a village-level report now and then.
            weights[len(places) - 1] = (
                (region.households or 400) if region.level == Level.GRID else 60
            )
        if not places:
            raise CommandError(_("演示县没有村/社区或网格，请先运行 load_demo"))
        self.places = places
        self.place_pick = Weighted(weights)
        units = list(
            Unit.objects.filter(
                region__path__startswith=county.path, is_active=True
            ).select_related("region")
        )
        self.centres = {u.region_id: u for u in units if u.kind == UnitKind.CENTRE}
        self.units_by_name = {u.name: u for u in units}
        self.stations: dict[int, list[Unit]] = {}
        for u in units:
            if u.kind == UnitKind.DEPARTMENT and u.level == Level.TOWNSHIP:
                self.stations.setdefault(u.region_id, []).append(u)
        self.county_centre = self.centres[county.pk]
        cats = {
            c.code: c
            for c in Category.objects.filter(parent__isnull=False, is_active=True).select_related(
                "parent"
            )
        }
        weights_c = {code: w for code, w in CATEGORY_WEIGHTS.items() if code in cats}
        for code in cats:  # categories an administrator added get a small share
            weights_c.setdefault(code, 1)
        if not weights_c:
            raise CommandError(_("没有案件分类，请先运行 load_demo"))
        self.categories = cats
        self.category_pick = Weighted(weights_c)
        self.channel_pick = Weighted(CHANNEL_WEIGHTS)
        self.grade_pick = Weighted(GRADE_WEIGHTS)
        self.rating_pick = Weighted(RATING_WEIGHTS)
        self.status_picks = [(age, Weighted(w)) for age, w in STATUS_BY_AGE]
        profiles = {p.name: p for p in DeadlineProfile.objects.all()}
        self.profile_for = {
            "urgent": _find_profile(profiles, "紧急"),
            "service": _find_profile(profiles, "24"),
            "ordinary": _find_profile(profiles, "一般"),
            "complex": _find_profile(profiles, "复杂"),
        }

    # Choices -------------------------------------------------------------------------------

    def owner_for(self, place: Place, grade: str, channel: str) -> Unit:
        """The holding centre, never below the grade's lowest closing level (the grade rule)."""
        if grade == Grade.EMERGENCY:
            return self.county_centre
        if (
            grade == Grade.ORDINARY
            and channel == Channel.GRID
            and self.rng.random() < 0.5
            and place.village.pk in self.centres
        ):
            return self.centres[place.village.pk]
        return self.centres.get(place.township.pk, self.county_centre)

    def lead_for(self, place: Place, category: Category, owner: Unit) -> Unit:
        bureau = self.units_by_name.get(CATEGORY_BUREAU.get(category.code, ""))
        if bureau is not None and self.rng.random() < 0.8:
            return bureau
        choices = [u for u in self.stations.get(place.township.pk, [])]
        village_centre = self.centres.get(place.village.pk)
        if village_centre is not None and village_centre.pk != owner.pk:
            choices += [village_centre] * 2
        if not choices:
            choices = [u for u in self.units_by_name.values() if u.kind == UnitKind.DEPARTMENT] or [
                owner
            ]
        return self.rng.choice(choices)

    def profile_for_case(self, category: Category, grade: str) -> DeadlineProfile | None:
        if grade == Grade.EMERGENCY:
            key = "urgent"
        elif category.kind == "hazard":
            key = "service"
        elif category.code in CATEGORY_BUREAU and category.kind == "dispute":
            key = "complex"
        else:
            key = "ordinary"
        return self.profile_for[key] or self.profile_for["ordinary"]

    def later(self, start: dt.datetime, low_h: float, high_h: float) -> dt.datetime:
        return start + dt.timedelta(hours=self.rng.uniform(low_h, high_h))


def _find_profile(profiles: dict, needle: str) -> DeadlineProfile | None:
    return next((p for name, p in profiles.items() if needle in name), None)


@dataclass
class Built:
    case: dict
    events: list[dict]
    assignment: dict[str, Any]


def build_case(g: Generator, *, reported_at: dt.datetime, code: str) -> Built:
    """One synthetic case with the milestones, deadlines and events of the steps it reached."""
    rng, now = g.rng, g.now
    place = g.places[g.place_pick.pick(rng)]
    category = g.categories[g.category_pick.pick(rng)]
    channel = g.channel_pick.pick(rng)
    grade = g.grade_pick.pick(rng)
    owner = g.owner_for(place, grade, channel)
    age_days = (now - reported_at).total_seconds() / 86400
    if rng.random() < REJECT_SHARE:
        target = Status.REJECTED
    else:
        target = next(pick for age, pick in g.status_picks if age_days <= age).pick(rng)
    template = rng.choice(
        SUMMARIES[category.kind] if category.kind in SUMMARIES else SUMMARIES["request"]
    )
    summary = template.format(place=place.region.name, cat=category.name, n=rng.randint(2, 9))
    case = {
        "code": code,
        "tracking_token": secrets.token_urlsafe(16),
        "channel": channel,
        "category_id": category.pk,
        "grade": grade,
        "summary": summary,
        "region_id": place.region.pk,
        "status": target,
        "owner_unit_id": owner.pk,
        "owner_level": owner.level,
        "intake_unit_id": owner.pk,
        "reported_at": reported_at,
    }
    events: list[tuple[Any, ...]] = [
        (Action.REPORTED, "", Status.REPORTED, reported_at, owner, "", {"channel": channel})
    ]
    assignment: dict[str, Any] = {}
    if target == Status.REJECTED:
        reason, referral = rng.choice(REJECT_REASONS)
        at = min(g.later(reported_at, 0.1, 2), now)
        case.update(reject_reason=reason, referral=referral, closed_at=at)
        events.append(
            (
                Action.REJECTED,
                Status.REPORTED,
                Status.REJECTED,
                at,
                owner,
                reason,
                {"referral": referral},
            )
        )
    reached = STEP_ORDER.index(target) if target != Status.REJECTED else 0
    if (
        target == Status.ARCHIVED
        and channel == Channel.GRID
        and grade == Grade.ORDINARY
        and rng.random() < 0.4
    ):
        # 当场办结 by the grid worker: every step at once, closed at grid level.
        t = min(g.later(reported_at, 0.1, 1), now)
        result = rng.choice(RESULTS)
        case.update(
            registered_at=t,
            assigned_at=t,
            signed_at=t,
            feedback_at=t,
            closed_at=t,
            due_at=t,
            sign_due_at=t,
            lead_unit_id=owner.pk,
            result=result,
            closed_level=Level.GRID,
            closed_on_time=True,
            carried_out=True,
        )
        events += [
            (Action.REGISTERED, Status.REPORTED, Status.REGISTERED, t, owner, "", {}),
            (
                Action.DISPATCHED,
                Status.REGISTERED,
                Status.ASSIGNED,
                t,
                owner,
                "",
                {"lead": owner.pk, "lead_name": owner.name, "on_spot": True},
            ),
            (Action.SIGNED, Status.ASSIGNED, Status.IN_PROGRESS, t, owner, "", {}),
            (Action.FEEDBACK, Status.IN_PROGRESS, Status.FEEDBACK, t, owner, result, {}),
            (
                Action.VERIFIED,
                Status.FEEDBACK,
                Status.FEEDBACK,
                t,
                owner,
                "",
                {"carried_out": True},
            ),
            (Action.ARCHIVED, Status.FEEDBACK, Status.ARCHIVED, t, owner, "", {}),
        ]
        assignment = {
            "unit_id": owner.pk,
            "role": AssignmentRole.LEAD,
            "status": AssignmentStatus.DONE,
            "assigned_at": t,
            "signed_at": t,
            "finished_at": t,
        }
        reached = 0  # nothing more to add below
    # Milestones in order; each is clamped to "now" so a young case's history is not future.
    t = reported_at
    if reached >= 1:
        t = min(g.later(t, 0.05, 4), now)
        case["registered_at"] = t
        events.append((Action.REGISTERED, Status.REPORTED, Status.REGISTERED, t, owner, "", {}))
    if reached >= 2:
        lead = g.lead_for(place, category, owner)
        if not lead.region.path.startswith(owner.region.path):
            # A centre dispatches only within its own subtree: a county bureau's case held by
            # a township is escalated (上报) to the centre above first, as the services require.
            above = g.centres[lead.region_id]
            t = min(g.later(t, 0.2, 8), now)
            events.append(
                (
                    Action.ESCALATED,
                    Status.REGISTERED,
                    Status.REGISTERED,
                    t,
                    owner,
                    "需上级协调职能部门办理",
                    {"from_unit": owner.pk, "to_unit": above.pk},
                    above.name,
                )
            )
            owner = above
            case.update(owner_unit_id=owner.pk, owner_level=owner.level, escalation_count=1)
        profile = g.profile_for_case(category, grade)
        t = min(g.later(t, 0.1, 20), now)
        case.update(assigned_at=t, lead_unit_id=lead.pk)
        if profile is not None:
            total = _hours(profile.complete_amount, profile.complete_unit)
            case.update(
                profile_id=profile.pk,
                sign_due_at=t + dt.timedelta(hours=_hours(profile.sign_amount, profile.sign_unit)),
                reply_due_at=t
                + dt.timedelta(hours=_hours(profile.reply_amount, profile.reply_unit)),
                due_at=t + dt.timedelta(hours=total),
                warn_at=t + dt.timedelta(hours=total * float(profile.warn_ratio)),
            )
        events.append(
            (
                Action.DISPATCHED,
                Status.REGISTERED,
                Status.ASSIGNED,
                t,
                owner,
                "",
                {"lead": lead.pk, "lead_name": lead.name, "assist": [], "assist_names": []},
            )
        )
        assignment = {
            "unit_id": lead.pk,
            "role": AssignmentRole.LEAD,
            "status": AssignmentStatus.PENDING,
            "assigned_at": t,
        }
    if reached >= 3:
        t = min(g.later(t, 0.1, 8), now)
        case["signed_at"] = t
        assignment.update(status=AssignmentStatus.SIGNED, signed_at=t)
        events.append((Action.SIGNED, Status.ASSIGNED, Status.IN_PROGRESS, t, lead, "", {}))
    if reached >= 4:
        # Handling time: lognormal around two days, with a tail past the deadline.
        t = min(t + dt.timedelta(hours=rng.lognormvariate(3.8, 0.9)), now)
        result = rng.choice(RESULTS)
        case.update(feedback_at=t, result=result)
        assignment.update(status=AssignmentStatus.DONE, finished_at=t)
        events.append((Action.FEEDBACK, Status.IN_PROGRESS, Status.FEEDBACK, t, lead, result, {}))
    if reached >= 5:
        t = min(g.later(t, 0.5, 48), now)
        carried_out = rng.random() < 0.95
        due = case.get("due_at")
        case.update(
            closed_at=t,
            closed_level=case["owner_level"],
            carried_out=carried_out,
            closed_on_time=None if due is None else t <= due,
        )
        events.append(
            (
                Action.VERIFIED,
                Status.FEEDBACK,
                Status.FEEDBACK,
                t,
                owner,
                "",
                {"carried_out": carried_out},
            )
        )
        events.append((Action.ARCHIVED, Status.FEEDBACK, Status.ARCHIVED, t, owner, "", {}))
        if rng.random() < 0.6:
            case.update(
                resident_rating=int(g.rating_pick.pick(rng)), rated_at=min(g.later(t, 1, 72), now)
            )
        if rng.random() < 0.4:
            case.update(
                followup_satisfaction=int(g.rating_pick.pick(rng)),
                followed_up_at=min(g.later(t, 20, 30), now),
            )
    # Hash chain, exactly as dispatch.events.append_event computes it.
    prev = ""
    rows = []
    for seq, (action, from_s, to_s, at, unit, note, data, *shown) in enumerate(events, start=1):
        # Written by the loader, as dispatch.events records a system actor.
        data = {**data, "system": LOADER.as_data()}
        digest = event_digest(
            prev_hash=prev,
            case_code=code,
            seq=seq,
            action=action,
            from_status=from_s,
            to_status=to_s,
            actor_kind=ActorKind.SYSTEM,
            actor_id=None,
            actor_unit_id=unit.pk,
            at_iso=at.astimezone(dt.UTC).isoformat(),
            note=note,
            is_public=True,
            data=data,
        )
        rows.append(
            {
                "seq": seq,
                "action": action,
                "from_status": from_s,
                "to_status": to_s,
                "actor_kind": ActorKind.SYSTEM,
                "actor_unit_id": unit.pk,
                "public_unit_name": shown[0] if shown else unit.name,
                "at": at,
                "note": note,
                "is_public": True,
                "data": data,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    case.update(event_count=len(rows), last_event_hash=prev, updated_at=rows[-1]["at"])
    return Built(case, rows, assignment)


# Writing ------------------------------------------------------------------------------------


def _columns(model, *, with_pk: bool) -> list:
    return [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]


class RowMaker:
    """Turns a dict of attribute values into a tuple in column order, defaults filled in.

    Precomputed per model: at a million cases the per-field lookups dominate otherwise.
    """

    def __init__(self, fields: list, vendor: str) -> None:
        # PostgreSQL's binary COPY takes the dict itself for jsonb; SQLite stores JSON text.
        self.spec = [
            (
                f.attname,
                f.get_default(),
                f.get_internal_type() == "JSONField" and vendor == "sqlite",
            )
            for f in fields
        ]
        self.sqlite = vendor == "sqlite"

    def __call__(self, values: dict) -> tuple:
        out = []
        for attname, default, is_json in self.spec:
            value = values.get(attname, default)
            if is_json:
                value = json.dumps(value, ensure_ascii=False)
            elif self.sqlite and isinstance(value, dt.datetime):
                # What Django's SQLite backend stores: naive UTC text.
                value = value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(" ")
            out.append(value)
        return tuple(out)


_PG_TYPE_NAMES = {
    "timestamp with time zone": "timestamptz",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "boolean": "bool",
}


def _pg_type(field) -> str:
    """The type name psycopg's binary COPY needs for a column (``varchar(24)`` -> ``varchar``)."""
    name = field.db_type(connection).split("(")[0].strip()
    return _PG_TYPE_NAMES.get(name, name)


class Writer:
    def __init__(self) -> None:
        self.vendor = connection.vendor
        if self.vendor not in ("postgresql", "sqlite"):
            raise CommandError(_("仅支持 PostgreSQL 和 SQLite"))
        self.case_fields = _columns(Case, with_pk=True)
        self.event_fields = _columns(CaseEvent, with_pk=False)
        self.assignment_fields = _columns(Assignment, with_pk=False)
        self.case_row = RowMaker(self.case_fields, self.vendor)
        self.event_row = RowMaker(self.event_fields, self.vendor)
        self.assignment_row = RowMaker(self.assignment_fields, self.vendor)

    def reserve_ids(self, n: int) -> list[int]:
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [Case._meta.db_table, n],
                )
                return [row[0] for row in cursor.fetchall()]
            # SQLite: the caller's transaction holds the write lock (IMMEDIATE), so the
            # maximum cannot move under us.
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {Case._meta.db_table}")  # noqa: S608
            start = cursor.fetchone()[0] + 1
            return list(range(start, start + n))

    def write(self, model, fields: list, rows: list[tuple]) -> None:
        if not rows:
            return
        table = connection.ops.quote_name(model._meta.db_table)
        cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                # Binary COPY: no text formatting on our side, no parsing on the server's.
                with cursor.cursor.copy(
                    f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types([_pg_type(f) for f in fields])
                    for row in rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(fields))
                cursor.executemany(
                    f"INSERT INTO {table} ({cols}) VALUES ({marks})",  # noqa: S608
                    rows,
                )


def reserve_codes(county_code: str, per_day: Counter) -> dict[dt.date, int]:
    """Take a block of each day's sequence in one upsert, so clerks' later codes never collide.

    Returns the first sequence number of each day's block.
    """
    table = "dispatch_casecodecounter"
    first = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for day, count in sorted(per_day.items()):
            prefix = f"{county_code}{day:%Y%m%d}"
            cursor.execute(
                f"INSERT INTO {table} (prefix, last) VALUES (%s, %s) "  # noqa: S608 - constant
                f"ON CONFLICT (prefix) DO UPDATE SET last = {table}.last + %s RETURNING last",
                [prefix, count, count],
            )
            last = cursor.fetchone()[0]
            if last > 99999:
                raise CommandError(_("%(day)s 的案件数超过每日编号上限 99999") % {"day": day})
            first[day] = last - count + 1
    return first


class Command(BaseCommand):
    help = _("为性能测试批量生成合成案件（需要演示县，缺少时自动创建）")

    def add_arguments(self, parser):
        parser.add_argument("--cases", type=int, required=True, help=_("案件数量"))
        parser.add_argument("--days", type=int, default=365, help=_("分布在最近多少天内"))
        parser.add_argument("--batch-size", type=int, default=5000)
        parser.add_argument("--seed", type=int, default=None, help=_("随机种子（可复现分布）"))

    def handle(self, *args, **options):
        total, days = options["cases"], options["days"]
        if total < 1 or days < 1:
            raise CommandError(_("--cases 和 --days 必须为正整数"))
        county = Region.objects.filter(code=DEMO_COUNTY_CODE).first()
        if county is None:
            call_command("load_demo", "--no-cases", stdout=self.stdout)
            county = Region.objects.get(code=DEMO_COUNTY_CODE)
        rng = random.Random(options["seed"])  # noqa: S311 - synthetic data, not secrets
        now = timezone.now().replace(microsecond=0)
        generator = Generator(county=county, now=now, rng=rng)
        writer = Writer()
        tz = ZoneInfo(settings.TIME_ZONE)
        started = time.monotonic()

        # Report times: uniform over the period, mostly in office hours, in time order so that
        # codes and ids grow with time as real ones do.
        span = days * 86400
        times = []
        for _i in range(total):
            moment = now - dt.timedelta(seconds=rng.random() * span)
            local = moment.astimezone(tz)
            if not 8 <= local.hour < 18 and rng.random() < 0.7:
                moment = moment.replace(hour=(rng.randint(8, 17) - 8) % 24)  # 08-17 in UTC+8
            times.append(min(moment, now))
        times.sort()
        local_days = [t.astimezone(tz).date() for t in times]
        next_seq = reserve_codes(county.code[:6], Counter(local_days))

        batch_size = options["batch_size"]
        phases: dict[str, float] = defaultdict(float)
        counts = {"cases": 0, "events": 0}

        def write_batch(built: list[Built]) -> None:
            mark = time.monotonic()
            with transaction.atomic():
                ids = writer.reserve_ids(len(built))
                case_rows, event_rows, assignment_rows = [], [], []
                for pk, item in zip(ids, built, strict=True):
                    item.case["id"] = pk
                    case_rows.append(writer.case_row(item.case))
                    for event in item.events:
                        event["case_id"] = pk
                        event_rows.append(writer.event_row(event))
                    if item.assignment:
                        item.assignment["case_id"] = pk
                        assignment_rows.append(writer.assignment_row(item.assignment))
                phases["rows"] += time.monotonic() - mark
                mark = time.monotonic()
                writer.write(Case, writer.case_fields, case_rows)
                writer.write(CaseEvent, writer.event_fields, event_rows)
                writer.write(Assignment, writer.assignment_fields, assignment_rows)
                phases["write"] += time.monotonic() - mark
                mark = time.monotonic()
            phases["commit"] += time.monotonic() - mark
            counts["cases"] += len(built)
            counts["events"] += len(event_rows)

        def report() -> None:
            done = counts["cases"]
            if options["verbosity"] >= 2 or (done // batch_size) % 20 == 0:
                elapsed = time.monotonic() - started
                detail = "  ".join(f"{k} {v:.1f}s" for k, v in phases.items())
                self.stdout.write(f"  {done}/{total}  {done / elapsed:,.0f} cases/s  ({detail})")

        # On PostgreSQL one writer thread (its own connection) copies batch N while this thread
        # builds batch N+1: the server's index and foreign-key work overlaps Python's. Inside a
        # caller's transaction (tests) everything stays on this connection, in order.
        overlap = connection.vendor == "postgresql" and not connection.in_atomic_block
        pool = ThreadPoolExecutor(max_workers=1) if overlap else None
        pending = None
        try:
            for start in range(0, total, batch_size):
                mark = time.monotonic()
                built = []
                for i in range(start, min(start + batch_size, total)):
                    day = local_days[i]
                    body = f"{county.code[:6]}{day:%Y%m%d}{next_seq[day]:05d}"
                    next_seq[day] += 1
                    built.append(
                        build_case(generator, reported_at=times[i], code=body + mod11_2_check(body))
                    )
                phases["build"] += time.monotonic() - mark
                if pool is None:
                    write_batch(built)
                    report()
                    continue
                if pending is not None:
                    pending.result()
                    report()
                pending = pool.submit(write_batch, built)
            if pending is not None:
                pending.result()
                report()
        finally:
            if pool is not None:
                # Evaluated in the writer thread: closes that thread's own connection.
                pool.submit(lambda: connection.close()).result()
                pool.shutdown()
        done, events_written = counts["cases"], counts["events"]

        elapsed = time.monotonic() - started
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for model in (Case, CaseEvent, Assignment):
                    cursor.execute(f"ANALYZE {model._meta.db_table}")
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "已生成 %(cases)d 件案件、%(events)d 条事件，用时 %(seconds).1f 秒"
                    "（%(rate)s 件/秒，%(rows)s 行/秒，%(db)s）"
                )
                % {
                    "cases": done,
                    "events": events_written,
                    "seconds": elapsed,
                    "rate": f"{done / elapsed:,.0f}",
                    "rows": f"{(done * 2 + events_written) / elapsed:,.0f}",
                    "db": connection.vendor,
                }
            )
        )
