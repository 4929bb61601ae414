"""The resident's tracking page, rendered when the case changes and served as stored bytes.

Every event is appended through ``dispatch.events.append_event``, which records a
``tracking.render`` job in the writer's transaction. After the commit, first the case's stamp
(``tracking_generation_key``) is deleted, so that no page rendered before the change is served
again, then the worker runs the job: it takes a stamp, reads the case, renders every variant
of the page (each interface language, normal and large text) and stores them in the shared
cache with no expiry, each beside the stamp it was rendered under. The web process answers
``/t/<token>`` with one round trip (the stamp and the page in one ``get_many``) and no query.

Why a stamp and not the case's event count: the web process cannot ask the database which
event is the last one without the query this design removes. A page is served only while the
stamp it carries is the current one, and the stamp is taken before the case is read, so a page
read before an event's commit carries a stamp that the commit deletes. Two renders racing store
pages of the same state (or of a retired stamp, which are never served), and a render that
finds its stamp retired renders again.

What may be missing, and then the web process renders the variant asked for and stores it
itself (two queries, the old first-read path): a cache that was flushed or restarted, a case
changed before this module existed, a render job not yet run or lost. Guessed tokens leave
nothing behind: the stamp taken for them is deleted with the 404. A reissued receipt deletes
the old token's stamp and pages after its commit (``retire_tracking_pages``), so the old link
answers 404 at once.

The clock changes the page too (overdue, the daily urge, the 15-day reopen window:
``selectors.tracking_changes_at``). Each stored page carries the first such moment and is not
served from it on, so a visit then renders the page itself. The worker renders it again too:
at the deadline because the sweeper records its 红灯 event then, at midnight after an urge and
when the reopen window closes because the render job records a job that waits for the moment
(``Job.run_after``).
"""

from __future__ import annotations

import datetime as dt
import secrets
import time

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from dispatch import outbox
from dispatch.events import (
    TRACKING_RENDER_TOPIC,
    tracking_generation_key,
    tracking_job_key,
    tracking_page_key,
)
from dispatch.models import Case, CaseEvent, Job
from intake import selectors

# The flip job runs this long after the moment, so that the clock has certainly passed it.
FLIP_MARGIN = dt.timedelta(seconds=1)
# A render whose stamp was retired while it ran (an event committed) starts over, this often.
RENDER_ATTEMPTS = 3

# What the cache holds per variant: (stamp, expires at as a POSIX timestamp or None, the case's
# event count when read, the page's UTF-8 bytes). A tuple: the cheapest thing to unpickle.
Entry = tuple[str, float | None, int, bytes]


def languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


# --- serving ----------------------------------------------------------------------------------


def lookup(token: str, language: str, large: bool) -> tuple[bytes | None, str | None]:
    """The stored page if it may be served now, and the token's current stamp (or None).

    One round trip to the shared cache, no query.
    """
    stamp_key = tracking_generation_key(token)
    page_key = tracking_page_key(token, language, large)
    found = _get_many([stamp_key, page_key])
    stamp = found.get(stamp_key)
    entry = found.get(page_key)
    if stamp is None or entry is None or entry[0] != stamp:
        return None, stamp
    if entry[1] is not None and entry[1] <= time.time():
        return None, stamp  # the clock has changed the page since it was rendered
    return entry[3], stamp


def _get_many(keys: list[str]) -> dict:
    """``cache.get_many``, without Django's RedisCache making a Redis client for the call.

    Django's ``RedisCacheClient.get_client`` builds a new ``redis.Redis`` for every operation,
    and redis-py fills its table of reply parsers in ``__init__``: measured here, that is more
    than the round trip (58 of 114 us). The page's hot path keeps one client per cache
    connection (redis-py clients are thread-safe over their pool). Other backends go through
    the public API. Better, one day: a project cache backend whose client is made once, for
    every cache call of the product.
    """
    backend = caches["default"]
    read = backend.__dict__.get("_tracking_read")
    if read is None:
        read = backend.__dict__["_tracking_read"] = _reader(backend)
    return read(keys)


def _reader(backend):
    if not isinstance(backend, RedisCache):
        return backend.get_many
    client_impl = backend._cache  # Django's RedisCacheClient: its pools and its serializer
    client = client_impl.get_client(None)
    loads = client_impl._serializer.loads
    make_key = backend.make_key

    def read(keys: list[str]) -> dict:
        values = client.mget([make_key(key) for key in keys])
        return {key: loads(v) for key, v in zip(keys, values, strict=True) if v is not None}

    return read


