"""Routing (平台派单): which unit should handle a registered case.

After 立案 the ``case.route`` outbox job calls ``route_registered_case``. The most
specific active rule wins: the deepest region (the rule's region is the case's place or an
ancestor of it), then a rule naming the case's category beats one naming its parent category,
which beats one for any category, then a rule for the case's grade beats one for any grade;
``priority`` (higher first) breaks what is still tied, then the older rule.

A rule either dispatches at once (``auto_dispatch``) through ``dispatch.services.dispatch_case``,
with the rule as the actor, or leaves a suggestion for the dispatcher. A case that no rule can
route stays with its dispatcher, flagged ``needs_routing``, with a ``case.routing_failed`` event:
never dropped. Routing runs as the ``case.route`` job that registering a case records.
"""

from __future__ import annotations

import dataclasses
import logging

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import override

from dispatch import outbox, services
from dispatch.actors import routing_rule
from dispatch.models import Case, RoutingRule
from dispatch.policy import Op, Subject, allows
from dispatch.services.opening import ROUTE_TOPIC
from grids.models import Region, Unit
from grids.selectors import centre_of

log = logging.getLogger("dispatch.routing")


@dataclasses.dataclass(frozen=True)
class Match:
    rule: RoutingRule
    unit: Unit


def _specificity(rule: RoutingRule, case: Case) -> tuple:
    if rule.category_id is None:
        category_rank = 0
    elif rule.category_id == case.category_id:
        category_rank = 2
    else:
        category_rank = 1  # the case's parent category
    return (
        rule.region.path.count("/"),
        category_rank,
        1 if rule.grade else 0,
        rule.priority,
        -rule.pk,
    )


def matching_rules(case: Case) -> list[RoutingRule]:
    """Every active rule that applies to ``case``, most specific first."""
    categories = [case.category_id]
    if case.category.parent_id:
        categories.append(case.category.parent_id)
    rules = list(
        RoutingRule.objects.filter(
            is_active=True,
            region__code__in=case.region.ancestor_codes(),
        )
        .filter(grade__in=["", case.grade])
        .select_related("region", "unit", "profile")
    )
    rules = [r for r in rules if r.category_id is None or r.category_id in categories]
    rules.sort(key=lambda r: _specificity(r, case), reverse=True)
    return rules


def unit_for(rule: RoutingRule, case: Case) -> Unit | None:
    """The rule's unit, or the centre at the rule's level above the place it happened."""
    if rule.unit is not None:
        return rule.unit if rule.unit.is_active else None
    region = (
        Region.objects.filter(code__in=case.region.ancestor_codes(), level=rule.handling_level)
        .order_by("-path")
        .first()
    )
    if region is None:
        return None
    centre = centre_of(region)
    return centre if centre is not None and centre.is_active else None


def find_match(case: Case) -> Match | None:
    """The most specific rule whose unit exists and is not the unit the case complains of."""
    for rule in matching_rules(case):
        unit = unit_for(rule, case)
        if unit is None:
            continue
        if case.accused_unit_id and unit.pk == case.accused_unit_id:
            continue
        return Match(rule=rule, unit=unit)
    return None


def find_rule(case: Case) -> RoutingRule | None:
    match = find_match(case)
    return match.rule if match else None


def route_registered_case(*, case_id: int, now=None) -> str:
    """Apply the rules to a registered case; returns what happened (for logs and tests).

    Idempotent: a case that has left 立案 or has already been routed is left alone, so a
    second run of the job changes nothing.
    """
    now = now or timezone.now()
    case = (
        Case.objects.select_related("category", "region", "owner_unit").filter(pk=case_id).first()
    )
    if case is None or not allows(Op.ROUTE, Subject(routing_rule(None), case, now=now)):
        return "skipped"
    match = find_match(case)
    try:
        if match is not None and match.rule.auto_dispatch:
            try:
                services.dispatch_case(
                    case=case,
                    actor=routing_rule(match.rule.pk),
                    unit=match.unit,
                    profile=match.rule.profile,
                    now=now,
                )
            except services.DispatchError as exc:
                log.info("auto-dispatch of case %s refused: %s", case_id, exc.message)
                services.mark_unroutable(
                    case_id=case_id, reason=exc.message, rule_id=match.rule.pk, now=now
                )
                return "needs_routing"
            return "dispatched"
        if match is not None:
            services.suggest_route(
                case_id=case_id,
                rule_id=match.rule.pk,
                unit=match.unit,
                profile=match.rule.profile,
                now=now,
            )
            return "suggested"
        with override("zh-hans"):
            reason = _("没有匹配的派单规则")
        services.mark_unroutable(case_id=case_id, reason=reason, rule_id=None, now=now)
        return "needs_routing"
    except services.DispatchError:
        # The case moved on between the read above and the lock (a dispatcher was faster).
        return "skipped"


@outbox.handler(ROUTE_TOPIC)
def _route_job(payload: dict) -> None:
    route_registered_case(case_id=payload["case_id"])
