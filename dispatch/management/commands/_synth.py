"""The rows of ``generate_cases``: synthetic cases, events and tasks as PostgreSQL COPY text.

Everything the loop needs is read from the database once into a ``Plan`` (plain tuples and
strings); ``build_chunk`` then turns a range of report times into the COPY text of the cases,
their hash-chained events and their lead tasks, with no ORM and no database access, so that a
worker process can build one chunk while the server stores another.

What makes it fast, and what it must keep:

* Times are integers (microseconds since the epoch, UTC) and are formatted once each, with
  ``datetime.isoformat()``'s exact spelling, which the digest needs.
* Every kind of event (action, note, data, acting unit) is turned into text once per run: the
  fragments of its digest payload and of its COPY line. Per event the loop only joins the
  hash of the previous event, the code, the sequence number and the time into them. The payload
  is byte-identical to ``dispatch.events.event_digest``'s ``json.dumps(...)``: the fragments
  are cut out of that same ``json.dumps`` call, and the test suite compares the two on random
  events.
* Rows are whole COPY text lines, joined per chunk into one buffer.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import itertools
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from math import exp
from typing import Any, NamedTuple, cast
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils.translation import gettext as _

from dispatch import calendar, deadlines
from dispatch.actors import LOADER, ActorKind
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
from dispatch.states import OPEN_STATUSES, Action, Channel, Grade, Satisfaction, Status
from grids.models import Level, Region, Unit, UnitKind
from people.identity import mod11_2_check

# --- the distributions ------------------------------------------------------------------------

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
ESCALATION_NOTE = "需上级协调职能部门办理"
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


class PlanError(Exception):
    """The database lacks what the generator needs (the demo county, categories)."""


# --- time as integers -------------------------------------------------------------------------

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_ORDINAL = EPOCH.date().toordinal()


def to_us(moment: dt.datetime) -> int:
    """An aware datetime as whole microseconds since the epoch."""
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * SECOND_US + delta.microseconds


def from_us(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def hours_us(hours: float) -> int:
    """A length in hours as microseconds, rounded as ``timedelta(hours=...)`` rounds."""
    return round(hours * HOUR_US)


class Clock:
    """Formats microsecond times as ``datetime.isoformat()`` does, and finds their local day.

    ``iso`` gives ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00``: the spelling of the digest's
    ``at_iso``, and a timestamptz that COPY reads.
    """

    def __init__(self, tz: dt.tzinfo, first_us: int, last_us: int) -> None:
        self.tz = tz
        self.iso: Callable[[int], str] = _iso_formatter()
        # A zone without changes of offset in the period (Asia/Shanghai) gives a local day by
        # arithmetic; any other falls back to zoneinfo per moment.
        offsets = {
            from_us(us).astimezone(tz).utcoffset()
            for us in range(first_us - DAY_US, last_us + 2 * DAY_US, DAY_US)
        }
        offset = offsets.pop() if len(offsets) == 1 else None
        self.offset_us = None if offset is None else to_us(EPOCH + offset)

    def local_day(self, us: int) -> int:
        """The local date of ``us`` as a day number (days since 1970-01-01)."""
        if self.offset_us is not None:
            return (us + self.offset_us) // DAY_US
        local = from_us(us - us % SECOND_US).astimezone(self.tz)
        return local.date().toordinal() - _EPOCH_ORDINAL


def _iso_formatter() -> Callable[[int], str]:
    """``iso(us)``: pieces from tables (dates, times of day, fractions) joined in one f-string,
    bound in a closure; several times faster than ``datetime.isoformat()`` on a new datetime."""
    dates: dict[int, str] = {}
    hms = [f"T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]
    millis = [f".{n:03d}" for n in range(1000)]
    micros = [f"{n:03d}+00:00" for n in range(1000)]

    def iso(us: int) -> str:
        second, micro = divmod(us, SECOND_US)
        day, second = divmod(second, 86400)
        date = dates.get(day)
        if date is None:
            date = dates[day] = dt.date.fromordinal(_EPOCH_ORDINAL + day).isoformat()
        if micro:
            return f"{date}{hms[second]}{millis[micro // 1000]}{micros[micro % 1000]}"
        return f"{date}{hms[second]}+00:00"

    return iso


def date_of(number: int) -> dt.date:
    return dt.date.fromordinal(_EPOCH_ORDINAL + number)


# --- COPY text ----------------------------------------------------------------------------------

NULL = "\\N"


def copy_text(value: str) -> str:
    """A string as a field of COPY's text format (backslash, tab and line ends escaped)."""
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def copy_value(value: Any) -> str:
    """A Python value (a column default) as COPY text."""
    if value is None:
        return NULL
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, dict | list):
        return copy_text(json.dumps(value, ensure_ascii=False))
    return copy_text(str(value))


_UNESCAPE = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}


