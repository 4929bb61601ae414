"""Which exports a person may see: their own, and nobody else's."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from people.models import User
from reports.models import Export

LIST_SIZE = 50


def exports_of(user: User) -> QuerySet[Export]:
    """The exports ``user`` asked for, newest first."""
    if not user.is_authenticated:
        return Export.objects.none()
    return Export.objects.filter(requested_by=user).order_by("-created_at", "-pk")


def export_for(user: User, public_id) -> Export:
    """One of the user's exports; someone else's answers exactly as a missing one."""
    export = exports_of(user).filter(public_id=public_id).first()
    if export is None:
        raise Http404
    return export
