"""The monthly report: the dashboard's figures for a calendar month, on a printable page and in
a PDF that says the same, offline and in grey scale."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from intake import fonts
from reports.content import last_day
from reports.models import ExportState
from tests.reports.conftest import ask, download, month_params, week_month, workbook

pytestmark = pytest.mark.django_db

CSS = Path(settings.BASE_DIR) / "static" / "css" / "report.css"
CHARTS = Path(settings.BASE_DIR) / "reports" / "templatetags" / "report_charts.py"


@pytest.fixture(scope="module", autouse=True)
def prepared_fonts():
    """What the setup script runs; idempotent and fast once done."""
    call_command("prepare_fonts", verbosity=0)
    assert fonts.prepared_fonts() is not None


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True).stdout.decode()


def report_page(client, user, params):
    client.force_login(user)
    response = client.get("/work/reports/", params)
    assert response.status_code == 200, response.content.decode()[-500:]
    return response


def month_of_dashboard(region) -> dict:
    """The dashboard's own parameters for the week's month (its custom period)."""
    month = week_month()
    return {
        "region": region.code,
        "period": "custom",
        "start": month.isoformat(),
        "end": last_day(month).isoformat(),
    }


def test_the_report_has_the_dashboards_figures_for_the_month(client, tree, people, loop, week):
    page = report_page(client, loop.sup_a, month_params(tree.town_a))
    report = page.context["report"]
    assert report.region == tree.town_a and report.month == week_month()
    board = client.get("/work/dashboard/", month_of_dashboard(tree.town_a)).context["board"]
    assert report.board.counts == board.counts
    assert [(r.key, r.numerator, r.denominator) for r in report.board.rates] == [
        (r.key, r.numerator, r.denominator) for r in board.rates
    ]
    body = page.content.decode()
    for rate in report.board.rates:
        row = re.search(rf'<tr id="rate-{rate.key}"[^>]*>(.*?)</tr>', body, re.S)
        assert row is not None, rate.key
        assert rate.percent in row.group(1)
        assert f"{rate.numerator} / {rate.denominator}" in row.group(1)
    for row in report.counts:
        assert re.search(
            rf'<tr id="count-{row.name}"><td>[^<]*</td><td class="n">{row.count}</td>', body
        ), row.name
    # The trend ends with the report's month, and the month's bar is the month's count.
    last_period, last_counts, _rates = report.trend[-1]
    assert last_period.start.date() == week_month()
    assert last_counts["received"] == report.board.counts["received"]
    # Every number opens the dashboard's list of its month, as long as the number, and
    # exports that list.
    for row in report.counts:
        if not row.count:
            continue
        link = re.search(rf'<tr id="count-{row.name}">.*?href="([^"]+)"', body, re.S)
        assert link is not None, row.name
        listed = client.get(link.group(1).replace("&amp;", "&"))
        assert listed.context["page"].paginator.count == row.count, row.name
    assert 'action="/work/reports/exports/new/cases_xlsx/"' in body


def test_the_pdf_says_what_the_page_says(
    client, tree, people, loop, week, django_capture_on_commit_callbacks, tmp_path
):
    page = report_page(client, loop.sup_a, month_params(tree.town_a))
    report = page.context["report"]
    export = ask(
        client, django_capture_on_commit_callbacks, "monthly_pdf", month_params(tree.town_a)
    )
    assert export.state == ExportState.READY
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(download(client, export))
    assert pdf.read_bytes().startswith(b"%PDF")

    text = run("pdftotext", "-layout", "-enc", "UTF-8", str(pdf), "-")
    assert f"{tree.town_a.name} {week_month():%Y-%m} 月度报告" in text
    lines = [line.strip() for line in text.splitlines()]

    def line_of(label: str) -> str:
        """The table row that starts with ``label``, spaces dropped (pdftotext's spacing of a
        proportional font is its own)."""
        line = next((x for x in lines if x.startswith(label + " ")), None)
        assert line is not None, (label, text[:3000])
        return line.replace(" ", "")

    for rate in report.board.rates:
        line = line_of(rate.label)
        assert rate.percent in line and f"{rate.numerator}/{rate.denominator}" in line, line
    for row in report.counts:
        assert any(re.fullmatch(rf"{re.escape(row.label)}\s+{row.count}", x) for x in lines), (
            row.label,
            row.count,
        )
    for share in report.board.levels:
        line = line_of(share.label)
        assert share.percent in line and f"{share.numerator}/{share.denominator}" in line, line
    assert report.board.assessment and all(r.label in text for r in report.board.assessment)
    # The chart is drawn, with every month's number; the fonts are embedded, none fetched.
    assert all(f"{p.start:%Y-%m}" in text for p, _c, _r in report.trend)
    listing = run("pdffonts", str(pdf))
    for line in [x for x in listing.splitlines()[2:] if x.strip()]:
        assert re.search(r"\byes\s+yes\s+yes\b", line), line


def test_the_figures_workbook_has_the_pages_numbers(
    client, tree, people, loop, week, django_capture_on_commit_callbacks
):
    page = report_page(client, loop.sup_a, month_params(tree.town_a))
    report = page.context["report"]
    export = ask(
        client, django_capture_on_commit_callbacks, "monthly_xlsx", month_params(tree.town_a)
    )
    book = workbook(download(client, export))
    counts = dict(list(book["件数"].iter_rows(values_only=True))[1:])
    assert all(counts[row.label] == row.count for row in report.counts)
    rates = {row[0].value: row for row in list(book["比率"].iter_rows())[1:]}
    for rate in report.board.rates:
        value, numerator, denominator = rates[rate.label][1:4]
        assert (numerator.value, denominator.value) == (rate.numerator, rate.denominator)
        if rate.value is None:
            assert value.value == "—"
        else:
            assert (value.value, value.number_format) == (rate.value, "0.0%")
    assert {"分类", "下级区域", "承办单位", "受理窗口", "月度趋势"} <= set(book.sheetnames)
    ranked = list(book["承办单位考评"].iter_rows(values_only=True))[1:]
    assert [row[1] for row in ranked] == [row.label for row in report.board.assessment]


def test_the_page_is_offline_and_grey(client, tree, people, loop, week):
    body = report_page(client, loop.sup_a, month_params(tree.town_a)).content.decode()
    assert "http" not in body.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert 'href="/static/css/report.css"' in body
    # Grey scale: every colour the report's stylesheet and charts use is a grey.
    colours = re.findall(
        r"#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})\b", CSS.read_text() + CHARTS.read_text()
    )
    assert colours
    for colour in colours:
        full = colour if len(colour) == 6 else "".join(c * 2 for c in colour)
        assert full[0:2] == full[2:4] == full[4:6], colour


def test_a_month_not_yet_ended_says_so_and_the_default_is_the_month_that_ended(
    client, tree, people, loop, clock
):
    body = report_page(client, loop.sup_a, {"region": tree.town_a.code}).content.decode()
    assert "本月尚未结束" not in body
    this_month = f"{clock.now():%Y-%m}"
    body = report_page(
        client, loop.sup_a, {"region": tree.town_a.code, "month": this_month}
    ).content.decode()
    assert "本月尚未结束" in body
    # A month to come, or nonsense, is the default month.
    default = report_page(client, loop.sup_a, {}).context["report"]
    assert default.region == tree.town_a and default.complete
    for month in ("2999-01", "x", "2026-13"):
        assert report_page(client, loop.sup_a, {"month": month}).context["report"].month == (
            default.month
        )


def test_a_township_supervisor_gets_their_own_township(client, tree, people, loop, week):
    report = report_page(client, loop.sup_a, month_params(tree.town_b)).context["report"]
    assert report.region == tree.town_a
    county = report_page(client, people.dave, month_params(tree.county)).context["report"]
    assert county.region == tree.county
    assert [row.key for row in county.board.breakdowns["child"]] == [tree.town_a.pk]
