"""The monthly report page, asking for exports, the user's exports and their downloads.

Adapters, as the dashboard's views: the supervisor's desk, the dashboard's scope
(``dashboard.scope_for``), one form, one service. Nothing is rendered to a file here: the
exports are made by the worker, and the page of exports refreshes itself until they are ready.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from dispatch import dashboard
from dispatch.access import require_desk
from grids.models import Region
from reports import content, selectors, services
from reports.errors import ReportError, message_for
from reports.forms import CaseListForm, MonthlyForm
from reports.models import ExportKind

CONTENT_TYPES = {
    ".pdf": "application/pdf",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# While an export is being made, the page of exports reloads itself (no script needed).
REFRESH_SECONDS = 3


def _monthly_choice(request, data):
    """The scope and month asked for, within the user's areas; the defaults otherwise."""
    require_desk(request.user, "supervise")
    form = MonthlyForm(data)
    cleaned = form.cleaned_data if form.is_valid() else {}
    region = dashboard.scope_for(request.user, cleaned.get("region"))
    if region is None:
        raise Http404
    now = timezone.now()
    month = content.parse_month(cleaned.get("month"))
    if month is None or month > content.this_month(now):
        month = content.default_month(now)
    return region, month, now


@login_required
@require_GET
def monthly_page(request):
    region, month, now = _monthly_choice(request, request.GET)
    report = content.monthly_report(request.user, region, month, now=now)
    return render(
        request,
        "reports/monthly.html",
        {
            **content.report_context(report),
            "for_pdf": False,
            "areas": dashboard.dashboard_areas(request.user),
            "children": Region.objects.filter(parent=region, is_active=True).order_by("code"),
            "months": content.offered_months(now),
            "open_lists": dashboard.OPEN_LISTS,
        },
    )


def _request(request, kind: str, params: dict, *, message: str, now=None):
    """Ask the service for the export; to the page of exports, where its progress shows."""
    try:
        export = services.request_export(actor=request.user, kind=kind, params=params, now=now)
    except ReportError as exc:
        messages.error(request, exc.message)
        return redirect("reports:monthly")
    messages.success(request, message)
    return redirect(f"{reverse('reports:exports')}#export-{export.public_id}")


@login_required
@require_POST
def export_new(request, kind: str):
    """Ask for an export; the worker makes it and the page of exports shows its progress."""
    if kind not in ExportKind.values:
        raise Http404
    if kind == ExportKind.CASES_XLSX:
        return _export_cases(request)
    region, month, _now = _monthly_choice(request, request.POST)
    return _request(
        request,
        kind,
        {"region": region.code, "region_name": region.name, "month": f"{month:%Y-%m}"},
        message=_("已开始生成，完成后可在本页下载；离开本页不影响生成。"),
    )


def _export_cases(request):
    require_desk(request.user, "supervise")
    form = CaseListForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请选择一个清单"))
        return redirect("reports:monthly")
    data = form.cleaned_data
    region = dashboard.scope_for(request.user, data["region"] or None)
    if region is None:
        raise Http404
    now = timezone.now()
    # The period as the dashboard's list reads it, frozen now: the file is the list shown.
    period = dashboard.period_of(
        data["period"] or "month", now=now, start=data["start"], end=data["end"]
    )
    try:
        listing = content.case_list(
            request.user,
            region,
            fact=data["fact"],
            listed=data["list"],
            dimension=data["dim"] or None,
            key=data["key"] or None,
            start=period.start,
            end=period.end,
            now=now,
        )
    except ReportError as exc:
        messages.error(request, exc.message)
        return redirect("reports:monthly")
    total = listing.cases.count()
    if total > services.MAX_ROWS:
        messages.error(
            request,
            _("清单共 %(n)d 件，超过一次可导出的 %(limit)d 件，请缩小范围或时段后再导出。")
            % {"n": total, "limit": services.MAX_ROWS},
        )
        return redirect("reports:monthly")
    return _request(
        request,
        ExportKind.CASES_XLSX,
        {
            "region": region.code,
            "region_name": region.name,
            "fact": data["fact"],
            "list": data["list"],
            "dim": data["dim"],
            "key": data["key"],
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "now": now.isoformat(),
        },
        message=_("已开始导出 %(n)d 件案件，完成后可在本页下载；离开本页不影响导出。")
        % {"n": total},
        now=now,
    )


@login_required
@require_GET
def exports_page(request):
    """The user's own exports, newest first, with their progress and the ready files."""
    require_desk(request.user, "supervise")
    exports = list(selectors.exports_of(request.user)[: selectors.LIST_SIZE])
    rows = [
        {
            "export": export,
            "title": " · ".join(content.export_parts(export.kind, export.params)),
            "error": message_for(export.error) if export.error else "",
        }
        for export in exports
    ]
    response = render(
        request,
        "reports/exports.html",
        {
            "rows": rows,
            "refresh": REFRESH_SECONDS if any(e.is_active for e in exports) else None,
        },
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def export_download(request, public_id):
    """The file, for the person who asked for it only; anyone else's answer is a plain 404."""
    require_desk(request.user, "supervise")
    export = selectors.export_for(request.user, public_id)
    if not export.is_ready:
        raise Http404
    suffix = services.SUFFIXES[ExportKind(export.kind)]
    try:
        handle = export.file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    services.record_download(
        export=export, actor=request.user, address=request.META.get("REMOTE_ADDR", "")
    )
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=content.download_name(
            str(export.get_kind_display()), export.kind, export.params, suffix
        ),
        content_type=CONTENT_TYPES[suffix],
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
