"""W4 of ``manage.py bench``: the deadline sweeper, idle and draining a backlog.

Idle: a sweep right after another, with nothing due (seconds per sweep). Backlog: the clock
moved so far ahead that every open case has stages due, as after a data load or an outage; one
pass within its time budget, inside a transaction that is rolled back, so nothing is left
behind (cases per second, alerts per second).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

from django.db import transaction
from django.utils import timezone

from dispatch import sweeper
from dispatch.models import Case
from dispatch.states import OPEN_STATUSES
from zongzhi.bench.harness import Report


def run(report: Report, options: dict) -> None:
    open_cases = Case.objects.filter(status__in=sorted(OPEN_STATUSES)).count()
    now = timezone.now()
    sweeper.sweep(now=now)  # whatever is due now, so that the idle passes find nothing
    idle = []
    for _ in range(3 if options.get("quick") else 7):
        start = time.perf_counter()
        sweeper.sweep(now=now)
        idle.append(time.perf_counter() - start)
    report.add(
        "W4 sweeper idle",
        open_cases=open_cases,
        seconds=round(statistics.median(idle), 4),
    )
    later = now + dt.timedelta(days=60)
    backlog = sweeper.due_now(later).count()
    budget = 10.0 if options.get("quick") else sweeper.BUDGET_SECONDS
    start = time.perf_counter()
    with transaction.atomic():
        counts = sweeper.sweep(now=later, budget_seconds=budget)
        transaction.set_rollback(True)  # leave nothing behind
    seconds = time.perf_counter() - start
    report.add(
        "W4 sweeper backlog",
        open_cases=open_cases,
        backlog=backlog,
        swept=counts.get("cases", 0),
        alerts=counts.get("alerts", 0),
        seconds=round(seconds, 2),
        rate=round(counts.get("cases", 0) / seconds, 1) if seconds else 0,
        per_case_ms=round(seconds * 1000 / counts["cases"], 3) if counts.get("cases") else "",
    )
