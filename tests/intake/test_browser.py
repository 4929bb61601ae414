"""The counter-to-phone path in a real Chromium: register, print, track on a phone, rate."""

from __future__ import annotations

import os

import pytest
from django.db import connections

from dispatch.models import Case
from dispatch.states import Status
from tests.intake import intake_helpers
from tests.intake.intake_helpers import APPLICANT, drive_to_archive

# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
# synchronous and safe, but Django refuses them under a running loop unless told otherwise.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # The ORM calls the test made while Playwright's loop ran used a connection of that
            # context; close it here, in the same context, or it outlives the test database.
            connections.close_all()


def test_register_print_track_and_rate(browser, live_server, tree, people, cats):
    base = live_server.url
    desk = browser.new_context(locale="zh-CN")
    page = desk.new_page()
    # Nothing may be loaded from outside the product.
    outside = []
    page.on("request", lambda r: None if r.url.startswith(base) else outside.append(r.url))

    page.goto(f"{base}/login/?next=/intake/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pass-Zz-2026")
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{base}/intake/")

    page.fill("input[name=applicants-0-name]", APPLICANT["name"])
    page.fill("input[name=applicants-0-phone]", APPLICANT["phone"])
    page.fill("input[name=applicants-0-id_number]", APPLICANT["id_number"])
    page.fill("input[name=respondents-0-name]", "李四")
    page.fill("input[name=category]", "矛盾纠纷 / 邻里纠纷")
    page.fill("input[name=summary]", "楼上装修噪音扰民")
    page.fill("textarea[name=narrative]", intake_helpers.NARRATIVE)
    # The region picker: search by pinyin initials, Enter picks the first hit.
    page.fill("#region-search", "dgc")
    page.wait_for_selector("#region-results li")
    page.press("#region-search", "Enter")
    assert page.input_value("select[name=region]") == str(tree.village_a1.pk)
    page.click("#save")
    page.wait_for_url(f"{base}/intake/cases/*/")
    code = page.inner_text("#case-code").strip()
    case = Case.objects.get(code=code)
    assert case.status == Status.REGISTERED

    page.click("text=打印受理单")
    page.wait_for_load_state()
    assert code in page.content()
    desk.close()

    drive_to_archive(case, tree, people)

    phone = browser.new_context(
        viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    mobile = phone.new_page()
    response = mobile.goto(f"{base}/t/{case.tracking_token}")
    assert response.status == 200
    assert response.headers["cache-control"] == "no-store"
    assert "结案归档" in mobile.inner_text("main")
    body = mobile.content()
    assert APPLICANT["name"] not in body and APPLICANT["phone"] not in body
    # Fits the phone: no horizontal scrolling.
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 375

    mobile.click("text=大字模式")
    mobile.wait_for_url("**?large=1")
    mobile.check("input[name=rating][value='5']")
    mobile.fill("textarea[name=comment]", "处理及时")
    mobile.click("text=提交评价")
    mobile.wait_for_selector("text=您的评价")
    assert "非常满意" in mobile.inner_text("main")
    case.refresh_from_db()
    assert case.resident_rating == 5
    phone.close()
    assert outside == []
