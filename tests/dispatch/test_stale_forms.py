"""Every action on the case page refuses a form drawn before the case's last event.

Two people have the same case open; one acts (here: a supervisor urges it); the other's form
is now stale and is refused with a clear message, changing nothing, and the redrawn form is
accepted. The table below must name every action the case page offers.
"""

from __future__ import annotations

import pytest

from dispatch import services, views
from dispatch.models import Case
from tests.dispatch import loopkit
from tests.dispatch.loopkit import in_progress, new_case, registered

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture

STALE = "案件在您打开页面后已有新的办理记录"


def _feedback(tree, people, loop):
    case = in_progress(tree, people, loop)
    return services.submit_feedback(case=case, actor=loop.police, result="已处置")


def _archived(tree, people, loop):
    case = _feedback(tree, people, loop)
    return services.verify_case(case=case, actor=loop.sup_a, passed=True)


def _followed_up(tree, people, loop):
    case = _archived(tree, people, loop)
    return services.follow_up_case(case=case, actor=loop.sup_a, satisfaction=4)


def _paused(tree, people, loop):
    case = in_progress(tree, people, loop)
    request = services.request_pause(case=case, actor=loop.police, reason="等待法院判决")
    return services.decide_pause(request=request, actor=loop.sup_a, approve=True)


def _with_extension_request(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.request_extension(case=case, actor=loop.police, days=2, reason="等待鉴定")
    return case


def _dispatched(tree, people, loop):
    case = registered(tree, people)
    return services.dispatch_case(
        case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile
    )


# op slug -> (build the case, who acts, the form's fields)
SCENARIOS = {
    "register": (lambda t, p, lp: new_case(t, p), "erin", {"grade": "ordinary"}),
    "resolve": (lambda t, p, lp: new_case(t, p), "alice", {"result": "当场解答"}),
    "reject": (lambda t, p, lp: new_case(t, p), "alice", {"reason": "不属受理范围"}),
    "dispatch": (lambda t, p, lp: registered(t, p), "erin", {"unit": "police_a", "profile": 1}),
    "summon": (in_progress, "erin", {"units": "justice_a"}),
    "escalate": (lambda t, p, lp: registered(t, p), "erin", {"reason": "需上级处置"}),
    "delegate": (lambda t, p, lp: registered(t, p), "erin", {"to_unit": "centre_a1"}),
    "transfer": (
        lambda t, p, lp: registered(t, p),
        "erin",
        {"to_unit": "centre_b", "reason": "属河西街道", "region_code": "139901102001"},
    ),
    "sign": (_dispatched, "police", {}),
    "progress": (in_progress, "police", {"note": "走访当事人"}),
    "reply": (in_progress, "police", {"method": "phone", "note": "已电话告知"}),
    "feedback": (in_progress, "police", {"result": "已处置"}),
    "extension": (in_progress, "police", {"days": "2", "reason": "等待鉴定"}),
    "pause": (in_progress, "police", {"reason": "等待法院判决"}),
    "return": (in_progress, "police", {"reason": "非本单位职责"}),
    "decide": (_with_extension_request, "sup_a", {"request": "pending", "decision": "approve"}),
    "resume": (_paused, "sup_a", {}),
    "verify": (_feedback, "sup_a", {"outcome": "pass", "carried_out": "yes"}),
    "urge": (in_progress, "sup_a", {"note": "抓紧办理"}),
    "flag": (in_progress, "sup_a", {"flagged": "yes"}),
    "followup": (_archived, "sup_a", {"satisfaction": "4"}),
    "followup_again": (_followed_up, "sup_a", {"satisfaction": "3"}),
    "reopen": (_archived, "sup_a", {"reason": "群众不满意"}),
    "reissue_token": (lambda t, p, lp: new_case(t, p), "alice", {}),
}


def test_the_table_names_every_action_of_the_case_page():
    assert set(SCENARIOS) == {action.slug for action in views.ACTIONS}


def _value(name, value, tree, loop, case):
    if value == "pending":
        return case.requests.get(state="pending").pk
    if name == "profile":
        return loop.profile.pk
    if name in ("unit", "units", "to_unit"):
        return getattr(tree, value).pk
    return value


def _someone_else_acts(case, people):
    """A supervisor's note (on a closed case: the counter reissues the receipt) adds an event."""
    if case.is_open:
        services.urge_case(case=case, actor=people.dave, note="请加快")
    else:
        services.reissue_tracking_token(case=case, actor=people.alice)


@pytest.mark.parametrize("slug", sorted(SCENARIOS))
def test_a_form_older_than_the_last_event_is_refused(client, tree, people, loop, slug):
    build, who, fields = SCENARIOS[slug]
    case = Case.objects.get(pk=build(tree, people, loop).pk)
    actor = getattr(people, who, None) or getattr(loop, who)
    client.force_login(actor)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert f'id="act-{slug}"' in page, f"{slug} is not offered to {who}"
    drawn = case.event_count
    data = {f"{slug}-{k}": _value(k, v, tree, loop, case) for k, v in fields.items()}
    data[f"{slug}-seen"] = drawn

    _someone_else_acts(case, people)
    after = Case.objects.get(pk=case.pk)
    response = client.post(f"/cases/{case.code}/{slug}/", data)
    assert response.status_code == 409, response.content.decode()[-1500:]
    assert STALE in response.content.decode()
    assert f'name="{slug}-seen" value="{after.event_count}"' in response.content.decode()
    assert Case.objects.get(pk=case.pk).event_count == after.event_count  # nothing written
    # The form comes back drawn against the case as it is now: sent again, it goes through.
    data[f"{slug}-seen"] = after.event_count
    response = client.post(f"/cases/{case.code}/{slug}/", data)
    assert response.status_code == 302, response.content.decode()[-1500:]