def copy_field(text: str) -> str | None:
    """A COPY text field back to its string (None for NULL)."""
    if text == NULL:
        return None
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        pair = text[i : i + 2]
        if pair in _UNESCAPE:
            out.append(_UNESCAPE[pair])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def sqlite_converters(fields: list) -> list[Callable[[str], Any]]:
    """Per column: COPY text -> the value Django's SQLite backend stores."""

    def text(value: str) -> Any:
        return copy_field(value)

    def boolean(value: str) -> Any:
        return None if value == NULL else int(value == "t")

    def integer(value: str) -> Any:
        return None if value == NULL else int(value)

    def timestamp(value: str) -> Any:
        # ``YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`` -> naive UTC ``YYYY-MM-DD HH:MM:SS[.ffffff]``.
        return None if value == NULL else f"{value[:10]} {value[11:-6]}"

    converters: list[Callable[[str], Any]] = []
    for f in fields:
        kind = f.get_internal_type()
        if kind == "BooleanField":
            converters.append(boolean)
        elif kind == "DateTimeField":
            converters.append(timestamp)
        elif kind.endswith(("IntegerField", "AutoField", "ForeignKey", "OneToOneField")):
            converters.append(integer)
        else:
            converters.append(text)
    return converters


def sqlite_rows(text: str, converters: list[Callable[[str], Any]]) -> list[tuple]:
    """COPY text lines as parameter tuples for ``executemany``."""
    return [
        tuple(convert(value) for convert, value in zip(converters, line.split("\t"), strict=True))
        for line in text.splitlines()
    ]


# --- the digest ---------------------------------------------------------------------------------

# dispatch.events.event_digest's json.dumps options.
DIGEST_JSON: dict[str, Any] = {
    "ensure_ascii": False,
    "sort_keys": True,
    "separators": (",", ":"),
    "default": str,
}
# The columns an event row is written with, in the model's order. Every column but these is
# left to its default (the primary key to its sequence).
EVENT_COLUMNS = (
    "case_id",
    "seq",
    "action",
    "from_status",
    "to_status",
    "actor_kind",
    "actor_id",
    "actor_unit_id",
    "public_unit_name",
    "at",
    "note",
    "is_public",
    "data",
    "prev_hash",
    "hash",
)


class EventKind(NamedTuple):
    """One kind of event (action, states, unit, note, data) as text, cut around its variables.

    digest payload: ``["<prev>","<code>",<seq>,`` + d_mid + ``<at>`` + d_tail
    COPY line:      ``<case id>\\t<seq>\\t`` + c_mid + ``<at>\\t`` + c_tail + ``\\t<prev>\\t<hash>``

    ``chain_event`` round-trips ``data`` through JSON before hashing; the loader's data are
    JSON values already (strings, integers, booleans, lists), so the two agree.
    """

    d_mid: str
    d_tail: str
    c_mid: str
    c_tail: str


def event_kind(
    *,
    action: str,
    from_status: str,
    to_status: str,
    unit_id: int,
    public_unit_name: str,
    note: str,
    data: dict,
) -> EventKind:
    """The fragments of an event written by the loader (``LOADER``), public, as chain_event
    records it: ``data["system"]`` names the loader."""
    data = {**data, "system": LOADER.as_data()}
    kind = ActorKind.SYSTEM.value
    # The same call as event_digest, on placeholders that cannot occur in the JSON otherwise.
    whole = json.dumps(
        ["\x00prev", "\x00code", 0, action, from_status, to_status, kind, None, unit_id]
        + ["\x00at", note, True, data],
        **DIGEST_JSON,
    )
    head = json.dumps(["\x00prev", "\x00code", 0], **DIGEST_JSON)[:-1] + ","
    at_mark = json.dumps("\x00at", **DIGEST_JSON)
    if not whole.startswith(head) or whole.count(at_mark) != 1:
        raise ValueError(f"cannot cut the digest payload of {action} around its variables")
    d_mid, d_tail = whole[len(head) :].split(at_mark)
    data_text = json.dumps(data, **DIGEST_JSON)
    texts = [action, from_status, to_status, kind]
    c_mid = "\t".join([*map(copy_text, texts), NULL, str(unit_id), copy_text(public_unit_name), ""])
    c_tail = "\t".join([copy_text(note), "t", copy_text(data_text)])
    return EventKind(d_mid + '"', '"' + d_tail, c_mid, c_tail)


def event_payload(kind: EventKind, *, prev: str, code: str, seq: int, at_iso: str) -> str:
    """The digest payload of one event: the loop in ``build_chunk`` writes this same f-string."""
    return f'["{prev}","{code}",{seq},{kind.d_mid}{at_iso}{kind.d_tail}'


