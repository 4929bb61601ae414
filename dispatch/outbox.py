"""Work that must happen after a commit, recorded in the transaction that needs it.

A service that needs a case routed, a receipt rendered or an SMS sent calls ``enqueue`` inside
its transaction: a ``Job`` row is written beside the change, so the job exists exactly when the
change does. After the commit the job is offered to the broker (``dispatch.tasks.run_job``);
if the broker is down that offer fails quietly and the clerk's request still succeeds. The
relay (``dispatch.tasks.relay_jobs``, every few seconds on beat) runs whatever is due and was
not run: jobs whose offer was lost, jobs whose worker died (their lease has passed) and jobs
waiting to be retried.

A job is claimed with a conditional UPDATE before it runs, so of a worker and the relay, or two
relays, one runs it; the handlers are idempotent besides (routing skips a routed case, a receipt
replaces its file, an SMS row sent is not sent again), so the rare second run after a worker
died between the work and its bookkeeping changes nothing.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from dispatch.models import Job

log = logging.getLogger("dispatch.outbox")

Handler = Callable[[dict], None]
GiveUp = Callable[[dict, str], None]
Skip = Callable[[dict], None]
HANDLERS: dict[str, Handler] = {}
# Called once when a job of the topic has failed for the last time (e.g. mark the SMS failed).
ON_GIVE_UP: dict[str, GiveUp] = {}
# Called when a job recorded with loaded history is set aside (e.g. the SMS is not sent).
ON_SKIP: dict[str, Skip] = {}

# How long a claimed job may run before another runner may take it over. Every handler is far
# shorter (a receipt PDF takes under a second, an SMS gateway call at most its timeout).
LEASE = dt.timedelta(minutes=2)
# The relay leaves fresh jobs to the worker that the commit offered them to.
RELAY_GRACE = dt.timedelta(seconds=5)
MAX_ATTEMPTS = 8
KEEP_DONE = dt.timedelta(days=7)
# A relay pass ends after this long (inside the task time limit); the next pass goes on.
RELAY_BUDGET_SECONDS = 30.0


# While history is loaded, jobs are recorded (``set_aside_history`` settles them) but not
# offered: each offer is a broker message a worker must take and discard, and the demo's
# hundreds of them would queue the first real case's routing (and beat's relay) behind minutes
# of no-ops.
_OFFERS_HELD: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "outbox_offers_held", default=False
)


@contextmanager
def offers_held() -> Iterator[None]:
    """Record jobs without offering them to the broker (loading history; the relay has them)."""
    token = _OFFERS_HELD.set(True)
    try:
        yield
    finally:
        _OFFERS_HELD.reset(token)


class RetryLaterError(Exception):
    """A transient failure (a gateway timeout): run the job again later."""


class Outcome:
    DONE = "done"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"


def handler(
    topic: str, *, on_give_up: GiveUp | None = None, on_skip: Skip | None = None
) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of ``topic``; it takes the job's payload."""

    def register(func: Handler) -> Handler:
        HANDLERS[topic] = func
        if on_give_up is not None:
            ON_GIVE_UP[topic] = on_give_up
        if on_skip is not None:
            ON_SKIP[topic] = on_skip
        return func

    return register


def enqueue(
    topic: str,
    *,
    key: str,
    payload: dict,
    now: dt.datetime | None = None,
    run_after: dt.datetime | None = None,
) -> None:
    """Record a job in the current transaction and offer it to a worker after the commit.

    A key already recorded adds nothing (a retried service, a redelivered task). A job for a
    later moment (``run_after``) is left to the relay, which runs it when it is due.
    """
    enqueue_many(topic, [(key, payload)], now=now, run_after=run_after)


def enqueue_many(
    topic: str,
    jobs: Sequence[tuple[str, dict]],
    *,
    now: dt.datetime | None = None,
    run_after: dt.datetime | None = None,
) -> None:
    """``enqueue`` for several (key, payload) jobs of one topic at once: one statement on
    PostgreSQL, three elsewhere, however many (a sweep's batch re-renders hundreds of pages)."""
    now = now or timezone.now()
    wanted = {key[:160]: payload for key, payload in jobs}
    if not wanted:
        return
    if connection.vendor == "postgresql":
        job_ids = _insert_new(topic, wanted, now=now, run_after=run_after or now)
        if job_ids and not _OFFERS_HELD.get() and not (run_after is not None and run_after > now):
            _offer_after_commit(job_ids)
        return
    known = set(Job.objects.filter(key__in=list(wanted)).values_list("key", flat=True))
    fresh = [key for key in wanted if key not in known]
    if not fresh:
        return
    # A job written by a concurrent transaction in between is skipped, not an error.
    Job.objects.bulk_create(
        [
            Job(
                key=key,
                topic=topic,
                payload=wanted[key],
                created_at=now,
                run_after=run_after or now,
            )
            for key in fresh
        ],
        ignore_conflicts=True,
    )
    if _OFFERS_HELD.get() or (run_after is not None and run_after > now):
        return
    _offer_after_commit(
        list(Job.objects.filter(key__in=fresh, created_at=now).values_list("pk", flat=True))
    )


