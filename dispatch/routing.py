"""Routing (平台派单): which unit should handle a registered case."""

from __future__ import annotations


def route_registered_case(*, case_id: int) -> None:
    """Find the rule for the case and suggest or dispatch. Filled in with the routing rules."""
    return None
