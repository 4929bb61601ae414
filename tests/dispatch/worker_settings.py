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
    # kombu keeps unacknowledged messages, and the lock taken to hand them back, under keys
    # shared by every worker of the Redis database. The test kills a worker, which may hold that
    # lock at the time (it is taken every second here): the lock would then stay for its five
    # minutes and block every later redelivery, this test's and a parallel run's. Keys of the
    # test's own queue, and a lock that expires as fast as the messages do.
    "unacked_key": f"{CELERY_TASK_DEFAULT_QUEUE}.unacked",
    "unacked_index_key": f"{CELERY_TASK_DEFAULT_QUEUE}.unacked_index",
    "unacked_mutex_key": f"{CELERY_TASK_DEFAULT_QUEUE}.unacked_mutex",
    "unacked_mutex_expire": 5,
}
