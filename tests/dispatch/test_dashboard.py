"""The supervisors' dashboard as a supervisor opens it: scope, figures, drill-downs, queries."""

from __future__ import annotations

import re

import pytest

from dispatch import services
from people.models import Role
from tests import factories as f
from tests.clock import at
from tests.dispatch import loopkit, test_figures
from tests.dispatch.test_figures import BY_HAND, MON

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture
week = test_figures.week  # the fixture


def board(client, user, **params):
    client.force_login(user)
    response = client.get("/work/dashboard/", params)
    assert response.status_code == 200, response.content.decode()[-500:]
    return response


def last_week(region):
    return {
        "region": region.code,
        "period": "custom",
        "start": at(MON, 0).date().isoformat(),
        "end": at(-1, 0).date().isoformat(),
    }


def test_a_township_supervisor_sees_the_week_and_every_number_opens_its_cases(
    client, tree, people, loop, week
):
    response = board(client, loop.sup_a, **last_week(tree.town_a))
    body = response.content.decode()
    rates = {r.key: r for r in response.context["board"].rates}
    assert (rates["on_time"].numerator, rates["on_time"].denominator) == (2, 4)
    assert "50.0%" in body and "计算于" in body
    for fact, n in BY_HAND.items():
        if fact.startswith("closed_") and fact != "closed_carried_out":
            continue
        link = re.search(rf'href="(/work/dashboard/cases/\?[^"]*fact={fact}[^"]*)"', body)
        if link is None:
            continue
        listed = client.get(link.group(1).replace("&amp;", "&"))
        assert listed.status_code == 200
        assert listed.context["page"].paginator.count == n, fact


def test_the_township_board_counts_only_its_township(client, tree, people, loop, week):
    other = f.case(region=tree.village_b1, owner_unit=tree.centre_b, now=at(MON, 10))
    services.register_case(case=other, actor=people.bob, now=at(MON, 10))
    sup_b = f.user("sup_b", role=Role.SUPERVISOR, region=tree.town_b)
    assert board(client, sup_b, **last_week(tree.town_b)).context["board"].counts["received"] == 1
    # Asking for township A's board from township B falls back to B's own.
    response = board(client, sup_b, **last_week(tree.town_a))
    assert response.context["board"].region == tree.town_b
    assert (
        board(client, people.dave, **last_week(tree.county)).context["board"].counts["received"]
        == 7
    )


def test_the_dashboard_is_a_supervisors_desk(client, tree, people):
    client.force_login(people.alice)
    assert client.get("/work/dashboard/").status_code == 403
    assert client.get("/work/dashboard/cases/?fact=received").status_code == 403


def test_the_dashboard_answers_in_a_bounded_number_of_queries(
    client, tree, people, loop, week, django_assert_max_num_queries
):
    client.force_login(loop.sup_a)
    with django_assert_max_num_queries(120):
        client.get("/work/dashboard/", last_week(tree.town_a))
    for _ in range(5):
        loopkit.in_progress(tree, people, loop, now=at(MON, 11))
    with django_assert_max_num_queries(120) as captured:
        client.get("/work/dashboard/", last_week(tree.town_a))
    first = len(captured.captured_queries)
    for _ in range(5):
        loopkit.in_progress(tree, people, loop, now=at(MON, 12))
    with django_assert_max_num_queries(first):
        client.get("/work/dashboard/", last_week(tree.town_a))


def test_the_grid_map_is_drawn_from_the_boundaries_without_a_tile_server(
    client, tree, people, loop
):
    ring = [[120.0, 30.0], [120.01, 30.0], [120.01, 30.01], [120.0, 30.01], [120.0, 30.0]]
    tree.grid_a1.boundary = {"type": "Polygon", "coordinates": [ring]}
    tree.grid_a1.save(update_fields=["boundary"])
    late = loopkit.in_progress(tree, people, loop, region=tree.grid_a1)
    late.__class__.objects.filter(pk=late.pk).update(due_at=at(-3, 9))
    loopkit.in_progress(tree, people, loop, region=tree.grid_a1)
    body = board(client, loop.sup_a, region=tree.town_a.code).content.decode()
    svg = body.split('<svg class="map"', 1)[1].split("</svg>", 1)[0]
    assert "<polygon" in svg and ">2/1</text>" in svg
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_open_cases_are_counted_per_step_place_category_unit_and_window(tree, people, loop):
    from dispatch import dashboard
    from dispatch.access import reach_of
    from dispatch.models import Case

    late = loopkit.in_progress(tree, people, loop, region=tree.grid_a1)
    Case.objects.filter(pk=late.pk).update(due_at=at(-3, 9))
    loopkit.in_progress(tree, people, loop, region=tree.grid_a1)
    waiting = loopkit.registered(tree, people, region=tree.village_a1)  # no handling unit yet
    Case.objects.filter(pk=waiting.pk).update(due_at=at(-1, 9))
    summary = dashboard.open_now(
        dashboard.scoped_cases(reach_of(loop.sup_a), tree.town_a), now=at(0, 12)
    )
    assert summary.by_place_step == {
        (tree.grid_a1.pk, "in_progress"): (2, 1),
        (tree.village_a1.pk, "registered"): (1, 1),
    }
    assert summary.per_place() == {tree.grid_a1.pk: (2, 1), tree.village_a1.pk: (1, 1)}
    assert summary.by["lead_unit_id"] == {tree.police_a.pk: (2, 1), None: (1, 1)}
    assert summary.by["category_id"] == {late.category_id: (3, 2)}
    assert summary.by["intake_unit_id"] == {late.intake_unit_id: (3, 2)}
    assert summary.paths[tree.grid_a1.pk] == tree.grid_a1.path


def test_the_trends_count_today_as_the_period_does(client, tree, people, loop, week):
    from django.utils import timezone

    from dispatch import dashboard, rollups

    loopkit.in_progress(tree, people, loop, now=at(0, 9))
    loopkit.registered(tree, people, now=at(0, 10))
    now = at(0, 12)
    board_now = dashboard.build(
        loop.sup_a, tree.town_a, dashboard.period_of("month", now=now), now=now
    )
    month, counts, _rates = board_now.months[-1]
    apart = rollups.series(tree.town_a, "month", start=month.start, now=now)
    assert counts == apart[timezone.localdate(month.start)]
    assert counts["received"] >= 2
