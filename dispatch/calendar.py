"""The working-day calendar: which dates are working days, and deadline arithmetic on them.

The rule is Monday-Friday, corrected by ``CalendarDay`` rows: public holidays (a weekday off) and
make-up working days (调休, a weekend day on). The rows are seeded from the ``chinesecalendar``
package (``manage.py seed_calendar``) and corrected by administrators when the State Council
publishes the next year's schedule.

Conventions, chosen once and used by every clock:

* All datetimes are aware; the calendar works in local time (``settings.TIME_ZONE``,
  Asia/Shanghai).
* A deadline of *n working days* ends at the END of the n-th working day after the start day:
  ``23:59:59.999999`` local. The day the clock starts is never counted (期间开始之日不计算在
  期间内), whatever the hour, so a case registered at 00:00 and one registered at 23:59 of the
  same day get the same deadline. The sweeper treats ``due_at <= now`` as passed, so a case is
  late from the first instant of the following day.
* A deadline of *n working hours* counts only the office hours of working days
  (``settings.WORKING_HOURS``, e.g. 09:00-12:00 and 13:30-17:30). Time outside them does not
  count; a clock started in the evening starts at the next opening.
* Each year's exceptions are one entry in the Django cache, dropped by ``save_calendar_day``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch.models import CalendarDay, CalendarYear
from dispatch.texts import joined

CACHE_PREFIX = "zz:calendar:v1:"
CACHE_SECONDS = 24 * 3600
END_OF_DAY = dt.time(23, 59, 59, 999999)
# A search for the next working day gives up after this many days: a calendar with no working
# day in a year is a configuration error, not a reason to loop forever.
MAX_SCAN_DAYS = 400


# --- which days are working days ------------------------------------------------------------


def _cache_key(year: int) -> str:
    return f"{CACHE_PREFIX}{year}"


def year_exceptions(year: int) -> dict[dt.date, bool]:
    """The year's exception dates mapped to ``is_workday``, from the cache or the database."""
    key = _cache_key(year)
    found = cache.get(key)
    if found is None:
        found = dict(CalendarDay.objects.filter(date__year=year).values_list("date", "is_workday"))
        cache.set(key, found, CACHE_SECONDS)
    return found


def invalidate_year(year: int) -> None:
    cache.delete(_cache_key(year))


class _Days:
    """A per-call memo over ``year_exceptions`` so a long scan reads each year once."""

    def __init__(self) -> None:
        self._years: dict[int, dict[dt.date, bool]] = {}

    def is_workday(self, day: dt.date) -> bool:
        exceptions = self._years.get(day.year)
        if exceptions is None:
            exceptions = self._years[day.year] = year_exceptions(day.year)
        flag = exceptions.get(day)
        if flag is not None:
            return flag
        return day.weekday() < 5


def is_workday(day: dt.date) -> bool:
    """True if ``day`` is a working day (Mon-Fri unless a holiday, or a make-up day)."""
    return _Days().is_workday(day)


def working_days_between(start: dt.date, end: dt.date) -> int:
    """How many working days lie in ``(start, end]``."""
    days = _Days()
    count = 0
    day = start + dt.timedelta(days=1)
    while day <= end:
        count += days.is_workday(day)
        day += dt.timedelta(days=1)
    return count


def next_workday(day: dt.date, *, days: _Days | None = None) -> dt.date:
    """The first working day strictly after ``day``."""
    days = days or _Days()
    for _i in range(MAX_SCAN_DAYS):
        day += dt.timedelta(days=1)
        if days.is_workday(day):
            return day
    raise ValueError(f"no working day within {MAX_SCAN_DAYS} days after {day}")


# --- administrators' corrections ------------------------------------------------------------


def save_calendar_day(
    *, date: dt.date, is_workday: bool, name: str = "", edited_by_admin: bool = True
) -> CalendarDay:
    """Create or correct one exception date; the year's cache entry is dropped after commit."""
    with transaction.atomic():
        obj, _created = CalendarDay.objects.update_or_create(
            date=date,
            defaults={
                "is_workday": is_workday,
                "name": name.strip(),
                "edited_by_admin": edited_by_admin,
            },
        )
        # Drop now (this process) and again after commit (a reader may have cached the old
        # rows between the two).
        invalidate_year(date.year)
        transaction.on_commit(lambda: invalidate_year(date.year))
    return obj


