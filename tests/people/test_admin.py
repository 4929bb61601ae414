"""The people admin: users with their grants, and parties shown masked, found by blind index."""

from __future__ import annotations

import pytest

from people.models import Role, RoleGrant, User
from tests import factories as f

ID = "11010519491231002X"


@pytest.fixture
def admin_client(client, people):
    client.force_login(people.admin)
    return client


@pytest.fixture
def zhang(db):
    return f.party(name="张三丰", phone="13812341234", id_number=ID, address="东关村3组")


def test_party_list_is_masked(admin_client, zhang):
    response = admin_client.get("/admin/people/party/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "张*丰" in html and "138****1234" in html and "1101**********002X" in html
    for secret in ["张三丰", "13812341234", ID, "东关村3组"]:
        assert secret not in html


def test_party_detail_is_masked_and_read_only(admin_client, zhang):
    response = admin_client.get(f"/admin/people/party/{zhang.pk}/change/")
    html = response.content.decode()
    assert response.status_code == 200
    for secret in ["张三丰", "13812341234", ID, "东关村3组"]:
        assert secret not in html
    response = admin_client.post(f"/admin/people/party/{zhang.pk}/change/", {"name": "李四"})
    assert response.status_code == 403
    assert admin_client.get("/admin/people/party/add/").status_code == 403


@pytest.mark.parametrize(
    "term", ["138 1234 1234", "+8613812341234", ID.lower(), "110105491231002", "张三丰"]
)
def test_party_search_by_phone_id_or_name(admin_client, zhang, term):
    f.party(name="李四", phone="13900001111")
    response = admin_client.get("/admin/people/party/", {"q": term})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [zhang]


def test_party_search_miss(admin_client, zhang):
    response = admin_client.get("/admin/people/party/", {"q": "13900009999"})
    assert list(response.context["cl"].result_list) == []


def test_user_page_shows_grants_inline(admin_client, people):
    response = admin_client.get(f"/admin/people/user/{people.alice.pk}/change/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "窗口受理员" in html and "兴隆台镇" in html


def test_grant_added_in_admin_goes_through_the_rules(admin_client, people, tree):
    url = "/admin/people/rolegrant/add/"
    response = admin_client.post(
        url, {"user": people.bob.pk, "role": Role.DISPATCHER, "region": tree.town_b.pk, "unit": ""}
    )
    assert response.status_code == 302
    assert RoleGrant.objects.filter(user=people.bob, role=Role.DISPATCHER).exists()
    # 三权分立: the system administrator cannot also become the audit administrator.
    admin_client.post(
        url,
        {"user": people.admin.pk, "role": Role.AUDIT_ADMIN, "region": tree.county.pk, "unit": ""},
        follow=True,
    )
    assert not RoleGrant.objects.filter(user=people.admin, role=Role.AUDIT_ADMIN).exists()


def test_non_staff_cannot_reach_people_admin(client, people, zhang):
    client.force_login(people.alice)
    assert client.get("/admin/people/party/").status_code == 302
    assert User.objects.filter(username="alice", is_staff=False).exists()


def test_admin_adds_a_user_with_work_number_and_grant(admin_client, tree):
    assert admin_client.get("/admin/people/user/add/").status_code == 200
    response = admin_client.post(
        "/admin/people/user/add/",
        {
            "username": "clerk_new",
            "full_name": "新窗口",
            "work_number": "QH9001",
            "password1": "Long-enough-2026!",
            "password2": "Long-enough-2026!",
            "grants-TOTAL_FORMS": "1",
            "grants-INITIAL_FORMS": "0",
            "grants-0-role": Role.CLERK,
            "grants-0-region": tree.town_b.pk,
            "grants-0-unit": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    user = User.objects.get(username="clerk_new")
    assert (user.full_name, user.work_number) == ("新窗口", "QH9001")
    assert user.check_password("Long-enough-2026!")
    assert list(user.grants.values_list("role", "region__name")) == [(Role.CLERK, "河西街道")]
