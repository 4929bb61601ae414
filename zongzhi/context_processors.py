"""What every staff page may show in its header: the navigation, the calendar notice."""

from __future__ import annotations

from dispatch import calendar
from dispatch.access import SUPERVISE_ROLES, reach_of
from people.models import ADMIN_ROLES
from zongzhi.navigation import links_for


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    return {"nav_links": links_for(user) if user is not None else []}


def notices(request) -> dict:
    """The missing-holidays notice, for administrators and supervisors only (one query)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if not (user.is_staff or reach_of(user).has(*SUPERVISE_ROLES, *ADMIN_ROLES)):
        return {}
    return {"calendar_notice": calendar.missing_years_notice(calendar.missing_years())}
