"""The tracking page rendered by the worker when the case changes, served as stored bytes.

From the resident's side: an event commits, the worker's job renders the page, and the next
visit is answered from the shared cache without a query; what it shows is never older than the
case's last committed event, whatever the cache has lost or the worker has not yet done.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from dispatch import outbox, services
from dispatch.events import (
    TRACKING_RENDER_TOPIC,
    tracking_generation_key,
    tracking_page_keys,
)
from dispatch.models import Case, Job
from dispatch.states import Action, Status
from intake import selectors
from intake import tracking as stored
from tests import factories as f
from tests.intake.intake_helpers import drive_to_archive, register_via_http

pytestmark = pytest.mark.django_db

VARIANTS = [(language, large) for language, _name in settings.LANGUAGES for large in (0, 1)]


@pytest.fixture
def case(client, tree, people, cats):
    client.force_login(people.alice)
    case = register_via_http(client, tree)
    client.logout()
    return case


@pytest.fixture
def broker_down(monkeypatch):
    """Commits run their hooks, but no job reaches a worker: the render jobs wait."""
    monkeypatch.setattr(outbox, "offer", lambda job_id: None)


def get(client, token: str, *, language: str = "zh-hans", large: int = 0):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    return client.get(f"/t/{token}", {"large": "1"} if large else {})


def body(client, case, **kw) -> str:
    response = get(client, case.tracking_token, **kw)
    assert response.status_code == 200
    return response.content.decode()


def current_step(html: str) -> str:
    match = re.search(r'<li class="current" aria-current="step"><span class="label">([^<]+)<', html)
    return match.group(1) if match else ""


def dispatch(case, tree, people, capture):
    with capture(execute=True):
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.police_a, profile=f.profile()
        )
    case.refresh_from_db()


def run_waiting_renders(case) -> None:
    """What the worker does once the broker is back: run the case's waiting render jobs."""
    waiting = Job.objects.filter(
        topic=TRACKING_RENDER_TOPIC, payload__case_id=case.pk, state=Job.State.PENDING
    ).exclude(key__contains=":at:")
    assert waiting.exists()
    for job in waiting.order_by("pk"):
        assert outbox.run(job.pk) == outbox.Outcome.DONE


def assert_public(response) -> None:
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    assert response["X-Robots-Tag"] == "noindex"
    assert not response.cookies  # no session, no CSRF cookie, nothing per visitor


def test_an_event_commits_the_worker_renders_and_every_variant_is_served_without_a_query(
    client, case, tree, people, django_capture_on_commit_callbacks, django_assert_num_queries
):
    dispatch(case, tree, people, django_capture_on_commit_callbacks)
    jobs = Job.objects.filter(topic=TRACKING_RENDER_TOPIC, payload__case_id=case.pk)
    assert jobs.filter(state=Job.State.DONE).exists()

    pages = {}
    for language, large in VARIANTS:
        with django_assert_num_queries(0):
            response = get(client, case.tracking_token, language=language, large=large)
        assert response.status_code == 200
        assert_public(response)
        pages[language, large] = response.content.decode()
    assert len(set(pages.values())) == len(VARIANTS)  # each variant is its own page
    assert current_step(pages["zh-hans", 0]) == "任务指派"
    assert '<html lang="en">' in pages["en", 0]
    assert 'class="public large"' in pages["zh-hans", 1]

    # The stored bytes are the page: the same as rendering it now.
    cache.clear()
    for language, large in VARIANTS:
        assert body(client, case, language=language, large=large) == pages[language, large]