def delete_calendar_day(*, day: CalendarDay) -> None:
    year = day.date.year
    with transaction.atomic():
        day.delete()
        invalidate_year(year)
        transaction.on_commit(lambda: invalidate_year(year))


# --- deadline arithmetic --------------------------------------------------------------------


def _local(moment: dt.datetime) -> dt.datetime:
    if timezone.is_naive(moment):
        raise ValueError("the calendar only works with aware datetimes")
    return timezone.localtime(moment)


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, time))


def end_of_day(day: dt.date) -> dt.datetime:
    return _at(day, END_OF_DAY)


def add_working_days(start: dt.datetime, n: int) -> dt.datetime:
    """The end (23:59:59.999999 local) of the n-th working day after ``start``'s date.

    ``n == 0`` gives the end of ``start``'s own day.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    day = _local(start).date()
    days = _Days()
    for _i in range(n):
        day = next_workday(day, days=days)
    return end_of_day(day)


def working_hours() -> list[tuple[dt.time, dt.time]]:
    """Office hours of a working day from ``settings.WORKING_HOURS`` ("09:00-12:00", ...)."""
    spans = []
    for text in settings.WORKING_HOURS:
        begin, _sep, end = text.partition("-")
        spans.append((dt.time.fromisoformat(begin.strip()), dt.time.fromisoformat(end.strip())))
    return spans


def _windows(start: dt.datetime, days: _Days) -> Iterator[tuple[dt.datetime, dt.datetime]]:
    """Office-hour windows, in order, from the one containing or following ``start``."""
    day = _local(start).date()
    spans = working_hours()
    for _i in range(MAX_SCAN_DAYS):
        if days.is_workday(day):
            for begin, end in spans:
                w_begin, w_end = _at(day, begin), _at(day, end)
                if w_end > start:
                    yield max(w_begin, start), w_end
        day += dt.timedelta(days=1)
    raise ValueError(f"no working hours within {MAX_SCAN_DAYS} days after {start}")


def add_working_hours(start: dt.datetime, n: float | dt.timedelta) -> dt.datetime:
    """The moment at which ``n`` office hours after ``start`` have passed."""
    left = n if isinstance(n, dt.timedelta) else dt.timedelta(hours=n)
    return _add_in_windows(start, left, _windows, _Days())


def _add_in_windows(start, left: dt.timedelta, windows, days: _Days) -> dt.datetime:
    if left < dt.timedelta(0):
        raise ValueError("the amount must not be negative")
    moment = _local(start)
    if left == dt.timedelta(0):
        return moment
    for w_begin, w_end in windows(moment, days):
        span = w_end - w_begin
        if left <= span:
            return w_begin + left
        left -= span
    raise AssertionError("unreachable")  # pragma: no cover


def _workday_windows(start: dt.datetime, days: _Days):
    """Whole working days as windows [00:00, next 00:00): the 'days' clock's working time."""
    day = _local(start).date()
    for _i in range(MAX_SCAN_DAYS):
        if days.is_workday(day):
            w_begin = _at(day, dt.time(0))
            w_end = _at(day + dt.timedelta(days=1), dt.time(0))
            if w_end > start:
                yield max(w_begin, start), w_end
        day += dt.timedelta(days=1)
    raise ValueError(f"no working day within {MAX_SCAN_DAYS} days after {start}")


# The kinds of time a clock can count: whole working days, office hours, or the wall clock.
DAYS = "days"
HOURS = "hours"
WALL = "wall"


def working_time_between(start: dt.datetime, end: dt.datetime, *, mode: str) -> dt.timedelta:
    """The working time in ``[start, end)`` as counted by a clock of kind ``mode``."""
    if end <= start:
        return dt.timedelta(0)
    if mode == WALL:
        return end - start
    windows = _workday_windows if mode == DAYS else _windows
    total = dt.timedelta(0)
    start = _local(start)
    for w_begin, w_end in windows(start, _Days()):
        if w_begin >= end:
            break
        total += min(w_end, end) - w_begin
    return total


