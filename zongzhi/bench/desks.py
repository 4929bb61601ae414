"""W2 and W3 of ``manage.py bench``: the clerk's intake POST and the desks' pages.

W2 registers cases through the intake screen one after another, as a clerk does, and counts
the queries of one POST in-process (the same view, the same code). W3 opens the dashboard of a
township and of the county, the inbox of the busiest handling unit and the work queues, as
logged-in members of staff of the demo county.
"""

from __future__ import annotations

import re
import time
import uuid

from django.db import connection
from django.db.models import Count
from django.test import Client as DjangoClient
from django.test.utils import CaptureQueriesContext

from dispatch.models import Assignment, AssignmentStatus, Case
from grids.models import Region
from people.models import Role, User
from zongzhi import demo
from zongzhi.bench.harness import Client, Report, csrf_token, server, timed

TOWNSHIP = "xlt"
VILLAGE = "139901101201"


def _intake_form(client: Client, n: int) -> dict:
    _status, page, _s = client.get("/intake/")
    key = re.search(r'name="intake_key" value="([^"]+)"', page)
    region = Region.objects.get(code=VILLAGE)
    return {
        "csrfmiddlewaretoken": csrf_token(page),
        "intake_key": key.group(1) if key else str(uuid.uuid4()),
        "action": "save",
        "channel": "window",
        "category": "矛盾纠纷 / 邻里纠纷",
        "grade": "ordinary",
        "summary": f"基准测试：楼上装修噪音扰民（第{n}件）",
        "narrative": "夜间施工，电钻声持续两小时。",
        "region": str(region.pk),
        "address_detail": "三组",
        "accused_unit": "",
        "outcome": "register",
        "confirm_new": "on",
        "applicants-TOTAL_FORMS": "1",
        "applicants-INITIAL_FORMS": "0",
        "applicants-MIN_NUM_FORMS": "1",
        "applicants-MAX_NUM_FORMS": "20",
        "applicants-0-name": "基准申请人",
        "applicants-0-phone": f"139{n % 10**8:08d}",
        "respondents-TOTAL_FORMS": "1",
        "respondents-INITIAL_FORMS": "0",
        "respondents-MIN_NUM_FORMS": "1",
        "respondents-MAX_NUM_FORMS": "20",
    }


def _queries_of_one_post() -> tuple[int, int]:
    """Queries (all, writes) of one intake POST, counted in-process."""
    clerk = User.objects.get(username=f"clerk_{TOWNSHIP}")
    client = DjangoClient(SERVER_NAME="127.0.0.1")
    client.force_login(clerk)
    page = client.get("/intake/").content.decode()
    key = re.search(r'name="intake_key" value="([^"]+)"', page)
    form = _intake_form_for_django(key.group(1) if key else str(uuid.uuid4()))
    with CaptureQueriesContext(connection) as captured:
        response = client.post("/intake/", form)
    if response.status_code != 302:
        raise RuntimeError(f"intake POST answered {response.status_code}")
    sql = [q["sql"].lstrip().upper() for q in captured.captured_queries]
    writes = sum(s.startswith(("INSERT", "UPDATE", "DELETE")) for s in sql)
    return len(sql), writes


def _intake_form_for_django(key: str) -> dict:
    region = Region.objects.get(code=VILLAGE)
    return {
        "intake_key": key,
        "action": "save",
        "channel": "window",
        "category": "矛盾纠纷 / 邻里纠纷",
        "grade": "ordinary",
        "summary": "基准测试：查询计数",
        "region": str(region.pk),
        "outcome": "register",
        "confirm_new": "on",
        "applicants-TOTAL_FORMS": "1",
        "applicants-INITIAL_FORMS": "0",
        "applicants-MIN_NUM_FORMS": "1",
        "applicants-MAX_NUM_FORMS": "20",
        "applicants-0-name": "基准申请人",
        "applicants-0-phone": "13900000000",
        "respondents-TOTAL_FORMS": "1",
        "respondents-INITIAL_FORMS": "0",
        "respondents-MIN_NUM_FORMS": "1",
        "respondents-MAX_NUM_FORMS": "20",
    }


def intake(report: Report, port: int, *, count: int) -> None:
    """W2: sequential intake POSTs by one clerk (each a new case)."""
    client = Client(port)
    client.login(f"clerk_{TOWNSHIP}", demo.DEMO_PASSWORD)
    forms = iter(range(10**6))

    def post():
        n = next(forms)
        form = _intake_form(client, n)
        status, text, seconds = client.post("/intake/", form)
        return (200 if status == 302 else status), text, seconds

    row = timed(post, count)
    queries, writes = _queries_of_one_post()
    report.add("W2 intake POST", queries=queries, writes=writes, **row)


def _busiest_handler() -> User | None:
    busiest = (
        Assignment.objects.filter(status__in=[AssignmentStatus.PENDING, AssignmentStatus.SIGNED])
        .values("unit_id")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .first()
    )
    if busiest is None:
        return None
    return (
        User.objects.filter(
            grants__role=Role.HANDLER, grants__unit_id=busiest["unit_id"], is_active=True
        )
        .order_by("pk")
        .first()
    )


def pages(report: Report, port: int, *, count: int) -> None:
    """W3: the dashboard (township, county), the busiest inbox, the dispatcher and supervisor
    queues, each opened ``count`` times by a logged-in member of staff."""
    desks = [
        ("W3 dashboard township", f"supervisor_{TOWNSHIP}", "/work/dashboard/"),
        ("W3 dashboard county", "supervisor_county", "/work/dashboard/"),
        ("W3 dispatcher queue county", "dispatcher_county", "/work/dispatcher/"),
        ("W3 supervisor queue county", "supervisor_county", "/work/supervise/"),
    ]
    handler = _busiest_handler()
    if handler is not None:
        desks.append(("W3 busiest inbox", handler.username, "/work/inbox/"))
    for name, username, path in desks:
        client = Client(port)
        client.login(username, demo.DEMO_PASSWORD)
        client.get(path)  # warm the worker's process
        row = timed(lambda c=client, p=path: c.get(p), count)
        _status, body, _s = client.get(path)
        report.add(name, kb=round(len(body.encode()) / 1024, 1), **row)


def vacuum_hot_tables(report: Report) -> None:
    """Vacuum the cases and tasks first, as autovacuum keeps them in a deployment (after 1% of
    their rows changed, ``dispatch/migrations/0011``): a server run with autovacuum off, or an
    earlier benchmark's rolled-back sweep, would leave the pages' index-only counts reading the
    heap. Says how long it took and whether autovacuum is on."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        (autovacuum,) = cursor.fetchone()
        start = time.perf_counter()
        for model in (Case, Assignment):
            cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(model._meta.db_table)}")
    report.add(
        "vacuum before W3",
        seconds=round(time.perf_counter() - start, 1),
        server_autovacuum=autovacuum,
    )


def run(report: Report, options: dict) -> None:
    count = 20 if options.get("quick") else 100
    vacuum_hot_tables(report)
    with server() as port:
        pages(report, port, count=count)
        intake(report, port, count=count)
