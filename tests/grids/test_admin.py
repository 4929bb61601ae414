"""The admin's region and unit pages, searched over HTTP as the county administrator."""

from __future__ import annotations

import pytest

from grids.models import Region


@pytest.fixture
def admin_client(client, people):
    client.force_login(people.admin)
    return client


def _names(response) -> str:
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("term", ["xlt", "XLT", "兴隆", "139901101000", "xinglongtai"])
def test_region_search_by_pinyin_name_and_code(admin_client, tree, term):
    response = admin_client.get("/admin/grids/region/", {"q": term})
    html = _names(response)
    assert "兴隆台镇" in html
    assert "河西街道" not in html
    assert [r.name for r in response.context["cl"].result_list] == ["兴隆台镇"]


def test_region_search_miss(admin_client, tree):
    response = admin_client.get("/admin/grids/region/", {"q": "zzz"})
    assert "兴隆台镇" not in _names(response)
    assert response.context["cl"].result_count == 0


def test_unit_search_by_pinyin_initials(admin_client, tree):
    # 兴隆台派出所 -> xltpcs
    html = _names(admin_client.get("/admin/grids/department/", {"q": "xltp"}))
    assert "兴隆台派出所" in html
    assert "兴隆台司法所" not in html
    html = _names(admin_client.get("/admin/grids/centre/", {"q": "hxjd"}))
    assert "河西街道综治中心" in html and "兴隆台镇综治中心" not in html


def test_region_autocomplete_finds_pinyin(admin_client, tree):
    response = admin_client.get(
        "/admin/autocomplete/",
        {"term": "xlt", "app_label": "grids", "model_name": "region", "field_name": "parent"},
    )
    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["兴隆台镇(139901101000)"]


def test_admin_move_of_a_village_rewrites_its_subtree(admin_client, tree):
    village = tree.village_a1
    response = admin_client.post(
        f"/admin/grids/region/{village.pk}/change/",
        {
            "code": village.code,
            "name": village.name,
            "level": village.level,
            "parent": tree.town_b.pk,
            "households": "",
            "boundary": "null",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    grid = Region.objects.get(pk=tree.grid_a1.pk)
    assert grid.path.startswith(tree.town_b.path)


def test_staff_without_admin_rights_cannot_open_the_admin(client, people, tree):
    client.force_login(people.alice)
    response = client.get("/admin/grids/region/", {"q": "xlt"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
