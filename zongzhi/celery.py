"""The Celery application: tasks are discovered per app, the beat schedule lives here in code."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zongzhi.settings")

app = Celery("zongzhi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    # Deadlines are columns; this sweeper finds what is due every minute (STYLE.md).
    "sweep-deadlines": {"task": "dispatch.tasks.sweep_deadlines", "schedule": 60.0},
    # Outbox rows whose first delivery failed or whose worker died are retried from here.
    "deliver-pending-notifications": {
        "task": "dispatch.tasks.deliver_pending_notifications",
        "schedule": 60.0,
    },
}
