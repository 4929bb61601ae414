"""``manage.py generate_cases``: bulk synthetic cases that the rest of the product accepts."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db.models import Count, F

from dispatch.codes import is_valid_code
from dispatch.events import verify_chain
from dispatch.models import Assignment, Case, CaseCodeCounter, CaseEvent
from dispatch.services import create_case
from dispatch.states import Status
from grids.models import Region, Unit
from people.models import User

N = 300


@pytest.fixture
def generated(db):
    out = io.StringIO()
    call_command(
        "generate_cases",
        "--cases",
        str(N),
        "--batch-size",
        "70",
        "--seed",
        "3",
        "--days",
        "120",
        stdout=out,
    )
    return out.getvalue()


def test_generates_valid_unique_cases_with_chained_events(generated):
    assert "件/秒" in generated
    cases = list(Case.objects.all())
    assert len(cases) == N
    codes = [c.code for c in cases]
    assert len(set(codes)) == N and all(is_valid_code(code) for code in codes)
    assert all(code.startswith("139901") for code in codes)
    tokens = {c.tracking_token for c in cases}
    assert len(tokens) == N and min(len(t) for t in tokens) >= 22
    # Every case has at least its public 问题上报 event, and every chain verifies.
    assert not Case.objects.annotate(n=Count("events")).filter(n=0).exists()
    assert CaseEvent.objects.filter(seq=1, action="case.reported", is_public=True).count() == N
    for case in cases:
        report = verify_chain(case)
        assert report.ok, (case.code, report)


def test_distribution_covers_the_loop(generated):
    by_status = dict(Case.objects.values_list("status").annotate(n=Count("id")))
    assert by_status.get(Status.ARCHIVED, 0) > N * 0.4
    open_statuses = {Status.REGISTERED, Status.ASSIGNED, Status.IN_PROGRESS, Status.FEEDBACK}
    assert sum(by_status.get(s, 0) for s in open_statuses) > 0
    assert Case.objects.values("category").distinct().count() >= 10
    assert Case.objects.values("channel").distinct().count() >= 4
    assert Case.objects.values("region").distinct().count() >= 20
    archived = Case.objects.filter(status=Status.ARCHIVED)
    assert not archived.filter(closed_at__isnull=True).exists()
    assert not archived.filter(closed_at__lt=F("feedback_at")).exists()
    # Leads sit inside their owner centre's subtree (a township reports a county bureau's case
    # up first), as dispatch.services requires.
    dispatched = Case.objects.filter(lead_unit__isnull=False).select_related(
        "lead_unit__region", "owner_unit__region"
    )
    assert all(c.lead_unit.region.path.startswith(c.owner_unit.region.path) for c in dispatched)
    # Small matters settled by grid workers count as closed at grid level.
    assert archived.filter(closed_level="grid", channel="grid").exists()
    escalated = Case.objects.filter(escalation_count=1)
    assert escalated.exists()
    assert CaseEvent.objects.filter(action="case.escalated").count() == escalated.count()
    # Dispatched cases have their lead unit's task; the timeline is ordered.
    assert Assignment.objects.count() == Case.objects.filter(assigned_at__isnull=False).count()
    assert not Case.objects.filter(registered_at__lt=F("reported_at")).exists()


def test_later_codes_do_not_collide(generated):
    newest = Case.objects.order_by("-reported_at").first()
    prefix = newest.code[:14]
    taken = Case.objects.filter(code__startswith=prefix).count()
    assert CaseCodeCounter.objects.get(prefix=prefix).last >= taken
    region = Region.objects.get(code="139901101201001")
    case, created = create_case(
        actor=User.objects.get(username="clerk_xlt"),
        channel="window",
        category=newest.category,
        summary="新诉求",
        region=region,
        owner_unit=Unit.objects.get(name="兴隆台镇综治中心"),
        now=newest.reported_at,
    )
    assert created and case.code[:14] == prefix
    assert Case.objects.filter(code=case.code).count() == 1


def test_runs_twice_and_adds(generated):
    call_command("generate_cases", "--cases", "25", "--seed", "4", stdout=io.StringIO())
    assert Case.objects.count() == N + 25
    assert Case.objects.values("code").distinct().count() == N + 25


def test_refuses_bad_arguments(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("generate_cases", "--cases", "0", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
def test_overlapped_writer_thread_on_postgresql():
    """Outside a transaction, PostgreSQL batches are copied by a writer thread."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the writer thread is used on PostgreSQL only")
    out = io.StringIO()
    call_command(
        "generate_cases",
        "--cases",
        "150",
        "--batch-size",
        "40",
        "--seed",
        "5",
        "-v",
        "2",
        stdout=out,
    )
    assert out.getvalue().count("cases/s") == 4  # one line per batch
    assert Case.objects.count() == 150
    assert Case.objects.values("code").distinct().count() == 150
    assert all(verify_chain(case).ok for case in Case.objects.all())
