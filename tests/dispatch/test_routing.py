"""Routing rules after 立案: most specific rule, suggestion or auto-dispatch, never dropped."""

from __future__ import annotations

import pytest
from django.db import transaction

from dispatch import routing
from dispatch.models import Case, RoutingRule
from dispatch.services import register_case
from dispatch.states import Action, Grade, Status
from grids.models import Level
from tests import factories as f


@pytest.fixture
def rules(tree):
    profile = f.profile()
    neighbour = f.category()  # 矛盾纠纷 / 邻里纠纷
    dispute = neighbour.parent

    def rule(region, **kw):
        kw.setdefault("handling_level", Level.TOWNSHIP)
        return RoutingRule.objects.create(region=region, profile=profile, **kw)

    return {
        "county_any": rule(tree.county, handling_level=Level.COUNTY),
        "town_dispute": rule(tree.town_a, category=dispute, unit=tree.justice_a),
        "town_neighbour": rule(tree.town_a, category=neighbour, unit=tree.police_a),
        "town_neighbour_major": rule(tree.town_a, category=neighbour, grade=Grade.MAJOR),
        "village_any": rule(tree.village_a1, handling_level=Level.VILLAGE),
    }


def new_case(tree, region, **kw):
    kw.setdefault("owner_unit", tree.centre_a)
    return f.case(region=region, **kw)


def test_the_deepest_region_wins(tree, rules):
    case = new_case(tree, tree.village_a1)
    match = routing.find_match(case)
    assert match.rule == rules["village_any"]
    assert match.unit == tree.centre_a1  # no unit: the centre at the rule's level


def test_exact_category_beats_parent_category_beats_any(tree, rules):
    assert routing.find_rule(new_case(tree, tree.village_a2)) == rules["town_neighbour"]
    labour = f.category("labour", "劳动争议")
    case = new_case(tree, tree.village_a2, category=labour)
    assert routing.find_match(case).unit == tree.justice_a
    assert (
        routing.find_rule(new_case(tree, tree.village_b1, owner_unit=tree.centre_b))
        == rules["county_any"]
    )


def test_grade_rule_beats_any_grade(tree, rules):
    case = new_case(tree, tree.village_a2, grade=Grade.MAJOR)
    match = routing.find_match(case)
    assert match.rule == rules["town_neighbour_major"]
    assert match.unit == tree.centre_a


def test_priority_breaks_ties_and_inactive_rules_do_not_count(tree, rules):
    rival = RoutingRule.objects.create(
        region=tree.town_a,
        category=rules["town_neighbour"].category,
        unit=tree.justice_a,
        handling_level=Level.TOWNSHIP,
        profile=rules["town_neighbour"].profile,
        priority=5,
    )
    case = new_case(tree, tree.village_a2)
    assert routing.find_rule(case) == rival
    rival.is_active = False
    rival.save()
    assert routing.find_rule(case) == rules["town_neighbour"]


def test_a_rule_never_routes_to_the_accused_unit(tree, rules):
    case = new_case(tree, tree.village_a2, accused_unit=tree.police_a)
    match = routing.find_match(case)
    assert match.unit == tree.justice_a  # the next most specific rule


def test_suggestion_is_recorded_for_the_dispatcher(tree, people, rules):
    case = new_case(tree, tree.village_a2)
    register_case(case=case, actor=people.erin)
    assert routing.route_registered_case(case_id=case.pk) == "suggested"
    case.refresh_from_db()
    assert case.status == Status.REGISTERED
    assert case.suggested_unit == tree.police_a
    assert case.profile == rules["town_neighbour"].profile
    event = case.events.get(action=Action.ROUTED)
    assert event.data["unit"] == tree.police_a.pk
    # A redelivered task changes nothing.
    assert routing.route_registered_case(case_id=case.pk) == "skipped"
    assert case.events.filter(action=Action.ROUTED).count() == 1


def test_auto_dispatch_after_commit(tree, people, rules, django_capture_on_commit_callbacks):
    RoutingRule.objects.filter(pk=rules["town_neighbour"].pk).update(auto_dispatch=True)
    case = new_case(tree, tree.village_a2)
    with django_capture_on_commit_callbacks(execute=True):
        register_case(case=case, actor=people.erin)
    case.refresh_from_db()
    assert case.status == Status.ASSIGNED
    assert case.lead_unit == tree.police_a
    assert case.due_at is not None and case.warn_at < case.due_at
    dispatched = case.events.get(action=Action.DISPATCHED)
    assert dispatched.actor is None  # the system dispatched it


def test_no_rule_leaves_the_case_flagged_with_its_dispatcher(tree, people):
    case = new_case(tree, tree.village_a2)
    with transaction.atomic():
        register_case(case=case, actor=people.erin)
    assert routing.route_registered_case(case_id=case.pk) == "needs_routing"
    case.refresh_from_db()
    assert case.needs_routing and case.status == Status.REGISTERED
    assert case.owner_unit == tree.centre_a
    failed = case.events.get(action=Action.ROUTING_FAILED)
    assert failed.note == "没有匹配的派单规则"


def test_auto_dispatch_the_rules_cannot_apply_is_flagged(tree, people, rules):
    # The county rule names the county centre, which a township centre cannot dispatch to.
    RoutingRule.objects.filter(pk=rules["county_any"].pk).update(auto_dispatch=True)
    case = new_case(tree, tree.village_b1, owner_unit=tree.centre_b)
    register_case(case=case, actor=people.bob)
    assert routing.route_registered_case(case_id=case.pk) == "needs_routing"
    case.refresh_from_db()
    assert case.needs_routing and case.lead_unit is None
    assert case.events.filter(action=Action.ROUTING_FAILED).count() == 1


def test_accused_unit_as_the_only_rule_needs_a_person(tree, people):
    RoutingRule.objects.create(
        region=tree.town_a,
        unit=tree.police_a,
        handling_level=Level.TOWNSHIP,
        profile=f.profile(),
        auto_dispatch=True,
    )
    case = new_case(tree, tree.village_a2, accused_unit=tree.police_a)
    register_case(case=case, actor=people.erin)
    assert routing.route_registered_case(case_id=case.pk) == "needs_routing"
    case.refresh_from_db()
    assert case.lead_unit is None and case.needs_routing


def test_a_rolled_back_registration_queues_nothing(
    tree, people, rules, django_capture_on_commit_callbacks
):
    case = new_case(tree, tree.village_a2)
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            register_case(case=case, actor=people.erin)
            raise RuntimeError("the clerk's request failed")
    assert callbacks == []
    assert Case.objects.get(pk=case.pk).status == Status.REPORTED
