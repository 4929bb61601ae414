"""Appending to and verifying a case's hash-chained history."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction

from dispatch.actors import Actor, SystemActor, kind_of, user_of
from dispatch.models import Case, CaseEvent


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
    them with the transition's own ``update_fields``.
    """
    action = fields["action"]
    event = chain_event(case=case, **fields)
    event.save(force_insert=True)
    tokens = {case.tracking_token}
    if action == "case.token_reissued":
        # The instance already holds the new token; the row still holds the one being revoked.
        tokens.update(Case.objects.filter(pk=case.pk).values_list("tracking_token", flat=True))
    # robust: a cache that cannot be reached must not fail the committed change.
    transaction.on_commit(lambda: drop_tracking_cache(tokens), robust=True)
    return event


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
    """The cache key whose value stamps the resident's cached tracking page (intake)."""
    return f"track:gen:{token}"


def drop_tracking_cache(tokens) -> None:
    """Make every cached tracking page of these tokens stale (a new generation stamp)."""
    cache.delete_many([tracking_generation_key(t) for t in tokens if t])