def test_a_change_is_never_shown_stale_even_before_the_worker_runs(
    client,
    case,
    tree,
    people,
    broker_down,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    assert current_step(body(client, case)) == "案卷建立"  # stored by this first visit
    with django_assert_num_queries(0):
        assert current_step(body(client, case)) == "案卷建立"

    dispatch(case, tree, people, django_capture_on_commit_callbacks)
    # The worker has not run: the commit retired the stored page, the visit renders it.
    assert current_step(body(client, case)) == "任务指派"

    run_waiting_renders(case)
    for language, large in VARIANTS:
        with django_assert_num_queries(0):
            html = body(client, case, language=language, large=large)
        assert current_step(html) == ("任务指派" if language == "zh-hans" else "Task assigned")


def test_a_render_that_an_event_overtakes_is_never_served(
    client,
    case,
    tree,
    people,
    monkeypatch,
    broker_down,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    real = selectors.public_events
    overtaken = []

    def read_then_event(c):
        events = real(c)  # the worker has read the case before the event
        if not overtaken:
            overtaken.append(True)
            dispatch(case, tree, people, django_capture_on_commit_callbacks)
        return events

    monkeypatch.setattr(selectors, "public_events", read_then_event)
    stored.render_stored_pages(case_id=case.pk)
    monkeypatch.setattr(selectors, "public_events", real)
    assert overtaken
    # The render noticed, and rendered again from the committed state.
    with django_assert_num_queries(0):
        assert current_step(body(client, case)) == "任务指派"


def test_a_visit_that_raced_the_worker_does_not_undo_its_pages(
    client, case, tree, people, monkeypatch, django_capture_on_commit_callbacks
):
    from intake import public_views

    real = public_views._render_tracking

    def render_then_event(*args, **kwargs):
        html = real(*args, **kwargs)  # rendered from the state before the event
        dispatch(case, tree, people, django_capture_on_commit_callbacks)  # the worker runs too
        return html

    monkeypatch.setattr(public_views, "_render_tracking", render_then_event)
    assert current_step(body(client, case)) == "案卷建立"  # what was true when it was read
    monkeypatch.setattr(public_views, "_render_tracking", real)
    assert current_step(body(client, case)) == "任务指派"


def test_a_reissued_token_answers_404_at_once_and_its_bytes_are_gone(
    client,
    case,
    tree,
    people,
    broker_down,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    old = case.tracking_token
    for language, large in VARIANTS:
        body(client, case, language=language, large=large)
    assert all(key in cache for key in tracking_page_keys(old))

    with django_capture_on_commit_callbacks(execute=True):
        services.reissue_tracking_token(case=case, actor=people.alice)
    case.refresh_from_db()
    assert case.tracking_token != old
    # The worker has not run, and nothing is left of the old token.
    assert not any(key in cache for key in [tracking_generation_key(old), *tracking_page_keys(old)])
    for language, large in VARIANTS:
        response = get(client, old, language=language, large=large)
        assert response.status_code == 404
        assert_public(response)
    assert not any(key in cache for key in [tracking_generation_key(old), *tracking_page_keys(old)])

    run_waiting_renders(case)
    with django_assert_num_queries(0):
        assert case.code in body(client, case)
    assert get(client, old).status_code == 404


def test_a_flushed_cache_falls_back_to_rendering_and_storing(
    client, case, tree, people, django_capture_on_commit_callbacks, django_assert_num_queries
):
    dispatch(case, tree, people, django_capture_on_commit_callbacks)
    cache.clear()  # Redis restarted, or flushed
    with django_assert_num_queries(2):
        assert current_step(body(client, case)) == "任务指派"
    with django_assert_num_queries(0):
        assert current_step(body(client, case)) == "任务指派"

    # Only the stamps lost (an evicting cache): the pages under the old stamp are not served.
    with django_capture_on_commit_callbacks(execute=True):
        services.sign_case(case=case, actor=f.user(role="handler", unit=tree.police_a))
    cache.delete(tracking_generation_key(case.tracking_token))
    with django_assert_num_queries(2):
        assert current_step(body(client, case)) == "调查落实"


def test_guessed_tokens_leave_nothing_in_the_cache(client, case):
    for guess in ("A" * 22, "B" * 43, case.tracking_token[:-1] + "x"):
        response = get(client, guess)
        assert response.status_code == 404
        assert_public(response)
        assert tracking_generation_key(guess) not in cache
        assert not any(key in cache for key in tracking_page_keys(guess))


def test_the_page_turns_overdue_at_the_deadline_without_any_service(
    client,
    case,
    tree,
    people,
    clock,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    from dispatch.sweeper import sweep

    dispatch(case, tree, people, django_capture_on_commit_callbacks)
    with django_assert_num_queries(0):
        assert "催办" not in body(client, case)
    # The deadline needs no waiting job: the sweeper's 红灯 marks it.
    assert not Job.objects.filter(key__contains=":at:").exists()

    clock.move_to(case.due_at + dt.timedelta(milliseconds=1))
    # Past the deadline the stored page is not served, whether or not the sweeper has run.
    late = body(client, case)
    assert "已超期" in late and "本案已超过承诺期限" in late

    cache.clear()  # what the worker stores now is what the resident sees
    with django_capture_on_commit_callbacks(execute=True):
        sweep(now=timezone.now())
    assert case.events.filter(action=Action.OVERDUE).exists()
    with django_assert_num_queries(0):
        again = body(client, case)
    assert "已超期" in again and "本案已超过承诺期限" in again


def test_the_urge_button_comes_back_at_midnight(
    client,
    case,
    tree,
    people,
    clock,
    django_capture_on_commit_callbacks,
    django_assert_num_queries,
):
    dispatch(case, tree, people, django_capture_on_commit_callbacks)
    Case.objects.filter(pk=case.pk).update(due_at=timezone.now() - dt.timedelta(hours=1))
    cache.clear()  # the deadline was moved without a service: not what residents see
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/t/{case.tracking_token}/urge").status_code == 302
    with django_assert_num_queries(0):
        urged = body(client, case)
    assert "您今天已催办" in urged and "本案已超过承诺期限" not in urged
    midnight = (timezone.localtime() + dt.timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    flip = Job.objects.get(key__contains=":at:", payload__case_id=case.pk)
    assert flip.state == Job.State.PENDING
    assert flip.run_after == midnight + stored.FLIP_MARGIN
    assert outbox.run(flip.pk) == outbox.Outcome.SKIPPED  # not before its moment

    clock.move_to(midnight + dt.timedelta(milliseconds=1))
    assert "本案已超过承诺期限" in body(client, case)  # the stored page is past its moment

    clock.move_to(midnight + dt.timedelta(minutes=1))
    cache.clear()
    assert outbox.run(flip.pk) == outbox.Outcome.DONE
    with django_assert_num_queries(0):
        assert "本案已超过承诺期限" in body(client, case)


def test_the_moments_the_clock_changes_the_page(case, tree, people):
    now = timezone.now()
    assert selectors.tracking_changes_at(case, now=now) is None  # only an event changes it

    case.status, case.due_at = Status.ASSIGNED, now + dt.timedelta(days=3)
    assert selectors.tracking_changes_at(case, now=now) == case.due_at
    assert selectors.tracking_changes_at(case, now=case.due_at) == case.due_at
    assert selectors.tracking_changes_at(case, now=case.due_at + dt.timedelta(seconds=1)) is None
    assert selectors.tracking_changes_at(case, now=now, unmarked=True) is None

    case.resident_urged_at = now
    midnight = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    assert selectors.tracking_changes_at(case, now=now) == midnight + dt.timedelta(days=1)

    closed = drive_to_archive(Case.objects.get(pk=case.pk), tree, people)
    assert selectors.tracking_changes_at(closed, now=now) == closed.closed_at + dt.timedelta(
        days=15
    )


def test_several_events_in_one_transaction_are_rendered_once(case, tree, people):
    from django.db import transaction

    with transaction.atomic():
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.police_a, profile=f.profile()
        )
        services.sign_case(case=case, actor=f.user(role="handler", unit=tree.police_a))
    jobs = list(
        Job.objects.filter(topic=TRACKING_RENDER_TOPIC, payload__case_id=case.pk).order_by("pk")
    )
    earlier, last = jobs[-2], jobs[-1]
    assert stored.render_stored_pages(case_id=case.pk, **_count(earlier)) == 0  # left to last
    assert stored.render_stored_pages(case_id=case.pk, **_count(last)) == len(VARIANTS)


def _count(job: Job) -> dict:
    return {"event_count": job.payload["event_count"]}
