"""The dashboard's rates on a hand-built week, worked out by hand, live and from the roll-up."""

from __future__ import annotations

import pytest

from dispatch import figures, rollups, services
from dispatch.models import DailyFigure, DailyTotal, DeadlineProfile, DeadlineUnit
from tests import factories as f
from tests.clock import at
from tests.dispatch import loopkit

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture

# The week before the clock's week: Monday is day -7.
MON, TUE, WED, THU = -7, -6, -5, -4


@pytest.fixture
def week(tree, people, loop):
    """Six cases of township A, last week, with every fact the rates count."""
    one_day = DeadlineProfile.objects.create(
        name="一日办结",
        sign_amount=4,
        sign_unit=DeadlineUnit.WORKING_HOURS,
        reply_amount=1,
        complete_amount=1,
    )

    def opened(day, hour=9):
        case = loopkit.new_case(tree, people, now=at(day, hour))
        return services.register_case(case=case, actor=people.erin, now=at(day, hour))

    def handled(day, hour=9):
        case = opened(day, hour)
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.police_a, profile=one_day, now=at(day, hour, 5)
        )
        return services.sign_case(case=case, actor=loop.police, now=at(day, hour, 10))

    def close(case, day, hour, *, carried_out=True):
        services.submit_feedback(case=case, actor=loop.police, result="已处置", now=at(day, hour))
        return services.verify_case(
            case=case, actor=loop.sup_a, passed=True, carried_out=carried_out, now=at(day, hour, 30)
        )

    c1 = close(handled(MON), TUE, 10)  # due Tuesday night: on time, carried out
    c2 = close(handled(MON), WED, 10, carried_out=False)  # late, not carried out
    c3 = handled(MON)
    pause = services.request_pause(
        case=c3, actor=loop.police, reason="等待法院判决", now=at(MON, 14)
    )
    services.decide_pause(request=pause, actor=loop.sup_a, approve=True, now=at(MON, 15))
    services.resume_case(case=c3, actor=loop.sup_a, now=at(WED, 9))
    close(c3, THU, 10)  # paused: out of the on-time denominator
    handled(TUE)  # c4: due Wednesday night, still open: due, not on time
    c5 = loopkit.new_case(tree, people, now=at(MON, 11))
    services.reject_case(case=c5, actor=people.alice, reason="属法院管辖", now=at(MON, 11, 5))
    c6 = handled(TUE)
    services.submit_feedback(case=c6, actor=loop.police, result="已处置", now=at(TUE, 11))
    services.verify_case(case=c6, actor=loop.sup_a, passed=False, note="未到现场", now=at(TUE, 12))
    close(c6, TUE, 15)  # reworked once, still on time
    services.follow_up_case(case=c1, actor=loop.sup_a, satisfaction=5, now=at(WED, 10))
    services.follow_up_case(case=c2, actor=loop.sup_a, satisfaction=2, now=at(THU, 10))
    return {"c1": c1, "c2": c2, "c3": c3, "c6": c6}


BY_HAND = {
    "received": 6,
    "rejected": 1,
    "closed": 4,  # c1, c2, c3, c6
    "closed_carried_out": 3,  # not c2
    "closed_reworked": 1,  # c6
    "due": 4,  # c1, c2, c4, c6 (c3 was paused)
    "due_on_time": 2,  # c1, c6
    "due_paused": 1,  # c3
    "followed_up": 2,
    "followed_up_satisfied": 1,  # c1 (5); c2 said 2
    "disputes_accepted": 5,  # all but the rejected one
    "disputes_resolved": 3,  # closed and carried out
    "closed_township": 4,
}


def last_week(clock):
    return {"start": at(MON, 0), "end": at(0, 0), "now": clock.now()}


def check(counts) -> dict:
    assert {name: counts[name] for name in BY_HAND} == BY_HAND
    return {rate.key: rate for rate in figures.rates(counts)}


