"""A task for the real-worker test: it blocks on a file the test controls, then sweeps.

The worker is started with ``--include tests.dispatch.worker_tasks``. The test kills the worker
while the task waits, restarts it, and checks that the redelivered task did the work once.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from celery import shared_task

from dispatch.tasks import parse_now


@shared_task(acks_late=True, name="tests.wait_then_sweep")
def wait_then_sweep(now: str, marker_dir: str, timeout: float = 60.0) -> dict:
    from dispatch.sweeper import sweep

    markers = Path(marker_dir)
    run = len(list(markers.glob("started-*"))) + 1
    (markers / f"started-{run}").touch()
    deadline = time.monotonic() + timeout
    while not (markers / "release").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never released the task")
        time.sleep(0.05)
    counts = sweep(now=parse_now(now))
    (markers / f"done-{run}").write_text(str(counts["alerts"]))
    return counts


@shared_task(acks_late=True, name="tests.touch")
def touch(path: str) -> None:
    """A sentinel: the worker runs one task at a time, so everything queued before has run."""
    Path(path).touch()


@shared_task(name="tests.log_line")
def log_line(text: str) -> None:
    """A line for the worker's log, as any task might write one."""
    logging.getLogger("tests.worker").warning(text)
