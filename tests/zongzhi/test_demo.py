"""``manage.py load_demo``: the demo county is complete, and a second run changes nothing."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone

from dispatch import outbox
from dispatch.events import verify_chain
from dispatch.models import (
    Case,
    CaseEvent,
    Category,
    DeadlineProfile,
    Job,
    Notification,
    RoutingRule,
)
from dispatch.states import Status
from grids.models import Level, Region, Unit, UnitKind
from people.models import Role, RoleGrant, User
from zongzhi import demo

DEMO_CASES = 120


def _load(cases: int = DEMO_CASES) -> str:
    out = io.StringIO()
    call_command("load_demo", "--cases", str(cases), stdout=out)
    return out.getvalue()


def _table_counts() -> dict[str, int]:
    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def _snapshot() -> dict[str, list]:
    return {
        "regions": list(
            Region.objects.values_list("code", "name", "path", "households", "parent__code")
        ),
        "units": list(
            Unit.objects.order_by("pk").values_list("pk", "name", "kind", "region__code")
        ),
        "users": list(
            User.objects.order_by("pk").values_list("pk", "username", "work_number", "password")
        ),
        "grants": list(
            RoleGrant.objects.order_by("pk").values_list(
                "pk", "user_id", "role", "region_id", "unit_id"
            )
        ),
        "categories": list(Category.objects.order_by("pk").values_list("pk", "code", "name")),
        "cases": list(
            Case.objects.order_by("pk").values_list("pk", "code", "status", "event_count")
        ),
    }


@pytest.mark.django_db
def test_load_demo_twice_leaves_the_same_data():
    _load()
    counts, snapshot = _table_counts(), _snapshot()
    _check_demo_cases()
    _load()
    assert _table_counts() == counts
    assert _snapshot() == snapshot


def _check_demo_cases():
    """The demo cases are in every step, spread over months, and their histories verify."""
    cases = list(Case.objects.all())
    assert len(cases) == DEMO_CASES
    statuses = {c.status for c in cases}
    assert set(Status.values) <= statuses, statuses
    reported = sorted(c.reported_at for c in cases)
    assert reported[-1] - reported[0] > dt.timedelta(days=90)
    assert reported[-1] < timezone.now()
    for case in cases:
        report = verify_chain(case)
        assert report.ok, (case.code, report)
        times = list(case.events.order_by("seq").values_list("at", flat=True))
        assert times == sorted(times), case.code
    actions = set(CaseEvent.objects.values_list("action", flat=True))
    for action in [
        "case.dispatched",
        "case.signed",
        "case.feedback",
        "case.verified",
        "case.archived",
        "case.rejected",
        "case.escalated",
        "case.followed_up",
    ]:
        assert action in actions, action
    # Some open cases are overdue; archived ones were closed after they were reported.
    now = timezone.now()
    assert any(c.is_open and c.due_at and c.due_at < now for c in cases)
    assert all(c.closed_at >= c.reported_at for c in cases if c.status == Status.ARCHIVED)
    # Cases are closed at every level, small ones by grid workers in their own grid.
    assert {"grid", "township", "county"} <= {c.closed_level for c in cases}
    # Every case has its applicant, stored encrypted.
    assert all(c.case_parties.filter(role="applicant").exists() for c in cases)


@pytest.mark.django_db
def test_demo_county_is_complete():
    output = _load(cases=0)
    county = Region.objects.get(code=demo.COUNTY_CODE)
    assert county.name == "青禾县"
    assert Region.objects.filter(level=Level.TOWNSHIP).count() >= 3
    assert Region.objects.filter(level=Level.VILLAGE).count() == 12
    grids = Region.objects.filter(level=Level.GRID)
    assert grids.count() == 40
    for grid in grids:
        assert 300 <= grid.households <= 500
        assert grid.boundary["type"] == "Polygon"
        assert grid.code.startswith(grid.parent.code) and len(grid.code) == 15
    centres = Unit.objects.filter(kind=UnitKind.CENTRE)
    assert centres.count() == 1 + 3 + 12
    assert Unit.objects.filter(kind=UnitKind.DEPARTMENT).count() == 15
    # Every role has somebody to log in as.
    assert set(RoleGrant.objects.values_list("role", flat=True)) == set(Role.values)
    disputes = Category.objects.filter(parent__code="dispute")
    assert disputes.count() == 17
    assert {"邻里纠纷", "劳动争议(含欠薪)", "村务管理纠纷"} <= set(
        disputes.values_list("name", flat=True)
    )
    assert Category.objects.filter(parent__code="request").count() >= 3
    assert Category.objects.filter(parent__code="hazard").count() >= 3
    assert DeadlineProfile.objects.filter(name__startswith="紧急").get().complete_amount == 2
    assert RoutingRule.objects.count() >= 5
    assert demo.DEMO_PASSWORD in output and "clerk_xlt" in output and "sysadmin" in output


@pytest.mark.django_db
def test_demo_logins_work_and_sysadmin_reaches_the_admin(client):
    _load(cases=0)
    assert client.login(username="clerk_xlt", password=demo.DEMO_PASSWORD)
    assert client.get("/admin/").status_code == 302  # a clerk is not staff
    client.logout()
    assert client.login(username="sysadmin", password=demo.DEMO_PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 200
    response = client.get("/admin/grids/region/", {"q": "xlt"})
    assert response.status_code == 200
    assert "兴隆台镇" in response.content.decode()


@pytest.mark.django_db
def test_the_demo_leaves_no_backlog_for_the_worker():
    """The demo's past is history: no SMS from July, nothing for a fresh worker to catch up."""
    _load(40)
    assert Job.objects.exists()  # its events did record their after-commit work
    assert not Job.objects.filter(state__in=[Job.State.PENDING, Job.State.RUNNING]).exists()
    assert not Notification.objects.filter(state=Notification.State.PENDING).exists()
    assert outbox.due(now=timezone.now() + dt.timedelta(hours=1), limit=10) == []