def _insert_new(
    topic: str, wanted: dict[str, dict], *, now: dt.datetime, run_after: dt.datetime
) -> list[int]:
    """Insert the jobs whose keys are new (a key already recorded, or written by a concurrent
    transaction meanwhile, is skipped by the database); returns the new jobs' ids."""
    payload = Job._meta.get_field("payload")
    rows = [
        (key, topic, payload.get_db_prep_save(value, connection), Job.State.PENDING, now, run_after)
        for key, value in wanted.items()
    ]
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, 0, '')"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Job._meta.db_table} "  # noqa: S608 - the model's own table
            "(key, topic, payload, state, created_at, run_after, attempts, last_error) "
            f"VALUES {values} ON CONFLICT (key) DO NOTHING RETURNING id",
            [value for row in rows for value in row],
        )
        return [job_id for (job_id,) in cursor.fetchall()]


def _offer_after_commit(job_ids: list[int]) -> None:
    # robust: an exception here (the broker is down) must not fail the request whose work is
    # already committed; the relay runs the job instead.
    # After one failed offer the broker is down: the relay runs the rest, the commit goes on.
    def offer_all() -> None:
        for job_id in job_ids:
            if not offer(job_id):
                return

    transaction.on_commit(offer_all, robust=True)


def offer(job_id: int) -> bool:
    """Hand a job to the broker; a broker that cannot be reached leaves it to the relay.

    Returns whether the broker took it.
    """
    from dispatch.tasks import run_job  # the task module imports this one

    try:
        # One publish attempt: while the broker is down the clerk must not wait for it, and the
        # relay runs the job anyway.
        run_job.apply_async((job_id,), retry=True, retry_policy={"max_retries": 0})
    except Exception as exc:  # noqa: BLE001 - any broker failure: the relay has the job
        log.warning("job %s not offered to the broker (%s); the relay will run it", job_id, exc)
        return False
    return True


def _claim(job_id: int, now: dt.datetime) -> bool:
    return bool(
        Job.objects.filter(pk=job_id, run_after__lte=now)
        .filter(Q(state=Job.State.PENDING) | Q(state=Job.State.RUNNING, lease_until__lt=now))
        .update(state=Job.State.RUNNING, lease_until=now + LEASE, attempts=F("attempts") + 1)
    )


def _backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(600, 10 * 2 ** max(0, attempts - 1)))


def run(job_id: int, *, now: dt.datetime | None = None) -> str:
    """Claim and run one job; returns what happened."""
    now = now or timezone.now()
    if not _claim(job_id, now):
        return Outcome.SKIPPED
    job = Job.objects.get(pk=job_id)
    running = Job.objects.filter(pk=job_id, state=Job.State.RUNNING)
    func = HANDLERS.get(job.topic)
    try:
        if func is None:
            raise LookupError(f"no handler for job topic {job.topic!r}")
        func(job.payload)
    except Exception as exc:
        transient = isinstance(exc, RetryLaterError)
        if not transient:
            log.exception("job %s (%s) failed", job.pk, job.topic)
        if job.attempts >= MAX_ATTEMPTS or func is None:
            running.update(
                state=Job.State.FAILED, finished_at=timezone.now(), last_error=str(exc)[:300]
            )
            if job.topic in ON_GIVE_UP:
                ON_GIVE_UP[job.topic](job.payload, str(exc))
            return Outcome.FAILED
        running.update(
            state=Job.State.PENDING,
            lease_until=None,
            run_after=timezone.now() + _backoff(job.attempts),
            last_error=str(exc)[:300],
        )
        return Outcome.RETRY
    running.update(state=Job.State.DONE, finished_at=timezone.now(), lease_until=None)
    return Outcome.DONE


def due(*, now: dt.datetime, limit: int) -> list[int]:
    """Jobs the relay should run: pending and due, or running past their lease."""
    return list(
        Job.objects.filter(state__in=[Job.State.PENDING, Job.State.RUNNING], run_after__lte=now)
        .filter(
            Q(state=Job.State.PENDING, created_at__lte=now - RELAY_GRACE)
            | Q(state=Job.State.PENDING, attempts__gt=0)
            | Q(state=Job.State.RUNNING, lease_until__lt=now)
        )
        .order_by("run_after", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def relay(*, now: dt.datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Run what is due and was not run; drop old finished jobs. Returns counts by outcome."""
    now = now or timezone.now()
    counts: dict[str, int] = {}
    stop_at = time.monotonic() + RELAY_BUDGET_SECONDS
    for job_id in due(now=now, limit=limit):
        if time.monotonic() > stop_at:
            break
        outcome = run(job_id, now=now)
        counts[outcome] = counts.get(outcome, 0) + 1
    Job.objects.filter(
        pk__in=Job.objects.filter(state=Job.State.DONE, finished_at__lt=now - KEEP_DONE).values(
            "pk"
        )[:1000]
    ).delete()
    return counts


def set_aside_history(*, recorded_before: dt.datetime) -> int:
    """Set aside the pending jobs of events dated before ``recorded_before``; returns how many.

    Loading history (the demo county's cases of the past months) records the jobs its events
    would have had: residents' SMS from July, routing of cases long closed. They are the past,
    not work for now: a worker that starts after the load must find nothing to catch up on.
    """
    jobs = list(
        Job.objects.filter(state=Job.State.PENDING, created_at__lt=recorded_before).values_list(
            "pk", "topic", "payload"
        )
    )
    for _pk, topic, payload in jobs:
        if topic in ON_SKIP:
            ON_SKIP[topic](payload)
    Job.objects.filter(pk__in=[pk for pk, _t, _p in jobs]).update(
        state=Job.State.SKIPPED, finished_at=timezone.now()
    )
    return len(jobs)
