"""The Excel exports (openpyxl): a case list and the figures of a monthly report.

Every text cell goes through ``text_cell``: a text a spreadsheet would read as a formula (it
starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return; openpyxl itself writes any
string starting with ``=`` as a formula) is written as text behind an apostrophe, so that a
summary typed as ``=HYPERLINK(...)`` is shown, never run, also after a round trip through CSV.
Characters XML cannot hold are dropped. Numbers stay numbers and times are local times.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterable
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from dispatch import dashboard, figures
from reports.content import CaseList, CaseRow, MonthlyReport

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY = 500
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
PERCENT_FORMAT = "0.0%"
BOLD = Font(bold=True)

Progress = Callable[[int, int], None]


def safe_text(value: str) -> str:
    """The text as a spreadsheet must hold it: never a formula, only characters XML allows."""
    value = ILLEGAL_CHARACTERS_RE.sub("", value)
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def local(moment: dt.datetime | None) -> dt.datetime | None:
    """Spreadsheets have no time zones: the centre's local time, without its offset."""
    return timezone.localtime(moment).replace(tzinfo=None) if moment is not None else None


def text_cell(sheet, value: Any, *, bold: bool = False) -> WriteOnlyCell:
    """One cell of a write-only sheet; text is neutralised and typed as text."""
    if isinstance(value, dt.datetime):
        cell = WriteOnlyCell(sheet, value=local(value))
        cell.number_format = DATETIME_FORMAT
    elif value is None or isinstance(value, bool | int | float | dt.date):
        cell = WriteOnlyCell(sheet, value=value)
    else:
        cell = WriteOnlyCell(sheet, value=safe_text(str(value)))
        # openpyxl types a string from its first character; the type is set, not guessed.
        cell.data_type = "s"
    if bold:
        cell.font = BOLD
    return cell


def _row(sheet, values: Iterable[Any], *, bold: bool = False) -> list[WriteOnlyCell]:
    return [text_cell(sheet, value, bold=bold) for value in values]


def sheet_title(value: object) -> str:
    """A sheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    return "".join(" " if c in "[]:*?/\\" else c for c in str(value))[:31] or "-"


def _widths(sheet, widths: Iterable[int]) -> None:
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = width


def _save(book: Workbook) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- a case list -----------------------------------------------------------------------------


def case_columns() -> list[tuple[str, str, int]]:
    """(row attribute, heading, width) of the case list, in order."""
    return [
        ("code", _("案件编号"), 22),
        ("category", _("分类"), 22),
        ("summary", _("诉求摘要"), 48),
        ("applicants", _("申请人（已脱敏）"), 16),
        ("region", _("事发地"), 16),
        ("status", _("状态"), 12),
        ("unit", _("承办单位"), 20),
        ("reported_at", _("上报时间"), 17),
        ("due_at", _("办结期限"), 17),
        ("closed_at", _("办结时间"), 17),
    ]


def case_list_workbook(
    listing: CaseList,
    rows: Iterable[CaseRow],
    *,
    total: int,
    generated_at: dt.datetime,
    progress: Progress | None = None,
) -> tuple[bytes, int]:
    """The list as a workbook (the cases, then a sheet saying what the list is); returns the
    file and the number of cases written. Written row by row: memory stays flat."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(sheet_title(_("案件清单")))
    columns = case_columns()
    _widths(sheet, [width for _attr, _heading, width in columns])
    sheet.freeze_panes = "A2"
    sheet.append(_row(sheet, [heading for _attr, heading, _width in columns], bold=True))
    written = 0
    for row in rows:
        sheet.append(_row(sheet, [getattr(row, attr) for attr, _heading, _width in columns]))
        written += 1
        if progress is not None and written % PROGRESS_EVERY == 0:
            progress(written, total)
    about = book.create_sheet(sheet_title(_("说明")))
    _widths(about, [16, 60])
    period = (
        _("截至 %(at)s 仍在办理") % {"at": f"{local(listing.end):%Y-%m-%d %H:%M}"}
        if listing.is_open_list
        else f"{local(listing.start):%Y-%m-%d %H:%M} — {local(listing.end):%Y-%m-%d %H:%M}"
    )
    for label, value in (
        (_("清单"), listing.title),
        (_("范围"), listing.region.name),
        (_("统计时段"), period),
        (_("件数"), written),
        (_("生成时间"), generated_at),
        (_("说明"), _("当事人姓名、电话和身份证号均已脱敏；仅供本单位督办使用，请勿外传。")),
    ):
        about.append([text_cell(about, label, bold=True), text_cell(about, value)])
    return _save(book), written


# --- the figures of a monthly report ---------------------------------------------------------


def _rate_cells(sheet, rate) -> list[WriteOnlyCell]:
    value = text_cell(sheet, rate.value if rate.value is not None else "—")
    if rate.value is not None:
        value.number_format = PERCENT_FORMAT
    return [value, text_cell(sheet, rate.numerator), text_cell(sheet, rate.denominator)]


