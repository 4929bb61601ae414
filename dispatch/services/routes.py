"""What routing (平台派单) writes: a suggestion for the dispatcher, or 待人工派单.

The rules are matched in ``dispatch.routing``; a rule that dispatches by itself calls
``dispatch.services.dispatch_case`` with the rule as the actor. The actor here is always the
rule (or, with no rule, the routing itself).
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from dispatch.actors import routing_rule
from dispatch.models import Case, DeadlineProfile
from dispatch.policy import Op
from dispatch.services import _core
from dispatch.states import Action
from grids.models import Unit


def suggest_route(
    *, case_id: int, rule_id: int, unit: Unit, profile: DeadlineProfile, now: dt.datetime
) -> Case:
    """系统派单建议: the matching rule's unit and time limit, for the dispatcher to confirm."""
    actor = routing_rule(rule_id)
    with transaction.atomic():
        case, _s = _core.begin(Op.ROUTE, case=case_id, actor=actor, now=now)
        _core.record(
            case,
            action=Action.ROUTED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            data={"unit": unit.pk, "unit_name": unit.name, "profile": profile.pk},
            fields={"suggested_unit": unit, "profile": profile},
        )
    return case


def mark_unroutable(*, case_id: int, reason: str, rule_id: int | None, now: dt.datetime) -> Case:
    """待人工派单: no rule could route the case; it waits, flagged, for a dispatcher."""
    actor = routing_rule(rule_id)
    with transaction.atomic():
        case, _s = _core.begin(Op.ROUTE, case=case_id, actor=actor, now=now)
        _core.record(
            case,
            action=Action.ROUTING_FAILED,
            actor=actor,
            now=now,
            actor_unit=case.owner_unit,
            note=reason,
            fields={"needs_routing": True},
        )
    return case
