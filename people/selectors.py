"""Who holds which role where. Scope for every read is built from these."""

from __future__ import annotations

from people.models import Role, RoleGrant, User


def roles_of(user: User) -> list[RoleGrant]:
    if not user.is_authenticated:
        return []
    return list(user.grants.select_related("region", "unit__region").order_by("role"))


__all__ = ["Role", "roles_of"]