def test_rates_by_hand_live_and_rolled_up(tree, week, clock, settings):
    live = rollups.counts(tree.town_a, **last_week(clock))
    rates = check(live)
    assert (rates["on_time"].numerator, rates["on_time"].denominator) == (2, 4)
    assert rates["on_time"].left_out == 1  # the paused case, said beside the denominator
    assert rates["on_time"].percent == "50.0%"
    assert rates["carried_out"].value == 3 / 4
    assert rates["satisfaction"].value == 1 / 2
    assert rates["resolution"].value == 3 / 5
    assert rates["rework"].value == 1 / 4
    shares = {r.key: r.value for r in figures.level_shares(live)}
    assert shares["closed_township"] == 1.0 and shares["closed_grid"] == 0.0

    trends = {
        region.pk: rollups.series_of(
            region, ("month", "week"), start=at(MON - 35, 0), now=clock.now()
        )
        for region in (tree.town_a, tree.county)
    }
    rows = rollups.rebuild(at(MON, 0).date(), at(-1, 0).date())
    assert rows > 0 and DailyFigure.objects.exists()
    rolled = rollups.counts(tree.town_a, **last_week(clock))
    assert rolled == live
    # The trends read the place-and-day totals once the days are counted: the same numbers.
    assert DailyTotal.objects.filter(day__gte=at(MON, 0).date()).exists()
    for region in (tree.town_a, tree.county):
        after = rollups.series_of(region, ("month", "week"), start=at(MON - 35, 0), now=clock.now())
        assert after == trends[region.pk]
    week_of = rollups.series(tree.town_a, "week", start=at(MON, 0), now=clock.now())
    assert week_of[at(MON, 0).date()]["received"] == live["received"]

    # Fewer cases than the minimum sample: shown, but not as a meaningful rate.
    settings.RATE_MIN_SAMPLE = 3
    rates = check(rolled)
    assert rates["on_time"].meaningful and not rates["satisfaction"].meaningful


def test_a_changed_fact_of_a_past_day_counts_at_once(tree, people, week, clock, loop):
    rollups.rebuild(at(MON, 0).date(), at(-1, 0).date())
    # The counted days' sums are kept once read ...
    assert rollups.counts(tree.town_a, **last_week(clock))["closed_carried_out"] == 3
    # ... and today, the follow-up call finds the first case not carried out after all.
    services.follow_up_case(
        case=week["c6"], actor=loop.sup_a, satisfaction=3, carried_out=False, again=False
    )
    counts = rollups.counts(tree.town_a, **last_week(clock))
    assert counts["closed_carried_out"] == 2  # the closing day is read live until recounted
    assert rollups.refresh() >= 1
    assert rollups.counts(tree.town_a, **last_week(clock)) == counts


def test_a_scope_counts_only_its_own_cases(tree, people, week, clock):
    other = f.case(region=tree.village_b1, owner_unit=tree.centre_b, now=at(MON, 10))
    services.register_case(case=other, actor=people.bob, now=at(MON, 10))
    assert rollups.counts(tree.town_b, **last_week(clock))["received"] == 1
    assert rollups.counts(tree.county, **last_week(clock))["received"] == 7
    by_child = rollups.counts_by(tree.county, "child", **last_week(clock))
    assert {k: v["received"] for k, v in by_child.items()} == {tree.town_a.pk: 6, tree.town_b.pk: 1}


def test_the_counted_days_are_summed_without_the_cache_when_it_is_down(tree, week, clock):
    from unittest import mock

    rollups.rebuild(at(MON, 0).date(), at(-1, 0).date())
    expected = rollups.counts(tree.town_a, **last_week(clock))
    down = ConnectionError("cache unreachable")
    with (
        mock.patch.object(rollups.cache, "get", side_effect=down),
        mock.patch.object(rollups.cache, "set", side_effect=down),
    ):
        assert rollups.counts(tree.town_a, **last_week(clock)) == expected
