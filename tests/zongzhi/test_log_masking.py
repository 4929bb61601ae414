"""No log line opens a case or reaches a resident: tracking links and mobile numbers masked."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings

from dispatch.sms import LogBackend, SmsMessage
from tests import factories as f
from tests.clock import at
from zongzhi.bench.harness import free_port
from zongzhi.logmask import MaskingFilter, mask

PHONE = "13912345678"


def test_the_masks():
    assert mask("GET /t/AbC_123-xyz?large=1 HTTP/1.1") == "GET /t/***?large=1 HTTP/1.1"
    assert mask(f"to {PHONE}, case 139901202612070001") == "to 139****5678, case 139901202612070001"


@pytest.fixture
def console():
    """What the configured console handler writes, for the length of a test."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, MaskingFilter) for f in h.filters)
    )
    written = io.StringIO()
    old = handler.setStream(written)
    yield written
    handler.setStream(old)


@pytest.mark.django_db
def test_a_scripted_session_leaves_no_token_or_phone_in_the_log(client, tree, people, console):
    case = f.case(region=tree.village_a1, owner_unit=tree.centre_a, now=at(0, 9))
    token = case.tracking_token
    assert client.get(f"/t/{token}").status_code == 200
    unknown = "Z" * 40
    assert client.get(f"/t/{unknown}").status_code == 404  # logged by django.request
    LogBackend().send(
        SmsMessage(
            message_id="m1",
            phone=PHONE,
            text=f"请查看 {settings.PUBLIC_BASE_URL}/t/{token} ，电话 {PHONE}",
        )
    )
    logging.getLogger("zongzhi.test").warning("asked about %s by %s", f"/t/{token}", PHONE)
    written = console.getvalue()
    assert "Not Found: /t/***" in written and "/t/***" in written
    for secret in (token, unknown, PHONE):
        assert secret not in written


def test_gunicorns_access_log_is_masked(tmp_path):
    port, log = free_port(), tmp_path / "access.log"
    proc = subprocess.Popen(  # noqa: S603 - our own server, on 127.0.0.1
        [
            sys.executable,
            "-m",
            "gunicorn",
            "zongzhi.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--access-logfile",
            str(log),
            "--logger-class",
            "zongzhi.logmask.GunicornLogger",
        ],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "zongzhi.settings_test"},
    )
    try:
        url = f"http://127.0.0.1:{port}/t/not-a-token?phone={PHONE}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=5)  # noqa: S310 - 127.0.0.1 only
            except urllib.error.HTTPError as answer:
                assert answer.code == 404
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        deadline = time.monotonic() + 10
        while "/t/" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    written = log.read_text()
    assert "/t/***" in written
    assert "not-a-token" not in written and PHONE not in written
