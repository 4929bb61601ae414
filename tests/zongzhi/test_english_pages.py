"""Every desk in English: no Chinese is left on a page except the data itself.

Each person logs in and switches to English (kept on the profile) before the data is built, so
that what the system writes for them (notifications) is written in English too. Then each opens
their pages in states where the action forms are shown: the clerk's intake screen, result page
and receipt; the dispatcher's queue and case page; the handler's inbox and case page; the
supervisor's queue and case page with its decisions; the resident's tracking and lookup pages.
"""

from __future__ import annotations

import re

import pytest

from dispatch import services
from dispatch.models import Case, Category, DeadlineProfile
from grids.models import Region, Unit
from people.models import User
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at, in_progress, registered
from tests.intake import intake_helpers
from tests.intake.intake_helpers import drive_to_archive, intake_data, register_via_http
from tests.zongzhi import test_i18n
from tests.zongzhi.test_i18n import chinese_left, switch_to_english

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture
english_catalog = test_i18n.english_catalog  # compiled before the first page is rendered

# A date written the Chinese way (the date filter's format must come from the locale).
CHINESE_DATE = re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月(\s*\d{1,2}\s*日)?")
# Full-width punctuation and spaces (：；，。（）、「」　...) belong to Chinese sentences.
FULL_WIDTH = re.compile(r"[\u3000-\u303f\uff01-\uff5e]")
# What the tests below typed as people would: a note, a reason, a referral.
TYPED = ["抓紧办理", "等待鉴定", "等待法院判决", "不属本所职责", "属于法院受理范围"]
TYPED += ["青禾县人民法院", "已处置", "处理太慢", "李四", "王五"]
TYPED += [intake_helpers.APPLICANT["name"], intake_helpers.APPLICANT["address"]]


def english(client, user) -> None:
    """Log ``user`` in and switch them to English (on their profile)."""
    client.force_login(user)
    switch_to_english(client)


def data_values() -> list[str]:
    """The data on the pages (the same kinds that ``chinese_left`` removes), longest first."""
    data = [
        *Region.objects.values_list("name", flat=True),
        *Unit.objects.values_list("name", flat=True),
        *User.objects.values_list("full_name", flat=True),
        *(str(c) for c in Category.objects.all()),
        *Category.objects.values_list("name", flat=True),
        intake_helpers.NARRATIVE,
        "已调解，双方达成协议",
        *TYPED,
    ]
    for case in Case.objects.all():
        data += [case.summary, case.narrative, case.address_detail, case.result]
        data += [link.party.masked_name for link in case.case_parties.select_related("party")]
    return sorted({d for d in data if d}, key=len, reverse=True)


def problems(body: str) -> dict[str, list[str]]:
    """Chinese words, Chinese dates and full-width punctuation outside the data."""
    # Data that chinese_left does not know: what was typed, the time-limit schemes' names.
    for value in [*TYPED, *DeadlineProfile.objects.values_list("name", flat=True)]:
        body = body.replace(value, " ")
    found = {"chinese": chinese_left(body), "dates": [], "punctuation": []}
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    for value in data_values():
        text = text.replace(value, " ")
    found["dates"] = [m.group() for m in CHINESE_DATE.finditer(text)]
    found["punctuation"] = [
        text[max(0, m.start() - 30) : m.end() + 30] for m in FULL_WIDTH.finditer(text)
    ]
    return {k: v for k, v in found.items() if v}


def check(client, url: str, *, method: str = "get", data=None, status=200) -> str:
    response = client.post(url, data) if method == "post" else client.get(url)
    assert response.status_code == status, (url, response.status_code)
    body = response.content.decode()
    assert '<html lang="en">' in body, url
    assert "{#" not in body and "{%" not in body, url  # no template syntax shown as text
    assert problems(body) == {}, url
    return body


def test_the_clerks_pages(client, tree, people, cats):
    english(client, people.alice)
    intake = check(client, "/intake/")
    assert "Counter intake" in intake
    case = register_via_http(client, tree)
    result = check(client, f"/intake/cases/{case.code}/")
    assert "Applicant" in result
    for size in ("a4", "a5", "80mm"):
        receipt = check(client, f"/intake/cases/{case.code}/receipt/?size={size}")
        assert case.code in receipt
    # The screen with its errors kept, with a found party, with a possible duplicate.
    check(client, "/intake/", method="post", data=intake_data(tree, summary=""), status=400)
    check(
        client,
        "/intake/",
        method="post",
        data=intake_data(tree, action="find", find=intake_helpers.APPLICANT["phone"]),
    )
    duplicate = check(client, "/intake/", method="post", data=intake_data(tree), status=409)
    assert case.code in duplicate
    # Resolved on the spot, and not accepted (the reason and where to go on the receipt).
    resolved = register_via_http(
        client, tree, outcome="resolve", result="已调解，双方达成协议", confirm_new="on"
    )
    rejected = register_via_http(
        client,
        tree,
        outcome="reject",
        reject_reason="属于法院受理范围",
        referral="青禾县人民法院",
        confirm_new="on",
    )
    for done in (resolved, rejected):
        check(client, f"/intake/cases/{done.code}/")
        check(client, f"/intake/cases/{done.code}/receipt/")


