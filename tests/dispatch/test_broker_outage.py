"""A broker outage in the middle of intake: the clerk is answered, and no work is lost or doubled.

The test runs a Redis of its own and a real worker with embedded beat on it. A clerk registers
two cases over HTTP, the Redis process is stopped (its messages die with it: no persistence),
the clerk registers three more, Redis comes back on the same port, and then every case must be
routed and have its receipt, with each piece of after-commit work run exactly once: the jobs
recorded while the broker was down reach the worker through the outbox relay, not through a
message.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from dispatch.models import (
    Assignment,
    AssignmentRole,
    Case,
    DeadlineProfile,
    DeadlineUnit,
    Job,
    RoutingRule,
)
from dispatch.services.opening import ROUTE_TOPIC
from dispatch.states import Action, Status
from grids.models import Level
from intake import fonts
from intake.receipt import RENDER_TOPIC
from tests.dispatch.test_worker import _database_url, wait_for
from tests.intake.intake_helpers import register_via_http
from zongzhi.celery import app

# The worker is another process on the real clock; a job recorded here at a travelled moment
# would be "not yet due" for it, so both sides use real time.
pytestmark = [
    pytest.mark.worker,
    pytest.mark.real_clock,
    pytest.mark.django_db(transaction=True),
]

WAIT = 60.0  # seconds; every wait in this module is bounded

# Five residents at the counter, each with a request of their own (the same applicant twice
# would stop at the duplicate check).
REQUESTS = [
    ("王小明", "13912340001", "楼上装修噪音扰民"),
    ("李秀英", "13912340002", "邻居占用楼道堆放杂物"),
    ("张建国", "13912340003", "宅基地边界与邻居有争议"),
    ("刘桂兰", "13912340004", "邻居家犬只夜间吠叫"),
    ("陈志强", "13912340005", "楼上漏水浸坏天花板"),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A ``redis-server`` of this test's own on 127.0.0.1, stopped and started on one port."""

    def __init__(self, *, directory: Path) -> None:
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.directory.mkdir()
        self.log = directory / "redis.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._answers, f"redis-server on port {self.port} (log: {self.log})", WAIT)

    def _answers(self) -> bool:
        import redis

        if self.proc.poll() is not None:
            raise AssertionError(f"redis-server exited: {self.log.read_text()[-2000:]}")
        try:
            return redis.Redis(port=self.port, socket_connect_timeout=1).ping()
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        """Terminate the server: the queued and unacknowledged messages are gone with it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=WAIT)
        self.proc = None


class BeatWorker:
    """One ``celery worker -B`` subprocess (worker and embedded beat) in its own group."""

    def __init__(self, *, queue: str, env: dict[str, str], directory: Path) -> None:
        self.queue = queue
        self.env = env
        self.directory = directory
        self.log = directory / "worker.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "zongzhi",
                    "worker",
                    "-B",
                    "--schedule",
                    str(self.directory / "celerybeat-schedule"),
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
                ],
                cwd=settings.BASE_DIR,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self._ready, f"the worker to start (log: {self.log})", WAIT)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"the worker exited: {self.tail()}")
        return b" ready." in self.log.read_bytes()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        """SIGKILL the worker, its pool child and beat: the test database is flushed next."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=WAIT)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(directory=tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def media(settings, tmp_path):
    """One MEDIA_ROOT for this process and the worker, which stores the receipts."""
    call_command("prepare_fonts", verbosity=0)  # what the setup script runs; fast once done
    assert fonts.prepared_fonts() is not None
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def worker(redis_server, media, tmp_path, monkeypatch):
    """Point this process's Celery app at the test's Redis; start a worker with beat on it."""
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration
    # (tests/dispatch/test_worker.py); the shared Redis must never see this test.
    monkeypatch.setenv("CELERY_BROKER_URL", redis_server.url)
    monkeypatch.delenv("CELERY_BROKER_WRITE_URL", raising=False)
    monkeypatch.delenv("CELERY_BROKER_READ_URL", raising=False)
    queue = f"zz-outage-{uuid.uuid4().hex[:12]}"
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
        broker_url=redis_server.url,
        task_default_queue=queue,
        broker_transport_options={"visibility_timeout": 5},
    )
    reset_connections()
    directory = tmp_path / "worker"
    directory.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.dispatch.worker_settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_server.url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "CACHE_URL": "locmem://",
        "MEDIA_ROOT": str(media),
        "OUTBOX_RELAY_SECONDS": "1",
        "ZZ_TEST_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }
    process = BeatWorker(queue=queue, env=env, directory=directory)
    try:
        process.start()
        yield process
    finally:
        process.stop()
        conf.update(saved)
        reset_connections()


