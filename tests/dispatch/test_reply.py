"""告知: the reply to the resident is an action; it stops the reply clock and shows publicly."""

from __future__ import annotations

import datetime as dt

import pytest

from dispatch import services
from dispatch.models import Alert
from dispatch.states import Action
from dispatch.sweeper import sweep
from tests.dispatch import loopkit
from tests.dispatch.loopkit import in_progress

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


def reply_alerts(case) -> int:
    return Alert.objects.filter(case=case, clock=Alert.Clock.REPLY).count()


def test_a_case_never_told_turns_red_on_the_reply_clock(tree, people, loop):
    case = in_progress(tree, people, loop)
    sweep(now=case.reply_due_at + dt.timedelta(minutes=1))
    assert reply_alerts(case) == 1


def test_the_handler_tells_the_resident_through_the_page_and_the_clock_stops(
    client, tree, people, loop
):
    case = in_progress(tree, people, loop)
    client.force_login(loop.police)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert 'id="act-reply"' in page
    response = client.post(
        f"/cases/{case.code}/reply/",
        {
            "reply-method": "phone",
            "reply-note": "已电话告知受理情况及办理期限",
            "reply-seen": case.event_count,
        },
    )
    assert response.status_code == 302, response.content.decode()[-800:]
    case.refresh_from_db()
    assert case.replied_at is not None
    event = case.events.get(action=Action.REPLIED)
    assert event.is_public and event.actor == loop.police
    assert event.public_unit_name == tree.police_a.name
    sweep(now=case.reply_due_at + dt.timedelta(minutes=1))
    assert reply_alerts(case) == 0
    # The resident sees when and how they were told, never the staff's note.
    public = client.get(f"/t/{case.tracking_token}").content.decode()
    assert "电话告知" in public and "已电话告知受理情况" not in public


def test_a_later_reply_keeps_the_first_time(tree, people, loop):
    case = in_progress(tree, people, loop)
    first = services.reply_to_resident(case=case, actor=loop.police, method="sms", note="已告知")
    services.reply_to_resident(case=case, actor=people.erin, method="written", note="书面告知书")
    case.refresh_from_db()
    assert case.replied_at == first.at
    with pytest.raises(services.DispatchError):
        services.reply_to_resident(case=case, actor=people.bob, method="phone", note="x")
