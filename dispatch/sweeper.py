"""The deadline sweeper: warnings, overdue notices and escalation tiers, each exactly once.

Deadlines are columns (``Case.warn_at``, ``due_at``, ``sign_due_at``, ``reply_due_at``). Every
minute ``dispatch.tasks.sweep_deadlines`` calls ``sweep``, which finds open, unpaused cases with
a passed column whose last stage is not yet recorded (one indexed query per clock) and hands
them in batches to ``dispatch.services.record_deadline_alerts``: one transaction per batch,
set-based, so the cost is per alert, not per case visited. The ``Alert`` row's unique
constraint and the row locks make a second sweeper, a redelivered task or a restarted beat
record nothing twice, and a lease keeps two sweeps from running at once. Which stages are due
is ``dispatch.deadlines.due_stages``; who is told is ``dispatch.recipients``. An extension gives
a new ``due_at``, hence new alerts for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time

from django.core.cache import cache
from django.utils import timezone

from dispatch import services
from dispatch.models import Case
from dispatch.services.supervision import StageRecipients

log = logging.getLogger("dispatch.sweeper")

BATCH_SIZE = 500
MAX_CASES_PER_PASS = 200_000
# A pass ends after this long, well inside the task time limit and before beat's next minute:
# what is left is the next pass's.
BUDGET_SECONDS = 45.0


def due_now(now: dt.datetime):
    """Cases with a warning or escalation to record: one probe of the ``next_alert_at`` index."""
    return Case.objects.filter(next_alert_at__lte=now)


# Only one sweep runs at a time: a second one (beat firing while a long pass still runs, two
# beats by mistake) finds the lease taken and returns at once.
LEASE_KEY = "zz:sweeper:lease"


def sweep(
    *,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float = BUDGET_SECONDS,
) -> dict[str, int]:
    """One pass over everything due, within the time budget; returns counts."""
    now = now or timezone.now()
    token = secrets.token_hex(8)
    if not cache.add(LEASE_KEY, token, timeout=int(budget_seconds) + 60):
        return {"cases": 0, "alerts": 0, "skipped": 1}
    try:
        return _sweep(now=now, batch_size=batch_size, budget_seconds=budget_seconds)
    finally:
        if cache.get(LEASE_KEY) == token:
            cache.delete(LEASE_KEY)


def _sweep(*, now: dt.datetime, batch_size: int, budget_seconds: float) -> dict[str, int]:
    counts = {"cases": 0, "alerts": 0}
    stop_at = time.monotonic() + budget_seconds
    # The ids first, unordered, so that the planner leads with the index (an ORDER BY pk LIMIT
    # page would walk the primary key through every closed case); then the rows in bounded
    # batches, each one transaction. What the budget leaves is the next pass's.
    ids = sorted(due_now(now).order_by().values_list("pk", flat=True)[:MAX_CASES_PER_PASS])
    told = StageRecipients()  # who is told of what, looked up once for the whole pass
    for start in range(0, len(ids), batch_size):
        if time.monotonic() > stop_at:
            log.info("deadline sweep stopped at its time budget; the next pass goes on")
            return counts
        chunk = ids[start : start + batch_size]
        try:
            written = services.record_deadline_alerts(case_ids=chunk, now=now, told=told)
        except Exception:
            # One broken batch must not stop the others; the next pass tries it again.
            log.exception("sweeping cases %s..%s failed", chunk[0], chunk[-1])
            continue
        counts["cases"] += len(chunk)
        counts["alerts"] += written
    return counts
