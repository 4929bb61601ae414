"""The three clocks: deadline, extension and resume fields on real 2026 dates."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from dispatch.deadlines import deadline_fields, extension_fields, resume_fields
from dispatch.models import Case, DeadlineProfile, DeadlineUnit

SH = zoneinfo.ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.usefixtures("cal2026")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


def end_of(y, m, d) -> dt.datetime:
    return at(y, m, d, 23, 59, 59, 999999)


@pytest.fixture
def profile(db):
    return DeadlineProfile.objects.create(
        name="一般诉求",
        sign_amount=4,
        sign_unit=DeadlineUnit.WORKING_HOURS,
        reply_amount=3,
        reply_unit=DeadlineUnit.WORKING_DAYS,
        complete_amount=7,
        complete_unit=DeadlineUnit.WORKING_DAYS,
        warn_ratio=Decimal("0.80"),
    )


def close_to(actual: dt.datetime, expected: dt.datetime) -> bool:
    return abs(actual - expected) < dt.timedelta(seconds=1)


def test_dispatch_before_national_day(profile):
    start = at(2026, 9, 28, 10, 0)  # Monday
    fields = deadline_fields(Case(), profile=profile, start=start)
    # Sign for within 4 office hours: 10-12, then 13:30-15:30.
    assert fields["sign_due_at"] == at(2026, 9, 28, 15, 30)
    # Tell the resident within 3 working days: 29th, 30th, then 8 October.
    assert fields["reply_due_at"] == end_of(2026, 10, 8)
    # Finish within 7: 29, 30 Sep; 8, 9, 10 (make-up Saturday), 12, 13 Oct.
    assert fields["due_at"] == end_of(2026, 10, 13)
    # 黄灯 at 80% of the working time: 14 h + 7 x 24 h = 182 h; 145.6 h falls on 12 Oct 11:36.
    assert close_to(fields["warn_at"], at(2026, 10, 12, 11, 36))


def test_a_clock_in_wall_hours(profile):
    profile.complete_amount, profile.complete_unit = 24, DeadlineUnit.CALENDAR_HOURS
    profile.warn_ratio = Decimal("0.50")
    fields = deadline_fields(Case(), profile=profile, start=at(2026, 10, 1, 8, 0))
    assert fields["due_at"] == at(2026, 10, 2, 8, 0)
    assert fields["warn_at"] == at(2026, 10, 1, 20, 0)


def test_a_second_dispatch_keeps_the_reply_clock(profile):
    case = Case(reply_due_at=end_of(2026, 10, 8))
    fields = deadline_fields(case, profile=profile, start=at(2026, 10, 9, 9, 0))
    assert fields["reply_due_at"] == end_of(2026, 10, 8)
    assert fields["due_at"] == end_of(2026, 10, 19)  # 10 (Sat), 12-16, 19


def test_extension_adds_working_days_to_the_deadline(profile):
    case = Case(profile=profile, due_at=end_of(2026, 9, 29), warn_at=at(2026, 9, 29, 10, 0))
    fields = extension_fields(case, days=2, now=at(2026, 9, 29, 12, 0))
    assert fields["due_at"] == end_of(2026, 10, 8)  # 30 Sep, then 8 Oct after the holiday
    assert at(2026, 9, 29, 12, 0) < fields["warn_at"] < fields["due_at"]
    with pytest.raises(ValueError):
        extension_fields(case, days=0, now=at(2026, 9, 29, 12, 0))


def test_resume_pushes_open_clocks_by_the_working_time_paused(profile):
    case = Case(
        profile=profile,
        sign_due_at=at(2026, 10, 9, 15, 0),
        reply_due_at=end_of(2026, 10, 8),  # passed before the pause: stays late
        due_at=end_of(2026, 10, 13),
        warn_at=at(2026, 10, 12, 11, 36),
        paused_at=at(2026, 10, 9, 10, 0),  # Friday
        paused_seconds=60,
    )
    fields = resume_fields(case, now=at(2026, 10, 12, 10, 0))  # Monday; Saturday was worked
    assert fields["paused_at"] is None
    assert fields["paused_seconds"] == 60 + 3 * 24 * 3600
    # Working days paused: 14 h of Friday, the make-up Saturday, 10 h of Monday = 48 h.
    assert fields["due_at"] == end_of(2026, 10, 15)
    assert fields["warn_at"] == at(2026, 10, 14, 11, 36)
    # Office hours paused: Fri 2 + 4, Sat 7, Mon 1 = 14 h. From Fri 15:00: Fri 2.5, Sat 7,
    # Mon 09:00-12:00 3, then 1.5 h after 13:30.
    assert fields["sign_due_at"] == at(2026, 10, 12, 15, 0)
    assert "reply_due_at" not in fields


def test_resume_leaves_a_signed_clock_alone(profile):
    case = Case(
        profile=profile,
        sign_due_at=at(2026, 10, 9, 15, 0),
        signed_at=at(2026, 10, 9, 9, 0),
        due_at=end_of(2026, 10, 13),
        paused_at=at(2026, 10, 9, 10, 0),
    )
    fields = resume_fields(case, now=at(2026, 10, 9, 11, 0))
    assert "sign_due_at" not in fields
    assert fields["due_at"] == at(2026, 10, 14, 0, 59, 59, 999999)
