"""The deadline sweeper: warnings, overdue notices and escalation tiers, each exactly once.

Deadlines are columns (``Case.warn_at``, ``due_at``, ``sign_due_at``, ``reply_due_at``). Every
minute ``dispatch.tasks.sweep_deadlines`` calls ``sweep``, which finds open, unpaused cases with
a passed column, and for each case with a stage that is due and not yet recorded calls
``dispatch.services.record_deadline_alerts`` (one short transaction per case; the ``Alert``
row's unique constraint makes a second sweeper, a redelivered task or a restarted beat record
nothing twice). Which stages are due is ``dispatch.deadlines.due_stages``; who is told is
``dispatch.recipients``. An extension gives a new ``due_at``, hence new alerts for it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from django.db.models import Exists, OuterRef
from django.utils import timezone

from dispatch import services
from dispatch.deadlines import due_stages
from dispatch.models import Alert, Case
from dispatch.states import OPEN_STATUSES, Status

log = logging.getLogger("dispatch.sweeper")

BATCH_SIZE = 200
MAX_CASES_PER_PASS = 20_000
# A pass ends after this long, well inside the task time limit and before beat's next minute:
# what is left is the next pass's.
BUDGET_SECONDS = 45.0

Clock = Alert.Clock
Stage = Alert.Stage


def _finished(clock: str, stage: str, column: str) -> Exists:
    """The last stage of a clock is recorded for the column's current deadline."""
    return Exists(
        Alert.objects.filter(case=OuterRef("pk"), clock=clock, stage=stage, due_at=OuterRef(column))
    )


def _passes(now: dt.datetime) -> list:
    """One query per clock, each led by an index, each leaving out finished clocks.

    Every completion deadline has its ``warn_at`` (``warn_at <= due_at``), so the partial index
    on ``warn_at`` over open cases finds yellow, red and both tiers. A clock whose last stage is
    recorded for its current deadline drops out, so cases long overdue do not cost the sweep
    every minute; the unique index behind ``Alert`` answers that check.
    """
    live = Case.objects.filter(status__in=sorted(OPEN_STATUSES), paused_at__isnull=True)
    return [
        live.filter(warn_at__lte=now).exclude(_finished(Clock.COMPLETE, Stage.TIER2, "due_at")),
        live.filter(status=Status.ASSIGNED, signed_at__isnull=True, sign_due_at__lte=now).exclude(
            _finished(Clock.SIGN, Stage.RED, "sign_due_at")
        ),
        live.filter(replied_at__isnull=True, reply_due_at__lte=now).exclude(
            _finished(Clock.REPLY, Stage.RED, "reply_due_at")
        ),
    ]


def sweep(
    *,
    now: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float = BUDGET_SECONDS,
) -> dict[str, int]:
    """One pass over everything due, within the time budget; returns counts."""
    now = now or timezone.now()
    counts = {"cases": 0, "alerts": 0}
    stop_at = time.monotonic() + budget_seconds
    for candidates in _passes(now):
        # The ids first, unordered, so that the planner leads with the clock's index (an
        # ORDER BY pk LIMIT page would walk the primary key through every closed case); then
        # the rows in bounded batches. A backlog larger than the cap is finished next minute.
        ids = list(candidates.order_by().values_list("pk", flat=True)[:MAX_CASES_PER_PASS])
        ids.sort()
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            batch = list(Case.objects.filter(pk__in=chunk).select_related("profile"))
            done = set(
                Alert.objects.filter(case__in=chunk).values_list(
                    "case_id", "clock", "stage", "due_at"
                )
            )
            if time.monotonic() > stop_at:
                log.info("deadline sweep stopped at its time budget; the next pass goes on")
                return counts
            for case in sorted(batch, key=lambda c: c.pk):
                missing = [s for s in due_stages(case, now) if (case.pk, *s.key) not in done]
                if not missing:
                    continue
                counts["cases"] += 1
                try:
                    counts["alerts"] += services.record_deadline_alerts(case_id=case.pk, now=now)
                except Exception:
                    # One broken case must not stop the sweep of the others; the next minute
                    # tries it again.
                    log.exception("sweeping case %s failed", case.pk)
    return counts