def _check_digest_fragments() -> None:
    """The fragments must join to event_digest's payload; checked once per run."""
    from dispatch.events import event_digest

    kind = event_kind(
        action="case.x",
        from_status="a",
        to_status="b",
        unit_id=7,
        public_unit_name='名"\\\t',
        note='说明 "引号" \\ \n',
        data={"z": [1, "二"], "a": None, "m": {"y": True, "b": 1.5}},
    )
    at = "2026-01-02T03:04:05.000006+00:00"
    payload = event_payload(kind, prev="ab" * 32, code="1" * 20, seq=3, at_iso=at)
    expected = event_digest(
        prev_hash="ab" * 32,
        case_code="1" * 20,
        seq=3,
        action="case.x",
        from_status="a",
        to_status="b",
        actor_kind=ActorKind.SYSTEM,
        actor_id=None,
        actor_unit_id=7,
        at_iso=at,
        note='说明 "引号" \\ \n',
        is_public=True,
        data={"z": [1, "二"], "a": None, "m": {"y": True, "b": 1.5}, "system": LOADER.as_data()},
    )
    if hashlib.sha256(payload.encode()).hexdigest() != expected:
        raise PlanError("the event fragments no longer join to event_digest's payload")


# --- what the loop reads ----------------------------------------------------------------------


class U(NamedTuple):
    """A unit as the loop needs it."""

    pk: int
    name: str
    level: str
    region_id: int
    path: str
    pk_s: str


class Place(NamedTuple):
    region_id: int
    name: str  # escaped for COPY
    village_id: int
    township_id: int
    pk_s: str


class Cat(NamedTuple):
    pk: int
    code: str
    name: str  # escaped for COPY
    kind: str
    pk_s: str


class Profile(NamedTuple):
    pk_s: str
    sign_us: int
    reply_us: int
    total_us: int
    warn_us: int
    model: DeadlineProfile


def _hours(amount: int, unit: str) -> float:
    """Deadline length in calendar hours (working days approximated as 1.4 calendar days)."""
    if unit == DeadlineUnit.WORKING_DAYS:
        return amount * 24 * 1.4
    if unit == DeadlineUnit.WORKING_HOURS:
        return amount * 3.0
    return float(amount)


def _profile(p: DeadlineProfile) -> Profile:
    total = _hours(p.complete_amount, p.complete_unit)
    return Profile(
        pk_s=str(p.pk),
        sign_us=hours_us(_hours(p.sign_amount, p.sign_unit)),
        reply_us=hours_us(_hours(p.reply_amount, p.reply_unit)),
        total_us=hours_us(total),
        warn_us=hours_us(total * float(p.warn_ratio)),
        model=p,
    )


class Weighted(NamedTuple):
    """A weighted choice: ``items[bisect_right(cum, random() * total)]``."""

    items: list
    cum: list[float]
    total: float

    @classmethod
    def of(cls, weights: dict) -> Weighted:
        cum = list(itertools.accumulate(float(w) for w in weights.values()))
        return cls([getattr(k, "value", k) for k in weights], cum, cum[-1])


def _columns(model, *, with_pk: bool) -> list:
    return [f for f in model._meta.concrete_fields if with_pk or not f.primary_key]


