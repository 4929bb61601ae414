"""Celery tasks: thin, idempotent, take ids, call one service.

Every task here may run twice (``acks_late``: a worker killed mid-task has its message
redelivered) and is written so that the second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task

log = logging.getLogger("dispatch.tasks")


def parse_now(now: str | None) -> dt.datetime | None:
    """Tasks take primitives: the optional clock is an ISO 8601 string with its offset."""
    if now is None:
        return None
    moment = dt.datetime.fromisoformat(now)
    if moment.tzinfo is None:
        raise ValueError("now must carry a UTC offset")
    return moment


@shared_task(acks_late=True)
def route_case(case_id: int) -> None:
    """Apply the routing rules to a freshly registered case."""
    from dispatch.routing import route_registered_case

    route_registered_case(case_id=case_id)


@shared_task(acks_late=True)
def sweep_deadlines(now: str | None = None) -> dict:
    """Beat, every minute: warnings, overdue notices and escalations that are due, once each."""
    from dispatch.sweeper import sweep

    counts = sweep(now=parse_now(now))
    if counts["alerts"]:
        log.info("deadline sweep: %(alerts)s alerts on %(cases)s cases", counts)
    return counts


@shared_task(bind=True, acks_late=True, max_retries=5)
def deliver_notification(self, notification_id: int) -> str:
    """Send one outbox row; transient gateway errors are retried with a growing delay."""
    from dispatch.notifications import deliver
    from dispatch.sms import SmsTransientError

    try:
        return deliver(notification_id)
    except SmsTransientError as exc:
        if self.request.retries >= self.max_retries:
            # The row stays pending; the beat's retry pass picks it up later until its
            # attempts run out.
            log.warning("SMS %s still failing after retries: %s", notification_id, exc)
            return "pending"
        raise self.retry(exc=exc, countdown=min(300, 10 * 2**self.request.retries)) from exc


@shared_task(acks_late=True)
def deliver_pending_notifications(now: str | None = None) -> int:
    """Beat: queue again the outbox rows whose delivery failed or whose worker died."""
    from dispatch.notifications import pending_for_retry

    ids = pending_for_retry(now=parse_now(now))
    for pk in ids:
        deliver_notification.delay(pk)
    return len(ids)
