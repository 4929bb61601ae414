"""Real Celery workers on the real Redis and the real database.

A case registered in this process is routed by a worker subprocess; the sweeper, run by the
worker with a clock past the deadline, warns and escalates exactly once however often it runs;
a worker killed with SIGKILL in the middle of a task loses nothing and duplicates nothing once
a new worker has taken the redelivered message.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from dispatch.models import Alert, Case, DeadlineProfile, DeadlineUnit, Notification, RoutingRule
from dispatch.services import register_case
from dispatch.states import Action, Status
from dispatch.tasks import sweep_deadlines
from grids.models import Level
from people.models import Role
from tests import factories as f
from tests.dispatch.worker_tasks import log_line, touch, wait_then_sweep
from zongzhi.celery import app

# The worker runs on real time; so does this test (a job recorded at a travelled moment would
# never be due for it).
pytestmark = [
    pytest.mark.worker,
    pytest.mark.real_clock,
    pytest.mark.django_db(transaction=True),
]

REDIS_URL = os.environ.get("ZZ_TEST_REDIS_URL", "redis://127.0.0.1:6379/12")
WAIT = 60.0  # seconds; every wait in this module is bounded


def _redis():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    return client


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        name = str(db["NAME"])
        assert name != ":memory:" and "mode=memory" not in name, "the worker needs a file"
        return f"sqlite:///{Path(name).resolve()}"
    user = quote(db["USER"] or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or "5432"
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def wait_for(predicate, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class Worker:
    """One ``celery worker`` subprocess in its own process group."""

    def __init__(self, *, queue: str, log: Path, env: dict[str, str]):
        self.log = log
        self.queue = queue
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self._log = open(self.log, "ab")  # noqa: SIM115 (closed in kill())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "zongzhi",
                "worker",
                "-l",
                "INFO",
                "-P",
                "prefork",
                "-c",
                "1",
                "-Q",
                self.queue,
                "-n",
                f"{self.queue}@%h",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-I",
                "tests.dispatch.worker_tasks",
            ],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._ready, f"the worker to start (log: {self.log})")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the worker exited: {self.log.read_text()[-3000:]}")
        return b" ready." in self.log.read_bytes()

    def kill(self) -> None:
        """SIGKILL the worker and its pool children: no chance to ack or clean up."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=WAIT)
        self._log.close()
        self.proc = None


@pytest.fixture
def broker(tmp_path, monkeypatch):
    """Point this process's Celery app at Redis and a queue of this test's own."""
    client = _redis()
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration, so a
    # deployment-wide broker (CI sets one) would otherwise win over the conf.update below.
    monkeypatch.setenv("CELERY_BROKER_URL", REDIS_URL)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_READ_URL", raising=False)
    queue = f"zz-test-{uuid.uuid4().hex[:12]}"
    conf = app.conf
    saved = {
        key: conf[key]
        for key in (
            "task_always_eager",
            "broker_url",
            "task_default_queue",
            "broker_transport_options",
        )
    }

    def reset_connections():
        app._pool = None
        app.amqp._producer_pool = None
        app.amqp.__dict__.pop("queues", None)
        app.amqp.__dict__.pop("router", None)

    conf.update(
        task_always_eager=False,
        broker_url=REDIS_URL,
        task_default_queue=queue,
        broker_transport_options={"visibility_timeout": 5},
    )
    reset_connections()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.dispatch.worker_settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CACHE_URL": "locmem://",
        "ZZ_TEST_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }
    try:
        yield {"queue": queue, "env": env, "redis": client, "logs": tmp_path}
    finally:
        conf.update(saved)
        reset_connections()
        for key in client.scan_iter(f"{queue}*"):
            client.delete(key)


def drain(markers: Path, name: str) -> None:
    """Wait until every task queued so far has run (one worker process, prefetch 1, FIFO)."""
    touch.delay(str(markers / name))
    wait_for(lambda: (markers / name).exists(), f"the queue to drain ({name})")


def count(case: Case, action: Action) -> int:
    return case.events.filter(action=action).count()


