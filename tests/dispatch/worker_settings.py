"""Settings for the Celery worker that tests/dispatch/test_worker.py starts as a subprocess.

The production module, pointed by the environment at the test's database and Redis, with a
queue of the test's own (parallel test runs share one Redis database) and a short visibility
timeout so that a message whose worker was killed comes back within seconds, not an hour.
"""

import os

from zongzhi.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ["ZZ_TEST_QUEUE"]
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("ZZ_TEST_VISIBILITY_TIMEOUT", "5")),
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
