"""``manage.py bench tracking``: the resident's tracking page against a bare Django view.

Starts gunicorn (2 sync workers, 127.0.0.1, a free port) on the current settings plus one bare
view (``zongzhi.bench.settings``), then sends a fixed number of requests from 8 client threads
to the bare view and to ``/t/<token>``, and prints requests/s, p50 and p99 for both and the
ratio. Target: the tracking page at >= 50% of the bare view's throughput, p99 < 25 ms.

The case is the newest one in the database; with none, a throwaway county, centre, category
and case are created and removed afterwards.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from django.conf import settings
from django.db import transaction

CONCURRENCY = 8
REQUESTS = 3000
QUICK_REQUESTS = 600
WARMUP = 200
ROUNDS = 3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(port: int, path: str) -> tuple[int, float]:
    start = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Accept-Language": "zh-hans"})
        response = conn.getresponse()
        response.read()
        status = response.status
    finally:
        conn.close()
    return status, time.perf_counter() - start


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _load(port: int, path: str, count: int) -> dict:
    """``count`` GETs of ``path`` from CONCURRENCY threads; throughput and latency figures."""
    per_thread = count // CONCURRENCY

    def worker(_i: int) -> tuple[list[float], int]:
        latencies, errors = [], 0
        for _ in range(per_thread):
            status, seconds = _get(port, path)
            latencies.append(seconds)
            errors += status != 200
        return latencies, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(worker, range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    latencies = [s for chunk, _e in results for s in chunk]
    return {
        "latencies": latencies,
        "elapsed": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": _percentile(latencies, 0.50) * 1000,
        "p99": _percentile(latencies, 0.99) * 1000,
        "errors": sum(e for _c, e in results),
        "n": len(latencies),
    }


def _merge(rows: list[dict]) -> dict:
    latencies = [s for row in rows for s in row["latencies"]]
    elapsed = sum(row["elapsed"] for row in rows)
    return {
        "rps": len(latencies) / elapsed,
        "p50": _percentile(latencies, 0.50) * 1000,
        "p99": _percentile(latencies, 0.99) * 1000,
        "errors": sum(row["errors"] for row in rows),
        "n": len(latencies),
    }


@contextmanager
def _server():
    port = _free_port()
    env = dict(os.environ)
    env["ZONGZHI_BENCH_BASE_SETTINGS"] = os.environ.get(
        "DJANGO_SETTINGS_MODULE", "zongzhi.settings"
    )
    env["DJANGO_SETTINGS_MODULE"] = "zongzhi.bench.settings"
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "zongzhi.wsgi:application",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=str(settings.BASE_DIR))  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(port, "/bench/bare")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def _a_case():
    """The newest case's token, or a throwaway case's that is removed afterwards."""
    from dispatch.models import Case

    case = Case.objects.order_by("-pk").first()
    if case is not None:
        yield case, False
        return
    created = _create_throwaway_case()
    try:
        yield created, True
    finally:
        _remove_throwaway_case(created)


_BENCH_COUNTY = "999900000000"


def _create_throwaway_case():
    from dispatch.actors import LOADER
    from dispatch.models import Category, CategoryKind
    from dispatch.services import create_case
    from grids import services as grid_services
    from grids.models import Level, UnitKind

    with transaction.atomic():
        county = grid_services.save_region(
            code=_BENCH_COUNTY, name="基准测试县", level=Level.COUNTY, parent=None
        )
        centre = grid_services.save_unit(
            name="基准测试县综治中心", kind=UnitKind.CENTRE, region=county
        )
        top, _ = Category.objects.get_or_create(
            code="bench-top", defaults={"name": "基准测试", "kind": CategoryKind.REQUEST}
        )
        category, _ = Category.objects.get_or_create(
            code="bench-tracking",
            defaults={"name": "查询页基准", "kind": CategoryKind.REQUEST, "parent": top},
        )
        # Left at step 1: registering would queue a routing task for a case about to vanish.
        case, _created = create_case(
            actor=LOADER,
            channel="window",
            category=category,
            summary="基准测试案件",
            region=county,
            owner_unit=centre,
            intake_key=uuid.uuid4(),
        )
        return case


def _remove_throwaway_case(case) -> None:
    from dispatch.models import Case, CaseCodeCounter, CaseEvent, CaseParty, Category
    from grids.models import Region, Unit

    with transaction.atomic():
        ids = list(Case.objects.filter(region__code=_BENCH_COUNTY).values_list("pk", flat=True))
        # Raw deletes: these rows were created just now and nothing else refers to them.
        CaseEvent.objects.filter(case_id__in=ids)._raw_delete(CaseEvent.objects.db)
        CaseParty.objects.filter(case_id__in=ids)._raw_delete(CaseParty.objects.db)
        Case.objects.filter(pk__in=ids)._raw_delete(Case.objects.db)
        Unit.objects.filter(region__code=_BENCH_COUNTY).delete()
        Region.objects.filter(code=_BENCH_COUNTY).delete()
        Category.objects.filter(code="bench-tracking").delete()
        Category.objects.filter(code="bench-top").delete()
        CaseCodeCounter.objects.filter(prefix__startswith=_BENCH_COUNTY[:6]).delete()


def run(stdout, options) -> None:
    from dispatch.models import Case

    count = QUICK_REQUESTS if options.get("quick") else REQUESTS
    db = settings.DATABASES["default"]
    with _a_case() as (case, throwaway):
        stdout.write(
            f"database: {db['ENGINE'].rsplit('.', 1)[-1]} ({Case.objects.count()} cases), "
            f"cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}, "
            f"case {case.code}{' (throwaway)' if throwaway else ''}"
        )
        with _server() as port:
            track = f"/t/{case.tracking_token}"
            status, _s = _get(port, track)
            if status != 200:
                stdout.write(f"tracking page answered {status}; aborting")
                return
            for path in ("/bench/bare", track):
                _load(port, path, WARMUP)
            # Alternate rounds so that a load spike elsewhere on the machine hits both alike.
            rounds: dict[str, list[dict]] = {"bare": [], "tracking": []}
            for _round in range(ROUNDS):
                rounds["bare"].append(_load(port, "/bench/bare", count // ROUNDS))
                rounds["tracking"].append(_load(port, track, count // ROUNDS))
            bare, tracking = _merge(rounds["bare"]), _merge(rounds["tracking"])
    stdout.write(f"gunicorn 2 workers, {CONCURRENCY} client threads, {count} requests each")
    for name, row in (("bare view", bare), ("tracking", tracking)):
        stdout.write(
            f"{name:>10}: {row['rps']:8.0f} req/s  p50 {row['p50']:6.2f} ms  "
            f"p99 {row['p99']:6.2f} ms  errors {row['errors']}"
        )
    ratio = tracking["rps"] / bare["rps"] if bare["rps"] else 0.0
    verdict = "OK" if ratio >= 0.5 and tracking["p99"] < 25 else "BELOW TARGET"
    stdout.write(f"ratio tracking/bare: {ratio:.0%} (target >= 50%, p99 < 25 ms): {verdict}")
