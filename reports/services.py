"""The writers of an export: asking for one, and making its file in the worker.

``request_export`` writes the row and its outbox job in one transaction (``dispatch.outbox``):
the job exists exactly when the export does, and runs after the commit, even if the broker was
down at that moment. ``run_export`` is the job: it claims the export with a conditional update,
builds the file outside any transaction, reports its progress (which renews its lease), stores
the file under a random name and marks the export ready, or failed with a reason.

A run may happen twice: the outbox hands a job whose lease passed to another runner, and a
long export can outlive that lease. The export has its own lease, renewed with every progress
step: a second runner that finds it held by a live run retries later instead of building the
file twice; one that finds the lease passed (the first worker died) takes it over, and the
first run, should it still be alive, stops at its next progress step (its ``attempt`` is no
longer the export's). A run that fails for no reason of the export's puts it back in the queue
for the outbox's retry; when the outbox gives up, the export is marked failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone, translation

from dispatch import outbox
from people.models import User
from people.services import record_audit
from reports import content, pdf, spreadsheets
from reports.errors import ReportError
from reports.models import Export, ExportKind, ExportState

log = logging.getLogger("reports.exports")

TOPIC = "reports.export"
# As long as the outbox's own lease; every progress step renews it.
LEASE = dt.timedelta(minutes=2)
# A case list longer than this is refused when asked (narrow the scope or the period): a list
# is written within the worker's time limit.
MAX_ROWS = 100_000
SUFFIXES = {
    ExportKind.MONTHLY_PDF: ".pdf",
    ExportKind.MONTHLY_XLSX: ".xlsx",
    ExportKind.CASES_XLSX: ".xlsx",
}


def _language(user: User) -> str:
    languages = {code for code, _name in settings.LANGUAGES}
    return user.language if user.language in languages else settings.LANGUAGE_CODE


def request_export(
    *, actor: User, kind: str, params: dict, now: dt.datetime | None = None
) -> Export:
    """Record the export and its job; the worker makes the file after the commit.

    The scope is checked now and again when the worker runs (``content.region_in_scope``).
    """
    now = now or timezone.now()
    if kind not in ExportKind.values:
        raise ReportError("list")
    content.region_in_scope(actor, params.get("region", ""))
    with transaction.atomic():
        export = Export.objects.create(
            requested_by=actor,
            kind=kind,
            params=params,
            language=_language(actor),
            created_at=now,
        )
        outbox.enqueue(TOPIC, key=f"{TOPIC}:{export.pk}", payload={"export_id": export.pk}, now=now)
    return export


class _SupersededError(Exception):
    """Another run took the export over after this run's lease passed."""


