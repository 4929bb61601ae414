"""The resident's own actions on the tracking page: 好差评, 催办, 重办.

The resident has no account: holding the case's tracking token is the credential, checked by
the public page before it calls these. The actor is ``dispatch.actors.RESIDENT``.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import recipients
from dispatch.actors import RESIDENT
from dispatch.errors import DispatchError
from dispatch.models import Case
from dispatch.notifications import notify
from dispatch.policy import Op
from dispatch.services import _core
from dispatch.services.closing import reopen_locked
from dispatch.states import NEGATIVE_RATINGS, Action, Satisfaction


def rate_case(
    *, case: Case, rating: int, comment: str = "", now: dt.datetime | None = None
) -> Case:
    """好差评: the resident rates once, after feedback; a negative rating reaches supervisors."""
    now = now or timezone.now()
    try:
        level = Satisfaction(int(rating))
    except (TypeError, ValueError):
        raise DispatchError(_("请选择评价等级"), code="rating") from None
    comment = (comment or "").strip()[:500]
    with transaction.atomic():
        case, _s = _core.begin(Op.RATE, case=case, actor=RESIDENT, now=now)
        event = _core.record(
            case,
            action=Action.RATED,
            actor=RESIDENT,
            now=now,
            note=comment,
            public=True,
            data={"rating": int(level)},
            fields={"resident_rating": int(level), "resident_comment": comment, "rated_at": now},
        )
        if level in NEGATIVE_RATINGS:
            notify(
                case=case,
                kind="negative_rating",
                params={"code": case.code, "label": level.label},
                users=recipients.nearest_supervisors(case),
                key=f"case:{case.pk}:{event.seq}:negative_rating",
                now=now,
            )
    return case


def resident_urge_case(*, case: Case, now: dt.datetime | None = None) -> Case:
    """催办: while overdue, once a calendar day; it reaches the owner centre's supervisors."""
    now = now or timezone.now()
    with transaction.atomic():
        case, _s = _core.begin(Op.RESIDENT_URGE, case=case, actor=RESIDENT, now=now)
        event = _core.record(
            case,
            action=Action.RESIDENT_URGED,
            actor=RESIDENT,
            now=now,
            public=True,
            fields={"resident_urged_at": now},
        )
        notify(
            case=case,
            kind="resident_urged",
            params={"code": case.code},
            users=recipients.nearest_supervisors(case),
            key=f"case:{case.pk}:{event.seq}:resident_urged",
            now=now,
        )
    return case


def resident_reopen_case(*, case: Case, reason: str = "", now: dt.datetime | None = None) -> Case:
    """重办 asked by the resident after a negative rating: once, within 15 days of closing."""
    now = now or timezone.now()
    reason = (reason or "").strip()[:500] or _("群众评价不满意，申请重办")
    with transaction.atomic():
        case, _s = _core.begin(Op.RESIDENT_REOPEN, case=case, actor=RESIDENT, now=now)
        reopen_locked(case, actor=RESIDENT, reason=reason, now=now)
    return case
