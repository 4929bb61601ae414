"""``manage.py bench tracking``: the resident's tracking page against a bare Django view.

Starts gunicorn (2 sync workers, 127.0.0.1, a free port) on the current settings plus one bare
view (``zongzhi.bench.settings``) and sends bounded request counts from 8 client threads:

- W0: the bare view, the floor every ratio is taken against, measured in the same run, in rounds
  alternating with the other workloads so that a load spike elsewhere hits all alike;
- W1: random cases never read before, each token requested once (a resident opens their own
  case). As in production, their pages were rendered by the ``tracking.render`` job that an
  event's commit records; the benchmark runs that job's handler for each case before the timed
  loop, not during it, and reports what a render costs the worker;
- W1h: the same tokens again (the page already read once).

Targets: W1 >= 0.5 of W0 with p99 < 10 ms; W1h >= 0.8 of W0.

The cases are a random sample of the database's; their tracking entries are removed from the
shared cache first, so that no earlier run or visit has left anything. With no cases at all, a
throwaway county with a few cases is created and removed afterwards. Nothing is sent beyond
127.0.0.1, and every loop is bounded in count and in time.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from zongzhi.bench.harness import HOST, MAX_SECONDS, Client, percentile, server

CONCURRENCY = 8
TOKENS = 1600
QUICK_TOKENS = 320
ROUNDS = 4
WARMUP = 200
THROWAWAY_CASES = 40
RENDER_TOPIC = "tracking.render"
W1_RATIO, W1_P99_MS, W1H_RATIO = 0.5, 10.0, 0.8


def _server_cpu(port: int) -> float | None:
    """CPU seconds used so far by the gunicorn processes serving ``port`` (Linux /proc).

    The machine may be busy with other work: throughput then says more about the neighbours
    than about the page, while the server's own CPU per request does not.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    needle = f"{HOST}:{port}".encode()
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "cmdline").read_bytes():
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _load(port: int, paths: list[str]) -> dict:
    """GET every path once, spread over CONCURRENCY keep-alive clients; bounded in time."""
    chunks = [paths[i::CONCURRENCY] for i in range(CONCURRENCY)]
    stop = time.monotonic() + MAX_SECONDS

    def worker(chunk: list[str]) -> tuple[list[float], int]:
        client, latencies, errors = Client(port), [], 0
        for path in chunk:
            status, _text, seconds = client.get(path)
            latencies.append(seconds * 1000)
            errors += status != 200
            if time.monotonic() > stop:
                break
        return latencies, errors

    cpu = _server_cpu(port)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(worker, chunks))
    elapsed = time.perf_counter() - start
    after = _server_cpu(port)
    return {
        "latencies": [ms for chunk, _e in results for ms in chunk],
        "elapsed": elapsed,
        "errors": sum(e for _c, e in results),
        "cpu": after - cpu if cpu is not None and after is not None else None,
    }


def _merge(rows: list[dict]) -> dict:
    latencies = [ms for row in rows for ms in row["latencies"]]
    elapsed = sum(row["elapsed"] for row in rows)
    cpu = [row["cpu"] for row in rows]
    return {
        "n": len(latencies),
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "errors": sum(row["errors"] for row in rows),
        "cpu_us": sum(cpu) / len(latencies) * 1e6 if latencies and None not in cpu else None,
    }


def _tracking_keys(token: str) -> list[str]:
    """Every cache key the tracking page may hold for ``token``, of this version or the last."""
    from dispatch.events import tracking_generation_key

    keys = [tracking_generation_key(token)]
    for language, _name in settings.LANGUAGES:
        for large in (0, 1):
            keys.append(f"track:page:{token}:{language}:{large}")
    return keys


def _forget(tokens: list[str]) -> None:
    """Leave nothing of these tokens in the shared cache: as if never read or rendered."""
    for start in range(0, len(tokens), 500):
        cache.delete_many([k for t in tokens[start : start + 500] for k in _tracking_keys(t)])


def _render_as_the_worker(case_ids: list[int]) -> tuple[float, bool]:
    """Run the render job's handler for each case, as the worker does after an event's commit.

    Returns the mean milliseconds per case, and whether there is such a job at all (the
    benchmark also runs against a version that renders on the first read instead).
    """
    from dispatch import outbox

    handler = outbox.HANDLERS.get(RENDER_TOPIC)
    if handler is None:
        return 0.0, False
    start = time.perf_counter()
    for case_id in case_ids:
        handler({"case_id": case_id})
    return (time.perf_counter() - start) * 1000 / max(1, len(case_ids)), True


@contextmanager
def _cases(count: int):
    """(pk, token) of ``count`` random cases, or of a throwaway county's cases."""
    from dispatch.models import Case

    rows = list(Case.objects.values_list("pk", "tracking_token"))
    if rows:
        random.shuffle(rows)
        yield rows[:count], False
        return
    created = _create_throwaway_cases(THROWAWAY_CASES)
    try:
        yield created, True
    finally:
        _forget([token for _pk, token in created])
        _remove_throwaway_cases()


_BENCH_COUNTY = "999900000000"


def _create_throwaway_cases(count: int) -> list[tuple[int, str]]:
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
        rows = []
        for _i in range(count):
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
            rows.append((case.pk, case.tracking_token))
        return rows