class _Run:
    """One run's hold on an export: its writes apply only while it still holds it."""

    def __init__(self, export: Export) -> None:
        self.export = export
        self.last = -1

    def mine(self) -> QuerySet[Export]:
        return Export.objects.filter(
            pk=self.export.pk, state=ExportState.RUNNING, attempt=self.export.attempt
        )

    def progress(self, done: int, total: int) -> None:
        percent = min(99, done * 100 // total) if total else 99
        if percent == self.last:
            return
        self.last = percent
        renewed = self.mine().update(
            progress=percent, rows=done, lease_until=timezone.now() + LEASE
        )
        if not renewed:
            raise _SupersededError


def run_export(*, export_id: int, now: dt.datetime | None = None) -> str:
    """Make the export's file; returns the state it ends in (or why nothing was done)."""
    now = now or timezone.now()
    claimed = (
        Export.objects.filter(pk=export_id)
        .filter(Q(state=ExportState.QUEUED) | Q(state=ExportState.RUNNING, lease_until__lt=now))
        .update(
            state=ExportState.RUNNING,
            attempt=F("attempt") + 1,
            lease_until=now + LEASE,
            started_at=now,
            progress=0,
        )
    )
    export = Export.objects.select_related("requested_by").filter(pk=export_id).first()
    if export is None:
        return "missing"
    if not claimed:
        if export.state == ExportState.RUNNING:
            # A live run holds it: look again later (it is done by then, or its run died).
            raise outbox.RetryLaterError(f"export {export_id} is being made by another run")
        return export.state
    run = _Run(export)
    try:
        with translation.override(export.language):
            data, rows = BUILDERS[export.kind](export, run.progress)
    except ReportError as exc:
        run.mine().update(
            state=ExportState.FAILED, error=exc.code, finished_at=timezone.now(), lease_until=None
        )
        return ExportState.FAILED
    except _SupersededError:
        return "superseded"
    except Exception:
        # Back in the queue for the outbox's retry; the outbox logs the error.
        run.mine().update(state=ExportState.QUEUED, lease_until=None)
        raise
    field = export.file
    # A random name: the file's address says nothing of what it holds or whose it is.
    name = field.field.generate_filename(
        export, f"{secrets.token_urlsafe(24)}{SUFFIXES[ExportKind(export.kind)]}"
    )
    stored = field.storage.save(name, ContentFile(data), max_length=field.field.max_length)
    done = run.mine().update(
        state=ExportState.READY,
        file=stored,
        size=len(data),
        rows=rows,
        progress=100,
        finished_at=timezone.now(),
        lease_until=None,
    )
    if not done:
        field.storage.delete(stored)
        return "superseded"
    return ExportState.READY


def record_download(*, export: Export, actor: User, address: str = "") -> None:
    """A file leaves the system: who took which export (no personal value is recorded)."""
    record_audit(
        user=actor,
        action="export.downloaded",
        object_type="export",
        object_id=str(export.public_id),
        address=address,
        data={"kind": export.kind, "region": export.params.get("region", ""), "rows": export.rows},
    )


def give_up(payload: dict, error: str) -> None:
    """The outbox's last attempt failed: the export is failed, its reader told so."""
    log.warning("export %s failed for good: %s", payload["export_id"], error)
    Export.objects.filter(
        pk=payload["export_id"], state__in=[ExportState.QUEUED, ExportState.RUNNING]
    ).update(state=ExportState.FAILED, error="failed", finished_at=timezone.now(), lease_until=None)


# --- what each kind builds ---------------------------------------------------------------------

Progress = Callable[[int, int], None]


def _monthly(export: Export, progress: Progress) -> content.MonthlyReport:
    user = export.requested_by
    region = content.region_in_scope(user, export.params.get("region", ""))
    month = content.parse_month(export.params.get("month"))
    if month is None:
        raise ReportError("list")
    progress(1, 10)
    report = content.monthly_report(user, region, month, now=timezone.now())
    progress(5, 10)
    return report


def _build_monthly_pdf(export: Export, progress: Progress) -> tuple[bytes, int | None]:
    return pdf.render_monthly_pdf(_monthly(export, progress)), None


def _build_monthly_xlsx(export: Export, progress: Progress) -> tuple[bytes, int | None]:
    return spreadsheets.figures_workbook(_monthly(export, progress)), None


def _moment(value: str | None) -> dt.datetime:
    if not value:
        raise ReportError("list")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ReportError("list")
    return moment


def _build_cases_xlsx(export: Export, progress: Progress) -> tuple[bytes, int | None]:
    user, params = export.requested_by, export.params
    region = content.region_in_scope(user, params.get("region", ""))
    listing = content.case_list(
        user,
        region,
        fact=params.get("fact", ""),
        listed=params.get("list", ""),
        dimension=params.get("dim") or None,
        key=params.get("key") or None,
        # The period and the moment as they were when asked: the list the user was shown.
        start=_moment(params.get("start")),
        end=_moment(params.get("end")),
        now=_moment(params.get("now")),
    )
    total = listing.cases.count()
    if total > MAX_ROWS:
        raise ReportError("too_many")
    progress(0, total)
    data, written = spreadsheets.case_list_workbook(
        listing,
        content.case_rows(listing.cases),
        total=total,
        generated_at=timezone.now(),
        progress=progress,
    )
    return data, written


BUILDERS: dict[str, Callable[[Export, Progress], tuple[bytes, int | None]]] = {
    ExportKind.MONTHLY_PDF: _build_monthly_pdf,
    ExportKind.MONTHLY_XLSX: _build_monthly_xlsx,
    ExportKind.CASES_XLSX: _build_cases_xlsx,
}
