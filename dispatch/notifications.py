"""Messages to staff (the in-app inbox) and to residents (SMS), written with their event.

Who is told is decided in ``dispatch.recipients``; what they are told is the catalogue below,
rendered for each recipient in their own language (staff: the language on their profile;
residents: Chinese unless their record says otherwise), never in the language of whoever acted.

``notify`` inserts ``Notification`` rows in the caller's transaction, so a transition that rolls
back leaves no message and a committed one always has its messages. Inbox rows are delivered by
being written. Each SMS row gets a ``notification.send`` job (``dispatch.outbox``) in the same
transaction, which a worker runs after the commit. Every row carries a ``dedup_key``: writing
the same key twice (a retried task, a second sweeper) inserts nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dispatch import bulk, outbox
from dispatch.access import in_unit
from dispatch.models import CASE_TEXTS, Case, CaseEvent, CaseParty, Notification
from dispatch.sms import SmsError, SmsMessage, SmsTransientError, get_backend
from dispatch.states import Action
from people.models import Role, User

SEND_TOPIC = "notification.send"


@dataclass(frozen=True)
class Template:
    title: Promise
    body: Promise


# Every message the loop sends. Bodies take the case's code and summary, staff's free text as
# ``note``, and labels (ratings, clocks) as lazy strings that translate in the recipient's language.
TEMPLATES: dict[str, Template] = {
    "assigned": Template(_("新派单：%(code)s"), _("%(category)s：%(summary)s，请及时签收。")),
    "reopened": Template(_("重办：%(code)s"), _("%(note)s")),
    "summoned": Template(_("吹哨报到：%(code)s"), _("%(centre)s召集贵单位协办：%(summary)s")),
    "urged": Template(_("督办：%(code)s"), _("%(note)s")),
    "feedback": Template(_("待核查：%(code)s"), _("%(unit)s已反馈办理结果，请核查。")),
    "rework": Template(_("核查未通过：%(code)s"), _("%(note)s")),
    "negative_rating": Template(
        _("差评待跟进：%(code)s"),
        _("群众对案件%(code)s评价为“%(label)s”，请于15个工作日内跟进。"),
    ),
    "resident_urged": Template(
        _("群众催办：%(code)s"), _("案件%(code)s已超期，群众通过查询页催办，请督促办理。")
    ),
    "deadline_yellow": Template(
        _("即将超期：%(code)s"),
        _("案件%(code)s（%(summary)s）的%(clock)s期限为%(when)s，即将到期。"),
    ),
    "deadline_red": Template(
        _("已超期：%(code)s"),
        _("案件%(code)s（%(summary)s）的%(clock)s期限%(when)s已过，请尽快办理。"),
    ),
    "deadline_tier1": Template(
        _("超期升级督办：%(code)s"),
        _("案件%(code)s（%(summary)s）已超过%(clock)s期限%(when)s，升级督办。"),
    ),
    "deadline_tier2": Template(
        _("超期升级督办：%(code)s"),
        _("案件%(code)s（%(summary)s）已超过%(clock)s期限%(when)s，升级督办。"),
    ),
    # To residents.
    "closed": Template(
        _("诉求已办结"), _("您的诉求（编号%(code)s）已办结，欢迎扫描受理单二维码评价。")
    ),
}


def render(kind: str, params: Mapping[str, object], language: str) -> tuple[str, str]:
    """The title and body of ``kind`` in ``language``."""
    template = TEMPLATES[kind]
    with translation.override(language):
        values = {name: str(value) for name, value in params.items()}
        return str(template.title) % values, str(template.body) % values


@dataclass(frozen=True)
class Message:
    """One message of ``kind`` about ``case`` to staff and/or the resident."""

    case: Case | None
    kind: str
    params: Mapping[str, object]
    key: str
    users: Sequence[User] = ()
    party: CaseParty | None = None


def notify(
    *,
    case: Case | None,
    kind: str,
    params: Mapping[str, object],
    key: str,
    users: Iterable[User] = (),
    party: CaseParty | None = None,
    now: dt.datetime | None = None,
) -> list[Notification]:
    """Write inbox rows for ``users`` and an SMS row for ``party``; return the rows written.

    Keys already present are skipped (the rows returned are only the new ones).
    """
    message = Message(case, kind, params, key, tuple(users), party)
    return notify_all([message], now=now)


def notify_all(
    messages: Iterable[Message], *, now: dt.datetime | None = None
) -> list[Notification]:
    """``notify`` for many messages at once: one read and one insert for all of them."""
    now = now or timezone.now()
    rows: list[Notification] = []
    seen: set[str] = set()
    for message in messages:
        in_language: dict[str, tuple[str, str]] = {}  # one rendering per language
        for user in message.users:
            row_key = f"{message.key}:u{user.pk}"
            if row_key in seen:
                continue
            seen.add(row_key)
            language = user.language or settings.LANGUAGE_CODE
            if language not in in_language:
                in_language[language] = render(message.kind, message.params, language)
            title, body = in_language[language]
            rows.append(
                Notification(
                    dedup_key=row_key,
                    channel=Notification.Channel.INBOX,
                    recipient_id=user.pk,
                    case_id=message.case.pk if message.case is not None else None,
                    kind=message.kind,
                    title=title[:200],
                    body=body,
                    language=language,
                    state=Notification.State.SENT,
                    created_at=now,
                    sent_at=now,
                )
            )
        party = message.party
        if party is not None and party.phone:
            language = party.party.language or settings.LANGUAGE_CODE
            title, body = render(message.kind, message.params, language)
            rows.append(
                Notification(
                    dedup_key=f"{message.key}:p{party.pk}",
                    channel=Notification.Channel.SMS,
                    recipient_party_id=party.pk,
                    case_id=message.case.pk if message.case is not None else None,
                    kind=message.kind,
                    title=title[:200],
                    body=body,
                    language=language,
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
        fresh = [row for row in rows if row.dedup_key not in existing]
        # ON CONFLICT DO NOTHING: a concurrent writer of the same key between the read above
        # and this insert is skipped by the database instead of failing the transition.
        bulk.insert(Notification, fresh, ignore_conflicts=True)
        # Which rows are ours (a concurrent writer's row has another time), with their ids.
        ids = dict(
            Notification.objects.filter(
                dedup_key__in=[row.dedup_key for row in fresh], created_at=now
            ).values_list("dedup_key", "pk")
        )
        written = []
        for row in fresh:
            if row.dedup_key in ids:
                row.pk = ids[row.dedup_key]
                row._state.adding, row._state.db = False, connection.alias
                written.append(row)
        for row in written:
            if row.channel == Notification.Channel.SMS:
                outbox.enqueue(SEND_TOPIC, key=f"sms:{row.pk}", payload={"id": row.pk}, now=now)
    return written


# Acting on a case settles the inbox messages that asked for that act: a unit that signs has
# no "new task" left to read, a verified result no "to verify", a closed case nothing at all.
# Unit-wide settlements reach the acting unit's handlers; case-wide ones every recipient.
TASK_KINDS = frozenset({"assigned", "summoned", "reopened"})
HANDLING_KINDS = frozenset(
    {
        *TASK_KINDS,
        "rework",
        "urged",
        "resident_urged",
        "deadline_yellow",
        "deadline_red",
        "deadline_tier1",
        "deadline_tier2",
    }
)
SETTLED_BY_UNIT: dict[str, frozenset[str]] = {
    Action.SIGNED: TASK_KINDS,
    Action.RETURNED: TASK_KINDS,
}
SETTLED_BY_CASE: dict[str, frozenset[str] | None] = {
    Action.FEEDBACK: HANDLING_KINDS,
    Action.VERIFIED: frozenset({"feedback"}),
    Action.REWORK: frozenset({"feedback"}),
    Action.FOLLOWED_UP: frozenset({"negative_rating"}),
    Action.ARCHIVED: None,  # everything about the case
    Action.REJECTED: None,
}


def settle(event: CaseEvent) -> int:
    """Mark read the messages the event's act has answered; returns how many."""
    unread = Notification.objects.filter(
        case_id=event.case_id, channel=Notification.Channel.INBOX, read_at__isnull=True
    )
    if event.action in SETTLED_BY_UNIT and event.actor_unit is not None:
        handlers = User.objects.filter(in_unit(Role.HANDLER, event.actor_unit))
        unread = unread.filter(kind__in=SETTLED_BY_UNIT[event.action], recipient__in=handlers)
    elif event.action in SETTLED_BY_CASE:
        kinds = SETTLED_BY_CASE[event.action]
        if kinds is not None:
            unread = unread.filter(kind__in=kinds)
    else:
        return 0
    return unread.update(read_at=event.at)


