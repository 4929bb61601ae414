"""The working-day calendar on real 2026 dates (National Day, make-up Saturdays, midnight)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.core.management import call_command

from dispatch import calendar
from dispatch.models import CalendarDay

SH = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def end_of(y, m, d) -> dt.datetime:
    return at(y, m, d, 23, 59, 59, 999999)


def test_unseeded_calendar_is_monday_to_friday(db):
    assert calendar.is_workday(dt.date(2026, 10, 1))  # a Thursday, unknown as a holiday
    assert not calendar.is_workday(dt.date(2026, 10, 10))  # a Saturday


def test_national_day_and_make_up_days_2026(cal2026):
    assert not calendar.is_workday(dt.date(2026, 10, 1))
    assert not calendar.is_workday(dt.date(2026, 10, 7))
    assert calendar.is_workday(dt.date(2026, 10, 8))
    assert calendar.is_workday(dt.date(2026, 9, 20))  # Sunday, 调休
    assert calendar.is_workday(dt.date(2026, 10, 10))  # Saturday, 调休
    assert not calendar.is_workday(dt.date(2026, 10, 11))
    assert not calendar.is_workday(dt.date(2026, 9, 25))  # 中秋, a Friday
    row = CalendarDay.objects.get(date=dt.date(2026, 10, 1))
    assert row.name == "国庆节" and not row.edited_by_admin
    assert CalendarDay.objects.get(date=dt.date(2026, 10, 10)).name == "国庆节调休上班"


def test_working_days_across_national_day(cal2026):
    start = at(2026, 9, 30, 10, 0)
    assert calendar.add_working_days(start, 1) == end_of(2026, 10, 8)
    assert calendar.add_working_days(start, 2) == end_of(2026, 10, 9)
    # The make-up Saturday counts.
    assert calendar.add_working_days(start, 3) == end_of(2026, 10, 10)
    assert calendar.add_working_days(start, 4) == end_of(2026, 10, 12)
    assert calendar.working_days_between(dt.date(2026, 9, 30), dt.date(2026, 10, 12)) == 4


def test_start_day_is_never_counted_whatever_the_hour(cal2026):
    midnight = at(2026, 10, 9, 0, 0)
    last_instant = end_of(2026, 10, 9)
    assert calendar.add_working_days(midnight, 1) == end_of(2026, 10, 10)
    assert calendar.add_working_days(last_instant, 1) == end_of(2026, 10, 10)
    # One microsecond earlier is the day before: the deadline moves a day.
    assert calendar.add_working_days(midnight - dt.timedelta(microseconds=1), 1) == end_of(
        2026, 10, 9
    )
    # A UTC instant is read in local time: 16:00 UTC is midnight in Shanghai.
    utc_midnight_local = dt.datetime(2026, 10, 8, 16, 0, tzinfo=dt.UTC)
    assert calendar.add_working_days(utc_midnight_local, 1) == end_of(2026, 10, 10)
    assert calendar.add_working_days(midnight, 0) == end_of(2026, 10, 9)


def test_start_on_a_holiday_counts_from_the_next_working_day(cal2026):
    assert calendar.add_working_days(at(2026, 10, 3, 15, 0), 1) == end_of(2026, 10, 8)


def test_naive_datetimes_are_refused(db):
    with pytest.raises(ValueError):
        calendar.add_working_days(dt.datetime(2026, 10, 9, 10, 0), 1)  # noqa: DTZ001


def test_working_hours_run_into_a_make_up_saturday(cal2026):
    # Friday 16:00: 1.5 h left that day, then the 调休 Saturday from 09:00.
    assert calendar.add_working_hours(at(2026, 10, 9, 16, 0), 4) == at(2026, 10, 10, 11, 30)


def test_working_hours_skip_the_holiday_and_lunch(cal2026):
    assert calendar.add_working_hours(at(2026, 9, 30, 17, 0), 1) == at(2026, 10, 8, 9, 30)
    assert calendar.add_working_hours(at(2026, 10, 8, 12, 30), 1) == at(2026, 10, 8, 14, 30)
    assert calendar.add_working_hours(at(2026, 10, 8, 11, 0), 1) == at(2026, 10, 8, 12, 0)
    assert calendar.add_working_hours(at(2026, 10, 8, 20, 0), 0.5) == at(2026, 10, 9, 9, 30)
    # Midnight on a working day: the clock starts at opening time.
    assert calendar.add_working_hours(at(2026, 10, 8, 0, 0), 7) == at(2026, 10, 8, 17, 30)


def test_office_hours_are_a_setting(cal2026, settings):
    settings.WORKING_HOURS = ["08:00-12:00", "14:00-18:00"]
    assert calendar.add_working_hours(at(2026, 10, 8, 11, 0), 2) == at(2026, 10, 8, 15, 0)


def test_working_time_between_and_back(cal2026):
    start, end = at(2026, 9, 30, 16, 0), at(2026, 10, 8, 10, 0)
    hours = calendar.working_time_between(start, end, mode=calendar.HOURS)
    assert hours == dt.timedelta(hours=2.5)
    assert calendar.add_working_time(start, hours, mode=calendar.HOURS) == end
    days = calendar.working_time_between(start, end, mode=calendar.DAYS)
    assert days == dt.timedelta(hours=8 + 10)
    assert calendar.add_working_time(start, days, mode=calendar.DAYS) == end


def test_seeding_is_idempotent_and_keeps_admin_edits(db):
    first = calendar.seed_from_package(years=[2026])
    count = CalendarDay.objects.count()
    assert first["created"] == count > 30
    calendar.save_calendar_day(date=dt.date(2026, 10, 10), is_workday=False, name="改为休息")
    second = calendar.seed_from_package(years=[2026])
    assert second["created"] == 0 and second["kept"] == 1
    assert CalendarDay.objects.count() == count
    row = CalendarDay.objects.get(date=dt.date(2026, 10, 10))
    assert (row.is_workday, row.name, row.edited_by_admin) == (False, "改为休息", True)


def test_seed_command(db):
    call_command("seed_calendar", "--year", "2026", stdout=(out := __import__("io").StringIO()))
    assert "新增" in out.getvalue()
    assert CalendarDay.objects.filter(date__year=2026, is_workday=True).count() == 6
    assert not calendar.is_workday(dt.date(2026, 10, 1))


def test_saving_a_day_drops_the_cached_year(db):
    saturday = dt.date(2027, 2, 6)
    assert not calendar.is_workday(saturday)  # caches 2027 (no rows yet)
    calendar.save_calendar_day(date=saturday, is_workday=True, name="春节调休上班")
    assert calendar.is_workday(saturday)
    calendar.delete_calendar_day(day=CalendarDay.objects.get(date=saturday))
    assert not calendar.is_workday(saturday)


def test_the_year_is_read_once_then_cached(cal2026, django_assert_num_queries):
    calendar.is_workday(dt.date(2026, 10, 1))
    with django_assert_num_queries(0):
        calendar.add_working_days(at(2026, 9, 1, 9, 0), 40)


def test_admin_enters_next_years_schedule(people, client):
    client.force_login(people.admin)
    saturday = dt.date(2027, 2, 6)
    assert not calendar.is_workday(saturday)
    response = client.post(
        "/admin/dispatch/calendarday/add/",
        {"date": "2027-02-06", "is_workday": "on", "name": "春节调休上班"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = CalendarDay.objects.get(date=saturday)
    assert row.is_workday and row.edited_by_admin
    assert calendar.is_workday(saturday)
    # A dispatcher cannot reach the calendar admin.
    client.force_login(people.erin)
    assert client.get("/admin/dispatch/calendarday/").status_code == 302
