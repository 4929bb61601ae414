"""The clerk's intake screen, driven over HTTP as the browser does."""

from __future__ import annotations

import html
import uuid

import pytest

from dispatch.codes import is_valid_code
from dispatch.models import Case, CaseEvent
from dispatch.states import Action, Status
from people.models import Party
from tests.intake.intake_helpers import APPLICANT, NARRATIVE, intake_data, register_via_http

pytestmark = pytest.mark.django_db


def test_alice_registers_a_case_and_sees_its_code(client, tree, people, cats):
    client.force_login(people.alice)
    page = client.get("/intake/")
    assert page.status_code == 200
    assert 'name="intake_key"' in page.content.decode()

    response = client.post("/intake/", intake_data(tree))
    assert response.status_code == 302
    case = Case.objects.get()
    assert case.status == Status.REGISTERED
    assert case.owner_unit == tree.centre_a
    assert case.created_by == people.alice
    assert is_valid_code(case.code)
    assert list(case.case_parties.values_list("role", flat=True)) == ["applicant", "respondent"]

    result = client.get(response["Location"])
    body = result.content.decode()
    assert case.code in body
    # Staff pages mask personal data by default.
    assert APPLICANT["phone"] not in body and "139****5678" in body
    assert APPLICANT["id_number"] not in body


def test_other_roles_and_anonymous_cannot_open_the_screen(client, tree, people, cats):
    assert client.get("/intake/").status_code == 302  # to the login page
    client.force_login(people.carol)
    assert client.get("/intake/").status_code == 403


def test_resolve_on_the_spot_closes_the_case(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(client, tree, outcome="resolve", result="当场解释政策，群众满意")
    assert case.status == Status.ARCHIVED
    assert case.lead_unit == tree.centre_a
    assert case.closed_at is not None


def test_not_accepted_records_reason_and_referral(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(
        client,
        tree,
        outcome="reject",
        reject_reason="属于民事诉讼范围",
        referral="青禾县人民法院立案庭",
    )
    assert case.status == Status.REJECTED
    assert case.reject_reason == "属于民事诉讼范围"
    assert case.referral == "青禾县人民法院立案庭"


def test_reject_without_reason_keeps_everything_typed(client, tree, people, cats):
    client.force_login(people.alice)
    response = client.post("/intake/", intake_data(tree, outcome="reject"))
    assert response.status_code == 400
    body = response.content.decode()
    assert "不予受理须填写理由" in body
    assert NARRATIVE in body
    assert not Case.objects.exists()


def test_retry_with_the_same_intake_key_makes_one_case(client, tree, people, cats):
    client.force_login(people.alice)
    key = uuid.uuid4()
    first = client.post("/intake/", intake_data(tree, key=key))
    second = client.post("/intake/", intake_data(tree, key=key))
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert Case.objects.count() == 1
    assert CaseEvent.objects.filter(action=Action.REGISTERED).count() == 1


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("applicants-0-id_number", "110105194912310021", "身份证号码校验位不正确"),
        ("applicants-0-phone", "1391234", "电话号码格式不正确"),
        ("category", "不存在的分类", "没有找到分类"),
    ],
)
def test_invalid_input_gets_a_message_and_keeps_what_was_typed(
    client, tree, people, cats, field, value, message
):
    client.force_login(people.alice)
    data = intake_data(tree, **{field: value}, summary="邻居占用楼道堆放杂物")
    response = client.post("/intake/", data)
    assert response.status_code == 400
    body = html.unescape(response.content.decode())
    assert message in body
    assert f'value="{value}"' in body
    assert "邻居占用楼道堆放杂物" in body
    assert NARRATIVE in body
    assert "李四" in body
    assert not Case.objects.exists()


def test_missing_applicant_is_refused(client, tree, people, cats):
    client.force_login(people.alice)
    data = intake_data(
        tree,
        **{
            "applicants-0-name": "",
            "applicants-0-phone": "",
            "applicants-0-id_number": "",
            "applicants-0-address": "",
        },
    )
    response = client.post("/intake/", data)
    assert response.status_code == 400
    assert "请至少填写一名申请人" in response.content.decode()


def test_lookup_does_not_show_cases_of_another_township(client, tree, people, cats):
    client.force_login(people.alice)
    first = register_via_http(client, tree)
    client.force_login(people.bob)
    response = client.post("/intake/", intake_data(tree, action="find", find=APPLICANT["phone"]))
    assert first.code not in response.content.decode()


def test_adding_a_party_row_without_javascript(client, tree, people, cats):
    client.force_login(people.alice)
    response = client.post("/intake/", intake_data(tree, action="add_respondent"))
    body = response.content.decode()
    assert 'name="respondents-1-name"' in body
    assert 'value="李四"' in body
    assert not Case.objects.exists()