def add_working_time(start: dt.datetime, amount: dt.timedelta, *, mode: str) -> dt.datetime:
    """``start`` moved forward by ``amount`` of working time of kind ``mode``.

    The inverse of ``working_time_between``: used for warnings at a share of the allowed time
    and to push deadlines by the working time a pause took.
    """
    if mode == WALL:
        return start + amount
    windows = _workday_windows if mode == DAYS else _windows
    return _add_in_windows(start, amount, windows, _Days())


# --- seeding from the chinesecalendar package -------------------------------------------------

# The package names holidays in English; the calendar shows them in Chinese.
HOLIDAY_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}


def package_days(years: list[int] | None = None) -> dict[dt.date, tuple[bool, str]]:
    """Every date the package lists: holidays and make-up working days, with Chinese names."""
    import chinese_calendar

    days: dict[dt.date, tuple[bool, str]] = {}
    for day, name in chinese_calendar.holidays.items():
        if years is None or day.year in years:
            days[day] = (False, HOLIDAY_NAMES.get(str(name), str(name)))
    for day, name in chinese_calendar.workdays.items():
        # The package lists every weekday as a workday; only a weekend day at work (调休) is an
        # exception to the Monday-Friday rule.
        if day.weekday() >= 5 and (years is None or day.year in years):
            days[day] = (True, f"{HOLIDAY_NAMES.get(str(name), str(name))}调休上班")
    return days


def seed_from_package(*, years: list[int] | None = None) -> dict:
    """Write the package's dates as ``CalendarDay`` rows; admin-edited rows are kept."""
    days = package_days(years)
    if years and not days:
        raise ValueError(f"chinesecalendar knows nothing of {years}")
    created = updated = kept = 0
    with transaction.atomic():
        existing = {d.date: d for d in CalendarDay.objects.filter(date__in=list(days))}
        new_rows = []
        for day, (workday, name) in sorted(days.items()):
            row = existing.get(day)
            if row is None:
                new_rows.append(CalendarDay(date=day, is_workday=workday, name=name))
            elif row.edited_by_admin:
                kept += 1
            elif row.is_workday != workday or row.name != name:
                row.is_workday, row.name = workday, name
                row.save(update_fields=["is_workday", "name"])
                updated += 1
        CalendarDay.objects.bulk_create(new_rows, ignore_conflicts=True)
        created = len(new_rows)
        touched = sorted({day.year for day in days})
        for year in touched:
            invalidate_year(year)
            confirm_year(year=year, source="chinesecalendar")

        def drop_cached_years() -> None:
            for year in touched:
                invalidate_year(year)

        transaction.on_commit(drop_cached_years)
    return {"created": created, "updated": updated, "kept": kept, "years": touched}


# --- is the schedule known? -------------------------------------------------------------------
#
# The State Council publishes next year's holidays in the autumn; until the package or an
# administrator has them, that year counts Monday-Friday. From November the people who can
# enter them (administrators) and whose deadlines depend on them (supervisors) are told, in the
# admin, on the supervisor's page, by ``manage.py check`` and on the health endpoint.

NOTICE_FROM_MONTH = 11


def confirm_year(*, year: int, source: str, note: str = "", now=None) -> CalendarYear:
    """Record that ``year``'s holidays and make-up working days are complete."""
    row, _created = CalendarYear.objects.update_or_create(
        year=year,
        defaults={"source": source, "note": note, "confirmed_at": now or timezone.now()},
    )
    return row


def missing_years(*, now: dt.datetime | None = None) -> list[int]:
    """This year, and from November next year, when their schedule is not confirmed."""
    today = timezone.localdate(now or timezone.now())
    wanted = [today.year]
    if today.month >= NOTICE_FROM_MONTH:
        wanted.append(today.year + 1)
    known = set(CalendarYear.objects.filter(year__in=wanted).values_list("year", flat=True))
    return [year for year in wanted if year not in known]


def missing_years_notice(years: list[int]) -> str:
    """The notice shown while ``years`` have no confirmed schedule ("" when none)."""
    if not years:
        return ""
    return _(
        "%(years)s年的法定节假日和调休安排尚未录入，期限暂按周一至周五计算。"
        "请系统管理员在“节假日与调休”中录入，并在“节假日年度安排”中确认。"
    ) % {"years": joined(years)}
