"""The resident's tracking page: what it shows, what it never shows, and what it lets them do."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.cache import cache
from django.utils import timezone

from dispatch import services
from dispatch.models import Case, CaseEvent
from dispatch.states import Action, Status
from tests import factories as f
from tests.intake.intake_helpers import (
    APPLICANT,
    NARRATIVE,
    drive_to_feedback,
    register_via_http,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(client, tree)
    client.logout()
    return case


def page(client, case, **params):
    response = client.get(f"/t/{case.tracking_token}", params)
    assert response.status_code == 200
    return response.content.decode()


def current_step(body: str) -> str:
    match = re.search(r'<li class="current" aria-current="step"><span class="label">([^<]+)<', body)
    return match.group(1) if match else ""


def test_tracking_page_shows_the_current_step_without_login(client, case, tree):
    body = page(client, case)
    assert case.code in body
    assert "邻里纠纷" in body
    assert current_step(body) == "案卷建立"
    assert "第2步，共6步" in body
    assert tree.centre_a.name in body  # the handling unit


def test_tracking_page_headers_and_noindex(client, case):
    for url in (f"/t/{case.tracking_token}", "/t/", "/t/not-a-token"):
        response = client.get(url)
        assert response["Cache-Control"] == "no-store", url
        assert response["Referrer-Policy"] == "no-referrer", url
        assert response["X-Robots-Tag"] == "noindex", url
        assert '<meta name="robots" content="noindex' in response.content.decode(), url


def test_tracking_page_reveals_nothing_personal(client, case, tree, people):
    drive_to_feedback(case, tree, people)
    cache.clear()
    body = page(client, case)
    for secret in (
        APPLICANT["name"],
        APPLICANT["phone"],
        APPLICANT["id_number"],
        APPLICANT["address"],
        NARRATIVE,
        "李四",
        "138",
        "****",
        people.alice.full_name,
        people.erin.full_name,
        "已调解，双方达成协议",
    ):
        assert secret not in body, secret
    assert "王" not in body.split("<main>", 1)[1]  # not even a masked name


def test_the_page_follows_events_through_the_cache(
    client, case, tree, people, django_capture_on_commit_callbacks
):
    assert current_step(page(client, case)) == "案卷建立"
    with django_capture_on_commit_callbacks(execute=True):
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.police_a, profile=f.profile()
        )
    assert current_step(page(client, case)) == "任务指派"


def test_unknown_revoked_and_malformed_tokens_answer_the_same_404(
    client, case, people, django_capture_on_commit_callbacks
):
    old = case.tracking_token
    page(client, case)  # cached under the old token
    with django_capture_on_commit_callbacks(execute=True):
        services.reissue_tracking_token(case=case, actor=people.alice)
    case.refresh_from_db()
    assert case.tracking_token != old
    revoked = client.get(f"/t/{old}")
    unknown = client.get("/t/" + "A" * 22)
    malformed = client.get("/t/<script>")
    code_only = client.get(f"/t/{case.code}")
    assert {r.status_code for r in (revoked, unknown, malformed, code_only)} == {404}
    assert revoked.content == unknown.content == malformed.content == code_only.content
    assert case.code in page(client, case)


def test_lookup_by_code_and_last_four_digits(client, case):
    wrong = client.post("/t/", {"code": case.code, "last4": "0000"})
    unknown = client.post("/t/", {"code": "13990120261123999990", "last4": "5678"})
    assert wrong.status_code == unknown.status_code == 404
    # Same answer; each page only echoes the code its visitor typed.
    assert wrong.content.decode().replace(case.code, "") == unknown.content.decode().replace(
        "13990120261123999990", ""
    )
    assert "案件编号或手机号后四位不正确" in wrong.content.decode()
    right = client.post("/t/", {"code": case.code, "last4": APPLICANT["phone"][-4:]})
    assert right.status_code == 302
    assert right["Location"] == f"/t/{case.tracking_token}"


def test_lookup_is_rate_limited_per_code_and_per_address(client, case):
    for _ in range(5):
        assert client.post("/t/", {"code": case.code, "last4": "0000"}).status_code == 404
    limited = client.post("/t/", {"code": case.code, "last4": APPLICANT["phone"][-4:]})
    assert limited.status_code == 429  # even the right answer, once the code is locked
    cache.clear()
    for i in range(10):
        client.post("/t/", {"code": f"1399012026112300{i:03d}1", "last4": "0000"})
    other = client.post("/t/", {"code": case.code, "last4": APPLICANT["phone"][-4:]})
    assert other.status_code == 429
    fresh = client.post(
        "/t/", {"code": case.code, "last4": APPLICANT["phone"][-4:]}, REMOTE_ADDR="10.0.0.9"
    )
    assert fresh.status_code == 302


def test_resident_rates_once_after_the_result_is_verified(
    client, case, tree, people, django_capture_on_commit_callbacks
):
    body = page(client, case)
    assert "提交评价" not in body  # nothing to rate before a result
    assert client.post(f"/t/{case.tracking_token}/rate", {"rating": "5"}).status_code == 400

    with django_capture_on_commit_callbacks(execute=True):
        drive_to_feedback(case, tree, people)
    # A result not yet verified may still be sent back for rework: not for rating yet.
    assert "提交评价" not in page(client, case)
    assert client.post(f"/t/{case.tracking_token}/rate", {"rating": "5"}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        services.verify_case(case=case, actor=people.dave, passed=True)
    assert "提交评价" in page(client, case)
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(f"/t/{case.tracking_token}/rate", {"rating": "4", "comment": "很好"})
    assert done.status_code == 302
    case.refresh_from_db()
    assert case.resident_rating == 4 and case.resident_comment == "很好"
    body = page(client, case)
    assert "提交评价" not in body and "满意" in body

    again = client.post(f"/t/{case.tracking_token}/rate", {"rating": "1"})
    assert again.status_code == 400
    assert "只能评价一次" in again.content.decode()
    case.refresh_from_db()
    assert case.resident_rating == 4
    assert case.events.filter(action=Action.RATED).count() == 1


def test_negative_rating_offers_reopen_once(
    client, case, tree, people, django_capture_on_commit_callbacks
):
    drive_to_feedback(case, tree, people)
    services.verify_case(case=case, actor=people.dave, passed=True)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/t/{case.tracking_token}/rate", {"rating": "1", "comment": "没解决"})
    assert "申请重办" in page(client, case)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/t/{case.tracking_token}/reopen", {"reason": "噪音仍在"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS and case.reopen_count == 1
    body = page(client, case)
    assert "申请重办" not in body
    assert client.post(f"/t/{case.tracking_token}/reopen").status_code == 400


def test_urge_while_overdue_once_a_day(
    client, case, tree, people, django_capture_on_commit_callbacks
):
    from dispatch.services import DispatchError, resident_urge_case

    services.dispatch_case(case=case, actor=people.erin, unit=tree.police_a, profile=f.profile())
    assert client.post(f"/t/{case.tracking_token}/urge").status_code == 400  # not late yet
    past = timezone.now() - dt.timedelta(hours=1)
    Case.objects.filter(pk=case.pk).update(due_at=past)  # the clock has run out
    cache.clear()
    assert "催办" in page(client, case)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/t/{case.tracking_token}/urge").status_code == 302
    again = client.post(f"/t/{case.tracking_token}/urge")
    assert again.status_code == 400
    assert "今天已经催办过了" in again.content.decode()
    assert CaseEvent.objects.filter(case=case, action=Action.RESIDENT_URGED).count() == 1
    assert "您今天已催办" in page(client, case)

    tomorrow = timezone.now() + dt.timedelta(days=1)
    case.refresh_from_db()
    resident_urge_case(case=case, now=tomorrow)
    with pytest.raises(DispatchError):
        resident_urge_case(case=case, now=tomorrow + dt.timedelta(minutes=5))
    assert CaseEvent.objects.filter(case=case, action=Action.RESIDENT_URGED).count() == 2


def test_urge_reaches_the_supervisors(client, case, tree, people):
    from dispatch.models import Notification

    services.dispatch_case(case=case, actor=people.erin, unit=tree.police_a, profile=f.profile())
    Case.objects.filter(pk=case.pk).update(due_at=timezone.now() - dt.timedelta(hours=1))
    assert client.post(f"/t/{case.tracking_token}/urge").status_code == 302
    recipients = set(
        Notification.objects.filter(case=case, kind="resident_urged").values_list(
            "recipient__username", flat=True
        )
    )
    assert "dave" in recipients  # the county supervisor covers township A's centre


SCRIPT = '<script>alert("x")</script>'


def test_markup_is_inert_on_the_tracking_page(
    client, tree, people, cats, django_capture_on_commit_callbacks
):
    client.force_login(people.alice)
    case = register_via_http(
        client, tree, outcome="reject", reject_reason=SCRIPT, referral=SCRIPT, summary=SCRIPT
    )
    client.logout()
    body = page(client, case)
    assert "<script>" not in body
    assert "&lt;script&gt;" in body  # the reason and referral are shown, escaped


def test_a_repeat_visit_is_served_from_the_cache_without_queries(
    client, case, django_assert_num_queries
):
    first = page(client, case)
    with django_assert_num_queries(0):
        again = page(client, case)
    assert again == first
    assert page(client, case, large="1") != first  # the large-text page is its own entry
    assert 'class="public large"' in page(client, case, large="1")


def test_a_page_rendered_from_a_read_that_raced_an_event_is_never_served(
    client, case, tree, people, django_capture_on_commit_callbacks
):
    from intake import public_views

    real = public_views._render_tracking

    def render_then_event(*args, **kwargs):
        html = real(*args, **kwargs)  # rendered from the state before the event
        with django_capture_on_commit_callbacks(execute=True):
            services.dispatch_case(
                case=case, actor=people.erin, unit=tree.police_a, profile=f.profile()
            )
        return html

    public_views._render_tracking = render_then_event
    try:
        assert current_step(page(client, case)) == "案卷建立"
    finally:
        public_views._render_tracking = real
    assert current_step(page(client, case)) == "任务指派"


def test_a_first_visit_costs_two_queries_whatever_the_number_of_cases(
    client, case, django_assert_num_queries
):
    # One indexed lookup by token (with its units and category), one for the public events.
    with django_assert_num_queries(2):
        page(client, case)
