"""Staff whose role sits on a centre (not a department) see what the services let them act on."""

from __future__ import annotations

import pytest

from dispatch import services
from dispatch.selectors import cases_visible_to
from people.models import Role
from tests import factories as f
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at, registered

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


def test_handler_granted_on_a_village_sees_its_centres_tasks_only(tree, people, loop):
    handler = f.user("village_handler", role=Role.HANDLER, region=tree.village_a1)
    delegated = registered(tree, people, summary="村道路灯损坏")
    services.dispatch_case(
        case=delegated,
        actor=people.erin,
        unit=tree.centre_a1,
        profile=loop.profile,
        now=at(0, 10),
    )
    elsewhere = registered(tree, people, summary="村口占道经营")
    services.dispatch_case(
        case=elsewhere,
        actor=people.erin,
        unit=tree.police_a,
        profile=loop.profile,
        now=at(0, 10),
    )
    visible = set(cases_visible_to(handler).values_list("code", flat=True))
    assert delegated.code in visible
    # Same village, but the task is the police station's: not this handler's to see.
    assert elsewhere.code not in visible
    services.sign_case(case=delegated, actor=handler, unit=tree.centre_a1, now=at(0, 11))


def test_manager_role_held_in_a_centre_covers_the_centres_area(tree, people):
    supervisor = f.user("centre_sup", role=Role.SUPERVISOR, unit=tree.centre_b)
    # A case in township B's area held by the county centre (e.g. reported by phone to the
    # county): township B's supervisor watches it although their centre does not own it.
    in_b = registered(
        tree,
        people,
        summary="滨河社区噪音",
        region=tree.village_b1,
        owner_unit=tree.county_centre,
        actor=people.dave,
        registrar=people.dave,
    )
    in_a = registered(tree, people, summary="东关村噪音")
    visible = set(cases_visible_to(supervisor).values_list("code", flat=True))
    assert in_b.code in visible
    assert in_a.code not in visible
