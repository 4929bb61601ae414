"""The intake app's part of the worker: load the receipt fonts when a worker process starts.

Receipts themselves are rendered by the ``receipt.render`` outbox job (``intake.receipt``).
"""

from __future__ import annotations

import logging

from celery.signals import worker_process_init

from intake.receipt import warm_up

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_receipt_renderer(**kwargs) -> None:
    """Load the receipt fonts when a worker process starts, not while a clerk waits."""
    try:
        warm_up()
    except Exception:  # a missing font must not stop the worker's other queues
        logger.exception("Could not warm up the receipt renderer")
