"""Who acts on a case: a member of staff, the product itself, or the resident with the QR.

Services take ``actor``: a ``people.User`` for staff, ``SystemActor`` for what the product does
by itself (a routing rule, the deadline sweeper), ``RESIDENT`` for the holder of the tracking
token. None of them is spelt ``None``, so no permission check can be skipped by leaving an
argument out: ``dispatch.policy`` decides for each kind what it may do.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models
from django.utils.translation import gettext_lazy as _

from people.models import User


class ActorKind(models.TextChoices):
    STAFF = "staff", _("工作人员")
    SYSTEM = "system", _("系统")
    RESIDENT = "resident", _("群众")


class SystemSource(models.TextChoices):
    ROUTING = "routing", _("派单规则")
    SWEEPER = "sweeper", _("时限监控")
    LOADER = "loader", _("数据导入")


@dataclass(frozen=True)
class SystemActor:
    """The product acting by itself; ``rule_id`` names the routing rule that decided."""

    source: str
    rule_id: int | None = None

    def as_data(self) -> dict:
        return {"source": self.source, "rule": self.rule_id}


@dataclass(frozen=True)
class ResidentActor:
    """The resident, known only by holding the case's tracking token."""


RESIDENT = ResidentActor()
SWEEPER = SystemActor(SystemSource.SWEEPER)
LOADER = SystemActor(SystemSource.LOADER)

Actor = User | SystemActor | ResidentActor


def routing_rule(rule_id: int | None) -> SystemActor:
    return SystemActor(SystemSource.ROUTING, rule_id)


def kind_of(actor: Actor) -> ActorKind:
    if isinstance(actor, User):
        return ActorKind.STAFF
    if isinstance(actor, SystemActor):
        return ActorKind.SYSTEM
    if isinstance(actor, ResidentActor):
        return ActorKind.RESIDENT
    raise TypeError(f"not an actor: {actor!r}")


def user_of(actor: Actor) -> User | None:
    """The member of staff behind ``actor``, or None for the system and the resident."""
    return actor if isinstance(actor, User) else None
