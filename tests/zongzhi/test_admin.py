"""The dispatch admin: configuration is editable; cases and their history are read-only."""

from __future__ import annotations

import pytest

from dispatch.models import Case, CaseEvent, Category
from tests import factories as f


@pytest.fixture
def admin_client(client, people):
    client.force_login(people.admin)
    return client


@pytest.fixture
def case(tree, people):
    return f.case(
        region=tree.village_a1,
        owner_unit=tree.centre_a,
        actor=people.alice,
        narrative="楼上住户张某每晚装修到十一点",
    )


def test_case_admin_lists_and_shows_but_cannot_change(admin_client, case):
    response = admin_client.get("/admin/dispatch/case/", {"q": case.code})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [case]
    detail = admin_client.get(f"/admin/dispatch/case/{case.pk}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert case.code in html and "case.reported" in html
    assert "每晚装修" not in html  # the narrative stays out of the admin
    response = admin_client.post(
        f"/admin/dispatch/case/{case.pk}/change/", {"status": "archived", "summary": "x"}
    )
    assert response.status_code == 403
    assert Case.objects.get(pk=case.pk).status == "reported"
    assert admin_client.get("/admin/dispatch/case/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/dispatch/case/{case.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Case.objects.filter(pk=case.pk).exists()


def test_case_events_cannot_be_edited(admin_client, case):
    event = CaseEvent.objects.get(case=case)
    response = admin_client.post(
        f"/admin/dispatch/caseevent/{event.pk}/change/", {"note": "edited"}
    )
    assert response.status_code == 403
    assert CaseEvent.objects.get(pk=event.pk).note == ""


def test_category_admin_creates_a_child_with_pinyin(admin_client, db):
    parent = f.category().parent
    response = admin_client.post(
        "/admin/dispatch/category/add/",
        {
            "code": "dispute-pets",
            "name": "宠物纠纷",
            "parent": parent.pk,
            "kind": "dispute",
            "sort": "30",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    created = Category.objects.get(code="dispute-pets")
    assert created.parent == parent and created.pinyin_initials == "cwjf"
    response = admin_client.get("/admin/dispatch/category/", {"q": "CWJF"})
    assert list(response.context["cl"].result_list) == [created]


@pytest.mark.parametrize(
    "url",
    [
        "/admin/dispatch/deadlineprofile/",
        "/admin/dispatch/routingrule/",
        "/admin/dispatch/routingrule/add/",
        "/admin/people/user/",
        "/admin/people/rolegrant/",
    ],
)
def test_config_pages_open(admin_client, db, url):
    assert admin_client.get(url).status_code == 200
