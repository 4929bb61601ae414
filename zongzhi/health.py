"""Liveness of the parts the product cannot work without: the database and the broker."""

from __future__ import annotations

import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dispatch import calendar
from zongzhi.celery import app


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; report its class
        return type(exc).__name__
    return None


def _check_broker() -> str | None:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__
    return None


def _notices() -> list[dict]:
    missing = calendar.missing_years()
    if not missing:
        return []
    return [{"code": "calendar.missing_years", "years": missing}]


@never_cache
@require_GET
def health(request):
    started = time.perf_counter()
    checks = {"database": _check_database(), "broker": _check_broker()}
    ok = all(error is None for error in checks.values())
    body = {
        "status": "ok" if ok else "error",
        "checks": {name: error or "ok" for name, error in checks.items()},
        # Known gaps that do not stop the product (it still answers), for the operator to fix.
        "notices": _notices() if checks["database"] is None else [],
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }
    return JsonResponse(body, status=200 if ok else 503)
