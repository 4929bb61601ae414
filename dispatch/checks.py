"""``manage.py check`` warnings about the data the deadlines depend on."""

from __future__ import annotations

from django.core.checks import Warning, register
from django.db import DatabaseError

from dispatch import calendar


@register()
def holidays_entered(app_configs=None, **kwargs) -> list[Warning]:
    """Warn from November until next year's holidays and make-up working days are entered."""
    try:
        missing = calendar.missing_years()
    except DatabaseError:  # not migrated yet: nothing to say about the calendar
        return []
    if not missing:
        return []
    return [
        Warning(
            calendar.missing_years_notice(missing),
            hint="manage.py seed_calendar, or the admin's 节假日与调休 and 节假日年度安排",
            id="dispatch.W001",
        )
    ]
