"""The layout as Chromium draws it, on a desk and on a phone, in Chinese and in English.

Each check measures boxes, not markup: the language switch on one line, a phone's header small
enough to leave the screen to the work, the grade (等级) never broken inside a word, the result
page's labels level with their values, the case code in large-text mode never broken inside, and
the resident's record list numbered the way it is ordered.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.utils import timezone, translation

from dispatch import services
from intake.selectors import tracking_context
from tests.dispatch import loopkit
from tests.dispatch.loopkit import in_progress, registered
from tests.intake.intake_helpers import drive_to_archive, register_via_http

# Playwright's sync API runs an event loop in this thread; see tests/intake/test_browser.py.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
loop = loopkit.loop  # the fixture

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "pass-Zz-2026"
DESKTOP = {"viewport": {"width": 1366, "height": 768}}
PHONE = {"viewport": {"width": 375, "height": 667}, "is_mobile": True, "has_touch": True}
SCREENS = {"desktop": DESKTOP, "phone": PHONE}
# What a clerk types as a summary is often a full sentence; the queues must stay readable.
LONG_SUMMARY = (
    "楼上住户每晚十一点后装修，电钻声持续两小时，多次协商未果，要求社区出面协调并督促整改"
)

# The boxes of an element's text, one per line it occupies (a Range's client rects).
TEXT_LINES = """(el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = [...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top));
  return new Set(tops).size;
}"""

SCROLL_WIDTH = "document.documentElement.scrollWidth"
# The outermost elements whose right edge is past the viewport's.
STICKING_OUT = """(width) => {
  const out = (el) => el && el.getBoundingClientRect().right > width + 0.5;
  return [...document.querySelectorAll("body *")].filter(el => out(el) && !out(el.parentElement))
    .slice(0, 5).map(el => el.outerHTML.slice(0, 160));
}"""

# The number each item of an <ol> shows, as HTML defines it (start, reversed, value).
OL_NUMBERS = """(ol) => {
  const items = [...ol.children].filter(e => e.tagName === "LI");
  let n = ol.hasAttribute("start") ? ol.start : (ol.reversed ? items.length : 1);
  return items.map(li => {
    if (li.hasAttribute("value")) n = parseInt(li.getAttribute("value"), 10);
    const shown = n;
    n += ol.reversed ? -1 : 1;
    return [shown, li.innerText, getComputedStyle(li).listStyleType];
  });
}"""


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()
            # See tests/intake/test_browser.py: close the ORM connections of Playwright's context.
            connections.close_all()


class Desk:
    """One browser context at one screen size, logged in as one person, in one language."""

    def __init__(self, browser, base: str, screen: str, language: str):
        self.base = base
        self.screen = screen
        self.language = language
        self.context = browser.new_context(locale="zh-CN", **SCREENS[screen])
        self.page = self.context.new_page()
        self.outside: list[str] = []
        self.page.on(
            "request", lambda r: None if r.url.startswith(base) else self.outside.append(r.url)
        )

    def log_in(self, username: str, then: str = "/") -> None:
        page = self.page
        self.context.clear_cookies()
        page.goto(f"{self.base}/login/?next={then}")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_url(f"{self.base}{then}")
        if self.language != settings.LANGUAGE_CODE:
            # The header's own switch, as a person uses it (kept on their profile).
            page.select_option("form.lang select[name=language]", self.language)
            with page.expect_navigation(wait_until="load"):  # the stylesheets too
                page.click("form.lang button[type=submit]")
            assert page.get_attribute("html", "lang") == self.language

    def goto(self, path: str) -> None:
        response = self.page.goto(f"{self.base}{path}")
        assert response.status == 200, path

    def box(self, selector: str) -> dict:
        box = self.page.locator(selector).first.bounding_box()
        assert box is not None, selector
        return box

    def close(self) -> None:
        self.context.close()
        assert self.outside == []  # nothing loaded from outside the product


def _ids(param) -> str:
    return "-".join(param)


COMBINATIONS = [("desktop", "zh-hans"), ("desktop", "en"), ("phone", "zh-hans"), ("phone", "en")]


@pytest.fixture(params=COMBINATIONS, ids=_ids)
def desk(request, browser, live_server):
    screen, language = request.param
    desk = Desk(browser, live_server.url, screen, language)
    yield desk
    desk.close()


@pytest.fixture
def work(tree, people, loop, cats):
    """Cases in every queue, with a summary as long as clerks write them."""
    client = Client()
    client.force_login(people.alice)
    result = register_via_http(client, tree)
    for _ in range(2):
        registered(tree, people, summary=LONG_SUMMARY)
    in_progress(tree, people, loop, summary=LONG_SUMMARY)
    feedback = in_progress(tree, people, loop, summary=LONG_SUMMARY)
    services.submit_feedback(case=feedback, actor=loop.police, result="已处置")
    return result


def header_measures(desk: Desk) -> dict:
    select, button = desk.box("form.lang select"), desk.box("form.lang button")
    header = desk.box("header.topbar")
    return {
        "select": select,
        "button": button,
        "header_height": header["height"],
        "viewport_height": desk.page.viewport_size["height"],
    }


def assert_header(desk: Desk, where: str) -> None:
    m = header_measures(desk)
    select, button = m["select"], m["button"]
    # One line: the button beside the select, their boxes level.
    assert button["x"] >= select["x"] + select["width"] - 1, (where, m)
    assert abs(button["y"] - select["y"]) <= 4, (where, m)
    assert abs((button["y"] + button["height"]) - (select["y"] + select["height"])) <= 4, m
    if desk.screen == "phone":
        assert m["header_height"] <= 0.12 * m["viewport_height"], (where, m)
    # The page itself never scrolls sideways (the message names what sticks out).
    assert desk.page.evaluate(SCROLL_WIDTH) <= desk.page.viewport_size["width"], (
        where,
        desk.page.evaluate(STICKING_OUT, desk.page.viewport_size["width"]),
    )


DESKS = {
    "erin": ["/", "/work/dispatcher/", "/cases/{code}/"],
    "alice": ["/intake/", "/intake/cases/{code}/"],
    "police": ["/work/inbox/"],
    "dave": ["/work/supervise/", "/cases/{code}/"],
}


def test_the_header_on_every_desk(desk, work):
    for username, paths in DESKS.items():
        desk.log_in(username)
        for path in paths:
            desk.goto(path.format(code=work.code))
            assert_header(desk, f"{username} {path}")


def test_the_grade_is_on_one_line(desk, work):
    desk.log_in("erin", "/work/dispatcher/")
    page = desk.page
    heads = page.locator("table.queue").first.locator("thead th")
    labels = [t.strip() for t in heads.all_inner_texts()]
    grade = labels.index("等级" if desk.language == "zh-hans" else "Grade")
    cells = page.locator(f"table.queue tbody tr td:nth-child({grade + 1})")
    assert cells.count() >= 3
    for i in range(cells.count()):
        cell = cells.nth(i)
        assert cell.evaluate(TEXT_LINES) == 1, (cell.inner_text(), cell.bounding_box())


def test_labels_level_with_their_values_on_the_result_page(desk, work):
    desk.log_in("alice", f"/intake/cases/{work.code}/")
    pairs = desk.page.evaluate(
        """() => [...document.querySelectorAll("dl.facts dt")].map(dt => {
          const dd = dt.nextElementSibling;
          const a = dt.getBoundingClientRect(), b = dd.getBoundingClientRect();
          return [dt.innerText, Math.round(a.top * 10) / 10, Math.round(b.top * 10) / 10,
                  Math.round(a.left), Math.round(b.left)];
        })"""
    )
    assert len(pairs) >= 5
    for label, label_top, value_top, label_left, value_left in pairs:
        assert abs(label_top - value_top) <= 1, (label, label_top, value_top)
        assert value_left > label_left, label
    # Every value starts in one column.
    assert len({p[4] for p in pairs}) == 1, pairs


@pytest.fixture
def public(browser, live_server, request):
    screen, language = request.param
    context = browser.new_context(locale="zh-CN", **SCREENS[screen])
    if language != settings.LANGUAGE_CODE:
        # What the language switch sets for a visitor.
        context.add_cookies(
            [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
        )
    yield SimpleNamespace(context=context, screen=screen, language=language)
    context.close()


@pytest.mark.parametrize("public", COMBINATIONS, indirect=True, ids=_ids)
def test_large_text_keeps_the_case_code_whole(public, live_server, work):
    page = public.context.new_page()
    page.goto(f"{live_server.url}/t/{work.tracking_token}?large=1")
    code = page.locator("dd.code")
    assert code.inner_text().strip() == work.code
    assert code.evaluate(TEXT_LINES) == 1, code.bounding_box()
    line = code.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    assert code.bounding_box()["height"] <= line * 1.2
    # Whole, and on the screen: not pushed out of the card.
    card = page.locator("section.card").first.bounding_box()
    box = code.bounding_box()
    assert box["x"] + box["width"] <= card["x"] + card["width"]
    assert page.evaluate(SCROLL_WIDTH) <= page.viewport_size["width"], page.evaluate(
        STICKING_OUT, page.viewport_size["width"]
    )


@pytest.mark.parametrize("public", COMBINATIONS, indirect=True, ids=_ids)
def test_the_record_list_is_numbered_as_it_is_ordered(public, live_server, work, tree, people):
    case = drive_to_archive(work, tree, people)
    with translation.override(public.language):
        timeline = tracking_context(case, now=timezone.now())["timeline"]
        expected = [str(row.label) for row in timeline]
    page = public.context.new_page()
    page.goto(f"{live_server.url}/t/{case.tracking_token}")
    shown = page.locator("ol.timeline").evaluate(OL_NUMBERS)
    assert len(shown) == len(expected) >= 4
    assert all(style != "none" for _n, _text, style in shown)  # the numbers are visible
    # The item numbered k is the k-th record, whichever way the list runs.
    by_number = [text for _n, text in sorted((n, text) for n, text, _s in shown)]
    assert [n for n, _t, _s in sorted(shown)] == list(range(1, len(shown) + 1))
    for text, label in zip(by_number, expected, strict=True):
        assert label in text, (by_number, expected)
