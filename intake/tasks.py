"""Celery tasks of the intake app: thin, idempotent, take ids."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.utils import translation

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _warm_receipt_renderer(**kwargs) -> None:
    """Load the receipt fonts when a worker process starts, not while a clerk waits."""
    try:
        from intake.receipt import warm_up

        warm_up()
    except Exception:  # a missing font must not stop the worker's other queues
        logger.exception("Could not warm up the receipt renderer")


@shared_task(acks_late=True)
def render_receipt(case_id: int) -> None:
    """Render the receipt PDF and store it with the case; a redelivery replaces the file."""
    from intake.receipt import store_receipt_pdf

    with translation.override(settings.LANGUAGE_CODE):
        store_receipt_pdf(case_id=case_id)
