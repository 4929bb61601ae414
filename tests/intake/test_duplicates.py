"""The intake's duplicate search: the same village's month, by how close the summaries read."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from dispatch.models import Case
from intake import selectors
from tests import factories as f

pytestmark = pytest.mark.django_db

SUMMARY = "东关村三组王家与李家因宅基地边界的围墙归属发生争执，双方多次争吵"


def _similar(people, region, summary, now):
    rows = selectors.possible_duplicates(
        people.alice, parties=[], category=None, summary=summary, region=region, now=now
    )
    return [row.case for row in rows]


def test_a_close_summary_in_the_village_is_found_among_many_others(tree, people, cats, clock):
    if connection.vendor == "postgresql":
        # The trigram index narrows the search only where pg_trgm reads Chinese.
        assert selectors._trigrams_read_chinese()
    now = clock.now()
    near = f.case(region=tree.grid_a1, owner_unit=tree.centre_a, summary=SUMMARY)
    # Newer cases of the same village about other things do not crowd it out.
    for i in range(60):
        f.case(
            region=tree.village_a1,
            owner_unit=tree.centre_a,
            summary=f"第{i}号楼下水管道堵塞，污水外溢，请物业尽快疏通处理",
        )
    edited = "东关村三组王家和李家为宅基地边界上围墙的归属起了争执，双方多次争吵"
    rows = selectors.possible_duplicates(
        people.alice, parties=[], category=None, summary=edited, region=tree.grid_a1, now=now
    )
    assert [row.case for row in rows] == [near]
    assert "相似度" in rows[0].reasons[0]
    # A summary about something else finds nothing.
    assert _similar(people, tree.grid_a1, "村口路灯损坏多日，夜间出行不便", now) == []


def test_another_village_or_an_older_month_is_not_a_duplicate(tree, people, cats, clock):
    now = clock.now()
    f.case(region=tree.village_a2, owner_unit=tree.centre_a, summary=SUMMARY)
    old = f.case(region=tree.village_a1, owner_unit=tree.centre_a, summary=SUMMARY)
    Case.objects.filter(pk=old.pk).update(reported_at=now - dt.timedelta(days=31))
    assert _similar(people, tree.village_a1, SUMMARY, now) == []
    recent = f.case(region=tree.village_a1, owner_unit=tree.centre_a, summary=SUMMARY)
    assert _similar(people, tree.village_a1, SUMMARY, now) == [recent]


def test_a_clerk_finds_only_the_cases_they_may_see(tree, people, cats, clock):
    # Township B's clerk registering in township B never sees township A's case.
    f.case(region=tree.village_a1, owner_unit=tree.centre_a, summary=SUMMARY)
    rows = selectors.possible_duplicates(
        people.bob,
        parties=[],
        category=None,
        summary=SUMMARY,
        region=tree.village_a1,
        now=clock.now(),
    )
    assert rows == []
