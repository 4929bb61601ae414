"""The region tree: subtree queries by materialized path, and moving a node with its subtree."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from grids import selectors, services
from grids.models import Level, Region
from grids.services import GridsError
from tests import factories as f


def test_township_subtree_holds_exactly_its_villages_and_grids(tree):
    got = set(selectors.subtree(tree.town_a).values_list("code", flat=True))
    assert got == {tree.town_a.code, tree.village_a1.code, tree.village_a2.code, tree.grid_a1.code}
    below = set(selectors.subtree(tree.town_a, include_self=False).values_list("code", flat=True))
    assert tree.town_a.code not in below
    assert tree.town_b.code not in got and tree.grid_b1.code not in got


def test_subtree_is_one_prefix_query(tree):
    with CaptureQueriesContext(connection) as ctx:
        list(selectors.subtree(tree.town_a))
    assert len(ctx.captured_queries) == 1
    assert "LIKE" in ctx.captured_queries[0]["sql"].upper()


def test_similar_code_prefix_does_not_leak_into_subtree(tree):
    # 13990110 is a prefix of both townships' codes; the path ends with "/" so it cannot match.
    other = f.region("139901110000", "十里铺镇", Level.TOWNSHIP, tree.county)
    assert other.code not in set(selectors.subtree(tree.town_a).values_list("code", flat=True))


def test_move_village_moves_its_whole_subtree(tree):
    moved = services.move_region(region=tree.village_a1, new_parent=tree.town_b)
    assert moved.parent_id == tree.town_b.pk
    assert moved.path == f"{tree.town_b.path}{tree.village_a1.code}/"
    grid = Region.objects.get(pk=tree.grid_a1.pk)
    assert grid.path == f"{moved.path}{grid.code}/"
    assert grid.parent_id == moved.pk
    b_codes = set(selectors.subtree(tree.town_b).values_list("code", flat=True))
    a_codes = set(selectors.subtree(tree.town_a).values_list("code", flat=True))
    assert {tree.village_a1.code, tree.grid_a1.code} <= b_codes
    assert a_codes == {tree.town_a.code, tree.village_a2.code}


def test_move_is_atomic(tree, monkeypatch):
    """If the second write of a move fails, the paths rewritten by the first are rolled back."""
    from django.db.models.query import QuerySet

    real_update = QuerySet.update
    calls = {"n": 0}

    def failing_update(self, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return real_update(self, **kwargs)

    monkeypatch.setattr(QuerySet, "update", failing_update)
    with pytest.raises(RuntimeError):
        services.move_region(region=tree.village_a1, new_parent=tree.town_b)
    monkeypatch.undo()
    assert Region.objects.get(pk=tree.grid_a1.pk).path.startswith(tree.town_a.path)
    assert Region.objects.get(pk=tree.village_a1.pk).parent_id == tree.town_a.pk


def test_move_refuses_wrong_level_and_cycles(tree):
    with pytest.raises(GridsError, match="上级必须是"):
        services.move_region(region=tree.village_a1, new_parent=tree.county)
    with pytest.raises(GridsError):
        services.move_region(region=tree.grid_a1, new_parent=tree.town_b)


def test_save_region_is_idempotent_and_refuses_bad_codes(tree):
    again = f.region(tree.village_a1.code, "东关村", Level.VILLAGE, tree.town_a)
    assert again.pk == tree.village_a1.pk
    assert Region.objects.filter(code=tree.village_a1.code).count() == 1
    with pytest.raises(GridsError, match="12位"):
        f.region("13990110120", "短码村", Level.VILLAGE, tree.town_a)
    with pytest.raises(GridsError, match="网格代码"):
        f.region("139901101201", "错码网格", Level.GRID, tree.village_a1)


def test_search_regions_by_name_code_and_pinyin(tree):
    assert [r.name for r in selectors.search_regions("xlt")] == ["兴隆台镇"]
    assert [r.name for r in selectors.search_regions("XLT")] == ["兴隆台镇"]
    assert tree.grid_a1 in selectors.search_regions("东关")
    assert [r.code for r in selectors.search_regions("139901102001")] == [
        "139901102001",
        "139901102001001",
    ]
    assert list(selectors.search_regions("xlt", within=tree.town_b)) == []
