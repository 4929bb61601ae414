"""``manage.py bench receipt``: how fast the receipt PDF and the print view are.

Works in a throwaway test database (created, migrated and dropped, like the test runner's) so
that it never touches real data and runs on a fresh checkout: a small tree, a clerk and a
registered case, inside a transaction rolled back at the end; the PDF files it stores go to a
temporary media directory that is removed. Prints p50/p95/max of N PDF renders (30, or 8 with
``--quick``), the PDF size, and p50/p95 of the print view through the test client.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time

from django.db import connection, transaction
from django.test import Client
from django.test.utils import override_settings

from dispatch.models import PartyRole

SUMMARY = "楼上住户每晚十一点后装修，电钻声持续两小时，多次协商未果（申请人𠮷喆）"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _line(stdout, label: str, samples: list[tuple[float, float]], extra: str = "") -> None:
    """Wall-clock p50/p95/max, and the p50 of this process's CPU time (what the render itself
    costs when other processes compete for the cores)."""
    wall = [w for w, _cpu in samples]
    cpu = [c for _wall, c in samples]
    stdout.write(
        f"{label:<26} n={len(wall):<3} p50={statistics.median(wall):6.1f} ms  "
        f"p95={_percentile(wall, 0.95):6.1f} ms  max={max(wall):6.1f} ms  "
        f"(cpu p50={statistics.median(cpu):6.1f} ms){extra}"
    )


class _Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.sample = (
            (time.perf_counter() - self.wall) * 1000,
            (time.process_time() - self.cpu) * 1000,
        )


def _fixture():
    from grids.models import Level
    from people.models import Role
    from tests import factories as f

    county = f.region("139801000000", "基准县", Level.COUNTY)
    town = f.region("139801101000", "基准镇", Level.TOWNSHIP, county)
    village = f.region("139801101201", "基准村", Level.VILLAGE, town)
    centre = f.centre(town)
    clerk = f.user("bench-receipt-clerk", role=Role.CLERK, region=town, work_number="BR001")
    case = f.case(
        region=village,
        owner_unit=centre,
        actor=clerk,
        summary=SUMMARY,
        category=f.category("bench-neighbour", "邻里纠纷（基准）"),
        parties=[
            (f.party(name="𠮷堃", phone="13900001234"), PartyRole.APPLICANT),
            (f.party(name="燊喆", phone=""), PartyRole.RESPONDENT),
        ],
    )
    from dispatch.services import register_case

    return register_case(case=case, actor=clerk), clerk


def run(stdout, options) -> None:
    from intake import fonts, receipt

    n = 8 if options.get("quick") else 30
    media = tempfile.mkdtemp(prefix="bench-receipt-")
    prepared = fonts.prepared_fonts() is not None
    where = f"prepared in {fonts.font_dir()}" if prepared else "SYSTEM fonts (not prepared)"
    stdout.write(f"fonts: {where}")
    old_name = connection.settings_dict["NAME"]
    if connection.vendor != "sqlite":
        # Not the name pytest uses (test_<name>), so a test run beside the benchmark is safe.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{old_name}_bench_receipt"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        with override_settings(MEDIA_ROOT=media, ALLOWED_HOSTS=["testserver", "*"]):
            with transaction.atomic():
                case, clerk = _fixture()
                _measure(stdout, receipt, case, clerk, n)
                transaction.set_rollback(True)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(media, ignore_errors=True)


def _measure(stdout, receipt, case, clerk, n: int) -> None:
    with _Timer() as timer:
        receipt.warm_up()
    stdout.write(
        f"warm-up (fonts, stylesheet, one sample; once per process): {timer.sample[0]:.0f} ms"
    )

    pdf_samples, size = [], 0
    for _ in range(n):
        with _Timer() as timer:
            pdf = receipt.render_receipt_pdf(case)
        pdf_samples.append(timer.sample)
        size = len(pdf)
    _line(stdout, "PDF render (A4)", pdf_samples, f"  size={size / 1024:.0f} KiB")

    store_samples = []
    for _ in range(max(3, n // 4)):
        with _Timer() as timer:
            receipt.store_receipt_pdf(case_id=case.pk)
        store_samples.append(timer.sample)
    _line(stdout, "PDF render + store", store_samples)

    thermal_samples = []
    for _ in range(max(3, n // 4)):
        with _Timer() as timer:
            receipt.render_receipt_pdf(case, size="80mm")
        thermal_samples.append(timer.sample)
    _line(stdout, "PDF render (80mm)", thermal_samples)

    client = Client()
    client.force_login(clerk)
    url = f"/intake/cases/{case.code}/receipt/"
    view_samples = []
    for i in range(n + 1):
        with _Timer() as timer:
            response = client.get(url, {"size": ("a4", "a5", "80mm")[i % 3]})
        if response.status_code != 200:
            stdout.write(f"print view answered {response.status_code}")
            return
        if i:  # the first request compiles the templates
            view_samples.append(timer.sample)
    _line(
        stdout,
        "print view (test client)",
        view_samples,
        f"  html={len(response.content) / 1024:.0f} KiB",
    )
