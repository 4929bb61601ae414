"""The deadline sweeper: 黄灯, 红灯 and the escalation tiers, each exactly once."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from types import SimpleNamespace

import pytest

from dispatch import services
from dispatch.models import Alert, Case, DeadlineProfile, DeadlineUnit, Notification
from dispatch.services import record_deadline_alerts
from dispatch.states import Action
from dispatch.sweeper import sweep
from dispatch.tasks import sweep_deadlines
from people.models import Role
from tests import factories as f

SH = zoneinfo.ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.usefixtures("cal2026")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=SH)


DISPATCHED = at(2026, 9, 28, 10, 0)  # Monday before National Day
SIGN_DUE = at(2026, 9, 28, 15, 30)
WARN = at(2026, 10, 12, 11, 36)
DUE = at(2026, 10, 13, 23, 59, 59, 999999)


@pytest.fixture
def world(tree, people):
    profile = DeadlineProfile.objects.create(
        name="邻里纠纷",
        sign_amount=4,
        sign_unit=DeadlineUnit.WORKING_HOURS,
        reply_amount=3,
        complete_amount=7,
        tier1_after_hours=0,
        tier2_after_hours=24,
    )
    return SimpleNamespace(
        profile=profile,
        handler=f.user("police_handler", role=Role.HANDLER, unit=tree.police_a),
        head=f.user("police_head", role=Role.LEADER, unit=tree.police_a),
        # The level above a township station is the county: dave supervises it.
        upper=people.dave,
        town_supervisor=f.user("town_sup", role=Role.SUPERVISOR, region=tree.town_a),
    )


def dispatched_case(tree, people, world, *, when=DISPATCHED):
    case = f.case(region=tree.village_a2, owner_unit=tree.centre_a, now=when)
    services.register_case(case=case, actor=people.erin, now=when)
    services.dispatch_case(
        case=case, actor=people.erin, unit=tree.police_a, profile=world.profile, now=when
    )
    case.refresh_from_db()
    return case


def events(case, action):
    return list(case.events.filter(action=action).order_by("seq"))


def inbox(user):
    return list(Notification.objects.filter(recipient=user, kind__startswith="deadline_"))


def test_the_columns_the_sweeper_reads(tree, people, world):
    case = dispatched_case(tree, people, world)
    assert case.sign_due_at == SIGN_DUE
    assert case.due_at == DUE
    assert abs(case.warn_at - WARN) < dt.timedelta(seconds=1)


def test_nothing_before_the_first_deadline(tree, people, world):
    case = dispatched_case(tree, people, world)
    assert sweep(now=at(2026, 9, 28, 15, 29)) == {"cases": 0, "alerts": 0}
    assert not case.alerts.exists()


def test_unsigned_task_is_red_once(tree, people, world):
    case = dispatched_case(tree, people, world)
    sweep(now=at(2026, 9, 28, 15, 31))
    sweep(now=at(2026, 9, 28, 15, 32))
    [overdue] = events(case, Action.OVERDUE)
    assert overdue.data["clock"] == "sign"
    [message] = inbox(world.handler)
    assert message.kind == "deadline_red" and case.code in message.title
    assert "签收" in message.body


def test_yellow_red_and_tiers_each_happen_once(tree, people, world):
    case = dispatched_case(tree, people, world)
    services.sign_case(case=case, actor=world.handler, now=at(2026, 9, 28, 11, 0))

    sweep(now=at(2026, 10, 12, 11, 0))  # before 80%
    assert not events(case, Action.WARNED)

    for minute in range(3):  # three beats in a row
        sweep(now=at(2026, 10, 12, 12, minute))
    [warned] = events(case, Action.WARNED)
    assert warned.data["stage"] == "yellow"
    assert [n.kind for n in inbox(world.handler)].count("deadline_yellow") == 1

    # The first instant of the day after the deadline: 红灯 and tier 1 (after 0 hours).
    first_late_moment = DUE + dt.timedelta(microseconds=1)
    sweep(now=first_late_moment)
    sweep(now=first_late_moment + dt.timedelta(minutes=1))
    complete_overdue = [e for e in events(case, Action.OVERDUE) if e.data["clock"] == "complete"]
    assert len(complete_overdue) == 1
    [tier1] = events(case, Action.ESCALATED_OVERDUE)
    assert tier1.data["stage"] == "tier1"
    assert [n.kind for n in inbox(world.head)] == ["deadline_tier1"]
    assert inbox(world.upper) == []

    # 24 hours later: tier 2 reaches the county supervisor, once.
    sweep(now=first_late_moment + dt.timedelta(hours=24))
    sweep(now=first_late_moment + dt.timedelta(hours=48))
    stages = [e.data["stage"] for e in events(case, Action.ESCALATED_OVERDUE)]
    assert stages == ["tier1", "tier2"]
    assert [n.kind for n in inbox(world.upper)] == ["deadline_tier2"]
    assert inbox(world.town_supervisor) == []
    assert set(case.alerts.values_list("clock", "stage")) == {
        ("reply", "red"),
        ("complete", "yellow"),
        ("complete", "red"),
        ("complete", "tier1"),
        ("complete", "tier2"),
    }


def test_a_stage_another_sweeper_recorded_is_not_repeated(tree, people, world):
    case = dispatched_case(tree, people, world)
    late = DUE + dt.timedelta(minutes=5)
    # Another sweeper got the red alert in first (its row is committed, its event too).
    Alert.objects.create(case=case, clock="complete", stage="red", due_at=DUE, created_at=late)
    assert record_deadline_alerts(case_ids=[case.pk], now=late) == 3  # sign red, reply red, tier 1
    assert record_deadline_alerts(case_ids=[case.pk], now=late) == 0
    complete = [e for e in events(case, Action.OVERDUE) if e.data["clock"] == "complete"]
    assert complete == []
    assert len(events(case, Action.ESCALATED_OVERDUE)) == 1


def test_a_paused_case_is_not_swept(tree, people, world):
    case = dispatched_case(tree, people, world)
    services.sign_case(case=case, actor=world.handler, now=at(2026, 9, 28, 11, 0))
    request = services.request_pause(
        case=case, actor=world.handler, reason="等待法院判决", now=at(2026, 9, 29, 9, 0)
    )
    services.decide_pause(
        request=request, actor=people.dave, approve=True, now=at(2026, 9, 29, 10, 0)
    )
    assert sweep(now=at(2026, 10, 20, 9, 0))["alerts"] == 0
    assert not case.alerts.exists()


def test_an_extension_gives_the_new_deadline_its_own_alerts(tree, people, world):
    case = dispatched_case(tree, people, world)
    services.sign_case(case=case, actor=world.handler, now=at(2026, 9, 28, 11, 0))
    sweep(now=at(2026, 10, 12, 12, 0))
    assert len(events(case, Action.WARNED)) == 1
    request = services.request_extension(
        case=case, actor=world.handler, days=3, reason="需要现场复测", now=at(2026, 10, 12, 13, 0)
    )
    services.decide_extension(
        request=request, actor=people.dave, approve=True, now=at(2026, 10, 12, 14, 0)
    )
    case.refresh_from_db()
    assert case.due_at == at(2026, 10, 16, 23, 59, 59, 999999)
    sweep(now=at(2026, 10, 13, 23, 59))
    sweep(now=at(2026, 10, 14, 0, 1))  # the old deadline passes: nothing, it was extended
    assert not [e for e in events(case, Action.OVERDUE) if e.data["clock"] == "complete"]
    sweep(now=at(2026, 10, 16, 23, 0))
    warned = events(case, Action.WARNED)
    assert len(warned) == 2 and warned[1].data["due_at"] != warned[0].data["due_at"]


def test_batches_cover_every_case(tree, people, world):
    cases = [dispatched_case(tree, people, world) for _ in range(5)]
    counts = sweep(now=at(2026, 9, 28, 16, 0), batch_size=2)
    assert counts == {"cases": 5, "alerts": 5}
    assert all(c.alerts.count() == 1 for c in cases)


def test_the_task_takes_the_clock_as_text(tree, people, world):
    case = dispatched_case(tree, people, world)
    result = sweep_deadlines.delay(at(2026, 9, 28, 16, 0).isoformat()).get()
    assert result == {"cases": 1, "alerts": 1}
    assert case.alerts.get().clock == "sign"
    with pytest.raises(ValueError):
        sweep_deadlines.delay("2026-09-28T16:00:00").get()


def test_finished_clocks_cost_the_sweep_nothing(tree, people, world, django_assert_num_queries):
    dispatched_case(tree, people, world)
    much_later = DUE + dt.timedelta(days=3)
    assert sweep(now=much_later)["alerts"] == 5  # sign red, reply red, red, tier1, tier2
    # Every clock is finished for its deadline: nothing ahead, one probe of an index.
    assert Case.objects.get().next_alert_at is None
    with django_assert_num_queries(1):
        assert sweep(now=much_later + dt.timedelta(minutes=1)) == {"cases": 0, "alerts": 0}


def test_a_case_with_nothing_new_costs_the_sweep_nothing(tree, people, world, clock):
    case = dispatched_case(tree, people, world)
    sweep(now=WARN + dt.timedelta(minutes=1))  # the yellow light
    case.refresh_from_db()
    assert case.next_alert_at == DUE  # the next thing is the red light, not before
    assert sweep(now=WARN + dt.timedelta(hours=2)) == {"cases": 0, "alerts": 0}


def test_two_sweeps_never_overlap(tree, people, world):
    from django.core.cache import cache

    from dispatch import sweeper

    dispatched_case(tree, people, world)
    cache.add(sweeper.LEASE_KEY, "another sweep", timeout=60)  # a pass still running
    assert sweep(now=DUE + dt.timedelta(days=3))["skipped"] == 1
    assert not Alert.objects.exists()
    cache.delete(sweeper.LEASE_KEY)
    assert sweep(now=DUE + dt.timedelta(days=3))["alerts"] == 5


def test_the_beat_schedule_names_real_tasks():
    from zongzhi.celery import app

    app.loader.import_default_modules()
    names = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert {
        "dispatch.tasks.sweep_deadlines",
        "dispatch.tasks.relay_jobs",
    } <= names
    assert names <= set(app.tasks)
