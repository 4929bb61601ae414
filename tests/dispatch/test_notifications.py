"""The outbox: inbox rows for staff, SMS rows for residents, deduplicated, sent after commit."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from celery.exceptions import Retry
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from dispatch import notifications
from dispatch.models import Notification
from dispatch.notifications import deliver, mark_read, notify, unread_count
from dispatch.tasks import deliver_notification, deliver_pending_notifications
from tests import factories as f


@pytest.fixture
def case(tree, people):
    return f.case(region=tree.village_a1, owner_unit=tree.centre_a, actor=people.alice)


@pytest.fixture
def resident(db):
    return f.party(name="李四", phone="13912345678")


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


def run_delivery(pk: int, *, retries: int = 0) -> str:
    """One run of the delivery task as a worker runs it; "RETRY" when it asks to be retried."""
    try:
        return deliver_notification.apply(args=[pk], retries=retries, throw=False).state
    except Retry:
        return "RETRY"


def send(case, *, users=(), party=None, key="k1"):
    return notify(
        case=case,
        kind="assigned",
        users=users,
        party=party,
        title="新派单",
        body="您的诉求已受理。",
        dedup_key=key,
    )


def test_inbox_rows_are_sent_when_written(case, people):
    rows = send(case, users=[people.carol, people.dave, people.carol])
    assert sorted(r.recipient_id for r in rows) == sorted([people.carol.pk, people.dave.pk])
    assert {r.state for r in rows} == {Notification.State.SENT}
    assert unread_count(people.carol) == 1
    assert mark_read(user=people.carol) == 1
    assert unread_count(people.carol) == 0
    assert unread_count(people.dave) == 1


def test_the_same_key_writes_nothing_twice(
    case, people, resident, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as first:
        assert len(send(case, users=[people.carol], party=resident)) == 2
    with django_capture_on_commit_callbacks() as second:
        assert send(case, users=[people.carol], party=resident) == []
    assert Notification.objects.count() == 2
    assert len(first) == 1 and second == []


def test_sms_goes_out_after_commit_through_the_log_backend(
    case, resident, caplog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), caplog.at_level("INFO", "dispatch.sms"):
        [row] = send(case, party=resident)
        assert row.state == Notification.State.PENDING
    row.refresh_from_db()
    assert row.state == Notification.State.SENT and row.attempts == 1
    assert "139****5678" in caplog.text and "13912345678" not in caplog.text


def test_a_rolled_back_transaction_leaves_no_message(
    case, people, resident, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            send(case, users=[people.carol], party=resident)
            raise RuntimeError("the transition failed")
    assert callbacks == []
    assert not Notification.objects.exists()


def test_a_party_without_phone_gets_no_sms(case):
    assert send(case, party=f.party(name="王五", phone="")) == []


def test_http_gateway_receives_the_decrypted_phone(
    case, resident, gateway, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        [row] = send(case, party=resident)
    row.refresh_from_db()
    assert row.state == Notification.State.SENT
    [body] = gateway.received
    assert body == {
        "id": row.dedup_key,
        "phone": "13912345678",
        "text": "【综治中心】您的诉求已受理。",
    }


def test_transient_gateway_errors_are_retried(case, resident, gateway):
    gateway.statuses = [503, 500]
    with transaction.atomic():
        [row] = send(case, party=resident)
    # Each run is what the worker does when the retry Celery scheduled comes due.
    states = []
    for n in range(5):
        states.append(run_delivery(row.pk, retries=n))
        if states[-1] != "RETRY":
            break
    assert states[0] == "RETRY" and states[-1] == "SUCCESS"
    row.refresh_from_db()
    assert row.state == Notification.State.SENT
    assert row.attempts == 3 and len(gateway.received) == 3


def test_after_the_last_retry_the_row_waits_for_the_beat(case, resident, gateway):
    gateway.statuses = [503]
    with transaction.atomic():
        [row] = send(case, party=resident)
    result = deliver_notification.apply(args=[row.pk], retries=deliver_notification.max_retries)
    assert result.get() == "pending"
    row.refresh_from_db()
    assert row.state == Notification.State.PENDING and row.attempts == 1


def test_a_refused_message_is_not_retried(case, resident, gateway):
    gateway.statuses = [400]
    with transaction.atomic():
        [row] = send(case, party=resident)
    deliver_notification.apply(args=[row.pk])
    row.refresh_from_db()
    assert row.state == Notification.State.FAILED and "400" in row.last_error
    assert len(gateway.received) == 1


def test_an_unreachable_gateway_gives_up_after_bounded_attempts(case, resident, settings):
    settings.SMS_BACKEND = "dispatch.sms.HttpGatewayBackend"
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/send"  # discard port: nothing listens
    settings.SMS_GATEWAY_TIMEOUT = 1
    with transaction.atomic():
        [row] = send(case, party=resident)
    for _ in range(notifications.MAX_ATTEMPTS + 2):
        run_delivery(row.pk)
    row.refresh_from_db()
    assert row.state == Notification.State.FAILED
    assert row.attempts == notifications.MAX_ATTEMPTS
    assert "unreachable" in row.last_error


def test_a_lease_keeps_two_deliveries_apart(case, resident, gateway):
    with transaction.atomic():
        [row] = send(case, party=resident)
    cache.add(f"zz:sms-lease:{row.pk}", 1, 60)  # another worker is sending it now
    assert deliver(row.pk) == notifications.Delivery.BUSY
    assert gateway.received == []
    cache.delete(f"zz:sms-lease:{row.pk}")
    assert deliver(row.pk) == notifications.Delivery.SENT
    assert deliver(row.pk) == notifications.Delivery.SKIPPED
    assert len(gateway.received) == 1


def test_the_beat_retries_rows_left_pending(case, resident, gateway):
    with transaction.atomic():
        [old] = send(case, party=resident, key="old")  # its worker died before sending
        [new] = send(case, party=resident, key="new")  # its task is still queued
    Notification.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - dt.timedelta(minutes=5)
    )
    assert deliver_pending_notifications.delay().get() == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.state == Notification.State.SENT
    assert new.state == Notification.State.PENDING
    assert [b["id"] for b in gateway.received] == [old.dedup_key]