def inbox_of(user: User) -> QuerySet[Notification]:
    """The user's in-app messages, newest first (with the code of their case)."""
    return (
        Notification.objects.filter(recipient=user, channel=Notification.Channel.INBOX)
        .select_related("case")
        .defer(*(f"case__{name}" for name in CASE_TEXTS))
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


# --- sending SMS rows -------------------------------------------------------------------------


class Delivery:
    SENT = "sent"
    SKIPPED = "skipped"
    FAILED = "failed"


def deliver(notification_id: int, *, now: dt.datetime | None = None) -> str:
    """Send one pending SMS row through the backend; the row records the outcome.

    The outbox runs one delivery of a row at a time (``dispatch.outbox``). The gateway receives
    the row's key as the message id, so a message resent after a worker died between "sent"
    and "recorded" can be dropped by the gateway. Raises ``SmsTransientError`` when the
    message should be tried again later; the row stays pending.
    """
    row = (
        Notification.objects.select_related("recipient_party")
        .filter(pk=notification_id, state=Notification.State.PENDING)
        .first()
    )
    if row is None:
        return Delivery.SKIPPED
    pending = Notification.objects.filter(pk=row.pk, state=Notification.State.PENDING)
    pending.update(attempts=row.attempts + 1)
    link = row.recipient_party
    phone = link.phone if link is not None else ""
    if row.channel != Notification.Channel.SMS or not phone:
        pending.update(state=Notification.State.FAILED, last_error="no phone number")
        return Delivery.FAILED
    message = SmsMessage(
        message_id=row.dedup_key, phone=phone, text=f"{settings.SMS_SIGNATURE}{row.body}"
    )
    try:
        get_backend().send(message)
    except SmsTransientError as exc:
        pending.update(last_error=str(exc)[:300])
        raise
    except SmsError as exc:
        pending.update(state=Notification.State.FAILED, last_error=str(exc)[:300])
        return Delivery.FAILED
    pending.update(state=Notification.State.SENT, sent_at=now or timezone.now(), last_error="")
    return Delivery.SENT


def _give_up(payload: dict, reason: str) -> None:
    """The outbox stopped retrying: the row is marked failed for a person to look at."""
    Notification.objects.filter(pk=payload["id"], state=Notification.State.PENDING).update(
        state=Notification.State.FAILED, last_error=reason[:300]
    )


def _skip(payload: dict) -> None:
    Notification.objects.filter(pk=payload["id"], state=Notification.State.PENDING).update(
        state=Notification.State.SKIPPED
    )


@outbox.handler(SEND_TOPIC, on_give_up=_give_up, on_skip=_skip)
def _send(payload: dict) -> None:
    try:
        deliver(payload["id"])
    except SmsTransientError as exc:
        raise outbox.RetryLaterError(str(exc)) from exc