def figures_workbook(report: MonthlyReport) -> bytes:
    """The report's figures, one sheet per table of the page, as numbers."""
    board = report.board
    book = Workbook(write_only=True)
    thin = _("样本不足")

    about = book.create_sheet(sheet_title(_("说明")))
    _widths(about, [16, 70])
    for label, value in (
        (_("报告"), _("月度报告")),
        (_("范围"), report.region.name),
        (_("月份"), f"{report.month:%Y-%m}"),
        (
            _("统计时段"),
            f"{local(report.period.start):%Y-%m-%d %H:%M} — "
            f"{local(report.period.end):%Y-%m-%d %H:%M}",
        ),
        (_("计算时间"), report.computed_at),
        (
            _("样本"),
            _("分母少于 %(n)d 件的比率标为“样本不足”，仅供参考。") % {"n": figures.min_sample()},
        ),
    ):
        about.append([text_cell(about, label, bold=True), text_cell(about, value)])

    counts = book.create_sheet(sheet_title(_("件数")))
    _widths(counts, [28, 12])
    counts.append(_row(counts, [_("指标"), _("件数")], bold=True))
    for row in report.counts:
        counts.append(_row(counts, [row.label, row.count]))
    counts.append(
        _row(
            counts,
            [
                _("平均办理用时（工作日）"),
                round(board.average_days, 1) if board.average_days is not None else "—",
            ],
        )
    )

    rates = book.create_sheet(sheet_title(_("比率")))
    _widths(rates, [16, 10, 10, 10, 14, 12, 60])
    rates.append(
        _row(
            rates,
            [_("指标"), _("比率"), _("分子"), _("分母"), _("不计入分母"), _("样本"), _("口径")],
            bold=True,
        )
    )
    for rate in board.rates:
        rates.append(
            [
                text_cell(rates, rate.label),
                *_rate_cells(rates, rate),
                text_cell(rates, rate.left_out),
                text_cell(rates, "" if rate.meaningful else thin),
                text_cell(rates, rate.definition),
            ]
        )

    levels = book.create_sheet(sheet_title(_("层级办结")))
    _widths(levels, [18, 10, 10, 10])
    levels.append(_row(levels, [_("办结层级"), _("占比"), _("件数"), _("办结总数")], bold=True))
    for share in board.levels:
        levels.append([text_cell(levels, share.label), *_rate_cells(levels, share)])

    channels = book.create_sheet(sheet_title(_("来源渠道")))
    _widths(channels, [18, 10])
    channels.append(_row(channels, [_("来源渠道"), _("受理")], bold=True))
    for _value, label, n in board.by_channel:
        channels.append(_row(channels, [label, n]))

    ranked = book.create_sheet(sheet_title(_("承办单位考评")))
    _widths(ranked, [6, 28, 8, 8, 10, 8, 8, 10, 8, 8, 10, 8, 8])
    ranked.append(
        _row(
            ranked,
            [
                _("名次"),
                _("承办单位"),
                _("受理"),
                _("办结"),
                _("按时办结率"),
                _("按时办结"),
                _("到期应办结"),
                _("回访满意率"),
                _("回访满意"),
                _("回访"),
                _("平均用时"),
                _("被退回"),
                _("当前超期"),
            ],
            bold=True,
        )
    )
    for place, row in enumerate(board.assessment, start=1):
        ranked.append(
            [
                text_cell(ranked, place),
                text_cell(ranked, row.label),
                text_cell(ranked, row.counts.get("received", 0)),
                text_cell(ranked, row.counts.get("closed", 0)),
                *_rate_cells(ranked, row.rates["on_time"]),
                *_rate_cells(ranked, row.rates["satisfaction"]),
                text_cell(
                    ranked, round(row.average_days, 1) if row.average_days is not None else "—"
                ),
                text_cell(ranked, row.counts.get("closed_returned", 0)),
                text_cell(ranked, row.overdue_now),
            ]
        )

    for dimension, rows in board.breakdowns.items():
        sheet = book.create_sheet(sheet_title(dashboard.DIMENSIONS[dimension]))
        _widths(sheet, [28, 8, 8, 10, 8, 8, 10, 10, 8, 8, 10, 8, 8])
        sheet.append(
            _row(
                sheet,
                [
                    dashboard.DIMENSIONS[dimension],
                    _("受理"),
                    _("办结"),
                    _("按时办结率"),
                    _("按时办结"),
                    _("到期应办结"),
                    _("平均用时"),
                    _("被退回"),
                    _("当前超期"),
                    _("回访满意率"),
                    _("回访满意"),
                    _("回访"),
                ],
                bold=True,
            )
        )
        for row in rows:
            sheet.append(
                [
                    text_cell(sheet, row.label),
                    text_cell(sheet, row.counts.get("received", 0)),
                    text_cell(sheet, row.counts.get("closed", 0)),
                    *_rate_cells(sheet, row.rates["on_time"]),
                    text_cell(
                        sheet, round(row.average_days, 1) if row.average_days is not None else "—"
                    ),
                    text_cell(sheet, row.counts.get("closed_returned", 0)),
                    text_cell(sheet, row.overdue_now),
                    *_rate_cells(sheet, row.rates["satisfaction"]),
                ]
            )

    months = book.create_sheet(sheet_title(_("月度趋势")))
    _widths(months, [10, 8, 8, 10, 10, 10])
    months.append(
        _row(
            months,
            [_("月份"), _("受理"), _("办结"), _("按时办结率"), _("按时办结"), _("到期应办结")],
            bold=True,
        )
    )
    for period, month_counts, month_rates in report.trend:
        months.append(
            [
                text_cell(months, f"{local(period.start):%Y-%m}"),
                text_cell(months, month_counts.get("received", 0)),
                text_cell(months, month_counts.get("closed", 0)),
                *_rate_cells(months, month_rates["on_time"]),
            ]
        )
    return _save(book)
