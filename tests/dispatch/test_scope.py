"""Who sees a case: out-of-scope answers 404 exactly like a missing case."""

from __future__ import annotations

import pytest

from dispatch import services
from dispatch.selectors import cases_visible_to, dispatcher_queue, handler_inbox
from dispatch.services import DispatchError
from people.models import Role
from tests import factories as f
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at, registered

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


@pytest.fixture
def case_at_justice(tree, people, loop):
    """A case of township A, assigned to department C (township A's justice office)."""
    case = registered(tree, people, summary="邻里宅基地边界纠纷")
    return services.dispatch_case(
        case=case, actor=people.erin, unit=tree.justice_a, profile=loop.profile, now=at(0, 10)
    )


def seen(case) -> int:
    """The number of the case's last event, as a freshly drawn form carries it."""
    return type(case).objects.get(pk=case.pk).event_count


def _get(client, user, url):
    client.logout()
    if user is not None:
        client.force_login(user)
    return client.get(url)


def test_outsiders_get_the_same_404_as_for_a_missing_case(
    client,
    tree,
    people,
    loop,
    case_at_justice,
):
    url = f"/cases/{case_at_justice.code}/"
    missing = _get(client, loop.police, "/cases/13990120261123999990/")
    assert missing.status_code == 404
    for outsider in (loop.police, people.bob):  # handler of department A, clerk of township B
        response = _get(client, outsider, url)
        assert response.status_code == 404
        assert response.content == missing.content
        post = client.post(f"{url}sign/")
        assert post.status_code == 404
    client.logout()
    anonymous = client.get(url)
    assert anonymous.status_code == 302 and "/login/" in anonymous["Location"]
    assert client.post(f"{url}sign/").status_code == 302
    # The people who should see it do.
    assert _get(client, loop.justice, url).status_code == 200
    assert _get(client, people.alice, url).status_code == 200
    assert _get(client, people.dave, url).status_code == 200


def test_selectors_hide_the_case_from_the_other_township(
    tree,
    people,
    loop,
    case_at_justice,
):
    assert case_at_justice in cases_visible_to(people.alice)
    assert case_at_justice in cases_visible_to(loop.justice)
    assert case_at_justice not in cases_visible_to(people.bob)
    assert case_at_justice not in cases_visible_to(loop.police)
    dispatcher_b = f.user("disp_b", role=Role.DISPATCHER, region=tree.town_b)
    other = registered(tree, people, summary="另一件")
    queue_a = dispatcher_queue(people.erin)
    assert other in queue_a["registered"]
    assert {k: list(v) for k, v in dispatcher_queue(dispatcher_b).items()} == {
        "reported": [],
        "registered": [],
    }
    assert list(handler_inbox(loop.police)["pending"]) == []
    assert [t.case for t in handler_inbox(loop.justice)["pending"]] == [case_at_justice]


def test_the_accused_unit_can_neither_receive_nor_see_the_case(client, tree, people, loop):
    case = registered(tree, people, accused_unit=tree.police_a, summary="投诉派出所不作为")
    # Granted explicitly by mistake, the accused unit's staff still cannot see it.
    head = f.user("police_head", role=Role.DISPATCHER, unit=tree.police_a)
    assert case not in cases_visible_to(loop.police)
    assert case not in cases_visible_to(head)
    assert _get(client, loop.police, f"/cases/{case.code}/").status_code == 404
    # The dispatcher's form does not offer the accused unit; forcing it is refused.
    client.force_login(people.erin)
    page = client.get(f"/cases/{case.code}/").content.decode()
    # Options read "name（level）"; the accused unit is named only as the accused.
    assert "兴隆台司法所（乡镇/街道）" in page and "兴隆台派出所（" not in page
    response = client.post(
        f"/cases/{case.code}/dispatch/",
        {
            "dispatch-unit": tree.police_a.pk,
            "dispatch-profile": loop.profile.pk,
            "dispatch-seen": seen(case),
        },
    )
    assert response.status_code == 400
    with pytest.raises(DispatchError, match="被投诉单位"):
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile
        )
    # Even a lead that is not the accused cannot pull the accused in as an assisting unit.
    services.dispatch_case(case=case, actor=people.erin, unit=tree.justice_a, profile=loop.profile)
    with pytest.raises(DispatchError, match="被投诉单位"):
        services.summon_units(case=case, actor=people.erin, units=[tree.police_a])
    assert case not in cases_visible_to(loop.police)


def test_a_unit_that_returned_its_task_keeps_no_sight_of_the_case(client, tree, people, loop):
    case = registered(tree, people, summary="不属本所的纠纷")
    services.dispatch_case(
        case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile, now=at(0, 10)
    )
    assert _get(client, loop.police, f"/cases/{case.code}/").status_code == 200
    services.return_case(case=case, actor=loop.police, reason="不属本所职责", now=at(0, 11))
    assert _get(client, loop.police, f"/cases/{case.code}/").status_code == 404
    assert not cases_visible_to(loop.police).filter(pk=case.pk).exists()


def test_a_unit_that_finished_its_task_reads_the_case_but_acts_no_more(
    client, tree, people, loop, case_at_justice
):
    services.sign_case(case=case_at_justice, actor=loop.justice, now=at(0, 11))
    services.submit_feedback(
        case=case_at_justice, actor=loop.justice, result="已调解", now=at(0, 12)
    )
    response = _get(client, loop.justice, f"/cases/{case_at_justice.code}/")
    assert response.status_code == 200
    assert "您对该案件暂无可办理的操作" in response.content.decode()
    assert case_at_justice.tracking_token not in response.content.decode()
