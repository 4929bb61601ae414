"""Celery tasks: thin, idempotent, take ids, call one service."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True)
def route_case(case_id: int) -> None:
    """Apply the routing rules to a freshly registered case."""
    from dispatch.routing import route_registered_case

    route_registered_case(case_id=case_id)
