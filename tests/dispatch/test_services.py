"""The transitions of the closed loop, called as the pages and tasks call them."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch import services
from dispatch.events import verify_chain
from dispatch.models import Assignment, Case, Notification, PendingRequest
from dispatch.selectors import cases_visible_to, handler_inbox
from dispatch.services import DispatchError, StaleCaseError
from dispatch.states import Action, Grade, Status
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at, in_progress, new_case, registered

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


def test_dispatch_creates_lead_and_assisting_tasks_with_deadlines(tree, people, loop):
    case = registered(tree, people)
    services.dispatch_case(
        case=case,
        actor=people.erin,
        unit=tree.police_a,
        assisting_units=[tree.justice_a],
        profile=loop.profile,
        now=at(0, 9, 30),
    )
    case.refresh_from_db()
    assert case.status == Status.ASSIGNED
    assert case.lead_unit == tree.police_a
    assert case.due_at is not None and case.due_at > at(0, 9, 30)
    assert case.sign_due_at is not None and case.warn_at < case.due_at
    roles = dict(Assignment.objects.filter(case=case).values_list("unit__name", "role"))
    assert roles == {"兴隆台派出所": "lead", "兴隆台司法所": "assist"}
    assert Notification.objects.filter(case=case, recipient=loop.police).exists()


def test_assisting_signature_does_not_move_the_step(tree, people, loop):
    case = registered(tree, people)
    services.dispatch_case(
        case=case,
        actor=people.erin,
        unit=tree.police_a,
        assisting_units=[tree.justice_a],
        profile=loop.profile,
        now=at(0, 9, 30),
    )
    services.sign_case(case=case, actor=loop.justice, now=at(0, 9, 40))
    case.refresh_from_db()
    assert case.status == Status.ASSIGNED
    services.sign_case(case=case, actor=loop.police, now=at(0, 9, 50))
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS and case.signed_at == at(0, 9, 50)
    with pytest.raises(DispatchError, match="主办单位"):
        services.submit_feedback(case=case, actor=loop.justice, result="已协助")


def test_accused_unit_cannot_be_dispatched_to(tree, people, loop):
    case = registered(tree, people, accused_unit=tree.police_a, summary="投诉派出所出警不及时")
    with pytest.raises(DispatchError, match="被投诉单位"):
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile
        )
    with pytest.raises(DispatchError, match="被投诉单位"):
        services.dispatch_case(
            case=case,
            actor=people.erin,
            unit=tree.justice_a,
            assisting_units=[tree.police_a],
            profile=loop.profile,
        )
    case.refresh_from_db()
    assert case.status == Status.REGISTERED and not case.assignments.exists()


def test_dispatch_refuses_units_above_the_centre_or_elsewhere(tree, people, loop):
    case = registered(tree, people)
    with pytest.raises(DispatchError, match="上报"):
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.housing, profile=loop.profile
        )
    other = registered(tree, people, region=tree.village_a2)
    with pytest.raises(DispatchError, match="属地"):
        services.dispatch_case(
            case=other, actor=people.erin, unit=tree.centre_a1, profile=loop.profile
        )


def test_only_staff_of_the_owner_centre_may_dispatch(tree, people, loop):
    case = registered(tree, people)
    for outsider in (people.bob, people.carol, loop.police):
        with pytest.raises(DispatchError, match="权限"):
            services.dispatch_case(
                case=case, actor=outsider, unit=tree.police_a, profile=loop.profile
            )


def test_second_dispatcher_gets_a_clear_message(tree, people, loop):
    case = registered(tree, people)
    seen = case.event_count
    services.dispatch_case(
        case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile, seen_seq=seen
    )
    with pytest.raises(StaleCaseError, match="已有新的办理记录（当前为“任务指派”）"):
        services.dispatch_case(
            case=case,
            actor=loop.county_dispatcher,
            unit=tree.justice_a,
            profile=loop.profile,
            seen_seq=seen,
        )
    assert Assignment.objects.filter(case=case).count() == 1


def test_handler_of_another_unit_cannot_sign(tree, people, loop):
    case = registered(tree, people)
    services.dispatch_case(case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile)
    with pytest.raises(DispatchError, match="权限"):
        services.sign_case(case=case, actor=loop.justice)


def test_return_goes_back_to_the_dispatcher_and_redispatch_keeps_the_deadline(tree, people, loop):
    case = in_progress(tree, people, loop, assisting=[tree.justice_a])
    due = case.due_at
    services.return_case(case=case, actor=loop.police, reason="属于司法所职责", now=at(0, 11))
    case.refresh_from_db()
    assert case.status == Status.REGISTERED and case.lead_unit is None
    assert not case.assignments.filter(status__in=["pending", "signed"]).exists()
    with pytest.raises(DispatchError, match="理由"):
        services.return_case(case=case, actor=loop.police, reason="  ")
    services.dispatch_case(case=case, actor=people.erin, unit=tree.justice_a, now=at(0, 11, 30))
    case.refresh_from_db()
    assert case.status == Status.ASSIGNED and case.lead_unit == tree.justice_a
    assert case.due_at == due


def test_escalate_delegate_and_transfer_move_the_owner(tree, people, loop):
    case = registered(tree, people, owner_unit=tree.centre_a1)
    services.escalate_case(case=case, actor=loop.village_disp, reason="村级无法调处", now=at(0, 10))
    case.refresh_from_db()
    assert (case.owner_unit, case.owner_level, case.escalation_count) == (
        tree.centre_a,
        "township",
        1,
    )
    services.delegate_case(
        case=case, actor=people.erin, to_unit=tree.centre_a1, note="请村里先行调解", now=at(0, 11)
    )
    case.refresh_from_db()
    assert case.owner_unit == tree.centre_a1 and case.status == Status.REGISTERED
    with pytest.raises(DispatchError, match="下级综治中心"):
        services.delegate_case(case=case, actor=people.erin, to_unit=tree.centre_b)
    with pytest.raises(DispatchError, match="请同时更正事发地"):
        services.transfer_case(
            case=case, actor=loop.village_disp, to_unit=tree.centre_b, reason="事发地实为河西街道"
        )
    services.transfer_case(
        case=case,
        actor=loop.village_disp,
        to_unit=tree.centre_b,
        reason="事发地实为河西街道",
        region=tree.village_b1,
        now=at(0, 12),
    )
    case.refresh_from_db()
    assert case.owner_unit == tree.centre_b and case.region == tree.village_b1
    # Township B's dispatcher can now dispatch it to its own units; township A no longer sees it.
    assert case not in cases_visible_to(people.alice)
    county = registered(tree, people, owner_unit=tree.county_centre, registrar=people.dave)
    with pytest.raises(DispatchError, match="最高层级"):
        services.escalate_case(case=county, actor=people.dave, reason="无")


def test_grade_rule_a_village_cannot_take_on_a_major_case(tree, people, loop):
    case = registered(tree, people, owner_unit=tree.centre_a1, grade=Grade.MAJOR)
    with pytest.raises(DispatchError, match="重大案件须由乡镇/街道及以上层级结案"):
        services.dispatch_case(
            case=case,
            actor=loop.village_disp,
            unit=tree.centre_a1,
            profile=loop.profile,
            now=at(0, 9, 30),
        )
    case.refresh_from_db()
    assert case.status == Status.REGISTERED and not case.assignments.exists()
    services.escalate_case(
        case=case, actor=loop.village_disp, reason="重大案件须乡镇处置", now=at(0, 10)
    )
    services.dispatch_case(
        case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile, now=at(0, 10, 5)
    )
    case.refresh_from_db()
    assert case.status == Status.ASSIGNED and case.owner_level == "township"


def test_grade_rule_township_may_archive_a_major_case(tree, people, loop):
    case = in_progress(tree, people, loop, grade=Grade.MAJOR)
    services.submit_feedback(case=case, actor=loop.police, result="已处置", now=at(0, 15))
    services.verify_case(case=case, actor=loop.sup_a, passed=True, now=at(0, 16))
    case.refresh_from_db()
    assert case.status == Status.ARCHIVED and case.closed_level == "township"
    with pytest.raises(DispatchError, match="请上报上级中心"):
        in_progress(tree, people, loop, grade=Grade.EMERGENCY)


def test_failed_verification_sends_the_case_back_for_rework(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.submit_feedback(case=case, actor=loop.police, result="已劝导", now=at(0, 15))
    with pytest.raises(DispatchError, match="返工意见"):
        services.verify_case(case=case, actor=loop.sup_a, passed=False)
    services.verify_case(case=case, actor=loop.sup_a, passed=False, note="噪音仍在", now=at(0, 16))
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS and case.rework_count == 1
    assert case.assignments.get(role="lead").status == "signed"
    services.submit_feedback(case=case, actor=loop.police, result="已责令停工", now=at(1, 10))
    services.verify_case(case=case, actor=loop.sup_a, passed=True, now=at(1, 11))
    case.refresh_from_db()
    assert case.status == Status.ARCHIVED


def test_handlers_cannot_verify_their_own_feedback(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.submit_feedback(case=case, actor=loop.police, result="已处置")
    with pytest.raises(DispatchError, match="权限"):
        services.verify_case(case=case, actor=loop.police, passed=True)
    with pytest.raises(DispatchError, match="权限"):
        services.verify_case(case=case, actor=people.erin, passed=True)  # a dispatcher


def test_extension_once_and_only_before_the_deadline(tree, people, loop):
    case = in_progress(tree, people, loop)
    due = case.due_at
    request = services.request_extension(
        case=case, actor=loop.police, days=3, reason="需等待鉴定结果", now=at(1, 9)
    )
    with pytest.raises(DispatchError, match="待审批"):
        services.request_extension(
            case=case, actor=loop.police, days=2, reason="再等", now=at(1, 9)
        )
    services.decide_extension(request=request, actor=loop.sup_a, approve=True, now=at(1, 10))
    case.refresh_from_db()
    assert case.extension_count == 1 and case.due_at > due
    with pytest.raises(DispatchError, match="不能再申请延期"):
        services.request_extension(
            case=case, actor=loop.police, days=1, reason="还要等", now=at(1, 11)
        )
    with pytest.raises(StaleCaseError):
        services.decide_extension(request=request, actor=loop.sup_a, approve=True)
    late = in_progress(tree, people, loop)
    with pytest.raises(DispatchError, match="已超过办结期限"):
        services.request_extension(
            case=late,
            actor=loop.police,
            days=1,
            reason="晚了",
            now=late.due_at + dt.timedelta(minutes=1),
        )


def test_denied_extension_keeps_the_deadline(tree, people, loop):
    case = in_progress(tree, people, loop)
    request = services.request_extension(
        case=case, actor=loop.police, days=3, reason="等待", now=at(1, 9)
    )
    services.decide_extension(
        request=request, actor=loop.sup_a, approve=False, note="理由不充分", now=at(1, 10)
    )
    after = type(case).objects.get(pk=case.pk)
    assert after.due_at == case.due_at and after.extension_count == 0
    assert PendingRequest.objects.get(pk=request.pk).state == "denied"


def test_pause_stops_the_clock(tree, people, loop):
    case = in_progress(tree, people, loop)
    due = case.due_at
    request = services.request_pause(
        case=case, actor=loop.police, reason="等待法院判决", now=at(1, 9)
    )
    services.decide_pause(request=request, actor=loop.sup_a, approve=True, now=at(1, 10))
    case.refresh_from_db()
    assert case.is_paused
    with pytest.raises(DispatchError, match="中止"):
        services.submit_feedback(case=case, actor=loop.police, result="x")
    # Paused for a whole working week (Tuesday 10:00 to the next Tuesday 10:00).
    services.resume_case(case=case, actor=loop.sup_a, now=at(8, 10))
    case.refresh_from_db()
    assert not case.is_paused
    assert case.paused_seconds == 7 * 24 * 3600
    assert case.due_at >= due + dt.timedelta(days=7)
    resumed = case.events.get(action=Action.RESUMED)
    assert resumed.is_public


def test_urging_lands_in_the_handlers_inbox(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.urge_case(case=case, actor=people.dave, note="请今日内办结", now=at(0, 12))
    note = Notification.objects.get(case=case, kind="urged")
    assert note.recipient == loop.police and note.body == "请今日内办结"
    inbox = handler_inbox(loop.police, now=at(0, 12, 5))
    assert [t.case_id for t in inbox["urged"]] == [case.pk]
    with pytest.raises(DispatchError, match="权限"):
        services.urge_case(case=case, actor=people.bob, note="催")
    # A unit summoned after the urging was not urged: its task is simply being handled.
    services.summon_units(case=case, actor=people.erin, units=[tree.justice_a], now=at(0, 13))
    services.sign_case(case=case, actor=loop.justice, now=at(0, 13, 10))
    inbox = handler_inbox(loop.justice, now=at(0, 13, 15))
    assert [t.case_id for t in inbox["in_progress"]] == [case.pk]
    assert not inbox["urged"].exists()


def test_follow_up_and_reopen_once_within_fifteen_days(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.submit_feedback(case=case, actor=loop.police, result="已处置", now=at(0, 15))
    services.verify_case(case=case, actor=loop.sup_a, passed=True, now=at(0, 16))
    services.follow_up_case(
        case=case,
        actor=loop.sup_a,
        satisfaction=2,
        carried_out=False,
        note="群众反映问题仍在",
        now=at(1, 10),
    )
    case.refresh_from_db()
    assert case.followup_satisfaction == 2 and case.carried_out is False
    services.reopen_case(case=case, actor=loop.sup_a, reason="不满意", now=at(2, 10))
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS and case.reopen_count == 1
    assert case.lead_unit == tree.police_a and case.closed_at is None
    services.submit_feedback(case=case, actor=loop.police, result="再次处置", now=at(3, 10))
    services.verify_case(case=case, actor=loop.sup_a, passed=True, now=at(3, 11))
    with pytest.raises(DispatchError, match="已重办过一次"):
        services.reopen_case(case=case, actor=loop.sup_a, reason="还是不满意", now=at(4, 10))
    other = in_progress(tree, people, loop)
    services.submit_feedback(case=other, actor=loop.police, result="已处置", now=at(0, 15))
    services.verify_case(case=other, actor=loop.sup_a, passed=True, now=at(0, 16))
    with pytest.raises(DispatchError, match="15天"):
        services.reopen_case(case=other, actor=loop.sup_a, reason="晚了", now=at(16, 10))


def test_resolve_on_spot_runs_every_step_in_one_go(tree, people, loop):
    case = new_case(tree, people, now=at(0, 9))
    services.resolve_on_spot(
        case=case, actor=people.alice, result="当场解释政策，群众认可", now=at(0, 9, 5)
    )
    case.refresh_from_db()
    assert case.status == Status.ARCHIVED and case.closed_level == "township"
    assert case.closed_on_time is True and case.lead_unit == tree.centre_a
    assert list(case.events.order_by("seq").values_list("action", flat=True)) == [
        Action.REPORTED,
        Action.REGISTERED,
        Action.DISPATCHED,
        Action.SIGNED,
        Action.FEEDBACK,
        Action.VERIFIED,
        Action.ARCHIVED,
    ]
    assert verify_chain(case).ok
    with pytest.raises(DispatchError, match="权限"):
        services.resolve_on_spot(case=new_case(tree, people), actor=people.bob, result="x")


def test_resolve_on_spot_respects_the_grade_rule(tree, people, loop):
    case = new_case(tree, people, grade=Grade.EMERGENCY)
    with pytest.raises(DispatchError, match="县/区"):
        services.resolve_on_spot(case=case, actor=people.alice, result="x")
    case.refresh_from_db()
    assert case.status == Status.REPORTED and case.event_count == 1


def test_summon_adds_several_assisting_departments(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.summon_units(
        case=case,
        actor=people.erin,
        units=[tree.justice_a, tree.centre_a1],
        note="吹哨报到",
        now=at(0, 12),
    )
    live = set(case.assignments.filter(status="pending").values_list("unit_id", flat=True))
    assert live == {tree.justice_a.pk, tree.centre_a1.pk}
    assert case.events.filter(action=Action.SUMMONED).count() == 1
    with pytest.raises(DispatchError, match="均已在办理"):
        services.summon_units(case=case, actor=people.erin, units=[tree.justice_a])


def test_flag_marks_a_key_case(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.flag_case(case=case, actor=people.dave, note="重点关注")
    case.refresh_from_db()
    assert case.is_flagged
    with pytest.raises(DispatchError):
        services.flag_case(case=case, actor=people.dave)


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_racing_on_postgresql_one_wins(tree, people, loop):
    """Real concurrency: two threads, two connections, one row lock."""
    import threading

    from django.db import connection, connections

    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT ... FOR UPDATE) need PostgreSQL")
    case = registered(tree, people)
    seen = Case.objects.get(pk=case.pk).event_count  # both opened the page after routing ran
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def attempt(name, actor, unit):
        try:
            barrier.wait(timeout=10)
            services.dispatch_case(
                case=Case.objects.get(pk=case.pk),
                actor=actor,
                unit=unit,
                profile=loop.profile,
                seen_seq=seen,
            )
            outcomes[name] = "won"
        except StaleCaseError as exc:
            outcomes[name] = exc.message
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=attempt, args=("erin", people.erin, tree.police_a)),
        threading.Thread(target=attempt, args=("county", loop.county_dispatcher, tree.justice_a)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert list(outcomes.values()).count("won") == 1
    loser = next(v for v in outcomes.values() if v != "won")
    assert loser == "案件在您打开页面后已有新的办理记录（当前为“任务指派”），请查看后重新操作"
    assert Assignment.objects.filter(case=case).count() == 1
    assert verify_chain(Case.objects.get(pk=case.pk)).ok


def test_a_grid_worker_resolves_a_small_matter_in_the_grid(tree, people, loop):
    from people.models import Role
    from tests import factories as f

    worker = f.user("grid_a1", role=Role.GRID_WORKER, region=tree.grid_a1)
    case = new_case(tree, people, region=tree.grid_a1, channel="grid", actor=worker)
    services.resolve_on_spot(case=case, actor=worker, result="劝导占道摊贩自行清理", now=at(0, 10))
    case.refresh_from_db()
    assert case.status == Status.ARCHIVED and case.closed_level == "grid"
    # Not in another grid, and not a case whose grade the grid may not close.
    elsewhere = new_case(tree, people, region=tree.village_a1)
    with pytest.raises(DispatchError, match="权限"):
        services.resolve_on_spot(case=elsewhere, actor=worker, result="x")
    bigger = new_case(tree, people, region=tree.grid_a1, grade=Grade.SIGNIFICANT)
    with pytest.raises(DispatchError, match="村/社区及以上"):
        services.resolve_on_spot(case=bigger, actor=worker, result="x")