def test_two_respondents_are_saved(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(
        client,
        tree,
        **{
            "respondents-TOTAL_FORMS": "2",
            "respondents-1-name": "某装修公司",
            "respondents-1-is_organisation": "on",
            "respondents-1-phone": "",
            "respondents-1-id_number": "",
            "respondents-1-address": "",
        },
    )
    names = sorted(p.name for p in case.parties.all())
    assert names == sorted([APPLICANT["name"], "李四", "某装修公司"])


def test_duplicate_is_flagged_and_can_be_linked(client, tree, people, cats):
    client.force_login(people.alice)
    first = register_via_http(client, tree)
    again = client.post("/intake/", intake_data(tree, summary="楼上装修噪音扰民严重"))
    assert again.status_code == 409
    body = again.content.decode()
    assert "可能重复的诉求" in body and first.code in body
    assert Case.objects.count() == 1

    key = uuid.uuid4()
    linked = client.post("/intake/", intake_data(tree, key=key, link_to=first.code))
    assert linked.status_code == 302
    linked = client.post("/intake/", intake_data(tree, key=key, link_to=first.code))
    assert Case.objects.count() == 1
    assert first.events.filter(action=Action.LINKED).count() == 1


def test_similar_summary_in_the_same_village_is_flagged(client, tree, people, cats):
    client.force_login(people.alice)
    first = register_via_http(client, tree)
    other = intake_data(
        tree,
        category="wages",
        summary="楼上装修噪音扰民",
        **{
            "applicants-0-name": "赵六",
            "applicants-0-phone": "13700001111",
            "applicants-0-id_number": "",
        },
    )
    response = client.post("/intake/", other)
    assert response.status_code == 409
    assert first.code in response.content.decode()

    other["confirm_new"] = "on"
    assert client.post("/intake/", other).status_code == 302
    assert Case.objects.count() == 2


def test_region_picker_searches_name_code_and_initials(client, tree, people, cats):
    client.force_login(people.alice)
    by_name = client.get("/intake/regions.json", {"q": "东关"}).json()["results"]
    assert tree.village_a1.code in [r["code"] for r in by_name]
    by_initials = client.get("/intake/regions.json", {"q": "dgc"}).json()["results"]
    assert tree.village_a1.code in [r["code"] for r in by_initials]
    by_code = client.get("/intake/regions.json", {"q": "139901101202"}).json()["results"]
    assert [r["code"] for r in by_code] == ["139901101202"]
    # Township B is not alice's to register in.
    assert client.get("/intake/regions.json", {"q": "滨河"}).json()["results"] == []


def test_a_region_outside_the_clerks_township_is_refused(client, tree, people, cats):
    client.force_login(people.alice)
    response = client.post("/intake/", intake_data(tree, region=str(tree.village_b1.pk)))
    assert response.status_code == 400
    assert "请选择有效的事发地" in response.content.decode()


def test_category_by_pinyin_initials(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(client, tree, category="lljf")
    assert case.category == cats["neighbour"]


SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_markup_in_every_text_field_is_inert_on_the_result_page(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(
        client,
        tree,
        summary=SCRIPT,
        narrative=SCRIPT,
        address_detail=SCRIPT,
        **{
            "applicants-0-name": SCRIPT,
            "applicants-0-address": SCRIPT,
            "respondents-0-name": SCRIPT,
        },
    )
    body = client.get(f"/intake/cases/{case.code}/").content.decode()
    assert "<script>alert" not in body
    assert "<img src=x" not in body
    assert "&lt;script&gt;" in body
    assert Party.objects.filter(name=SCRIPT).exists()


def test_markup_typed_at_intake_is_inert_on_the_staff_case_page(client, tree, people, cats):
    from django.urls import reverse

    client.force_login(people.alice)
    case = register_via_http(
        client,
        tree,
        summary=SCRIPT,
        narrative=SCRIPT,
        address_detail=SCRIPT,
        **{"applicants-0-name": SCRIPT},
    )
    client.force_login(people.erin)
    response = client.get(reverse("dispatch:case", kwargs={"code": case.code}))
    assert response.status_code == 200
    body = response.content.decode()
    assert case.code in body
    assert "<script>alert" not in body and "<img src=x" not in body


def test_category_picker_json(client, tree, people, cats):
    client.force_login(people.alice)
    rows = client.get("/intake/categories.json", {"q": "lljf"}).json()["results"]
    assert [r["label"] for r in rows] == ["矛盾纠纷 / 邻里纠纷"]
    everything = client.get("/intake/categories.json").json()["results"]
    assert {r["code"] for r in everything} == {"neighbour", "wages"}


def test_find_with_a_malformed_number_explains(client, tree, people, cats):
    client.force_login(people.alice)
    response = client.post("/intake/", intake_data(tree, action="find", find="12345"))
    assert response.status_code == 200
    assert "电话号码格式不正确" in response.content.decode()
