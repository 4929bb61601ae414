"""Messages: inbox rows for staff, SMS rows for residents, deduplicated, each in its recipient's
language; SMS sent by the outbox after commit, retried with backoff, given up after bounds."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.db import transaction
from django.utils import timezone, translation

from dispatch import outbox, services
from dispatch.models import Job, Notification
from dispatch.notifications import SEND_TOPIC, deliver, mark_read, notify, unread_count
from people.models import Role
from tests import factories as f


@pytest.fixture
def case(tree, people):
    resident = f.party(name="李四", phone="13912345678")
    return f.case(
        region=tree.village_a1,
        owner_unit=tree.centre_a,
        actor=people.alice,
        parties=[(resident, "applicant")],
    )


@pytest.fixture
def resident(case):
    """The applicant as registered on the case: where the SMS goes."""
    return case.case_parties.get()


class Gateway:
    """A tiny SMS gateway on 127.0.0.1: answers with the queued status codes, records bodies."""

    def __init__(self):
        self.statuses: list[int] = []
        self.received: list[dict] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers["Content-Length"])
                gateway.received.append(json.loads(self.rfile.read(length).decode("utf-8")))
                status = gateway.statuses.pop(0) if gateway.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def gateway(settings):
    with Gateway() as gw:
        settings.SMS_BACKEND = "dispatch.sms.HttpGatewayBackend"
        settings.SMS_GATEWAY_URL = gw.url
        settings.SMS_GATEWAY_TIMEOUT = 2
        yield gw


@pytest.fixture(autouse=True)
def _only_the_messages_jobs(case):
    """The case's own jobs (its tracking page) are done: the relay here sees only the SMS."""
    Job.objects.update(state=Job.State.DONE)


def the_job(row: Notification) -> Job:
    return Job.objects.get(topic=SEND_TOPIC, payload={"id": row.pk})


def run_job(job: Job, *, at=None) -> str:
    """What a worker (or the relay) does with the job when it is due."""
    job.refresh_from_db()
    return outbox.run(job.pk, now=at or job.run_after)


def send(case, *, users=(), party=None, key="k1"):
    return notify(
        case=case,
        kind="urged",
        params={"code": case.code, "note": "您的诉求已受理。"},
        users=users,
        party=party,
        key=key,
    )


def test_inbox_rows_are_sent_when_written(case, people):
    rows = send(case, users=[people.carol, people.dave, people.carol])
    assert sorted(r.recipient_id for r in rows) == sorted([people.carol.pk, people.dave.pk])
    assert {r.state for r in rows} == {Notification.State.SENT}
    assert unread_count(people.carol) == 1
    assert mark_read(user=people.carol) == 1
    assert unread_count(people.carol) == 0
    assert unread_count(people.dave) == 1


def test_each_recipient_reads_the_message_in_their_own_language(tree, case, people, resident):
    english = f.user("police_en", role=Role.HANDLER, unit=tree.police_a, language="en")
    chinese = f.user("police_zh", role=Role.HANDLER, unit=tree.police_a)
    services.register_case(case=case, actor=people.erin)
    services.dispatch_case(case=case, actor=people.erin, unit=tree.police_a, profile=f.profile())
    # The supervisor acting uses the English interface: that changes no one's message.
    with translation.override("en"):
        services.urge_case(case=case, actor=people.dave, note="请加快办理")
        rows = notify(
            case=case, kind="closed", params={"code": case.code}, party=resident, key="done"
        )
    to_english = Notification.objects.get(recipient=english, kind="urged")
    to_chinese = Notification.objects.get(recipient=chinese, kind="urged")
    assert to_english.language == "en" and to_english.title.startswith("Supervis")
    assert to_chinese.language == "zh-hans" and to_chinese.title.startswith("督办")
    assert rows[0].language == "zh-hans" and "已办结" in rows[0].body