def _remove_throwaway_cases() -> None:
    from dispatch.models import Case, CaseCodeCounter, CaseEvent, CaseParty, Category, Job
    from grids.models import Region, Unit

    with transaction.atomic():
        ids = list(Case.objects.filter(region__code=_BENCH_COUNTY).values_list("pk", flat=True))
        # Raw deletes: these rows were created just now and nothing else refers to them.
        CaseEvent.objects.filter(case_id__in=ids)._raw_delete(CaseEvent.objects.db)
        CaseParty.objects.filter(case_id__in=ids)._raw_delete(CaseParty.objects.db)
        Job.objects.filter(topic=RENDER_TOPIC, payload__case_id__in=ids).delete()
        Case.objects.filter(pk__in=ids)._raw_delete(Case.objects.db)
        Unit.objects.filter(region__code=_BENCH_COUNTY).delete()
        Region.objects.filter(code=_BENCH_COUNTY).delete()
        Category.objects.filter(code="bench-tracking").delete()
        Category.objects.filter(code="bench-top").delete()
        CaseCodeCounter.objects.filter(prefix__startswith=_BENCH_COUNTY[:6]).delete()


def _line(stdout, name: str, row: dict, floor: dict) -> float:
    ratio = row["rps"] / floor["rps"] if floor["rps"] else 0.0
    cpu = ""
    if row["cpu_us"] and floor["cpu_us"]:
        # What the server could do with the machine to itself: W0's CPU per request over this.
        share = floor["cpu_us"] / row["cpu_us"]
        cpu = f"  server cpu {row['cpu_us']:5.0f} us/req (ratio {share:5.3f})"
    stdout.write(
        f"{name:>4}: {row['rps']:7.0f} req/s  p50 {row['p50']:6.2f} ms  "
        f"p99 {row['p99']:6.2f} ms  ratio to W0 {ratio:5.3f}{cpu}  n {row['n']}  "
        f"errors {row['errors']}"
    )
    return ratio


def run(stdout, options) -> None:
    from dispatch.models import Case

    wanted = QUICK_TOKENS if options.get("quick") else TOKENS
    db = settings.DATABASES["default"]
    with _cases(wanted + WARMUP) as (rows, throwaway):
        if len(rows) <= WARMUP:
            # Too few cases to keep warm-up tokens apart: warm up on the measured ones' bare view.
            warm, measured = [], rows
        else:
            warm, measured = rows[:WARMUP], rows[WARMUP:]
        tokens = [token for _pk, token in measured]
        stdout.write(
            f"database: {db['ENGINE'].rsplit('.', 1)[-1]} ({Case.objects.count()} cases), "
            f"cache: {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}, "
            f"{len(tokens)} random cases{' (throwaway)' if throwaway else ''}"
        )
        _forget(tokens + [token for _pk, token in warm])
        per_case_ms, by_job = _render_as_the_worker([pk for pk, _t in measured])
        if by_job:
            from intake.tracking import lookup

            ready = sum(
                lookup(token, settings.LANGUAGE_CODE, False)[0] is not None for token in tokens
            )
            stdout.write(
                f"render job ({RENDER_TOPIC}) run for {len(tokens)} cases before the timed "
                f"loop: {per_case_ms:.1f} ms per case (every language and text size); "
                f"{ready} pages ready to serve"
            )
        else:
            stdout.write(f"no {RENDER_TOPIC} job in this version: W1 is every page's first read")
        paths = [f"/t/{token}" for token in tokens]
        with server() as port:
            status, _text, _s = Client(port).get(paths[0] if not warm else f"/t/{warm[0][1]}")
            if status != 200:
                stdout.write(f"tracking page answered {status}; aborting")
                return
            _load(port, ["/bench/bare"] * WARMUP)
            _load(port, [f"/t/{token}" for _pk, token in warm])
            if not warm:
                # The first probe read one measured token; it no longer counts as never read.
                paths = paths[1:]
            rounds: dict[str, list[dict]] = {"W0": [], "W1": [], "W1h": []}
            size = max(1, len(paths) // ROUNDS)
            for start in range(0, size * ROUNDS, size):
                chunk = paths[start : start + size]
                if not chunk:
                    break
                rounds["W0"].append(_load(port, ["/bench/bare"] * len(chunk)))
                rounds["W1"].append(_load(port, chunk))
                rounds["W1h"].append(_load(port, chunk))
        figures = {name: _merge(chunks) for name, chunks in rounds.items()}
    stdout.write(
        f"gunicorn 2 workers, {CONCURRENCY} client threads, {len(rounds['W1'])} rounds of "
        f"{size} requests per workload"
    )
    floor = figures["W0"]
    _line(stdout, "W0", floor, floor)
    w1 = _line(stdout, "W1", figures["W1"], floor)
    w1h = _line(stdout, "W1h", figures["W1h"], floor)
    ok = w1 >= W1_RATIO and figures["W1"]["p99"] < W1_P99_MS and w1h >= W1H_RATIO
    stdout.write(
        f"targets: W1 >= {W1_RATIO} of W0 with p99 < {W1_P99_MS:.0f} ms, W1h >= {W1H_RATIO} of "
        f"W0: {'OK' if ok else 'BELOW TARGET'}"
    )