def register(client, tree, n: int) -> Case:
    """The clerk's intake POST for resident ``n``: asserts the 302 (not a 500) and the row."""
    name, phone, summary = REQUESTS[n]
    return register_via_http(
        client,
        tree,
        summary=summary,
        **{
            "applicants-0-name": name,
            "applicants-0-phone": phone,
            "applicants-0-id_number": "",
            "applicants-0-address": "",
        },
    )


def _jobs_of(case: Case, topic: str) -> list[Job]:
    return list(Job.objects.filter(topic=topic, payload__case_id=case.pk))


def _due_and_unfinished() -> bool:
    # Some jobs wait for a moment on purpose (a tracking page re-rendered when the clock changes
    # it, ``Job.run_after``); only those already due must have run.
    return Job.objects.filter(run_after__lte=timezone.now()).exclude(state=Job.State.DONE).exists()


def _settled(cases: list[Case]) -> bool:
    pks = [case.pk for case in cases]
    return (
        Case.objects.filter(pk__in=pks, status=Status.ASSIGNED).exclude(receipt_pdf="").count()
        == len(pks)
        and not _due_and_unfinished()
    )


def _state(cases: list[Case]) -> str:
    rows = Case.objects.filter(pk__in=[c.pk for c in cases]).values_list(
        "code", "status", "receipt_pdf"
    )
    jobs = Job.objects.order_by("pk").values_list(
        "pk", "topic", "state", "attempts", "run_after", "last_error"
    )
    return f"cases: {list(rows)}\njobs: {list(jobs)}"


def test_a_broker_outage_loses_no_work_and_shows_the_clerk_no_error(
    client, tree, people, cats, redis_server, worker
):
    profile = DeadlineProfile.objects.create(
        name="邻里纠纷",
        sign_amount=4,
        sign_unit=DeadlineUnit.WORKING_HOURS,
        reply_amount=3,
        complete_amount=7,
    )
    RoutingRule.objects.create(
        region=tree.town_a,
        unit=tree.police_a,
        handling_level=Level.TOWNSHIP,
        profile=profile,
        auto_dispatch=True,
    )
    client.force_login(people.alice)

    # Broker up. Redis is stopped straight after, so these two cases' messages may still be
    # queued, or taken and unacknowledged, when it goes: the test does not wait for them.
    cases = [register(client, tree, n) for n in range(2)]

    redis_server.stop()
    started = time.monotonic()
    for n in range(2, 5):
        case = register(client, tree, n)
        assert case.status == Status.REGISTERED
        cases.append(case)
    down_for = time.monotonic() - started
    assert down_for < 20, f"three registrations took {down_for:.1f}s without a broker"
    assert Case.objects.count() == 5

    redis_server.start()
    try:
        wait_for(lambda: _settled(cases), "every case routed, with its receipt", WAIT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_state(cases)}\nworker log:\n{worker.tail()}") from None

    # Exactly once, per case: one routing job and one receipt job, each claimed once; one
    # dispatch event; one lead assignment; a stored PDF.
    for case in cases:
        case.refresh_from_db()
        assert case.lead_unit == tree.police_a, case.code
        assert case.events.filter(action=Action.DISPATCHED).count() == 1, case.code
        assert Assignment.objects.filter(case=case, role=AssignmentRole.LEAD).count() == 1, (
            case.code
        )
        for topic in (ROUTE_TOPIC, RENDER_TOPIC):
            jobs = _jobs_of(case, topic)
            assert [(j.state, j.attempts) for j in jobs] == [(Job.State.DONE, 1)], (
                case.code,
                topic,
            )
        assert Path(case.receipt_pdf.path).read_bytes().startswith(b"%PDF-"), case.code
    assert not Job.objects.filter(state=Job.State.FAILED).exists()
    # And whatever else the registrations and dispatches recorded ran once too, except what
    # waits for a later moment, which nothing has touched.
    now = timezone.now()
    ran = Job.objects.filter(run_after__lte=now)
    assert set(ran.values_list("state", "attempts")) == {(Job.State.DONE, 1)}, _state(cases)
    waiting = Job.objects.filter(run_after__gt=now)
    assert set(waiting.values_list("state", "attempts")) <= {(Job.State.PENDING, 0)}, _state(cases)
