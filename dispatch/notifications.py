"""The outbox: who is told about what, written in the transition's own transaction.

``notify`` inserts ``Notification`` rows next to the event that caused them, so a transaction
that rolls back leaves no message behind and a committed one always has its messages. Staff
rows (the in-app inbox) are delivered by being written; SMS rows to residents are sent after
commit by ``dispatch.tasks.deliver_notification``. Every row carries a ``dedup_key``: writing
the same key twice (a retried task, a second sweeper) inserts nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from dispatch.models import Case, Notification
from dispatch.sms import SmsError, SmsMessage, SmsTransientError, get_backend
from people.models import Party, User


def notify(
    *,
    case: Case | None,
    kind: str,
    users: Iterable[User] = (),
    party: Party | None = None,
    title: str,
    body: str,
    dedup_key: str,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """Write inbox rows for ``users`` and an SMS row for ``party``; return the rows written.

    Keys already present are skipped (the rows returned are only the new ones). SMS rows are
    queued for delivery when the caller's transaction commits.
    """
    now = now or timezone.now()
    rows: list[Notification] = []
    seen: set[str] = set()
    for user in users:
        key = f"{dedup_key}:u{user.pk}"
        if key in seen:
            continue
        seen.add(key)
        rows.append(
            Notification(
                dedup_key=key,
                channel=Notification.Channel.INBOX,
                recipient=user,
                case=case,
                kind=kind,
                title=title[:200],
                body=body,
                state=Notification.State.SENT,
                created_at=now,
                sent_at=now,
            )
        )
    if party is not None and party.phone:
        rows.append(
            Notification(
                dedup_key=f"{dedup_key}:p{party.pk}",
                channel=Notification.Channel.SMS,
                recipient_party=party,
                case=case,
                kind=kind,
                title=title[:200],
                body=body,
                state=Notification.State.PENDING,
                created_at=now,
            )
        )
    if not rows:
        return []
    keys = [row.dedup_key for row in rows]
    with transaction.atomic():
        existing = set(
            Notification.objects.filter(dedup_key__in=keys).values_list("dedup_key", flat=True)
        )
        # ON CONFLICT DO NOTHING: a concurrent writer of the same key between the read above
        # and this insert is skipped by the database instead of failing the transition.
        Notification.objects.bulk_create(
            [row for row in rows if row.dedup_key not in existing], ignore_conflicts=True
        )
        written = list(
            Notification.objects.filter(
                dedup_key__in=[k for k in keys if k not in existing], created_at=now
            )
        )
        pending_ids = [n.pk for n in written if n.state == Notification.State.PENDING]
        if pending_ids:
            transaction.on_commit(lambda: _enqueue(pending_ids))
    return written


def _enqueue(ids: list[int]) -> None:
    from dispatch.tasks import deliver_notification  # tasks import this module

    for pk in ids:
        deliver_notification.delay(pk)


def inbox_of(user: User) -> QuerySet[Notification]:
    """The user's in-app messages, newest first."""
    return (
        Notification.objects.filter(recipient=user, channel=Notification.Channel.INBOX)
        .select_related("case")
        .order_by("-created_at", "-pk")
    )


def unread_count(user: User) -> int:
    return Notification.objects.filter(
        recipient=user, channel=Notification.Channel.INBOX, read_at__isnull=True
    ).count()


def mark_read(
    *, user: User, ids: Iterable[int] | None = None, now: dt.datetime | None = None
) -> int:
    """Mark the user's messages read (all unread if ``ids`` is None); returns how many."""
    qs = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return qs.update(read_at=now or timezone.now())


# --- delivery of SMS rows ---------------------------------------------------------------------

# After this many failed attempts a row is marked failed and left for a person to look at.
MAX_ATTEMPTS = 6
# Rows younger than this are left to the task queued at commit; the beat retries the rest.
RETRY_AFTER = dt.timedelta(minutes=1)


class Delivery:
    SENT = "sent"
    SKIPPED = "skipped"
    BUSY = "busy"
    FAILED = "failed"


def _lease_seconds() -> int:
    return int(settings.SMS_GATEWAY_TIMEOUT) * 2 + 30


def deliver(notification_id: int, *, now: dt.datetime | None = None) -> str:
    """Send one pending SMS row through the backend; the row records the outcome.

    A short lease in the cache keeps a retry queued by the beat from sending the row while
    the first task is still talking to the gateway. The gateway also receives the row's key as
    the message id, so a message resent after a worker died between "sent" and "recorded" can
    be dropped by the gateway.

    Raises ``SmsTransientError`` when the caller should retry later.
    """
    lease = f"zz:sms-lease:{notification_id}"
    if not cache.add(lease, 1, _lease_seconds()):
        return Delivery.BUSY
    try:
        return _deliver(notification_id, now=now)
    finally:
        cache.delete(lease)


def _deliver(notification_id: int, *, now: dt.datetime | None) -> str:
    row = (
        Notification.objects.select_related("recipient_party")
        .filter(pk=notification_id, state=Notification.State.PENDING)
        .first()
    )
    if row is None:
        return Delivery.SKIPPED
    pending = Notification.objects.filter(pk=row.pk, state=Notification.State.PENDING)
    pending.update(attempts=F("attempts") + 1)
    attempts = row.attempts + 1
    party = row.recipient_party
    phone = party.phone if party is not None else ""
    if row.channel != Notification.Channel.SMS or not phone:
        pending.update(state=Notification.State.FAILED, last_error="no phone number")
        return Delivery.FAILED
    message = SmsMessage(
        message_id=row.dedup_key, phone=phone, text=f"{settings.SMS_SIGNATURE}{row.body}"
    )
    try:
        get_backend().send(message)
    except SmsTransientError as exc:
        give_up = attempts >= MAX_ATTEMPTS
        pending.update(
            last_error=str(exc)[:300], **({"state": Notification.State.FAILED} if give_up else {})
        )
        if give_up:
            return Delivery.FAILED
        raise
    except SmsError as exc:
        pending.update(state=Notification.State.FAILED, last_error=str(exc)[:300])
        return Delivery.FAILED
    pending.update(state=Notification.State.SENT, sent_at=now or timezone.now(), last_error="")
    return Delivery.SENT


def pending_for_retry(*, now: dt.datetime | None = None, limit: int = 500) -> list[int]:
    """Ids of SMS rows still pending a while after they were written (the outbox index)."""
    now = now or timezone.now()
    return list(
        Notification.objects.filter(
            state=Notification.State.PENDING, created_at__lte=now - RETRY_AFTER
        )
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