@dataclass
class Plan:
    """Everything ``build_chunk`` reads: the county, the distributions, the clocks, the columns.

    Built once from the database (``load``), then given the report times (``add_times``) and
    the first case id; plain data, which forked workers share.
    """

    now_us: int
    seed: int
    county_prefix: str
    clock: Clock
    places: list[Place]
    place_pick: Weighted
    cats: list[Cat]
    cat_pick: Weighted
    centres: dict[int, U]  # by region
    county_centre: U
    bureau: dict[str, U]  # by category code
    stations: dict[int, list[U]]  # township departments, by township
    departments: list[U]
    profiles: dict[tuple[str, str], Profile | None]  # by category code and grade
    # workdays[d - first_day]: the working days from first_day up to and including day d.
    first_day: int
    workdays: list[int]
    case_fields: list
    event_fields: list
    assignment_fields: list
    # The report times, sorted, and for each local day the index of its first case and the
    # first sequence number reserved for it.
    times: list[int] = field(default_factory=list)
    first_index: dict[int, int] = field(default_factory=dict)
    first_seq: dict[int, int] = field(default_factory=dict)
    first_id: int = 0

    @classmethod
    def load(cls, *, county: Region, now: dt.datetime, seed: int, days: int) -> Plan:
        _check_digest_fragments()
        regions = list(Region.objects.filter(path__startswith=county.path))
        by_pk = {r.pk: r for r in regions}
        places: list[Place] = []
        weights: dict[int, int] = {}
        for region in regions:
            if region.level not in (Level.GRID, Level.VILLAGE):
                continue
            village = region if region.level == Level.VILLAGE else by_pk[region.parent_id or 0]
            township = by_pk[village.parent_id or 0]
            # Grids by households; a village-level report now and then.
            weights[len(places)] = (region.households or 400) if region.level == Level.GRID else 60
            places.append(
                Place(region.pk, copy_text(region.name), village.pk, township.pk, str(region.pk))
            )
        if not places:
            raise PlanError(_("演示县没有村/社区或网格，请先运行 load_demo"))
        units = list(
            Unit.objects.filter(region__path__startswith=county.path, is_active=True)
            .select_related("region")
            .order_by("pk")
        )
        as_u = {
            u.pk: U(u.pk, u.name, u.level, u.region_id, u.region.path, str(u.pk)) for u in units
        }
        centres = {u.region_id: as_u[u.pk] for u in units if u.kind == UnitKind.CENTRE}
        county_centre = centres.get(county.pk)
        if county_centre is None:
            raise PlanError(_("演示县没有县级综治中心，请先运行 load_demo"))
        stations: dict[int, list[U]] = {}
        for u in units:
            if u.kind == UnitKind.DEPARTMENT and u.level == Level.TOWNSHIP:
                stations.setdefault(u.region_id, []).append(as_u[u.pk])
        by_name = {u.name: as_u[u.pk] for u in units}
        categories = {
            c.code: c for c in Category.objects.filter(parent__isnull=False, is_active=True)
        }
        weights_c = {code: w for code, w in CATEGORY_WEIGHTS.items() if code in categories}
        for code in sorted(categories):  # categories an administrator added get a small share
            weights_c.setdefault(code, 1)
        if not weights_c:
            raise PlanError(_("没有案件分类，请先运行 load_demo"))
        cats = [
            Cat(c.pk, c.code, copy_text(c.name), c.kind, str(c.pk))
            for c in (categories[code] for code in weights_c)
        ]
        named = {p.name: p for p in DeadlineProfile.objects.order_by("pk")}

        def find(needle: str) -> DeadlineProfile | None:
            return next((p for name, p in named.items() if needle in name), None)

        profile_for = {
            "urgent": find("紧急"),
            "service": find("24"),
            "ordinary": find("一般"),
            "complex": find("复杂"),
        }
        profiles: dict[tuple[str, str], Profile | None] = {}
        for cat in cats:
            for grade in Grade.values:
                if grade == Grade.EMERGENCY:
                    key = "urgent"
                elif cat.kind == "hazard":
                    key = "service"
                elif cat.code in CATEGORY_BUREAU and cat.kind == "dispute":
                    key = "complex"
                else:
                    key = "ordinary"
                found = profile_for[key] or profile_for["ordinary"]
                profiles[(cat.code, grade)] = None if found is None else _profile(found)

        now_us = to_us(now)
        first_us = now_us - days * DAY_US
        clock = Clock(ZoneInfo(settings.TIME_ZONE), first_us, now_us)
        # Working days are counted from registration to closing, both between the first
        # report and now.
        first_day, last_day = clock.local_day(first_us) - 1, clock.local_day(now_us) + 1
        workdays = list(
            itertools.accumulate(
                int(calendar.is_workday(date_of(d))) for d in range(first_day, last_day + 1)
            )
        )
        plan = cls(
            now_us=now_us,
            seed=seed,
            county_prefix=county.code[:6],
            clock=clock,
            places=places,
            place_pick=Weighted.of(weights),
            cats=cats,
            cat_pick=Weighted.of(dict(enumerate(weights_c.values()))),
            centres=centres,
            county_centre=county_centre,
            bureau={c: by_name[n] for c, n in CATEGORY_BUREAU.items() if n in by_name},
            stations=stations,
            departments=[as_u[u.pk] for u in units if u.kind == UnitKind.DEPARTMENT],
            profiles=profiles,
            first_day=first_day,
            workdays=workdays,
            case_fields=_columns(Case, with_pk=True),
            event_fields=_columns(CaseEvent, with_pk=False),
            assignment_fields=_columns(Assignment, with_pk=False),
        )
        if tuple(f.attname for f in plan.event_fields) != EVENT_COLUMNS:
            raise PlanError(
                "CaseEvent's columns changed: update EVENT_COLUMNS and event_kind in "
                "dispatch/management/commands/_synth.py"
            )
        return plan

    def add_times(self, total: int, days: int) -> dict[int, int]:
        """Draw the report times; returns how many cases each local day (a day number) has.

        Uniform over the period, mostly in office hours, in time order so that codes and ids
        grow with time as real ones do.
        """
        rng = random.Random(f"{self.seed}:times")  # noqa: S311 - synthetic data, not secrets
        rr, now, span = rng.random, self.now_us, days * DAY_US
        offset, tz = self.clock.offset_us, self.clock.tz
        times = []
        for _i in range(total):
            moment = now - int(rr() * span)
            if offset is not None:
                hour = (moment + offset) // HOUR_US % 24
            else:
                hour = from_us(moment).astimezone(tz).hour
            if not 8 <= hour < 18 and rr() < 0.7:
                # To hour 0-9 of the same UTC day: 08-17 in Shanghai.
                moment += (int(rr() * 10) - moment % DAY_US // HOUR_US) * HOUR_US
            times.append(min(moment, now))
        times.sort()
        self.times = times
        counts: dict[int, int] = {}
        local_day = self.clock.local_day
        for index, moment in enumerate(times):
            day = local_day(moment)
            if day not in counts:
                counts[day] = 0
                self.first_index[day] = index
            counts[day] += 1
        return counts


# --- building a chunk -------------------------------------------------------------------------


@dataclass
class ChunkRows:
    """One chunk's rows as COPY text (one line per row), and how many of each."""

    cases: str
    events: str
    assignments: str
    n_cases: int
    n_events: int
    n_assignments: int


@dataclass
class _ClockView:
    """The columns ``dispatch.deadlines.next_alert_at`` reads, of a case not saved yet."""

    status: str
    profile: DeadlineProfile | None
    sign_due_at: dt.datetime | None
    reply_due_at: dt.datetime | None
    due_at: dt.datetime | None
    warn_at: dt.datetime | None
    signed_at: dt.datetime | None
    replied_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None


class _Codes:
    """Case codes: county + date + 5-digit daily sequence + the MOD 11-2 check character.

    The check sum is linear in the digits: the 14-digit prefix's part is summed once per day,
    the sequence's once per number, and ``mod11_2_check`` itself gives each residue's character.
    """

    LENGTH = 19

    def __init__(self, county_prefix: str) -> None:
        self.county = county_prefix
        self.weights = [pow(2, self.LENGTH - i, 11) for i in range(self.LENGTH)]
        self.prefixes: dict[int, tuple[str, int]] = {}
        self.sequences: dict[int, int] = {}
        self.char: dict[int, str] = {}
        for n in range(100):
            digits = f"{n:0{self.LENGTH}d}"
            self.char[self._sum(digits, 0)] = mod11_2_check(digits)
        if len(self.char) != 11:
            raise PlanError("unexpected MOD 11-2 check characters")

    def _sum(self, digits: str, offset: int) -> int:
        weights = self.weights[offset : offset + len(digits)]
        return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11

    def code(self, day: int, seq: int) -> str:
        prefix = self.prefixes.get(day)
        if prefix is None:
            text = f"{self.county}{date_of(day):%Y%m%d}"
            prefix = self.prefixes[day] = (text, self._sum(text, 0))
        part = self.sequences.get(seq)
        if part is None:
            part = self.sequences[seq] = self._sum(f"{seq:05d}", 14)
        return f"{prefix[0]}{seq:05d}{self.char[(prefix[1] + part) % 11]}"


class _Kinds:
    """The run's event kinds, each made once (``event_kind``) and then looked up."""

    def __init__(self) -> None:
        self.memo: dict[tuple, EventKind] = {}

    def _get(self, key: tuple, action: str, from_s: str, to_s: str, unit: U, **extra) -> EventKind:
        found = self.memo.get(key)
        if found is None:
            shown = extra.pop("shown", unit)
            found = self.memo[key] = event_kind(
                action=action,
                from_status=from_s,
                to_status=to_s,
                unit_id=unit.pk,
                public_unit_name=shown.name,
                note=extra.get("note", ""),
                data=extra.get("data", {}),
            )
        return found

    def reported(self, channel: str, unit: U) -> EventKind:
        key = ("reported", channel, unit.pk)
        return self.memo.get(key) or self._get(
            key, Action.REPORTED, "", Status.REPORTED, unit, data={"channel": channel}
        )

    def rejected(self, reason: int, unit: U) -> EventKind:
        text, referral = REJECT_REASONS[reason]
        key = ("rejected", reason, unit.pk)
        return self.memo.get(key) or self._get(
            key,
            Action.REJECTED,
            Status.REPORTED,
            Status.REJECTED,
            unit,
            note=text,
            data={"referral": referral},
        )

    def registered(self, unit: U) -> EventKind:
        key = ("registered", unit.pk)
        return self.memo.get(key) or self._get(
            key, Action.REGISTERED, Status.REPORTED, Status.REGISTERED, unit
        )

    def on_the_spot(self, unit: U) -> EventKind:
        key = ("on-spot", unit.pk)
        data = {"lead": unit.pk, "lead_name": unit.name, "on_spot": True}
        return self.memo.get(key) or self._get(
            key, Action.DISPATCHED, Status.REGISTERED, Status.ASSIGNED, unit, data=data
        )

    def escalated(self, owner: U, above: U) -> EventKind:
        key = ("escalated", owner.pk, above.pk)
        return self.memo.get(key) or self._get(
            key,
            Action.ESCALATED,
            Status.REGISTERED,
            Status.REGISTERED,
            owner,
            note=ESCALATION_NOTE,
            data={"from_unit": owner.pk, "to_unit": above.pk},
            shown=above,
        )

    def dispatched(self, owner: U, lead: U) -> EventKind:
        key = ("dispatched", owner.pk, lead.pk)
        data = {"lead": lead.pk, "lead_name": lead.name, "assist": [], "assist_names": []}
        return self.memo.get(key) or self._get(
            key, Action.DISPATCHED, Status.REGISTERED, Status.ASSIGNED, owner, data=data
        )

    def signed(self, unit: U) -> EventKind:
        key = ("signed", unit.pk)
        return self.memo.get(key) or self._get(
            key, Action.SIGNED, Status.ASSIGNED, Status.IN_PROGRESS, unit
        )

    def feedback(self, result: int, unit: U) -> EventKind:
        key = ("feedback", result, unit.pk)
        return self.memo.get(key) or self._get(
            key, Action.FEEDBACK, Status.IN_PROGRESS, Status.FEEDBACK, unit, note=RESULTS[result]
        )

    def verified(self, carried_out: bool, unit: U) -> EventKind:
        key = ("verified", carried_out, unit.pk)
        return self.memo.get(key) or self._get(
            key,
            Action.VERIFIED,
            Status.FEEDBACK,
            Status.FEEDBACK,
            unit,
            data={"carried_out": carried_out},
        )

    def archived(self, unit: U) -> EventKind:
        key = ("archived", unit.pk)
        return self.memo.get(key) or self._get(
            key, Action.ARCHIVED, Status.FEEDBACK, Status.ARCHIVED, unit
        )


# Plain values of the choices the loop compares with (str comparisons, no enum lookups).
_OPEN = frozenset(s.value for s in OPEN_STATUSES)
_STEP = {s.value: i for i, s in enumerate(STEP_ORDER)}
_REJECTED, _ARCHIVED = Status.REJECTED.value, Status.ARCHIVED.value
_GRID, _ORDINARY, _EMERGENCY = Channel.GRID.value, Grade.ORDINARY.value, Grade.EMERGENCY.value
_LEAD = AssignmentRole.LEAD.value
_PENDING, _SIGNED, _DONE = (
    AssignmentStatus.PENDING.value,
    AssignmentStatus.SIGNED.value,
    AssignmentStatus.DONE.value,
)


def build_chunk(plan: Plan, start: int, stop: int) -> ChunkRows:
    """The COPY text of the cases ``start`` to ``stop - 1`` (indexes into ``plan.times``).

    Each chunk draws from its own random stream, seeded by the run's seed and ``start``: the
    data does not depend on how many workers built it or in which order.
    """
    rng = random.Random(f"{plan.seed}:{start}")  # noqa: S311 - synthetic data, not secrets
    rr, gauss = rng.random, rng.gauss
    bisect_right = bisect.bisect_right
    sha256 = hashlib.sha256
    iso, local_day = plan.clock.iso, plan.clock.local_day
    now, times = plan.now_us, plan.times
    places, place_pick = plan.places, plan.place_pick
    cats, cat_pick = plan.cats, plan.cat_pick
    channel_pick, grade_pick = Weighted.of(CHANNEL_WEIGHTS), Weighted.of(GRADE_WEIGHTS)
    rating_pick = Weighted.of(RATING_WEIGHTS)
    status_picks = [(age, Weighted.of(w)) for age, w in STATUS_BY_AGE]
    centres, county_centre, bureau = plan.centres, plan.county_centre, plan.bureau
    workdays, first_day = plan.workdays, plan.first_day
    codes, kinds = _Codes(plan.county_prefix), _Kinds()
    results = [copy_text(r) for r in RESULTS]
    rejects = [(copy_text(r), copy_text(ref)) for r, ref in REJECT_REASONS]
    lead_choices: dict[tuple[int, int, int], list[U]] = {}
    # Column defaults as COPY text; updated_at (auto_now) is always the last event's time.
    # A row is a copy of its defaults with the values set: a dict keeps its first order, so
    # its values are the columns in order (a misspelt name would add a column: checked below).
    case_defaults = {f.attname: copy_value(f.get_default()) for f in plan.case_fields}
    task_defaults = {f.attname: copy_value(f.get_default()) for f in plan.assignment_fields}
    # Tracking tokens as the product makes them (22 URL-safe characters), drawn for the whole
    # chunk at once: one os.urandom call instead of one per case. Each is 132 random bits.
    n = stop - start
    tokens = base64.urlsafe_b64encode(os.urandom(33 * n // 2 + 3)).decode()
    case_lines: list[str] = []
    event_lines: list[str] = []
    task_lines: list[str] = []
    add_event = event_lines.append

    for index in range(start, stop):
        reported = times[index]
        rep_s = iso(reported)
        pk_s = str(plan.first_id + index)
        day = local_day(reported)
        code = codes.code(day, plan.first_seq[day] + index - plan.first_index[day])
        place = places[place_pick.items[bisect_right(place_pick.cum, rr() * place_pick.total)]]
        cat = cats[cat_pick.items[bisect_right(cat_pick.cum, rr() * cat_pick.total)]]
        channel = channel_pick.items[bisect_right(channel_pick.cum, rr() * channel_pick.total)]
        grade = grade_pick.items[bisect_right(grade_pick.cum, rr() * grade_pick.total)]
        # The holding centre, never below the grade's lowest closing level (the grade rule).
        if grade == _EMERGENCY:
            owner = county_centre
        elif grade == _ORDINARY and channel == _GRID and rr() < 0.5 and place.village_id in centres:
            owner = centres[place.village_id]
        else:
            owner = centres.get(place.township_id, county_centre)
        if rr() < REJECT_SHARE:
            target = _REJECTED
        else:
            age_days = (now - reported) / DAY_US
            pick = next(pick for age, pick in status_picks if age_days <= age)
            target = pick.items[bisect_right(pick.cum, rr() * pick.total)]
        templates = SUMMARIES.get(cat.kind, SUMMARIES["request"])
        summary = templates[int(rr() * len(templates))].format(
            place=place.name, cat=cat.name, n=2 + int(rr() * 8)
        )
        c: dict[str, str] = {
            **case_defaults,
            "id": pk_s,
            "code": code,
            "tracking_token": tokens[22 * (index - start) : 22 * (index - start + 1)],
            "channel": channel,
            "category_id": cat.pk_s,
            "grade": grade,
            "summary": summary,
            "region_id": place.pk_s,
            "status": target,
            "owner_unit_id": owner.pk_s,
            "owner_level": owner.level,
            "intake_unit_id": owner.pk_s,
            "reported_at": rep_s,
        }
        events: list[tuple[EventKind, str]] = [(kinds.reported(channel, owner), rep_s)]
        task: dict[str, str] | None = None
        reached = 0 if target == _REJECTED else _STEP[target]
        if target == _REJECTED:
            i = int(rr() * len(REJECT_REASONS))
            at_s = iso(min(reported + int((0.1 + 1.9 * rr()) * HOUR_US), now))
            c["reject_reason"], c["referral"] = rejects[i]
            c["closed_at"] = at_s
            events.append((kinds.rejected(i, owner), at_s))
        elif reached == 5 and channel == _GRID and grade == _ORDINARY and rr() < 0.4:
            # 当场办结 by the grid worker: every step at once, closed at grid level.
            t_s = iso(min(reported + int((0.1 + 0.9 * rr()) * HOUR_US), now))
            i = int(rr() * len(RESULTS))
            for name in ("registered_at", "assigned_at", "signed_at", "feedback_at", "closed_at"):
                c[name] = t_s
            c["due_at"] = c["sign_due_at"] = t_s
            c["lead_unit_id"] = owner.pk_s
            c["result"] = results[i]
            c["closed_level"] = Level.GRID.value
            c["closed_on_time"] = c["carried_out"] = "t"
            c["working_days_taken"] = "0"  # registered and closed in the same moment
            events += [
                (kinds.registered(owner), t_s),
                (kinds.on_the_spot(owner), t_s),
                (kinds.signed(owner), t_s),
                (kinds.feedback(i, owner), t_s),
                (kinds.verified(True, owner), t_s),
                (kinds.archived(owner), t_s),
            ]
            task = {
                **task_defaults,
                "unit_id": owner.pk_s,
                "role": _LEAD,
                "status": _DONE,
                "assigned_at": t_s,
                "signed_at": t_s,
                "finished_at": t_s,
            }
            reached = 0  # nothing more to add below
        # Milestones in order; each is clamped to "now" so a young case's history is not future.
        t = registered = reported
        lead = owner
        profile: Profile | None = None
        signed = due = sign_due = reply_due = warn = None
        if reached >= 1:
            t = registered = min(t + int((0.05 + 3.95 * rr()) * HOUR_US), now)
            t_s = c["registered_at"] = iso(t)
            events.append((kinds.registered(owner), t_s))
        if reached >= 2:
            county_bureau = bureau.get(cat.code)
            if county_bureau is not None and rr() < 0.8:
                lead = county_bureau
            else:
                lead = _pick_lead(plan, lead_choices, place, owner, rr)
            if not lead.path.startswith(owner.path):
                # A centre dispatches only within its own subtree: a county bureau's case held
                # by a township is escalated (上报) to the centre above first, as the services
                # require.
                above = centres[lead.region_id]
                t = min(t + int((0.2 + 7.8 * rr()) * HOUR_US), now)
                events.append((kinds.escalated(owner, above), iso(t)))
                owner = above
                c["owner_unit_id"], c["owner_level"] = owner.pk_s, owner.level
                c["escalation_count"] = "1"
            profile = plan.profiles[(cat.code, grade)]
            t = min(t + int((0.1 + 19.9 * rr()) * HOUR_US), now)
            t_s = c["assigned_at"] = iso(t)
            c["lead_unit_id"] = lead.pk_s
            if profile is not None:
                sign_due, reply_due = t + profile.sign_us, t + profile.reply_us
                due, warn = t + profile.total_us, t + profile.warn_us
                c["profile_id"] = profile.pk_s
                c["sign_due_at"], c["reply_due_at"] = iso(sign_due), iso(reply_due)
                c["due_at"], c["warn_at"] = iso(due), iso(warn)
            events.append((kinds.dispatched(owner, lead), t_s))
            task = {
                **task_defaults,
                "unit_id": lead.pk_s,
                "role": _LEAD,
                "status": _PENDING,
                "assigned_at": t_s,
            }
        if reached >= 3:
            t = signed = min(t + int((0.1 + 7.9 * rr()) * HOUR_US), now)
            t_s = c["signed_at"] = iso(t)
            task["status"], task["signed_at"] = _SIGNED, t_s  # type: ignore[index]
            events.append((kinds.signed(lead), t_s))
        if reached >= 4:
            # Handling time: lognormal around two days, with a tail past the deadline.
            t = min(t + int(exp(gauss(3.8, 0.9)) * HOUR_US), now)
            t_s = c["feedback_at"] = iso(t)
            i = int(rr() * len(RESULTS))
            c["result"] = results[i]
            task["status"], task["finished_at"] = _DONE, t_s  # type: ignore[index]
            events.append((kinds.feedback(i, lead), t_s))
        if reached >= 5:
            t = min(t + int((0.5 + 47.5 * rr()) * HOUR_US), now)
            t_s = c["closed_at"] = iso(t)
            carried_out = rr() < 0.95
            c["closed_level"] = c["owner_level"]
            c["carried_out"] = "t" if carried_out else "f"
            c["closed_on_time"] = NULL if due is None else ("t" if t <= due else "f")
            # Working days from registration to closing, as archive_case counts them.
            c["working_days_taken"] = str(
                workdays[local_day(t) - first_day] - workdays[local_day(registered) - first_day]
            )
            events.append((kinds.verified(carried_out, owner), t_s))
            events.append((kinds.archived(owner), t_s))
            if rr() < 0.6:
                rating = rating_pick.items[bisect_right(rating_pick.cum, rr() * rating_pick.total)]
                c["resident_rating"] = str(rating)
                c["rated_at"] = iso(min(t + int((1 + 71 * rr()) * HOUR_US), now))
            if rr() < 0.4:
                rating = rating_pick.items[bisect_right(rating_pick.cum, rr() * rating_pick.total)]
                c["followup_satisfaction"] = str(rating)
                c["followed_up_at"] = iso(min(t + int((20 + 10 * rr()) * HOUR_US), now))
        if due is not None and target in _OPEN:
            moment = _next_alert(plan, target, profile, sign_due, reply_due, due, warn, signed)
            if moment is not None:
                c["next_alert_at"] = iso(moment)
        # The hash chain, as dispatch.events.chain_event computes it (see event_payload).
        prev = ""
        seq = 0
        for (d_mid, d_tail, c_mid, c_tail), at_s in events:
            seq += 1
            digest = sha256(f'["{prev}","{code}",{seq},{d_mid}{at_s}{d_tail}'.encode()).hexdigest()
            add_event(f"{pk_s}\t{seq}\t{c_mid}{at_s}\t{c_tail}\t{prev}\t{digest}\n")
            prev = digest
        c["event_count"] = str(seq)
        c["last_event_hash"] = prev
        c["updated_at"] = events[-1][1]
        case_lines.append("\t".join(c.values()))
        if task is not None:
            task["case_id"] = pk_s
            task_lines.append("\t".join(task.values()))
        if len(c) != len(case_defaults) or (task is not None and len(task) != len(task_defaults)):
            raise ValueError(f"a column name the models do not have: {set(c) - set(case_defaults)}")

    return ChunkRows(
        cases="\n".join(case_lines) + "\n" if case_lines else "",
        events="".join(event_lines),
        assignments="\n".join(task_lines) + "\n" if task_lines else "",
        n_cases=stop - start,
        n_events=len(event_lines),
        n_assignments=len(task_lines),
    )


def _pick_lead(
    plan: Plan, memo: dict[tuple[int, int, int], list[U]], place: Place, owner: U, rr
) -> U:
    """A station of the township or the village centre (twice the weight), else any department."""
    key = (place.township_id, place.village_id, owner.pk)
    choices = memo.get(key)
    if choices is None:
        choices = list(plan.stations.get(place.township_id, []))
        village_centre = plan.centres.get(place.village_id)
        if village_centre is not None and village_centre.pk != owner.pk:
            choices += [village_centre] * 2
        if not choices:
            choices = plan.departments or [owner]
        memo[key] = choices
    return choices[int(rr() * len(choices))]


def _next_alert(
    plan: Plan,
    status: str,
    profile: Profile | None,
    sign_due: int | None,
    reply_due: int | None,
    due: int | None,
    warn: int | None,
    signed: int | None,
) -> int | None:
    """When the sweeper next has something to record (``dispatch.deadlines.next_alert_at``).

    The loader writes no alerts, so none is recorded yet.
    """
    view = _ClockView(
        status=status,
        profile=profile.model if profile is not None else None,
        sign_due_at=_moment(sign_due),
        reply_due_at=_moment(reply_due),
        due_at=_moment(due),
        warn_at=_moment(warn),
        signed_at=_moment(signed),
    )
    found = deadlines.next_alert_at(cast(Case, view), recorded=set(), now=from_us(plan.now_us))
    return None if found is None else to_us(found)


def _moment(us: int | None) -> dt.datetime | None:
    return None if us is None else from_us(us)


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of each chunk of ``size`` cases."""
    for start in range(0, total, size):
        yield start, min(start + size, total)
