"""What a new centre trips on in its first hour, each from the user's side."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dispatch import routing, services
from dispatch.models import Case, Notification, RoutingRule
from dispatch.states import Action, Status
from grids.models import Level
from people.models import Role
from tests import factories as f
from tests.dispatch import loopkit
from tests.dispatch.loopkit import in_progress
from tests.factories import png_bytes
from tests.intake.intake_helpers import intake_data

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


def _save(client, tree, **overrides):
    response = client.post("/intake/", intake_data(tree, **overrides), follow=True)
    assert response.status_code == 200
    return response.content.decode(), Case.objects.latest("pk")


@pytest.mark.parametrize(
    ("outcome", "fields", "said", "paper"),
    [
        ("register", {}, "已受理，案件编号", "受理回执"),
        ("resolve", {"result": "当场解答，双方同意错峰施工"}, "已当场办结", "当场办结告知单"),
        (
            "reject",
            {"reject_reason": "属民事合同纠纷", "referral": "县人民法院立案庭"},
            "已登记为不予受理",
            "不予受理告知单",
        ),
    ],
)
def test_each_outcome_has_its_own_words_on_screen_and_on_paper(
    client, tree, people, cats, outcome, fields, said, paper
):
    client.force_login(people.alice)
    body, case = _save(client, tree, outcome=outcome, **fields)
    assert said in body
    if outcome != "register":
        assert "已受理，" not in body
    receipt = client.get(f"/intake/cases/{case.code}/receipt/").content.decode()
    assert f"<h1>{paper}</h1>" in receipt


def test_a_valid_photo_is_kept_when_another_file_is_refused(
    client, tree, people, cats, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(people.alice)
    data = intake_data(tree)
    data["attachments"] = [
        SimpleUploadedFile("现场.png", png_bytes(), "image/png"),
        SimpleUploadedFile("tool.exe", b"MZ\x90\x00" + b"\x00" * 64, "application/octet-stream"),
    ]
    response = client.post("/intake/", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "现场.png" in body  # listed as kept; the clerk does not choose it again
    token = re.search(r'name="pending_attachments" value="([^"]+)"', body).group(1)
    again = intake_data(tree, key=data["intake_key"], pending_attachments=token)
    response = client.post("/intake/", again)
    assert response.status_code == 302
    case = Case.objects.get()
    assert [a.original_name for a in case.attachments.all()] == ["现场.png"]


def test_the_follow_up_chooses_nothing_for_the_supervisor(client, tree, people, loop):
    case = in_progress(tree, people, loop)
    services.submit_feedback(case=case, actor=loop.police, result="已处置")
    services.verify_case(case=case, actor=loop.sup_a, passed=True)
    client.force_login(loop.sup_a)
    page = client.get(f"/cases/{case.code}/").content.decode()
    form = page.split('id="act-followup"', 1)[1].split("</form>", 1)[0]
    assert " checked" not in form  # no satisfaction level is ticked
    assert re.findall(r'<option value="([^"]*)" selected', form) == [""]  # "not confirmed"
    case.refresh_from_db()
    response = client.post(
        f"/cases/{case.code}/followup/",
        {"followup-seen": case.event_count, "followup-note": "电话"},
    )
    assert response.status_code == 400
    assert "请选择回访满意度" in response.content.decode()
    case.refresh_from_db()
    assert case.followup_satisfaction is None
    response = client.post(
        f"/cases/{case.code}/followup/",
        {"followup-seen": case.event_count, "followup-satisfaction": "4"},
    )
    assert response.status_code == 302
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert 'id="act-followup"' not in page
    assert 'id="act-followup_again"' in page and "再次回访" in page


def test_the_resident_hears_of_a_result_only_once_it_passed_verification(tree, people, loop):
    resident = f.party(name="王五", phone="13600001111")
    case = in_progress(tree, people, loop, parties=[(resident, "applicant")])
    services.submit_feedback(case=case, actor=loop.police, result="已处置")
    services.verify_case(case=case, actor=loop.sup_a, passed=False, note="未落实到位")
    services.submit_feedback(case=case, actor=loop.police, result="再次处置")
    sms = Notification.objects.filter(case=case, channel=Notification.Channel.SMS)
    assert not sms.exists()
    services.verify_case(case=case, actor=loop.sup_a, passed=True)
    assert list(sms.values_list("kind", flat=True)) == ["closed"]


def test_acting_on_a_case_settles_the_inbox_items_it_answered(client, tree, people, loop):
    second = f.user("sup_a2", role=Role.SUPERVISOR, region=tree.town_a)
    case = in_progress(tree, people, loop)
    assigned = Notification.objects.get(case=case, recipient=loop.police, kind="assigned")
    assert assigned.read_at is not None  # the police signed: the new task is no news
    services.submit_feedback(case=case, actor=loop.police, result="已处置")
    to_verify = Notification.objects.filter(case=case, kind="feedback")
    assert set(to_verify.values_list("recipient__username", flat=True)) == {"sup_a", "sup_a2"}
    assert not to_verify.exclude(read_at=None).exists()
    services.verify_case(case=case, actor=second, passed=True)
    assert not to_verify.filter(read_at=None).exists()  # nobody keeps "待核查" of a closed case
    client.force_login(loop.sup_a)
    assert "待核查" not in client.get("/work/inbox/").content.decode()


def test_the_timeline_names_the_system_and_the_rule_that_dispatched(client, tree, people, loop):
    rule = RoutingRule.objects.create(
        region=tree.town_a,
        unit=tree.police_a,
        handling_level=Level.TOWNSHIP,
        profile=loop.profile,
        auto_dispatch=True,
    )
    case = loopkit.registered(tree, people)
    assert routing.route_registered_case(case_id=case.pk) == "dispatched"
    event = case.events.get(action=Action.DISPATCHED)
    assert event.actor is None and event.actor_kind == "system"
    client.force_login(people.erin)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert f"系统（派单规则 #{rule.pk}）" in page
    case.refresh_from_db()
    assert case.status == Status.ASSIGNED


def test_working_days_have_one_wording(client, tree, people, loop):
    case = in_progress(tree, people, loop)
    services.request_extension(case=case, actor=loop.police, days=3, reason="等待鉴定")
    client.force_login(loop.sup_a)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert page.count("3个工作日") == 2  # the pending request and the decision's choice
    assert "3天" not in page