def test_the_dispatchers_pages(client, tree, people, loop):
    english(client, people.erin)
    reported = loopkit.new_case(tree, people)
    case = registered(tree, people)
    returned = in_progress(tree, people, loop)
    services.return_case(case=returned, actor=loop.police, reason="不属本所职责")
    client.force_login(people.erin)
    queue = check(client, "/work/dispatcher/")
    assert "Dispatch desk" in queue
    for shown in (reported, case, returned):
        page = check(client, f"/cases/{shown.code}/")
        assert "Available actions" in page and "<form" in page


def test_the_handlers_pages(client, tree, people, loop):
    english(client, loop.police)
    pending = registered(tree, people)
    services.dispatch_case(
        case=pending, actor=people.erin, unit=tree.police_a, profile=loop.profile
    )
    urged = in_progress(tree, people, loop)
    services.urge_case(case=urged, actor=people.dave, note="抓紧办理")
    overdue = in_progress(tree, people, loop)
    Case.objects.filter(pk=overdue.pk).update(due_at=at(-60, 9))
    client.force_login(loop.police)
    inbox = check(client, "/work/inbox/")
    assert "Handling desk" in inbox
    for shown in (pending, urged, overdue):
        page = check(client, f"/cases/{shown.code}/")
        assert "Available actions" in page and "<form" in page


def test_the_supervisors_pages(client, tree, people, loop):
    english(client, people.dave)
    extension = in_progress(tree, people, loop)
    services.request_extension(
        case=extension, actor=loop.police, days=2, reason="等待鉴定", now=at(0, 12)
    )
    pause = in_progress(tree, people, loop)
    services.request_pause(case=pause, actor=loop.police, reason="等待法院判决", now=at(0, 12))
    feedback = in_progress(tree, people, loop)
    services.submit_feedback(case=feedback, actor=loop.police, result="已处置")
    overdue = in_progress(tree, people, loop)
    Case.objects.filter(pk=overdue.pk).update(due_at=at(-60, 9))
    archived = in_progress(tree, people, loop)
    services.submit_feedback(case=archived, actor=loop.police, result="已处置")
    services.verify_case(case=archived, actor=people.dave, passed=True)
    client.force_login(people.dave)
    queue = check(client, "/work/supervise/")
    assert "等待鉴定" in queue
    for shown in (extension, pause, feedback, overdue, archived):
        page = check(client, f"/cases/{shown.code}/")
        assert "Available actions" in page and "<form" in page
    assert 'id="act-decide"' in check(client, f"/cases/{extension.code}/")
    assert 'id="act-verify"' in check(client, f"/cases/{feedback.code}/")
    assert 'id="act-followup"' in check(client, f"/cases/{archived.code}/")


def test_the_residents_pages(client, tree, people, cats, django_capture_on_commit_callbacks):
    client.force_login(people.alice)
    case = register_via_http(client, tree)
    client.logout()
    url = f"/t/{case.tracking_token}"
    switch_to_english(client, url)
    check(client, url)
    check(client, f"{url}?large=1")
    with django_capture_on_commit_callbacks(execute=True):
        drive_to_archive(case, tree, people)
    assert "Please rate our work" in check(client, url)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"{url}/rate", {"rating": "2", "comment": "处理太慢"})
    assert response.status_code in (302, 303)
    rated = check(client, url)
    assert 'action="' + url + '/reopen"' in rated
    check(client, "/t/")
    check(client, "/t/", method="post", data={"code": case.code, "last4": "0000"}, status=404)


def test_python_joins_and_brackets_are_english(client, tree, people, loop):
    """Brackets and lists that the code puts together are in English too."""
    english(client, people.dave)
    case = registered(tree, people)
    pages = [page_of(client, "/work/supervise/"), page_of(client, f"/cases/{case.code}/")]
    english(client, people.alice)
    register_via_http(client, tree, confirm_new="on")
    # The same ID number typed with another name and phone: the clerk is asked to confirm.
    other = {"applicants-0-name": "王五", "applicants-0-phone": "13900002222"}
    conflict = client.post("/intake/", intake_data(tree, confirm_new="on", **other))
    assert conflict.status_code == 409
    pages.append(conflict.content.decode())
    assert [problems(page) for page in pages] == [{}, {}, {}]


def page_of(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()
