"""Text messages to residents through a pluggable backend (``settings.SMS_BACKEND``).

A backend sends one message and either returns, raises ``SmsTransientError`` (worth retrying:
timeouts, connection errors, 5xx, 429) or raises ``SmsError`` (the gateway refused the message
for good). The outbox row is the database record of the message; the backend never writes it.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger("dispatch.sms")


class SmsError(Exception):
    """The gateway refused the message; retrying will not help."""


class SmsTransientError(SmsError):
    """The gateway could not be reached or is overloaded; retry later."""


@dataclass(frozen=True)
class SmsMessage:
    message_id: str  # the outbox row's dedup key: a gateway can drop a resent duplicate
    phone: str
    text: str


class LogBackend:
    """Development: write the message to the log (the outbox row is its database record)."""

    def send(self, message: SmsMessage) -> None:
        masked = message.phone[:3] + "****" + message.phone[-4:]
        log.info("SMS %s to %s: %s", message.message_id, masked, message.text)


class HttpGatewayBackend:
    """POST the message as JSON to ``settings.SMS_GATEWAY_URL``, with a timeout."""

    def __init__(self, url: str | None = None, timeout: float | None = None) -> None:
        self.url = url or settings.SMS_GATEWAY_URL
        self.timeout = timeout if timeout is not None else settings.SMS_GATEWAY_TIMEOUT
        if not self.url.startswith(("http://", "https://")):
            raise SmsError("SMS_GATEWAY_URL must be an http:// or https:// URL")

    def send(self, message: SmsMessage) -> None:
        payload = json.dumps(
            {"id": message.message_id, "phone": message.phone, "text": message.text},
            ensure_ascii=False,
        ).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __init__)
            self.url,
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code == 429:
                raise SmsTransientError(f"gateway answered {exc.code}") from exc
            raise SmsError(f"gateway refused the message: {exc.code}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise SmsTransientError(f"gateway unreachable: {exc}") from exc


def get_backend():
    return import_string(settings.SMS_BACKEND)()
