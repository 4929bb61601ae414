"""What a report and an export contain: read from the dashboard's own functions, never recounted.

A monthly report is the dashboard (``dispatch.dashboard.build``) of one scope for one calendar
month, with the trend of the twelve months ending in it; its counts and rates are therefore
those of ``dispatch.figures`` (one definition). A case list is the list behind one number
(``dashboard.drill``) or one of the open lists (``dashboard.open_list``), read through the
same scoped selector as every other list, so an exported list is the list on screen.

Nothing here writes. Personal data leaves only masked: a party's name as ``masked_name``, and
a phone or ID number typed into a summary masked as on the staff pages.
"""

from __future__ import annotations

import calendar as month_calendar
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django.utils.functional import Promise

from dispatch import dashboard, figures, rollups
from dispatch.access import reach_of
from dispatch.dashboard import Board, Period
from dispatch.models import Case, CaseParty, PartyRole
from grids.models import Region
from people.identity import mask_id_number, mask_name, mask_phone
from people.models import User
from reports.errors import ReportError

TREND_MONTHS = 12
MONTHS_OFFERED = 24
# The level counts are shown as the self-resolution shares; the summed fact as an average.
LEVEL_FACTS = {name for name, _level in figures.LEVEL_SHARES}
COUNT_FACTS = [f for f in figures.FACTS if f.total is None and f.name not in LEVEL_FACTS]


# --- months -----------------------------------------------------------------------------------


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def add_months(month: dt.date, n: int) -> dt.date:
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def last_day(month: dt.date) -> dt.date:
    return month.replace(day=month_calendar.monthrange(month.year, month.month)[1])


def this_month(now: dt.datetime) -> dt.date:
    return timezone.localdate(now).replace(day=1)


def default_month(now: dt.datetime) -> dt.date:
    """A monthly report is of the month that ended, unless asked for another."""
    return add_months(this_month(now), -1)


def offered_months(now: dt.datetime) -> list[dt.date]:
    """The months the page offers, newest (the current, not yet ended) first."""
    current = this_month(now)
    return [add_months(current, -i) for i in range(MONTHS_OFFERED)]


MONTH_PATTERN = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str | None) -> dt.date | None:
    """``YYYY-MM`` as the month's first day; anything else None."""
    match = MONTH_PATTERN.match(value or "")
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not (2000 <= year <= 9999 and 1 <= month <= 12):
        return None
    return dt.date(year, month, 1)


def month_period(month: dt.date, *, now: dt.datetime) -> Period:
    """The month as the dashboard's custom period (ending now if the month has not ended)."""
    return dashboard.period_of("custom", now=now, start=month, end=last_day(month))


# --- the monthly report -----------------------------------------------------------------------


@dataclass(frozen=True)
class CountRow:
    name: str
    label: str
    count: int


@dataclass
class MonthlyReport:
    region: Region
    month: dt.date
    period: Period
    board: Board
    counts: list[CountRow]
    trend: list  # (Period, counts, {rate key: Rate}) per month, oldest first

    @property
    def computed_at(self) -> dt.datetime:
        return self.board.computed_at

    @property
    def complete(self) -> bool:
        """The month has ended: its figures no longer grow (they still follow corrections)."""
        return self.period.end >= _midnight(add_months(self.month, 1))

    @property
    def last_day(self) -> dt.date:
        """The period's last day, inclusive (today while the month runs)."""
        return timezone.localdate(self.period.end - dt.timedelta(microseconds=1))


def monthly_report(
    user: User, region: Region, month: dt.date, *, now: dt.datetime
) -> MonthlyReport:
    """The dashboard of ``region`` for ``month`` as ``user`` sees it, with its trend."""
    period = month_period(month, now=now)
    board = dashboard.build(user, region, period, now=now)
    return MonthlyReport(
        region=region,
        month=month,
        period=period,
        board=board,
        counts=[CountRow(f.name, str(f.label), board.counts.get(f.name, 0)) for f in COUNT_FACTS],
        trend=trend(region, month, now=now),
    )


def report_context(report: MonthlyReport) -> dict:
    """What the report's template body reads, on the page and in the PDF alike."""
    return {
        "report": report,
        "board": report.board,
        "dimensions": dashboard.DIMENSIONS,
        "min_sample": figures.min_sample(),
    }


def trend(region: Region, month: dt.date, *, now: dt.datetime) -> list:
    """The twelve months ending with ``month``: counts from the roll-up, rates from them."""
    months = [add_months(month, -i) for i in reversed(range(TREND_MONTHS))]
    by_start = rollups.series(region, "month", start=_midnight(months[0]), now=now)
    out = []
    for first in months:
        start, end = _midnight(first), min(_midnight(add_months(first, 1)), now)
        counts = by_start.get(first, dict.fromkeys(rollups.FIELDS, 0))
        rates = {r.key: r for r in figures.rates(counts)}
        out.append((Period("month", start, end), counts, rates))
    return out


# --- scope ------------------------------------------------------------------------------------


def region_in_scope(user: User, code: str) -> Region:
    """The region an export was asked for, if the user still oversees it (the worker checks
    again when it runs: a supervisor moved elsewhere since asking gets no file)."""
    if not user.is_active:
        raise ReportError("scope")
    region = dashboard.scope_for(user, code)
    if region is None or region.code != code:
        raise ReportError("scope")
    return region