def test_the_same_key_writes_nothing_twice(
    case, people, resident, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as first:
        assert len(send(case, users=[people.carol], party=resident)) == 2
    with django_capture_on_commit_callbacks() as second:
        assert send(case, users=[people.carol], party=resident) == []
    assert Notification.objects.count() == 2
    assert Job.objects.filter(topic=SEND_TOPIC).count() == 1
    assert len(first) == 1 and second == []


def test_sms_goes_out_after_commit_through_the_log_backend(
    case, resident, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level("INFO", "dispatch.sms"):
        [row] = send(case, party=resident)
        assert row.state == Notification.State.PENDING
    row.refresh_from_db()
    assert row.state == Notification.State.SENT and row.attempts == 1
    assert the_job(row).state == Job.State.DONE
    assert "139****5678" in caplog.text and "13912345678" not in caplog.text


def test_a_rolled_back_transaction_leaves_no_message_and_no_job(
    case, people, resident, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            send(case, users=[people.carol], party=resident)
            raise RuntimeError("the transition failed")
    assert callbacks == []
    assert not Notification.objects.exists()
    assert not Job.objects.filter(topic=SEND_TOPIC).exists()


def test_a_party_without_phone_gets_no_sms(tree, people):
    case = f.case(
        region=tree.village_a1,
        owner_unit=tree.centre_a,
        parties=[(f.party(name="王五", phone=""), "applicant")],
    )
    assert send(case, party=case.case_parties.get()) == []


def test_the_sms_goes_to_the_phone_given_for_this_case(tree, people, case, resident, gateway):
    # The same person registers a later case with a new phone (the clerk confirmed it).
    f.party(name="李四", phone="13912345678")
    person = resident.party
    person.phone = "13700001111"
    person.save()
    with transaction.atomic():
        [row] = send(case, party=resident)
    run_job(the_job(row))
    assert [b["phone"] for b in gateway.received] == ["13912345678"]


def test_http_gateway_receives_the_decrypted_phone(case, resident, gateway):
    with transaction.atomic():
        [row] = send(case, party=resident)
    assert run_job(the_job(row)) == outbox.Outcome.DONE
    row.refresh_from_db()
    assert row.state == Notification.State.SENT
    [body] = gateway.received
    assert body == {
        "id": row.dedup_key,
        "phone": "13912345678",
        "text": "【综治中心】您的诉求已受理。",
    }


def test_transient_gateway_errors_are_retried_with_backoff(case, resident, gateway):
    gateway.statuses = [503, 500]
    with transaction.atomic():
        [row] = send(case, party=resident)
    job = the_job(row)
    outcomes, waits = [], []
    for _ in range(5):
        outcomes.append(run_job(job))
        job.refresh_from_db()
        waits.append(job.run_after - timezone.now())
        if outcomes[-1] != outbox.Outcome.RETRY:
            break
    assert outcomes == [outbox.Outcome.RETRY, outbox.Outcome.RETRY, outbox.Outcome.DONE]
    assert waits[1] > waits[0] > dt.timedelta(0)  # each retry waits longer
    row.refresh_from_db()
    assert row.state == Notification.State.SENT
    assert row.attempts == 3 and len(gateway.received) == 3


def test_a_retry_is_not_run_before_its_time(case, resident, gateway):
    gateway.statuses = [503]
    with transaction.atomic():
        [row] = send(case, party=resident)
    job = the_job(row)
    assert run_job(job) == outbox.Outcome.RETRY
    job.refresh_from_db()
    assert outbox.run(job.pk, now=job.run_after - dt.timedelta(seconds=1)) == "skipped"
    assert len(gateway.received) == 1


def test_a_refused_message_is_not_retried(case, resident, gateway):
    gateway.statuses = [400]
    with transaction.atomic():
        [row] = send(case, party=resident)
    assert run_job(the_job(row)) == outbox.Outcome.DONE
    row.refresh_from_db()
    assert row.state == Notification.State.FAILED and "400" in row.last_error
    assert len(gateway.received) == 1


def test_an_unreachable_gateway_gives_up_after_bounded_attempts(case, resident, settings):
    settings.SMS_BACKEND = "dispatch.sms.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/send"  # discard port: nothing listens
    settings.SMS_GATEWAY_TIMEOUT = 1
    with transaction.atomic():
        [row] = send(case, party=resident)
    job = the_job(row)
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        run_job(job)
    job.refresh_from_db()
    row.refresh_from_db()
    assert job.state == Job.State.FAILED and job.attempts == outbox.MAX_ATTEMPTS
    assert row.state == Notification.State.FAILED
    assert row.attempts == outbox.MAX_ATTEMPTS
    assert "unreachable" in row.last_error


def test_a_claimed_job_is_run_by_one_runner(case, resident, gateway):
    with transaction.atomic():
        [row] = send(case, party=resident)
    job = the_job(row)
    now = timezone.now()
    assert outbox.run(job.pk, now=now) == outbox.Outcome.DONE
    assert outbox.run(job.pk, now=now) == outbox.Outcome.SKIPPED
    assert deliver(row.pk) == "skipped"  # a stray delivery of a sent row sends nothing
    assert len(gateway.received) == 1


def test_the_relay_runs_jobs_whose_offer_was_lost(case, resident, gateway):
    with transaction.atomic():
        [old] = send(case, party=resident, key="old")  # the broker was down at commit
        [new] = send(case, party=resident, key="new")  # its offer is a moment old
    Job.objects.filter(pk=the_job(old).pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=5)
    )
    assert outbox.relay() == {outbox.Outcome.DONE: 1}
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.state == Notification.State.SENT
    assert new.state == Notification.State.PENDING
    assert [b["id"] for b in gateway.received] == [old.dedup_key]


def test_the_relay_takes_over_a_job_whose_worker_died(case, resident, gateway):
    with transaction.atomic():
        [row] = send(case, party=resident)
    job = the_job(row)
    start = timezone.now()
    # A worker claimed it and died: the job is running with a lease nobody renews.
    Job.objects.filter(pk=job.pk).update(
        state=Job.State.RUNNING, lease_until=start + dt.timedelta(seconds=30), attempts=1
    )
    assert outbox.relay(now=start) == {}
    assert outbox.relay(now=start + dt.timedelta(minutes=1)) == {outbox.Outcome.DONE: 1}
    assert len(gateway.received) == 1