def take_stamp(token: str) -> str:
    """The token's current stamp, made now if there is none. Take it before reading the case.

    If the stamp is deleted between the two calls here, a fresh one that is stored nowhere is
    returned: pages stored under it are never served, which is what that deletion asked for.
    """
    key = tracking_generation_key(token)
    fresh = secrets.token_hex(8)
    if cache.add(key, fresh, timeout=None):
        return fresh
    return cache.get(key) or fresh


def drop_stamp(token: str) -> None:
    """An unknown token: leave nothing of it in the cache."""
    cache.delete(tracking_generation_key(token))


def store(
    token: str, language: str, large: bool, *, stamp: str, case: Case, now: dt.datetime, html: str
) -> None:
    """Store one variant rendered by the web process (a page the worker had not stored).

    Not if the stamp was retired meanwhile: the page would never be served, and it could
    overwrite what the worker has just stored for the event that retired it.
    """
    if language not in languages() or cache.get(tracking_generation_key(token)) != stamp:
        return
    entry = _entry(stamp, case, now, html)
    cache.set(tracking_page_key(token, language, large), entry, timeout=None)


def _entry(stamp: str, case: Case, now: dt.datetime, html: str) -> Entry:
    changes_at = selectors.tracking_changes_at(case, now=now)
    expires = changes_at.timestamp() if changes_at is not None else None
    return (stamp, expires, case.event_count, html.encode("utf-8"))


# --- rendering --------------------------------------------------------------------------------


def render_page(
    case: Case,
    *,
    token: str,
    large: bool,
    now: dt.datetime,
    events: list[CaseEvent] | None = None,
    form=None,
    error: str = "",
) -> str:
    """The page in the active language."""
    # Imported here: intake.forms imports the services, and they the module registering this.
    from intake.forms import RatingForm

    context = selectors.tracking_context(case, now=now, events=events)
    context.update(
        {
            "token": token,
            "large": large,
            "rating_form": form or RatingForm(),
            "error": error,
            "now": now,
            "centre_phone": case.owner_unit.phone,
        }
    )
    # Rendered without a request: nothing per visitor (no CSRF token, no session) may end up
    # in a page that other visitors are served.
    return render_to_string("intake/tracking.html", context)


def render_stored_pages(*, case_id: int, event_count: int | None = None) -> int:
    """Render every variant of the case's public page and store it; returns how many.

    ``event_count`` is the count the job was recorded at: when a later event of the case has
    its own job still waiting, that job renders instead.
    """
    row = Case.objects.filter(pk=case_id).values_list("tracking_token", "event_count").first()
    if row is None:
        return 0
    token, count = row
    if event_count is not None and count > event_count and _waiting(case_id, count):
        return 0
    for _attempt in range(RENDER_ATTEMPTS):
        stamp = take_stamp(token)  # before the case is read: a later commit retires this stamp
        case = selectors.case_by_token(token)
        if case is None:
            return 0  # the token was reissued meanwhile; that event's job renders the new one
        now = timezone.now()
        events = selectors.public_events(case)
        entries: dict[str, Entry] = {}
        for language in languages():
            with translation.override(language):
                for large in (False, True):
                    html = render_page(case, token=token, large=large, now=now, events=events)
                    entries[tracking_page_key(token, language, large)] = _entry(
                        stamp, case, now, html
                    )
        # The deadline needs no job of its own: the sweeper's 红灯 event at that moment has the
        # page rendered again (``dispatch.services.record_deadline_alerts``).
        changes_at = selectors.tracking_changes_at(case, now=now, unmarked=True)
        if changes_at is not None:
            _render_again_at(case.pk, changes_at)
        # An event that commits while this runs retires the stamp: what is stored under it is
        # never served, and may have overwritten what that event's own job stored. Render again.
        if cache.get(tracking_generation_key(token)) != stamp:
            continue
        cache.set_many(entries, timeout=None)
        if cache.get(tracking_generation_key(token)) == stamp:
            return len(entries)
    return 0


def _waiting(case_id: int, count: int) -> bool:
    return Job.objects.filter(
        key=tracking_job_key(case_id, count), state=Job.State.PENDING
    ).exists()


def _render_again_at(case_id: int, moment: dt.datetime) -> None:
    """Record a render job that waits until the clock has changed the page."""
    key = f"tracking:{case_id}:at:{int(moment.timestamp())}"
    with transaction.atomic():
        # A moment already recorded (an earlier render of the same deadline) adds nothing.
        outbox.enqueue(
            TRACKING_RENDER_TOPIC,
            key=key,
            payload={"case_id": case_id},
            run_after=moment + FLIP_MARGIN,
        )


@outbox.handler(TRACKING_RENDER_TOPIC)
def _render_job(payload: dict) -> None:
    """Render and store the page; a second run stores the same bytes again."""
    render_stored_pages(case_id=payload["case_id"], event_count=payload.get("event_count"))
