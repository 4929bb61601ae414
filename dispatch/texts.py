"""Small pieces of wording that code (not templates) puts together."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils.translation import pgettext


def joined(items: Iterable[object]) -> str:
    """Items of a list as the interface language writes them: 2026、2027 / 2026, 2027."""
    return pgettext("list separator", "、").join(str(item) for item in items)
