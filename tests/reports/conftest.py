"""Shared by the report tests: the hand-built week, files under a scratch MEDIA_ROOT, and the
way a supervisor asks for an export and the worker makes it."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from reports.models import Export
from tests.clock import at
from tests.dispatch import loopkit, test_figures
from tests.dispatch.test_figures import MON

loop = loopkit.loop  # the fixture
week = test_figures.week  # the fixture


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def week_month() -> dt.date:
    """The month of the hand-built week's Monday (the week may end in the next month)."""
    return at(MON, 10).date().replace(day=1)


def month_params(region, month: dt.date | None = None) -> dict:
    return {"region": region.code, "month": f"{month or week_month():%Y-%m}"}


def last_week(region, **extra) -> dict:
    """The dashboard's parameters for the hand-built week (as its own tests ask for it)."""
    return {
        "region": region.code,
        "period": "custom",
        "start": at(MON, 0).date().isoformat(),
        "end": at(-1, 0).date().isoformat(),
        **extra,
    }


def ask(client, capture, kind: str, params: dict) -> Export:
    """Post the export form and let the worker run the job the commit offers."""
    before = set(Export.objects.values_list("pk", flat=True))
    with capture(execute=True):
        response = client.post(f"/work/reports/exports/new/{kind}/", params)
    assert response.status_code == 302, response.content.decode()[-500:]
    assert response["Location"].startswith("/work/reports/exports/#export-")
    return Export.objects.exclude(pk__in=before).get()


def download(client, export: Export) -> bytes:
    response = client.get(f"/work/reports/exports/{export.public_id}/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["Content-Disposition"].startswith("attachment")
    return b"".join(response.streaming_content)


def workbook(data: bytes):
    return load_workbook(io.BytesIO(data))
