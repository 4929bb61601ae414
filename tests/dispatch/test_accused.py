"""A complaint about a unit never reaches that unit's people, however their role was granted.

Members of the accused unit (granted in it, granted on its node when it is a centre, a grid
worker of its village) do not see the case on its page, in lists or in search, get no message
about it, and the case can neither be dispatched, escalated, delegated nor transferred to it.
"""

from __future__ import annotations

import pytest

from dispatch import services
from dispatch.models import Notification
from dispatch.selectors import cases_visible_to, dispatcher_queue, supervisor_queue
from dispatch.services import DispatchError
from people.models import Role
from people.services import grant_role
from tests import factories as f
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


def complaint(tree, people, *, accused, owner, region=None):
    case = f.case(
        region=region or tree.village_a1,
        owner_unit=owner,
        accused_unit=accused,
        summary="投诉工作人员推诿",
        parties=[(f.party(), "applicant")],
        now=at(0, 9),
    )
    return case


def blind(client, users, case) -> None:
    for user in users:
        assert not cases_visible_to(user).filter(pk=case.pk).exists(), user
        client.force_login(user)
        assert client.get(f"/cases/{case.code}/").status_code == 404, user
        assert client.get(f"/intake/cases/{case.code}/").status_code == 404, user
        for page in ("/work/dispatcher/", "/work/supervise/", "/work/inbox/"):
            body = client.get(page).content.decode()
            assert case.code not in body, (user, page)


def test_staff_granted_on_an_accused_centres_node_never_see_the_case(client, tree, people, loop):
    """Township A's centre is accused: its clerk, dispatcher and supervisor are its members."""
    county_clerk = f.user("county_clerk", role=Role.CLERK, region=tree.county)
    in_centre = f.user("centre_leader", role=Role.LEADER, unit=tree.centre_a)
    case = complaint(tree, people, accused=tree.centre_a, owner=tree.county_centre)
    services.register_case(case=case, actor=county_clerk)
    blind(client, [people.alice, people.erin, loop.sup_a, in_centre], case)
    for user in (people.dave, loop.county_dispatcher, county_clerk):
        assert cases_visible_to(user).filter(pk=case.pk).exists()
    assert case in dispatcher_queue(loop.county_dispatcher)["registered"]


def test_a_village_centres_dispatcher_and_its_grid_workers_are_its_members(
    client, tree, people, loop
):
    grid_worker = f.user("grid_a1", role=Role.GRID_WORKER, region=tree.grid_a1)
    case = complaint(tree, people, accused=tree.centre_a1, owner=tree.centre_a)
    services.register_case(case=case, actor=people.erin)
    blind(client, [loop.village_disp, grid_worker], case)
    assert cases_visible_to(people.erin).filter(pk=case.pk).exists()


def test_a_department_handler_with_a_second_role_is_still_a_member(client, tree, people, loop):
    """A township supervisor who also handles for the police station (兼职) is its member."""
    both = f.user("both", role=Role.SUPERVISOR, region=tree.town_a)
    grant_role(user=both, role=Role.HANDLER, unit=tree.police_a)
    case = complaint(tree, people, accused=tree.police_a, owner=tree.centre_a)
    services.register_case(case=case, actor=people.erin)
    services.dispatch_case(case=case, actor=people.erin, unit=tree.justice_a, profile=loop.profile)
    services.sign_case(case=case, actor=loop.justice)
    services.submit_feedback(case=case, actor=loop.justice, result="已核实并答复")
    blind(client, [both, loop.police], case)
    assert case not in supervisor_queue(both)["feedback"]
    assert case in supervisor_queue(loop.sup_a)["feedback"]
    # Told: the other supervisor of the township. Not told: the accused unit's member.
    told = set(Notification.objects.filter(case=case).values_list("recipient__username", flat=True))
    assert "sup_a" in told and "both" not in told and "police" not in told
    with pytest.raises(DispatchError, match="权限"):
        services.verify_case(case=case, actor=both, passed=True)


def test_the_case_never_moves_to_the_accused_unit(tree, people, loop):
    case = complaint(tree, people, accused=tree.centre_a, owner=tree.centre_a1)
    services.register_case(case=case, actor=loop.village_disp)
    with pytest.raises(DispatchError, match="不能转办给被投诉单位"):
        services.transfer_case(
            case=case, actor=loop.village_disp, to_unit=tree.centre_a, reason="转镇里"
        )
    with pytest.raises(DispatchError, match="被投诉单位"):
        services.dispatch_case(
            case=case, actor=loop.village_disp, unit=tree.centre_a, profile=loop.profile
        )
    # Escalation passes over the accused township centre to the county.
    services.escalate_case(case=case, actor=loop.village_disp, reason="涉及镇综治中心")
    case.refresh_from_db()
    assert case.owner_unit == tree.county_centre
    other = complaint(tree, people, accused=tree.centre_a1, owner=tree.centre_a)
    services.register_case(case=other, actor=people.erin)
    with pytest.raises(DispatchError, match="被投诉单位"):
        services.delegate_case(case=other, actor=people.erin, to_unit=tree.centre_a1)