# --- case lists -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseList:
    region: Region
    title: str
    start: dt.datetime
    end: dt.datetime
    cases: QuerySet[Case]
    is_open_list: bool


def case_list(
    user: User,
    region: Region,
    *,
    fact: str = "",
    listed: str = "",
    dimension: str | None = None,
    key: str | None = None,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
) -> CaseList:
    """The cases behind one dashboard number, or one open list, as the dashboard lists them."""
    title: str | Promise
    if listed in dashboard.OPEN_LISTS:
        cases = dashboard.open_list(dashboard.scoped_cases(reach_of(user), region), listed, now=now)
        title = dashboard.OPEN_LISTS[listed]
    elif fact in figures.FACTS_BY_NAME:
        cases = dashboard.drill(
            user, region, fact=fact, start=start, end=end, dimension=dimension, key=key
        )
        title = figures.FACTS_BY_NAME[fact].label
    else:
        raise ReportError("list")
    return CaseList(region, str(title), start, end, cases, listed in dashboard.OPEN_LISTS)


@dataclass(frozen=True)
class CaseRow:
    code: str
    category: str
    summary: str
    applicants: str
    region: str
    status: str
    unit: str
    reported_at: dt.datetime | None
    due_at: dt.datetime | None
    closed_at: dt.datetime | None


# Phone and ID numbers typed into free text (a summary): masked as the staff pages mask them.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
_LANDLINE = re.compile(r"(?<!\d)(0\d{2,3})[-－ ]?(\d{7,8})(?!\d)")


def masked_text(text: str, names: list[str]) -> str:
    """``text`` with the case's party names, ID numbers and phone numbers masked."""
    for name in sorted({n for n in names if len(n) >= 2}, key=len, reverse=True):
        text = text.replace(name, mask_name(name))
    text = _ID_NUMBER.sub(lambda m: mask_id_number(m.group(1)), text)
    text = _MOBILE.sub(lambda m: mask_phone(m.group(1)), text)
    return _LANDLINE.sub(lambda m: mask_phone(m.group(1) + m.group(2)), text)


ROW_FIELDS = (
    "code",
    "summary",
    "status",
    "reported_at",
    "due_at",
    "closed_at",
    "category__name",
    "category__parent__name",
    "region__name",
    "lead_unit__name",
)


def case_rows(cases: QuerySet[Case], *, chunk_size: int = 2000) -> Iterator[CaseRow]:
    """The rows of a case list in its order, with parties masked; a fixed number of queries
    per chunk (the cases, then their parties), whatever the length of the list."""
    parties = CaseParty.objects.only("case_id", "role", "name", "is_organisation", "sort")
    qs = (
        cases.select_related(None)
        .select_related("category__parent", "region", "lead_unit")
        .only(*ROW_FIELDS)
        .prefetch_related(Prefetch("case_parties", queryset=parties.order_by("sort", "pk")))
    )
    for case in qs.iterator(chunk_size=chunk_size):
        links = list(case.case_parties.all())
        names = [link.name for link in links if not link.is_organisation]
        yield CaseRow(
            code=case.code,
            category=str(case.category),
            summary=masked_text(case.summary, names),
            applicants="、".join(
                link.masked_name for link in links if link.role == PartyRole.APPLICANT
            ),
            region=case.region.name,
            status=str(case.get_status_display()),
            unit=case.lead_unit.name if case.lead_unit is not None else "",
            reported_at=case.reported_at,
            due_at=case.due_at,
            closed_at=case.closed_at,
        )


# --- what an export is, in words ----------------------------------------------------------------


def _day(value: str | None) -> str:
    try:
        return f"{timezone.localtime(dt.datetime.fromisoformat(value or '')):%Y-%m-%d}"
    except ValueError:
        return ""


def _what(params: dict) -> str:
    listed, fact = params.get("list", ""), params.get("fact", "")
    if listed in dashboard.OPEN_LISTS:
        return str(dashboard.OPEN_LISTS[listed])
    if fact in figures.FACTS_BY_NAME:
        return str(figures.FACTS_BY_NAME[fact].label)
    return ""


def export_parts(kind: str, params: dict) -> list[str]:
    """What an export holds, in the reader's language: region, list or month, period."""
    parts = [params.get("region_name", "")]
    if kind == "cases_xlsx":
        parts.append(_what(params))
        if params.get("list"):
            parts.append(_day(params.get("now")))
        else:
            last = params.get("end", "")
            try:
                # The period's end is exclusive: the last day listed is the day before midnight.
                moment = dt.datetime.fromisoformat(last) - dt.timedelta(microseconds=1)
                parts.append(f"{_day(params.get('start'))}—{timezone.localtime(moment):%Y-%m-%d}")
            except ValueError:
                pass
    else:
        parts.append(params.get("month", ""))
    return [part for part in parts if part]


_UNSAFE_IN_NAMES = re.compile(r'[\\/:*?"<>|\s]+')


def download_name(kind_label: str, kind: str, params: dict, suffix: str) -> str:
    """The file's name when downloaded, e.g. ``月度报告（PDF）-兴隆台镇-2025-05.pdf``."""
    parts = [kind_label, *export_parts(kind, params)]
    return "-".join(_UNSAFE_IN_NAMES.sub("_", part) for part in parts) + suffix
