"""Appending to and verifying a case's hash-chained history."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from dispatch import outbox
from dispatch.actors import Actor, SystemActor, kind_of, user_of
from dispatch.models import LIVE_TASK, Assignment, Case, CaseEvent
from dispatch.states import URGING_ACTIONS

# The job that renders the resident's tracking page after a change (handled in intake.tracking).
TRACKING_RENDER_TOPIC = "tracking.render"


def event_digest(
    *,
    prev_hash: str,
    case_code: str,
    seq: int,
    action: str,
    from_status: str,
    to_status: str,
    actor_kind: str,
    actor_id: int | None,
    actor_unit_id: int | None,
    at_iso: str,
    note: str,
    is_public: bool,
    data: dict,
) -> str:
    payload = json.dumps(
        [
            prev_hash,
            case_code,
            seq,
            action,
            from_status,
            to_status,
            actor_kind,
            actor_id,
            actor_unit_id,
            at_iso,
            note,
            is_public,
            data,
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _digest_of(event: CaseEvent, case_code: str) -> str:
    return event_digest(
        prev_hash=event.prev_hash,
        case_code=case_code,
        seq=event.seq,
        action=event.action,
        from_status=event.from_status,
        to_status=event.to_status,
        actor_kind=event.actor_kind,
        actor_id=event.actor_id,
        actor_unit_id=event.actor_unit_id,
        at_iso=event.at.astimezone(dt.UTC).isoformat(),
        note=event.note,
        is_public=event.is_public,
        data=event.data,
    )


def chain_event(
    *,
    case: Case,
    action: str,
    at,
    actor: Actor,
    actor_unit=None,
    from_status: str = "",
    to_status: str = "",
    note: str = "",
    is_public: bool = False,
    public_unit_name: str = "",
    data: dict | None = None,
) -> CaseEvent:
    """The next event of the case's chain, hashed but not saved.

    ``case.event_count`` and ``case.last_event_hash`` move on in memory; the caller saves the
    event and the case in its transaction, holding the case row lock.
    """
    data = dict(data or {})
    if isinstance(actor, SystemActor):
        data["system"] = actor.as_data()
    seq = case.event_count + 1
    event = CaseEvent(
        case=case,
        seq=seq,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_kind=kind_of(actor),
        actor=user_of(actor),
        actor_unit=actor_unit,
        at=at,
        note=note,
        is_public=is_public,
        public_unit_name=public_unit_name,
        data=data,
        prev_hash=case.last_event_hash,
    )
    # Round-trip the data through JSON so the digest sees what the database will return.
    event.data = json.loads(json.dumps(data, ensure_ascii=False, default=str))
    event.hash = _digest_of(event, case.code)
    case.event_count = seq
    case.last_event_hash = event.hash
    return event


def append_event(*, case: Case, **fields) -> CaseEvent:
    """Append one event (``chain_event``'s arguments) and save it; the case is locked.

    ``case.event_count`` and ``case.last_event_hash`` are updated in memory; the caller saves
    them with the transition's own ``update_fields``. After the commit the case's stored
    tracking pages stop being served, and the ``tracking.render`` job recorded here renders
    them again from the committed state.
    """
    action = fields["action"]
    event = chain_event(case=case, **fields)
    event.save(force_insert=True)
    tokens = {case.tracking_token}
    revoked: set[str] = set()
    if action == "case.token_reissued":
        # The instance already holds the new token; the row still holds the one being revoked.
        revoked = set(Case.objects.filter(pk=case.pk).values_list("tracking_token", flat=True))
        revoked.discard(case.tracking_token)
    # robust: a cache that cannot be reached must not fail the committed change. Registered
    # before the job's offer, so the pages are dead before the worker can render new ones.
    transaction.on_commit(lambda: retire_tracking_pages(tokens, revoked=revoked), robust=True)
    queue_tracking_render(case_id=case.pk, event_count=case.event_count, now=event.at)
    if action in URGING_ACTIONS:
        mark_urged([case.pk], at=event.at)
    return event


def mark_urged(case_ids: Iterable[int], *, at: dt.datetime) -> None:
    """The cases were urged at ``at``: their live tasks not yet urged since given are now."""
    Assignment.objects.filter(
        case_id__in=list(case_ids), status__in=LIVE_TASK, urged_at__isnull=True
    ).update(urged_at=at)


def queue_tracking_render(*, case_id: int, event_count: int, now=None) -> None:
    """Record, in the current transaction, that the case's public page is to be rendered.

    One job per case and event count: a retried service adds nothing. Several events in one
    transaction record several jobs; the handler leaves the work to the last one. Dated at the
    event, like the other after-commit work, so that loaded history sets it aside.
    """
    queue_tracking_renders({case_id: event_count}, now=now)


def queue_tracking_renders(counts: dict[int, int], *, now=None) -> None:
    """``queue_tracking_render`` for many cases at once (case id -> event count)."""
    outbox.enqueue_many(
        TRACKING_RENDER_TOPIC,
        [
            (
                tracking_job_key(case_id, event_count),
                {"case_id": case_id, "event_count": event_count},
            )
            for case_id, event_count in counts.items()
        ],
        now=now,
    )


def tracking_job_key(case_id: int, event_count: int) -> str:
    return f"tracking:{case_id}:{event_count}"


@dataclass
class ChainReport:
    ok: bool
    events: int
    first_bad_seq: int | None = None
    reason: str = ""


def verify_chain(case: Case) -> ChainReport:
    prev = ""
    count = 0
    for event in case.events.order_by("seq").iterator():
        count += 1
        if event.seq != count:
            return ChainReport(False, count, event.seq, "sequence gap")
        if event.prev_hash != prev:
            return ChainReport(False, count, event.seq, "previous hash mismatch")
        if _digest_of(event, case.code) != event.hash:
            return ChainReport(False, count, event.seq, "content does not match its hash")
        prev = event.hash
    if count != case.event_count or prev != case.last_event_hash:
        return ChainReport(False, count, None, "the case's head does not match its last event")
    return ChainReport(True, count)


def tracking_generation_key(token: str) -> str:
    """The cache key whose value stamps the resident's stored tracking pages (intake).

    A stored page is served only while this key holds the stamp the page was stored with;
    deleting the key after a commit retires every page rendered before it at once.
    """
    return f"track:gen:{token}"


def tracking_page_key(token: str, language: str, large: bool) -> str:
    """The cache key of one stored variant of the resident's tracking page (intake)."""
    return f"track:page:{token}:{language}:{int(large)}"


def tracking_page_keys(token: str) -> list[str]:
    """Every variant of the page: each interface language, normal and large text."""
    return [
        tracking_page_key(token, language, large)
        for language, _name in settings.LANGUAGES
        for large in (False, True)
    ]


def retire_tracking_pages(tokens, *, revoked=()) -> None:
    """After a commit: stop serving the stored tracking pages of these tokens.

    Deleting the stamps is enough for that (a page is served only beside its own stamp). The
    pages of ``revoked`` tokens (a reissued receipt's old token) are deleted outright: no job
    will render them again, and the old link must answer 404 from now on.
    """
    keys = [tracking_generation_key(t) for t in {*tokens, *revoked} if t]
    keys += [key for t in revoked if t for key in tracking_page_keys(t)]
    cache.delete_many(keys)
