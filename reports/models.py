"""An export a member of staff asked for: a monthly report (PDF, Excel) or a case list (Excel).

Made by a worker (``reports.jobs``), never in the request: the row says who asked, what (the
kind and its parameters, frozen when asked), how far the worker is, and where the file is.
Only the person who asked may download it (``reports.selectors``).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class ExportKind(models.TextChoices):
    MONTHLY_PDF = "monthly_pdf", _("月度报告（PDF）")
    MONTHLY_XLSX = "monthly_xlsx", _("月度报告指标（Excel）")
    CASES_XLSX = "cases_xlsx", _("案件清单（Excel）")


class ExportState(models.TextChoices):
    QUEUED = "queued", _("排队中")
    RUNNING = "running", _("生成中")
    READY = "ready", _("已完成")
    FAILED = "failed", _("失败")


ACTIVE_STATES = (ExportState.QUEUED, ExportState.RUNNING)


class Export(models.Model):
    # In addresses instead of the primary key: not guessable, not counting other people's.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("申请人"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    kind = models.CharField(_("类型"), max_length=16, choices=ExportKind.choices)
    # What was asked, resolved when asked (region code, month, fact, frozen period bounds).
    params = models.JSONField(default=dict)
    # The language the file is written in: the asker's when they asked.
    language = models.CharField(max_length=16)
    state = models.CharField(
        _("状态"), max_length=8, choices=ExportState.choices, default=ExportState.QUEUED
    )
    progress = models.PositiveSmallIntegerField(_("进度"), default=0)  # percent
    rows = models.PositiveIntegerField(_("行数"), null=True, blank=True)
    # A random name under MEDIA_ROOT; the download name is made when downloading.
    file = models.FileField(_("文件"), upload_to="exports/%Y/%m/", max_length=200, blank=True)
    size = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=16, blank=True)  # a reports.errors code
    # Which run holds the export: a run taken over after its lease passed stops writing.
    attempt = models.PositiveSmallIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(_("申请时间"))
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(_("完成时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("导出")
        verbose_name_plural = _("导出")
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=ExportState.values), name="export_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=ExportKind.values), name="export_kind_valid"
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="export_progress_percent"),
        ]
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="export_by_user"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.public_id}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_ready(self) -> bool:
        return self.state == ExportState.READY and bool(self.file)
