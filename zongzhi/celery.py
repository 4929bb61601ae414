"""The Celery application: tasks are discovered per app, the beat schedule lives here in code."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zongzhi.settings")

app = Celery("zongzhi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Deadlines are columns; this sweeper finds what is due every minute (STYLE.md).
    "sweep-deadlines": {"task": "dispatch.tasks.sweep_deadlines", "schedule": 60.0},
    # After-commit work (routing, receipts, SMS) that the broker did not deliver, whose worker
    # died, or that waits for a retry: run from the outbox table (dispatch.outbox).
    # The dashboard's daily roll-up: changed past days and the day that ended (dispatch.rollups).
    "refresh-rollups": {"task": "dispatch.tasks.refresh_rollups", "schedule": 300.0},
    "relay-jobs": {
        "task": "dispatch.tasks.relay_jobs",
        "schedule": float(settings.OUTBOX_RELAY_SECONDS),
    },
}


@after_setup_logger.connect
@after_setup_task_logger.connect
def mask_worker_logs(logger, **kwargs) -> None:
    """The worker sets up its own handlers: they are masked like the web's (zongzhi.logmask)."""
    from zongzhi.logmask import MaskingFilter

    for handler in logger.handlers:
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
