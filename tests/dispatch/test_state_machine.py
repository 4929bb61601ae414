"""Property: random actions by random people never break the loop's rules.

Whatever sequence of actions any mix of staff (or the system) attempts, the case only ever
moves along the transition table, its events are numbered without gaps, replaying the events'
statuses rebuilds the case's status, and the hash chain verifies.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch import services
from dispatch.actors import LOADER, RESIDENT, routing_rule
from dispatch.events import append_event, verify_chain
from dispatch.models import Case, PendingRequest
from dispatch.services import DispatchError
from dispatch.states import TRANSITIONS, Action, Status, target_status
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at, new_case

loop = loopkit.loop  # the fixture

ACTORS = [
    "erin",
    "alice",
    "bob",
    "police",
    "justice",
    "sup_a",
    "dave",
    "county",
    "system",
    "resident",
]
# "usual" is whoever normally takes the step, so that random scripts also get deep into the
# loop instead of mostly being refused at the door.
USUAL = {
    "register": "erin",
    "reject": "alice",
    "resolve": "alice",
    "dispatch": "erin",
    "dispatch_village": "erin",
    "sign": "police",
    "return": "police",
    "escalate": "erin",
    "delegate": "erin",
    "transfer": "erin",
    "summon": "erin",
    "progress": "police",
    "feedback": "police",
    "verify_pass": "dave",
    "verify_fail": "dave",
    "extension": "police",
    "decide_extension": "dave",
    "pause": "police",
    "decide_pause": "dave",
    "resume": "dave",
    "urge": "dave",
    "flag": "dave",
    "follow_up": "sup_a",
    "reopen": "dave",
}


def _pending(case, kind):
    return PendingRequest.objects.filter(case=case, kind=kind, state="pending").first()


def _steps(tree, profile):
    """Each step: (name, call(case, actor, now)). Arguments are fixed; the actor varies."""
    return {
        "register": lambda c, a, n: services.register_case(case=c, actor=a, now=n),
        "reject": lambda c, a, n: services.reject_case(
            case=c, actor=a, reason="不属受理范围", now=n
        ),
        "resolve": lambda c, a, n: services.resolve_on_spot(
            case=c, actor=a, result="当场解答", now=n
        ),
        "dispatch": lambda c, a, n: services.dispatch_case(
            case=c,
            actor=a,
            unit=tree.police_a,
            assisting_units=[tree.justice_a],
            now=n,
            profile=c.profile or profile,
        ),
        "dispatch_village": lambda c, a, n: services.dispatch_case(
            case=c, actor=a, unit=tree.centre_a1, now=n, profile=profile
        ),
        "sign": lambda c, a, n: services.sign_case(case=c, actor=a, now=n),
        "return": lambda c, a, n: services.return_case(
            case=c, actor=a, reason="非本单位职责", now=n
        ),
        "escalate": lambda c, a, n: services.escalate_case(
            case=c, actor=a, reason="需上级处置", now=n
        ),
        "delegate": lambda c, a, n: services.delegate_case(
            case=c, actor=a, to_unit=tree.centre_a1, now=n
        ),
        "transfer": lambda c, a, n: services.transfer_case(
            case=c,
            actor=a,
            to_unit=tree.centre_b,
            region=tree.village_b1,
            reason="属河西街道",
            now=n,
        ),
        "summon": lambda c, a, n: services.summon_units(
            case=c, actor=a, units=[tree.justice_a], now=n
        ),
        "progress": lambda c, a, n: services.record_progress(case=c, actor=a, note="走访", now=n),
        "feedback": lambda c, a, n: services.submit_feedback(
            case=c, actor=a, result="已处置", now=n
        ),
        "verify_pass": lambda c, a, n: services.verify_case(case=c, actor=a, passed=True, now=n),
        "verify_fail": lambda c, a, n: services.verify_case(
            case=c, actor=a, passed=False, note="未落实", now=n
        ),
        "extension": lambda c, a, n: services.request_extension(
            case=c, actor=a, days=2, reason="等待鉴定", now=n
        ),
        "decide_extension": lambda c, a, n: services.decide_extension(
            request=_pending(c, "extension") or _none(), actor=a, approve=True, now=n
        ),
        "pause": lambda c, a, n: services.request_pause(case=c, actor=a, reason="等待判决", now=n),
        "decide_pause": lambda c, a, n: services.decide_pause(
            request=_pending(c, "pause") or _none(), actor=a, approve=True, now=n
        ),
        "resume": lambda c, a, n: services.resume_case(case=c, actor=a, now=n),
        "urge": lambda c, a, n: services.urge_case(case=c, actor=a, note="抓紧", now=n),
        "flag": lambda c, a, n: services.flag_case(
            case=c, actor=a, flagged=not c.is_flagged, now=n
        ),
        "follow_up": lambda c, a, n: services.follow_up_case(
            case=c, actor=a, satisfaction=4, now=n
        ),
        "reopen": lambda c, a, n: services.reopen_case(case=c, actor=a, reason="不满意", now=n),
    }


class _NothingToDecideError(Exception):
    pass


def _none():
    raise _NothingToDecideError


STEP_NAMES = [
    "register",
    "reject",
    "resolve",
    "dispatch",
    "dispatch_village",
    "sign",
    "return",
    "escalate",
    "delegate",
    "transfer",
    "summon",
    "progress",
    "feedback",
    "verify_pass",
    "verify_fail",
    "extension",
    "decide_extension",
    "pause",
    "decide_pause",
    "resume",
    "urge",
    "flag",
    "follow_up",
    "reopen",
]


def _check_table(case: Case) -> None:
    events = list(case.events.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].action == Action.REPORTED and events[0].to_status == Status.REPORTED
    status = events[0].to_status
    for event in events[1:]:
        assert event.from_status == status, f"event {event.seq} starts from a stale status"
        assert event.to_status in Status.values
        if event.to_status != event.from_status:
            assert event.action in TRANSITIONS, f"{event.action} changed the status"
            assert target_status(Action(event.action), event.from_status) == event.to_status
        elif event.action in TRANSITIONS:
            sources, target = TRANSITIONS[Action(event.action)]
            # A same-status event of a transition action is either a transition that keeps
            # the step (delegate, re-escalate) or an assisting unit's own sign/return.
            assert event.from_status in sources or event.data.get("role") == "assist"
        status = event.to_status
    assert status == case.status, "replaying the events does not rebuild the case's status"
    report = verify_chain(case)
    assert report.ok, report


R, G, A, P, F, D = (
    Status.REPORTED,
    Status.REGISTERED,
    Status.ASSIGNED,
    Status.IN_PROGRESS,
    Status.FEEDBACK,
    Status.ARCHIVED,
)
# Where each step usually makes sense; scripts mostly pick such steps, sometimes any step.
SENSIBLE = {
    "register": {R},
    "reject": {R},
    "resolve": {R},
    "dispatch": {G},
    "dispatch_village": {G},
    "sign": {A},
    "return": {A, P},
    "escalate": {R, G},
    "delegate": {G},
    "transfer": {G},
    "summon": {A, P},
    "progress": {A, P},
    "feedback": {P},
    "verify_pass": {F},
    "verify_fail": {F},
    "extension": {A, P},
    "decide_extension": {A, P},
    "pause": {A, P},
    "decide_pause": {A, P},
    "resume": {A, P},
    "urge": {A, P},
    "flag": {A, P},
    "follow_up": {D},
    "reopen": {D},
}


def _sensible(name: str, case: Case) -> bool:
    if case.status not in SENSIBLE[name]:
        return False
    if name in ("decide_extension", "decide_pause"):
        return case.requests.filter(state="pending", kind=name.split("_")[1]).exists()
    if name == "resume":
        return case.paused_at is not None
    if name in ("pause", "extension", "sign", "feedback"):
        return case.paused_at is None
    return True


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rnd=st.randoms(use_true_random=True), length=st.integers(min_value=5, max_value=40))
def test_random_actions_never_leave_the_table(tree, people, loop, rnd, length):
    actors = {
        "erin": people.erin,
        "alice": people.alice,
        "bob": people.bob,
        "police": loop.police,
        "justice": loop.justice,
        "sup_a": loop.sup_a,
        "dave": people.dave,
        "county": loop.county_dispatcher,
        # Neither the product nor the resident may take a member of staff's step.
        "system": routing_rule(None),
        "resident": RESIDENT,
    }
    steps = _steps(tree, loop.profile)
    case = new_case(tree, people, now=at(0, 9))
    now = at(0, 9)
    for _ in range(length):
        sensible = [n for n in STEP_NAMES if _sensible(n, case)] or STEP_NAMES
        # Mostly a step that fits the case's state, sometimes anything at all.
        name = rnd.choice(sensible if rnd.random() < 0.8 else STEP_NAMES)
        who = rnd.choice(["usual"] * 6 + ACTORS)
        now += dt.timedelta(minutes=37)
        case = Case.objects.get(pk=case.pk)
        try:
            steps[name](case, actors[USUAL[name] if who == "usual" else who], now)
        except (DispatchError, _NothingToDecideError):
            pass
        case = Case.objects.get(pk=case.pk)
        assert case.status in Status.values
        live = case.assignments.filter(status__in=["pending", "signed"])
        if case.status in (Status.ASSIGNED, Status.IN_PROGRESS):
            assert case.lead_unit_id is not None
            assert live.filter(role="lead").count() == 1
        if case.status in (Status.REPORTED, Status.REGISTERED):
            assert not live.exists() and case.lead_unit_id is None
        if case.status == Status.ARCHIVED:
            assert case.closed_at is not None and case.closed_level
            assert not live.exists()
        if case.accused_unit_id:
            assert not live.filter(unit_id=case.accused_unit_id).exists()
    _check_table(case)


def test_the_table_check_catches_a_forged_jump(tree, people, loop):
    """The property's own check fails on a history that skips a step."""
    case = new_case(tree, people)
    services.register_case(case=case, actor=people.erin, now=at(0, 9, 5))
    forged = Case.objects.get(pk=case.pk)
    # A forger appends an event with SQL-level access, past the services.
    append_event(
        case=forged,
        action=Action.ARCHIVED,
        at=at(0, 9, 6),
        actor=LOADER,
        from_status=Status.REGISTERED,
        to_status=Status.REGISTERED,
    )
    forged.save(update_fields=["event_count", "last_event_hash"])
    Case.objects.filter(pk=case.pk).update(status=Status.ARCHIVED)
    event = forged.events.get(seq=3)
    event.to_status = Status.ARCHIVED
    # Rewrite the row's hash as a forger would; the table check still catches the jump.
    from dispatch.events import _digest_of

    event.hash = _digest_of(event, forged.code)
    event.save()
    Case.objects.filter(pk=case.pk).update(last_event_hash=event.hash)
    with pytest.raises(AssertionError):
        _check_table(Case.objects.get(pk=case.pk))
