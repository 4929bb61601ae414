"""DOMAIN.md's example: ammonia near a village cold store, closed the same morning."""

from __future__ import annotations

from dispatch import services
from dispatch.events import verify_chain
from dispatch.models import Assignment, Case, Notification
from dispatch.states import Action, Channel, Grade, Status
from people.models import Role
from tests import factories as f
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at

loop = loopkit.loop  # the fixture


def test_ammonia_leak_runs_the_whole_loop_on_the_public_timeline(tree, people, loop):
    grid_worker = f.user("gridder", role=Role.GRID_WORKER, region=tree.grid_a1)
    hazard = f.category("work_safety", "安全生产隐患", "hazard_root", "安全隐患", kind="hazard")

    # 06:10 the grid leader reports with a photo and the location (网格上报).
    case, created = services.create_case(
        actor=grid_worker,
        channel=Channel.GRID,
        category=hazard,
        grade=Grade.EMERGENCY,
        summary="村冷库附近有明显氨气味",
        region=tree.grid_a1,
        owner_unit=tree.centre_a,
        latitude="38.041200",
        longitude="114.514300",
        now=at(0, 6, 10),
    )
    assert created and case.status == Status.REPORTED

    # The township registers it and, an emergency being the county's to close, reports it up.
    services.register_case(case=case, actor=people.erin, now=at(0, 6, 13))
    services.escalate_case(
        case=case, actor=people.erin, reason="疑似氨泄漏，需县级部门处置", now=at(0, 6, 15)
    )
    case.refresh_from_db()
    assert case.owner_unit == tree.county_centre and case.owner_level == "county"

    # The county centre dispatches the work-safety bureau (lead) and environment bureau (assist).
    services.dispatch_case(
        case=case,
        actor=loop.county_dispatcher,
        unit=loop.safety_unit,
        assisting_units=[loop.ecology_unit],
        profile=loop.profile,
        note="立即到场处置",
        now=at(0, 6, 20),
        seen_seq=case.event_count,
    )
    tasks = {a.unit_id: a.role for a in Assignment.objects.filter(case=case)}
    assert tasks == {loop.safety_unit.pk: "lead", loop.ecology_unit.pk: "assist"}
    inboxes = set(
        Notification.objects.filter(case=case, kind="assigned").values_list(
            "recipient__username", flat=True
        )
    )
    assert inboxes == {"safety", "ecology"}

    services.sign_case(case=case, actor=loop.safety, now=at(0, 6, 31))
    services.sign_case(case=case, actor=loop.ecology, now=at(0, 6, 35))
    services.record_progress(
        case=case, actor=loop.ecology, note="现场检测氨浓度已超标", now=at(0, 7, 0)
    )

    # 07:45 the bureau reports a worn part replaced.
    services.submit_feedback(
        case=case, actor=loop.safety, result="更换冷库氨阀门磨损密封件，复测正常", now=at(0, 7, 45)
    )
    services.verify_case(
        case=case,
        actor=people.dave,
        passed=True,
        carried_out=True,
        note="现场复核无异味",
        now=at(0, 8, 5),
        seen_seq=Case.objects.get(pk=case.pk).event_count,
    )

    case.refresh_from_db()
    assert case.status == Status.ARCHIVED
    assert case.closed_at == at(0, 8, 5)
    assert case.closed_level == "county"
    assert case.closed_on_time is True
    assert case.carried_out is True

    public = list(case.events.filter(is_public=True).order_by("seq"))
    assert [e.action for e in public] == [
        Action.REPORTED,
        Action.REGISTERED,
        Action.ESCALATED,
        Action.DISPATCHED,
        Action.SIGNED,
        Action.FEEDBACK,
        Action.VERIFIED,
        Action.ARCHIVED,
    ]
    assert public[0].at == at(0, 6, 10)
    assert public[5].at == at(0, 7, 45)
    assert [e.public_unit_name for e in public][-3:] == [
        "县应急管理局",
        "青禾县综治中心",
        "青禾县综治中心",
    ]
    # Internal steps (the assisting unit's signature, its progress note) stay off the timeline.
    internal = set(case.events.filter(is_public=False).values_list("action", flat=True))
    assert internal == {Action.SIGNED, Action.PROGRESS}
    assert verify_chain(case).ok
