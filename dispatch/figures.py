"""The dashboard's figures: named counts of facts, and the rates DOMAIN.md defines over them.

A count is a number of cases for which one fact happened in the period, each fact dated by
its own column (received by ``reported_at``, closed by ``closed_at``, due by ``due_at``...), so
that every rate's numerator and denominator cover the same cases. The counts are computed in
one place, ``COUNTS``, and read either live from the cases (today, and any small scope) or from
the daily roll-up the workers keep (``dispatch.rollups``); the rates are computed from counts
alone, so they are the same whichever way the counts came.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Aggregate, F, Q, QuerySet, Sum
from django.db.models import Count as CountAgg
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dispatch.models import Case, CategoryKind
from dispatch.states import Status
from grids.models import Level

ARCHIVED = Q(status=Status.ARCHIVED)
# A case whose clock an approved pause stopped is judged on the time it had, not counted in
# the on-time denominator (按时办结率 = closed on time / (due in period - approved pauses)).
PAUSED = Q(paused_seconds__gt=0) | Q(paused_at__isnull=False)
DISPUTE = Q(category__kind=CategoryKind.DISPUTE)


@dataclass(frozen=True)
class Fact:
    """A count: the cases with ``when`` in the period that satisfy ``where``."""

    name: str
    when: str
    where: Q
    label: Promise
    total: str | None = None  # summed instead of counted: the column to add up


FACTS: list[Fact] = [
    Fact("received", "reported_at", Q(), _("受理")),
    Fact("rejected", "closed_at", Q(status=Status.REJECTED), _("不予受理")),
    Fact("closed", "closed_at", ARCHIVED, _("办结")),
    Fact("closed_carried_out", "closed_at", ARCHIVED & Q(carried_out=True), _("落实到位")),
    Fact("closed_reworked", "closed_at", ARCHIVED & Q(rework_count__gt=0), _("返工")),
    Fact("closed_extended", "closed_at", ARCHIVED & Q(extension_count__gt=0), _("延期")),
    Fact("closed_returned", "closed_at", ARCHIVED & Q(return_count__gt=0), _("被退回")),
    Fact("closed_escalated", "closed_at", ARCHIVED & Q(escalation_count__gt=0), _("上报上级")),
    Fact("closed_grid", "closed_at", ARCHIVED & Q(closed_level=Level.GRID), _("网格办结")),
    Fact(
        "closed_village",
        "closed_at",
        ARCHIVED & Q(closed_level=Level.VILLAGE),
        _("村(社区)办结"),
    ),
    Fact(
        "closed_township",
        "closed_at",
        ARCHIVED & Q(closed_level=Level.TOWNSHIP),
        _("乡镇(街道)办结"),
    ),
    Fact("closed_county", "closed_at", ARCHIVED & Q(closed_level=Level.COUNTY), _("县(区)办结")),
    Fact(
        "working_days",
        "closed_at",
        ARCHIVED & Q(working_days_taken__isnull=False),
        _("办理用时（工作日）"),
        total="working_days_taken",
    ),
    Fact("due", "due_at", ~PAUSED & ~Q(status=Status.REJECTED), _("到期应办结")),
    Fact("due_on_time", "due_at", ~PAUSED & Q(closed_on_time=True), _("按时办结")),
    Fact("due_paused", "due_at", PAUSED, _("经批准中止（不计入）")),
    Fact("reply_due", "reply_due_at", Q(), _("到期应告知")),
    Fact("replied_on_time", "reply_due_at", Q(replied_at__lte=F("reply_due_at")), _("按时告知")),
    Fact("followed_up", "followed_up_at", Q(followup_satisfaction__isnull=False), _("回访")),
    Fact("followed_up_satisfied", "followed_up_at", Q(followup_satisfaction__gte=3), _("回访满意")),
    Fact("rated", "rated_at", Q(resident_rating__isnull=False), _("群众评价")),
    Fact("rated_negative", "rated_at", Q(resident_rating__lte=2), _("差评")),
    Fact("disputes_accepted", "registered_at", DISPUTE & ~Q(status=Status.REJECTED), _("受理纠纷")),
    Fact("disputes_resolved", "closed_at", DISPUTE & ARCHIVED & Q(carried_out=True), _("化解纠纷")),
]
FACT_NAMES = [fact.name for fact in FACTS]
FACTS_BY_NAME = {fact.name: fact for fact in FACTS}
# The date columns the facts are dated by (one grouped query each, live or rolled up).
WHEN_COLUMNS = sorted({fact.when for fact in FACTS})


@dataclass(frozen=True)
class RateDef:
    key: str
    label: Promise
    numerator: str
    denominator: str
    definition: Promise
    minus: str | None = None  # shown beside the denominator: what it leaves out


RATES: list[RateDef] = [
    RateDef(
        "on_time",
        _("按时办结率"),
        "due_on_time",
        "due",
        _("期限在本期内到期的案件中按时办结的比例；经批准中止的案件不计入分母。"),
        minus="due_paused",
    ),
    RateDef(
        "carried_out",
        _("落实到位率"),
        "closed_carried_out",
        "closed",
        _("本期办结的案件中，核查或回访确认落实到位的比例。"),
    ),
    RateDef(
        "satisfaction",
        _("回访满意率"),
        "followed_up_satisfied",
        "followed_up",
        _("本期回访的案件中，回访结果为非常满意、满意或基本满意的比例。"),
    ),
    RateDef(
        "resolution",
        _("化解率"),
        "disputes_resolved",
        "disputes_accepted",
        _("矛盾纠纷：本期化解（办结且落实到位）的件数与本期受理的件数之比。"),
    ),
    RateDef(
        "rework",
        _("返工率"),
        "closed_reworked",
        "closed",
        _("本期办结的案件中，核查未通过而返工过的比例。"),
    ),
    RateDef(
        "extension",
        _("延期率"),
        "closed_extended",
        "closed",
        _("本期办结的案件中，批准延期过的比例。"),
    ),
    RateDef(
        "response",
        _("响应率"),
        "replied_on_time",
        "reply_due",
        _("告知期限在本期内到期的案件中，按时告知群众的比例。"),
    ),
    RateDef(
        "returned",
        _("退回率"),
        "closed_returned",
        "closed",
        _("本期办结的案件中，曾被承办单位以派单错误退回的比例（派单质量）。"),
    ),
]
LEVEL_SHARES = [
    ("closed_grid", Level.GRID),
    ("closed_village", Level.VILLAGE),
    ("closed_township", Level.TOWNSHIP),
    ("closed_county", Level.COUNTY),
]


def min_sample() -> int:
    """Below this many cases in the denominator a rate is shown greyed, as not meaningful."""
    return int(settings.RATE_MIN_SAMPLE)


@dataclass(frozen=True)
class Rate:
    key: str
    label: str
    numerator: int
    denominator: int
    definition: str
    left_out: int | None = None

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None

    @property
    def meaningful(self) -> bool:
        return self.denominator >= min_sample()

    @property
    def percent(self) -> str:
        return "—" if self.value is None else f"{self.value * 100:.1f}%"


def rates(counts: Mapping[str, int]) -> list[Rate]:
    return [
        Rate(
            key=rate.key,
            label=str(rate.label),
            numerator=counts.get(rate.numerator, 0),
            denominator=counts.get(rate.denominator, 0),
            definition=str(rate.definition),
            left_out=counts.get(rate.minus, 0) if rate.minus else None,
        )
        for rate in RATES
    ]


def level_shares(counts: Mapping[str, int]) -> list[Rate]:
    """Self-resolution: the share of closed cases closed at each level (小问题不出网格...)."""
    closed = counts.get("closed", 0)
    return [
        Rate(
            key=name,
            label=str(Level(level).label),
            numerator=counts.get(name, 0),
            denominator=closed,
            definition=str(_("本期办结的案件中在该层级办结的比例。")),
        )
        for name, level in LEVEL_SHARES
    ]


def average_working_days(counts: Mapping[str, int]) -> float | None:
    n = counts.get("working_days_count", 0)
    return counts.get("working_days", 0) / n if n else None


# --- live counts -------------------------------------------------------------------------------


def _window(column: str, start: dt.datetime, end: dt.datetime) -> Q:
    return Q(**{f"{column}__gte": start, f"{column}__lt": end})


def by_when(facts: Iterable[Fact] = FACTS) -> dict[str, list[Fact]]:
    """The facts grouped by the date column they are dated by."""
    grouped: dict[str, list[Fact]] = {}
    for fact in facts:
        grouped.setdefault(fact.when, []).append(fact)
    return grouped


def aggregates_of(facts: Iterable[Fact], within: Q | None = None) -> dict[str, Aggregate]:
    """The SQL aggregates that count (or add up) each fact: one conditional aggregate each;
    ``within``: a further condition on the cases counted (e.g. the fact's date in a window)."""
    aggregates: dict[str, Aggregate] = {}
    for fact in facts:
        where = fact.where & within if within is not None else fact.where
        if fact.total:
            aggregates[fact.name] = Sum(fact.total, filter=where)
            aggregates[f"{fact.name}_count"] = CountAgg("pk", filter=where)
        else:
            aggregates[fact.name] = CountAgg("pk", filter=where)
    return aggregates


def live_counts(
    cases: QuerySet[Case],
    *,
    start: dt.datetime,
    end: dt.datetime,
    group_by: str | None = None,
    bucket: Callable[[str], Any] | None = None,
    facts: Iterable[Fact] = FACTS,
) -> dict:
    """The counts over ``cases`` for the period, one grouped query per date column.

    Returns ``{fact name: n}``, or with ``group_by`` (a case column such as ``category_id``)
    ``{group value: {fact name: n}}``; with ``bucket`` (date column -> expression, e.g. the
    fact's month) the groups are time buckets of each fact's own date. A summed fact also
    gives ``<name>_count``.
    """
    result: dict = {}
    for column, column_facts in by_when(facts).items():
        aggregates = aggregates_of(column_facts)
        qs = cases.filter(_window(column, start, end))
        if bucket is not None:
            qs = qs.annotate(group=bucket(column))
            group_by = "group"
        if group_by is None:
            row = qs.aggregate(**aggregates)
            result.update({name: value or 0 for name, value in row.items()})
            continue
        for row in qs.order_by().values(group_by).annotate(**aggregates):
            key = row.pop(group_by)
            result.setdefault(key, {}).update({k: v or 0 for k, v in row.items()})
    return result
