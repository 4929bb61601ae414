"""The test clock: every test runs at a moment derived from today, never on a written date.

The suite travels (``time-machine``) to 12:00 on the Monday of the current week, Shanghai time,
with the clock ticking. ``ZONGZHI_TEST_CLOCK_SHIFT_DAYS`` moves that week: CI runs the suite a
second time 400 days ahead, so a test that only passes near the date it was written fails there.
Data is built relative to ``MONDAY`` (``at(day, hour)``); the test database has no holidays
unless a test seeds them, so the base week is always five working days.
"""

from __future__ import annotations

import datetime as dt
import os
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
SHIFT_DAYS = int(os.environ.get("ZONGZHI_TEST_CLOCK_SHIFT_DAYS", "0"))


def _base_monday() -> dt.datetime:
    today = dt.datetime.now(SHANGHAI).date() + dt.timedelta(days=SHIFT_DAYS)
    monday = today - dt.timedelta(days=today.weekday())
    return dt.datetime.combine(monday, dt.time(0, 0), tzinfo=SHANGHAI)


# Computed once per test process, so every test of a run sees the same week.
MONDAY = _base_monday()
# Where the clock stands when a test starts: Monday noon, after the morning's cases.
START = MONDAY + dt.timedelta(hours=12)


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """A Shanghai time ``day`` days after the base Monday (0 = Monday, -7 = a week before)."""
    return MONDAY + dt.timedelta(days=day, hours=hour, minutes=minute, seconds=second)


def next_weekday(weekday: int, *, after: dt.datetime | None = None) -> dt.datetime:
    """Midnight of the next ``weekday`` (0 = Monday) strictly after ``after`` (default START)."""
    after = after or START
    days = (weekday - after.weekday() - 1) % 7 + 1
    return dt.datetime.combine(after.date() + dt.timedelta(days=days), dt.time(0), SHANGHAI)