def test_route_sweep_and_a_killed_worker(tree, people, broker, tmp_path):
    profile = DeadlineProfile.objects.create(
        name="邻里纠纷",
        sign_amount=4,
        sign_unit=DeadlineUnit.WORKING_HOURS,
        reply_amount=3,
        complete_amount=7,
        tier1_after_hours=0,
        tier2_after_hours=24,
    )
    RoutingRule.objects.create(
        region=tree.town_a,
        unit=tree.police_a,
        handling_level=Level.TOWNSHIP,
        profile=profile,
        auto_dispatch=True,
    )
    handler = f.user("police_handler", role=Role.HANDLER, unit=tree.police_a)
    head = f.user("police_head", role=Role.LEADER, unit=tree.police_a)
    markers = tmp_path / "markers"
    markers.mkdir()
    workers: list[Worker] = []

    def start_worker(n: int) -> Worker:
        worker = Worker(
            queue=broker["queue"], env=broker["env"], log=broker["logs"] / f"worker-{n}.log"
        )
        workers.append(worker)
        return worker.start()

    try:
        first = start_worker(1)

        # 立案 in this process; the routing task is published after commit and runs there.
        case = f.case(region=tree.village_a2, owner_unit=tree.centre_a, actor=people.alice)
        register_case(case=case, actor=people.erin)
        wait_for(
            lambda: Case.objects.get(pk=case.pk).status == Status.ASSIGNED,
            "the worker to route and dispatch the case",
        )
        case.refresh_from_db()
        assert case.lead_unit == tree.police_a
        assert count(case, Action.DISPATCHED) == 1
        # The assignment notice reached the handler's inbox.
        assert Notification.objects.filter(recipient=handler, kind="assigned").count() == 1

        # The clock moves past the deadline; the sweep runs three times (beat, a redelivery,
        # a second beat): one warning, one overdue, one escalation.
        sign_late = case.sign_due_at - dt.timedelta(seconds=1)
        warn = case.warn_at + dt.timedelta(seconds=1)
        late = case.due_at + dt.timedelta(seconds=1)
        for moment in (sign_late, warn, late, late, late + dt.timedelta(minutes=1)):
            sweep_deadlines.delay(moment.isoformat())
        drain(markers, "swept")
        assert count(case, Action.WARNED) == 1
        assert count(case, Action.ESCALATED_OVERDUE) == 1
        assert Notification.objects.filter(recipient=head, kind="deadline_tier1").count() == 1
        assert Notification.objects.filter(recipient=handler, kind="deadline_yellow").count() == 1

        # Tier 2 is due a day later. The worker is killed while the sweep task waits.
        tier2_time = (case.due_at + dt.timedelta(hours=25)).isoformat()
        wait_then_sweep.delay(tier2_time, str(markers))
        wait_for(lambda: (markers / "started-1").exists(), "the task to start")
        first.kill()
        assert not Alert.objects.filter(case=case, stage="tier2").exists()

        (markers / "release").touch()
        start_worker(2)
        wait_for(lambda: list(markers.glob("done-*")), "the redelivered task to finish")
        assert len(list(markers.glob("started-*"))) >= 2  # it really ran again
        # A duplicate sweep after the restart changes nothing.
        sweep_deadlines.delay(tier2_time)
        drain(markers, "swept-again")

        stages = list(
            case.events.filter(action=Action.ESCALATED_OVERDUE)
            .values_list("data__stage", flat=True)
            .order_by("seq")
        )
        assert stages == ["tier1", "tier2"]
        assert Alert.objects.filter(case=case, stage="tier2").count() == 1
        assert (
            Notification.objects.filter(recipient=people.dave, kind="deadline_tier2").count() == 1
        )
        assert count(case, Action.WARNED) == 1

        # The worker's log is masked like the web's: no tracking link, no mobile number.
        log_line.delay(f"opened /t/{case.tracking_token} for 13912345678")
        drain(markers, "logged")
        written = (broker["logs"] / "worker-2.log").read_text()
        assert "opened /t/*** for 139****5678" in written
        assert case.tracking_token not in written
    finally:
        for worker in workers:
            worker.kill()
