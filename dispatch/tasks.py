"""Celery tasks: thin, take primitives, call one function.

Every task here may run twice (``acks_late``: a worker killed mid-task has its message
redelivered) and is written so that the second run changes nothing. What must happen after a
commit is not a task of its own: it is a ``dispatch.models.Job`` row, and ``run_job`` /
``relay_jobs`` run those rows (``dispatch.outbox``).
"""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task

from dispatch import outbox, rollups
from dispatch.sweeper import sweep

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
def run_job(job_id: int) -> str:
    """Run one outbox job, offered by the commit that recorded it."""
    return outbox.run(job_id)


@shared_task(acks_late=True)
def relay_jobs(now: str | None = None) -> dict:
    """Beat, every few seconds: run the outbox jobs that are due and were not run."""
    counts = outbox.relay(now=parse_now(now))
    if counts:
        log.info("outbox relay: %s", counts)
    return counts


@shared_task(acks_late=True)
def sweep_deadlines(now: str | None = None) -> dict:
    """Beat, every minute: warnings, overdue notices and escalations that are due, once each."""
    counts = sweep(now=parse_now(now))
    if counts["alerts"]:
        log.info("deadline sweep: %(alerts)s alerts on %(cases)s cases", counts)
    return counts


@shared_task(acks_late=True)
def refresh_rollups(now: str | None = None) -> int:
    """Beat: count again the dashboard's past days whose facts changed, and the day that ended."""
    return rollups.refresh(now=parse_now(now))
