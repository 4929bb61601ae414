"""Next year's holidays missing: from November, administrators and supervisors are told."""

from __future__ import annotations

import datetime as dt
import io
import json

import pytest
from django.core.management import call_command

from dispatch import calendar
from dispatch.checks import holidays_entered
from dispatch.models import CalendarYear
from tests.clock import SHANGHAI

pytestmark = pytest.mark.django_db


def _november(clock):
    """Move the clock to the 20th of November of its year; returns the year."""
    year = clock.now().astimezone(SHANGHAI).year
    clock.move_to(dt.datetime(year, 11, 20, 10, 0, tzinfo=SHANGHAI))
    return year


def test_from_november_next_year_must_be_entered(clock):
    year = _november(clock)
    calendar.confirm_year(year=year, source="chinesecalendar")
    assert calendar.missing_years() == [year + 1]
    clock.move_to(dt.datetime(year, 10, 31, 10, 0, tzinfo=SHANGHAI))
    assert calendar.missing_years() == []
    clock.move_to(dt.datetime(year + 1, 1, 2, 10, 0, tzinfo=SHANGHAI))
    assert calendar.missing_years() == [year + 1]  # the year itself, unconfirmed, stays told


def test_every_door_says_so_until_the_year_is_confirmed(client, clock, people):
    year = _november(clock)
    calendar.confirm_year(year=year, source="chinesecalendar")
    notice = f"{year + 1}年的法定节假日和调休安排尚未录入"

    [warning] = holidays_entered()
    assert warning.id == "dispatch.W001" and notice in warning.msg
    out = io.StringIO()
    call_command("check", stdout=out, stderr=out)
    assert notice in out.getvalue()

    health = json.loads(client.get("/healthz").content)
    assert health["notices"] == [{"code": "calendar.missing_years", "years": [year + 1]}]
    assert health["status"] == "ok"  # a gap to fix, not an outage

    client.force_login(people.admin)
    assert notice in client.get("/admin/").content.decode()
    client.force_login(people.dave)  # a supervisor
    assert notice in client.get("/work/supervise/").content.decode()
    client.force_login(people.alice)  # a clerk has nothing to do about it
    assert notice not in client.get("/intake/").content.decode()

    # The administrator enters the schedule and confirms the year in the admin.
    client.force_login(people.admin)
    response = client.post(
        "/admin/dispatch/calendaryear/add/", {"year": year + 1, "note": "国务院办公厅通知"}
    )
    assert response.status_code == 302
    assert calendar.missing_years() == []
    assert holidays_entered() == []
    client.force_login(people.dave)
    assert notice not in client.get("/work/supervise/").content.decode()
    assert json.loads(client.get("/healthz").content)["notices"] == []


def test_seeding_from_the_package_confirms_the_years_it_knows(db):
    calendar.seed_from_package(years=[2026])
    assert list(CalendarYear.objects.values_list("year", "source")) == [(2026, "chinesecalendar")]
